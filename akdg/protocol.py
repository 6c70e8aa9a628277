"""Provenance recorded in every result: package versions, git commit, machine, checksums."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

import torch

PACKAGES = ("akdg", "torch", "torchvision", "torch-fidelity", "numpy", "scipy", "scikit-learn", "snakemake", "dvc")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(start: Path | None = None) -> str | None:
    """The commit of the code that ran, with '-dirty' if tracked code or config had uncommitted changes.

    The DAG's own outputs (``results/``, ``dvc.lock``) are tracked too and change on every run, and
    the docs and tests never run in it: they say nothing about the code that ran, so they don't count.
    None outside git.
    """
    where = start or Path(__file__).resolve().parent
    ignored = ("results", "dvc.lock", "README.md", "docs", "config/README.md", "tests")
    status = ["git", "status", "--porcelain", "--untracked-files=no", "--", ":/", *(f":(exclude,top){path}" for path in ignored)]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(status, cwd=where, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def describe_device(device: torch.device) -> str:
    """The device as the run protocol records it: ``cpu``, or ``cuda:0 (<GPU name>)``."""
    return f"{device} ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else str(device)


def cpu_model() -> str:
    """The CPU's marketing name where Linux tells it (``platform.processor()`` is often empty or 'x86_64')."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, object]:
    """Code and machine: the CPU's model and the SIMD kernels torch picked, which decide the last bits of CPU arithmetic."""
    return {
        "packages": package_versions(),
        "git_commit": git_commit(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
