"""Measure a whole DAG: wall time and peak memory on this machine, against its budget.

Runs `snakemake --cores N all_tables` in a fresh copy of the project (setup excluded), samples the
memory of the whole process tree (every 0.5 s or less often, see PeakTreeMemory), and checks the tables still show real learning.
Prints the figures and their ratios to the budget, and writes a JSON (default
results/benchmarks/dag_budget.json).

    python benchmarks/dag_budget.py --cores 2                      # the default DAG: 5 minutes, 4 GB
    python benchmarks/dag_budget.py --cores 2 --configfile config/cpu_repro.yaml --budget-seconds 3600 \
        --keep /tmp/cpu_repro --out results/benchmarks/cpu_repro.json   # the CPU-scale reproduction: 1 hour
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import psutil
import torch
import yaml

from benchlib import copy_workflow, REPO, RESULTS, machine, setup_logging, write_result

BUDGET_BYTES = 4 * 1024**3
log = logging.getLogger("dag_budget")


def tree_memory(root: psutil.Process) -> tuple[int, int]:
    """(sum of PSS, sum of RSS) over a process and its descendants; PSS splits shared pages fairly."""
    pss = rss = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            info = process.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        pss, rss = pss + info.pss, rss + info.rss
    return pss, rss


class PeakTreeMemory:
    """Peak summed PSS and RSS of a process and its descendants, sampled in a thread while the block runs.

    Reading PSS makes the kernel walk every page of every process (holding each one's memory-map
    lock), about 10 ms per torch process. So that measuring disturbs the measured as little as
    possible, the sampler waits at least ``interval`` and at least ``1 / max_duty`` times as long as
    its last sample took, and keeps count of what it spent (``samples``, ``sampling_seconds``).
    """

    def __init__(self, pid: int, interval: float, max_duty: float = 0.02) -> None:
        self.root, self.interval, self.max_duty = psutil.Process(pid), interval, max_duty
        self.pss = self.rss = 0
        self.samples, self.sampling_seconds = 0, 0.0
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.is_set():
            start = time.perf_counter()
            pss, rss = tree_memory(self.root)
            took = time.perf_counter() - start
            self.pss, self.rss = max(self.pss, pss), max(self.rss, rss)
            self.samples, self.sampling_seconds = self.samples + 1, self.sampling_seconds + took
            self._done.wait(max(self.interval, took / self.max_duty))

    def __enter__(self) -> "PeakTreeMemory":
        self._sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._sampler.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--configfile", type=Path, default=None, help="default: config/config.yaml")
    parser.add_argument("--keep", type=Path, default=None, help="run in this folder and keep it (default: a temp dir)")
    parser.add_argument("--budget-seconds", type=float, default=300.0, help="wall-time budget (default: the default DAG's 5 minutes)")
    parser.add_argument("--out", type=Path, default=RESULTS / "dag_budget.json")
    args = parser.parse_args()
    setup_logging()
    info = machine(torch.device("cpu"))  # the jobs pick their own device (training.device: auto); this records the host

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="akdg-dag-"))
    workdir.mkdir(parents=True, exist_ok=True)
    copy_workflow(workdir)
    command = [sys.executable, "-m", "snakemake", "--cores", str(args.cores), "all_tables"]
    if args.configfile:
        command += ["--configfile", str(args.configfile.resolve())]
    log.info("running %s in %s", " ".join(command), workdir)

    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with PeakTreeMemory(process.pid, interval=0.5) as peak:
        _, stderr = process.communicate()
        wall = time.perf_counter() - start
    if process.returncode:
        log.error("snakemake failed (exit %d):\n%s", process.returncode, stderr[-4000:])
        return 1

    config = yaml.safe_load((args.configfile or REPO / "config" / "config.yaml").read_text())
    summary = pd.read_csv(workdir / config["outdir"] / "tables" / f"{config['dataset']['name']}.csv")
    untrained_fid = summary.loc[summary["kind"] == "untrained", "fid"].min()
    trained_fid = summary.loc[summary["kind"] == "trained", "fid"].max()
    result = {
        "snakemake_command": " ".join(command),
        "cores": args.cores,
        "cuda_visible": torch.cuda.is_available(),
        "wall_seconds": wall,
        "budget_seconds": args.budget_seconds,
        "wall_ratio_to_budget": wall / args.budget_seconds,
        "peak_pss_bytes": peak.pss,
        "peak_rss_sum_bytes": peak.rss,
        "memory_samples": peak.samples,
        "memory_sampling_seconds": peak.sampling_seconds,
        "memory_ratio_to_budget": peak.pss / BUDGET_BYTES,
        "worst_trained_fid": float(trained_fid),
        "best_untrained_fid": float(untrained_fid),
        "learning_ratio": float(trained_fid / untrained_fid),
    }
    write_result(args.out, "dag_budget", info, {"cores": args.cores, "configfile": str(args.configfile or "config/config.yaml")}, result)
    log.info("wall time     %6.1f s   (budget %.0f s, ratio %.2f)", wall, args.budget_seconds, result["wall_ratio_to_budget"])
    log.info("peak memory   %6.2f GB PSS, %.2f GB summed RSS   (budget 4 GB, PSS ratio %.2f)", peak.pss / 1024**3, peak.rss / 1024**3, result["memory_ratio_to_budget"])
    log.info("learning      worst trained FID %.2f vs best untrained FID %.2f (ratio %.3f)", trained_fid, untrained_fid, result["learning_ratio"])
    if not args.keep:
        shutil.rmtree(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
