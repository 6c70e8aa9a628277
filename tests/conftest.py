"""Shared fixtures: the real digits split, a quickly trained classifier, a stand-in for Inception's weights."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import yaml
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

from akdg import datasets
from akdg.feature_extractor_classifier import train_classifier
from akdg.feature_extractors import INCEPTION

REPO = Path(__file__).resolve().parent.parent
PROJECT_FILES = ("Snakefile", "workflow", "config", "profiles", "dvc.yaml", "params.yaml", "akdg", "baselines")


def copy_project(destination: Path) -> Path:
    """The files a Snakemake or DVC run needs, copied to ``destination`` (made if missing)."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, destination / name)
    return destination


DIGITS = {"name": "digits", "resolution": 16, "test_fraction": 0.2, "split_seed": 0}
# Of config/test.yaml's methods, one that needs no teacher and one that does: with one student and one seed,
# the smallest grid that still runs every rule (13 jobs instead of 27).
SMALL_GRID_METHODS = ("vanilla", "akdg")


def without_messages(workdir: Path) -> Path:
    """Drop the rules' `message:` lines in a copy: a message replaces the job block a dry run prints (rule, output, resources)."""
    for rules in (workdir / "workflow" / "rules").glob("*.smk"):
        rules.write_text(re.sub(r"^ +message:\n +.+\n", "", rules.read_text(), flags=re.MULTILINE))
    return workdir


def small_grid() -> dict:
    """config/test.yaml cut to its first student, its first seed and :data:`SMALL_GRID_METHODS`."""
    grid = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    grid.update(
        students=grid["students"][:1], seeds=grid["seeds"][:1], methods={label: grid["methods"][label] for label in SMALL_GRID_METHODS}
    )
    return grid


def tiny_train_spec(**changes: object) -> dict:
    """A training spec as the DAG passes it (``akdg train --spec``), for width-4 DCGANs that train in moments."""
    spec = {
        "generator": {"arch": "dcgan", "width": 4},
        "discriminator": {"arch": "dcgan", "width": 4},
        "method": "vanilla",
        "method_options": {},
        "seed": 0,
        "steps": 2,
        "z_dim": 8,
        "loss": "hinge",
        "batch_size": 4,
        "n_dis": 1,
        "log_every": 1,
        "ema_decay": 0.0,
        "optimizer": {"lr_g": 2e-4, "lr_d": 2e-4, "betas": [0.5, 0.999]},
    }
    return {**spec, **changes}


@pytest.fixture(scope="session")
def digits_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data") / "digits.npz"
    datasets.prepare(DIGITS, out)
    return out


@pytest.fixture(scope="session")
def digits(digits_npz: Path) -> datasets.ImageSplits:
    return datasets.load_prepared(digits_npz)


@pytest.fixture(scope="session")
def extractor(digits: datasets.ImageSplits, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("extractor") / "extractor.pt"
    train_classifier(digits, {"epochs": 3, "width": 64, "lr": 1e-3, "batch_size": 64, "seed": 0}, out)
    return out


class _ShapesOnly(FeatureExtractorInceptionV3):
    """torch-fidelity's Inception-v3 that keeps its random initialisation instead of loading weights."""

    def load_state_dict(self, *args, **kwargs):
        return None


def standin_weights(path: Path, seed: int) -> Path:
    """torch-fidelity's Inception-v3 state dict with seeded random weights: right shapes, offline."""
    empty = path.with_name("empty.pt")
    torch.save({}, empty)
    torch.manual_seed(seed)
    model = _ShapesOnly(INCEPTION, ["2048"], feature_extractor_weights_path=str(empty))
    for module in model.modules():
        if isinstance(module, nn.Conv2d):  # He init keeps the features O(0.1) through the 94 layers (default: ~1e-8)
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    torch.save(model.state_dict(), path)
    return path


def command_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's) with this interpreter's bin first on PATH: `python -m snakemake`, dvc and akdg
    (also in jobs sbatch starts, which inherit it) are ours."""
    base = dict(os.environ) if base is None else base
    return {**base, "PATH": os.pathsep.join([str(Path(sys.executable).parent), base["PATH"]])}


def run_checked(command: list[str], workdir: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=env or command_environment())
    assert result.returncode == 0, f"{command} failed in {workdir}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def dvc_project(workdir: Path, grid: Path | None = None) -> Path:
    """A project copy made a git and DVC repository, ``grid`` (a config file) in place of config/config.yaml.

    The `default` stage (dvc.yaml) then runs that grid: `dvc repro default`.
    """
    if grid is not None:
        shutil.copy(grid, workdir / "config" / "config.yaml")
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"], ["cp", str(REPO / ".gitignore"), str(REPO / ".dvcignore"), "."]):
        run_checked(command, workdir)  # .gitignore and .dvcignore after dvc init, which writes a .dvcignore of its own
    return workdir


@pytest.fixture(scope="session")
def test_grid_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """config/test.yaml's whole DAG, run once per session and shared by the end-to-end tests.

    `dvc repro default` in a git repository (the config in place of config/config.yaml), so one run
    serves the table and protocol checks and the DVC remote round trip. DVC's stage runs Snakemake
    through profiles/local.
    """
    workdir = copy_project(tmp_path_factory.mktemp("test_grid"))
    dvc_project(workdir, workdir / "config" / "test.yaml")
    run_checked(["dvc", "repro", "default"], workdir)
    return workdir
