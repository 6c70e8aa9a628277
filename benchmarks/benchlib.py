"""What the benchmarks share: the machine they ran on, the device, interleaved timing, the JSON they write.

Every figure is measured side by side in one process and reported as a ratio: on a shared or
loaded machine absolute times drift, ratios of interleaved runs much less. Absolute times are kept
too, beside the machine (CPU model, cores, load average, GPU name) so that a reader can judge them.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import psutil
import torch

from akdg.protocol import cpu_model, describe_device, git_commit, package_versions
from akdg.registry import AkdgError
from akdg.training import resolve_device

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "results" / "benchmarks"
CONFIGS = {
    "default": REPO / "config" / "config.yaml",
    "cifar10": REPO / "config" / "paper" / "cifar10.yaml",
    "lsun_bedroom": REPO / "config" / "paper" / "lsun_bedroom.yaml",
}
log = logging.getLogger("benchmarks")


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")


def run(main: Callable[[], int]) -> None:
    """Exit with ``main``'s status; an AkdgError (a bad option, a missing file) is one sentence and status 2, as in ``akdg``."""
    try:
        status = main()
    except AkdgError as error:
        log.error("%s", error)
        status = 2
    sys.exit(status)


def choose_device(requested: str, threads: int) -> torch.device:
    """``auto | cpu | cuda`` as ``training.device`` reads it; CPU threads set for the whole process."""
    torch.set_num_threads(threads)
    return resolve_device(requested)


def machine(device: torch.device) -> dict[str, Any]:
    """Where the figures come from; the load average says how busy the machine was while they were taken."""
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "torch_threads": torch.get_num_threads(),
        "device": describe_device(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "packages": package_versions(),
        "git_commit": git_commit(REPO),
        "load_average_1_5_15_start": list(os.getloadavg()),
    }


def copy_workflow(workdir: Path, checkout: Path = REPO) -> None:
    """What ``snakemake all_tables`` needs, copied from ``checkout`` to ``workdir``: a fresh project whose results start empty."""
    for name in ("Snakefile", "workflow", "config", "profiles"):
        source = checkout / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, workdir / name)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, run: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, this process's CPU seconds, value) of ``run``, the device synchronised on both sides.

    CUDA kernels run asynchronously, hence the synchronisation. The CPU seconds (user + system, all
    threads) leave out the time the process waited for a core: on a busy machine they move much less
    than the wall time, and on the CPU they are the steadier figure to compare.
    """
    synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    value = run()
    synchronize(device)
    return time.perf_counter() - wall, time.process_time() - cpu, value


def interleave(
    prepare: dict[str, Callable[[], Callable[[], Any]]],
    repeats: int,
    device: torch.device,
    on_result: Callable[[int, dict[str, Any]], None] | None = None,
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Time each contender ``repeats`` times, alternating the order (A B, B A, ...) so drift hits both alike.

    ``prepare[label]()`` builds a fresh run (untimed: models, data placement) and returns the callable
    that is timed. ``on_result(repeat, {label: value})`` sees what the runs of one repeat returned.
    Returns the wall and the CPU seconds (see :func:`timed`) of every run, per label.
    """
    labels = list(prepare)
    wall: dict[str, list[float]] = {label: [] for label in labels}
    cpu: dict[str, list[float]] = {label: [] for label in labels}
    for repeat in range(repeats):
        values = {}
        for label in labels if repeat % 2 == 0 else reversed(labels):
            elapsed, used, values[label] = timed(device, prepare[label]())
            wall[label].append(elapsed)
            cpu[label].append(used)
        if on_result is not None:
            on_result(repeat, values)
    return wall, cpu


def ratio_figures(numerator: list[float], denominator: list[float]) -> dict[str, Any]:
    """median(numerator) / median(denominator), and the median of the per-repeat (paired) ratios.

    The paired median is the steadier figure on a loaded machine (each pair ran back to back).
    """
    paired = [a / b for a, b in zip(numerator, denominator)]
    return {
        "ratio_of_medians": statistics.median(numerator) / statistics.median(denominator),
        "median_paired_ratio": statistics.median(paired),
        "paired_ratios": paired,
    }


def write_result(out: Path, benchmark: str, info: dict[str, Any], settings: dict[str, Any], results: Any, **extra: Any) -> None:
    """One JSON per benchmark: ``info`` (:func:`machine`, taken at the start; the end's load average is
    added here), settings, raw timings and ratios."""
    payload = {
        "benchmark": benchmark,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {**info, "load_average_1_5_15_end": list(os.getloadavg())},
        "settings": settings,
        **extra,
        "results": results,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2) + "\n")
    log.info("wrote %s", out)


def table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """A plain fixed-width table for the log (the JSON has every figure unrounded)."""
    cells = [list(map(str, header)), *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
