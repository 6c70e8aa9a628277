"""Measure a whole DAG: wall time, peak memory and how well it keeps the cores busy, against its budget.

Runs `snakemake --cores N all_tables` in a fresh copy of the project (setup excluded), samples the
memory of the whole process tree (every 0.5 s or less often, see PeakTreeMemory), and checks the tables still show real learning.
From the jobs' Snakemake benchmark files it computes the efficiency, the sum of the jobs' own wall
times / (cores x wall time), and the same with their CPU times; from Snakemake's log, the order the
jobs started in (how many started before the teacher, the DAG's critical path).
With ``--baseline`` (another checkout, e.g. a worktree of main) it runs that checkout's DAG and this
one's alternately, ``--rounds`` times each, with the load average before each run, and reports the
ratios: on a shared machine absolute times drift, pairs run back to back much less.
Prints the figures and their ratios to the budget, and writes a JSON (default
results/benchmarks/dag_budget.json).

    python benchmarks/dag_budget.py --cores 2                      # the default DAG: 5 minutes, 4 GB
    python benchmarks/dag_budget.py --cores 2 --baseline /work/wt-before --rounds 2   # before/after a change
    python benchmarks/dag_budget.py --cores 2 --configfile config/cpu_repro.yaml --budget-seconds 3600 \
        --keep /tmp/cpu_repro --out results/benchmarks/cpu_repro.json   # the CPU-scale reproduction: 1 hour
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import torch
import yaml

from akdg.protocol import git_commit
from benchlib import REPO, RESULTS, copy_workflow, machine, setup_logging, table, write_result

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


# Snakemake's console log: a timestamp line opens each record; a job starts with its message
# ("Job 7: <message>") or, for a rule without one, "rule NAME:" ... "jobid: 7"; it ends with "Finished jobid: 7 (Rule: NAME)".
TIMESTAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
STARTED_WITH_MESSAGE = re.compile(r"^Job (\d+): ")
STARTED_RULE = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):$")
STARTED_JOBID = re.compile(r"^\s+jobid: (\d+)$")
FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)")
CRITICAL_RULE = "train_teacher"


def job_starts(console: str) -> list[tuple[float, str]]:
    """(seconds since the first job started, rule) of every job, in the order Snakemake started them."""
    started: list[tuple[datetime.datetime, str]] = []
    rules: dict[str, str] = {}
    when, rule = None, None
    for line in console.splitlines():
        if match := TIMESTAMP.match(line):
            when, rule = datetime.datetime.strptime(match.group(1), "%a %b %d %H:%M:%S %Y"), None
        elif match := STARTED_WITH_MESSAGE.match(line):
            started.append((when, match.group(1)))
        elif match := STARTED_RULE.match(line):
            rule = match.group(1)
        elif (match := STARTED_JOBID.match(line)) and rule is not None:
            started.append((when, match.group(1)))
            rules[match.group(1)] = rule
        elif match := FINISHED.match(line):
            rules[match.group(1)] = match.group(2)
    if not started:
        return []
    first = started[0][0]
    return [((moment - first).total_seconds(), rules.get(jobid, f"job {jobid}")) for moment, jobid in started]


def start_order(console: str) -> dict[str, Any]:
    """The order the jobs started in, and how many started before the critical path's first job."""
    starts = job_starts(console)
    teacher = next((index for index, (_, rule) in enumerate(starts) if rule == CRITICAL_RULE), None)
    return {
        "start_order": [rule for _, rule in starts],
        "jobs_started_before_teacher": teacher,
        "teacher_start_seconds": starts[teacher][0] if teacher is not None else None,
    }


def efficiency(benchmark_dir: Path, wall: float, cores: int) -> dict[str, Any]:
    """How busy the DAG kept its cores, from Snakemake's per-job benchmark files (columns ``s``, ``cpu_time``).

    ``efficiency``: the jobs' own wall times summed over cores x wall (a 2-thread job counts once);
    ``cpu_efficiency``: their CPU times summed over the same (what the cores actually did for the jobs).
    """
    files = sorted(benchmark_dir.rglob("*.tsv"))
    jobs = pd.concat([pd.read_csv(path, sep="\t") for path in files], ignore_index=True)
    job_seconds = float(jobs["s"].sum())
    cpu_seconds = float(pd.to_numeric(jobs["cpu_time"], errors="coerce").sum())
    return {
        "benchmarked_jobs": len(files),
        "job_seconds_sum": job_seconds,
        "job_cpu_seconds_sum": cpu_seconds,
        "efficiency": job_seconds / (cores * wall),
        "cpu_efficiency": cpu_seconds / (cores * wall),
    }


def run_dag(checkout: Path, workdir: Path, cores: int, configfile: Path | None) -> dict[str, Any] | None:
    """One ``snakemake all_tables`` of ``checkout``'s workflow and code in a fresh ``workdir``; None if it failed.

    The jobs run ``akdg`` with ``checkout`` first on PYTHONPATH, so they import that checkout's code,
    whatever the venv's editable install points at.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    copy_workflow(workdir, checkout)
    command = [sys.executable, "-m", "snakemake", "--cores", str(cores), "all_tables"]
    if configfile:
        command += ["--configfile", str(configfile.resolve())]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(checkout), os.environ.get("PYTHONPATH")]))}
    load_before = list(os.getloadavg())
    log.info("running %s in %s (code: %s, load %.2f)", " ".join(command), workdir, checkout, load_before[0])
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with PeakTreeMemory(process.pid, interval=0.5) as peak:
        _, console = process.communicate()
        wall = time.perf_counter() - start
    if process.returncode:
        log.error("snakemake failed (exit %d):\n%s", process.returncode, console[-4000:])
        return None
    config = yaml.safe_load((configfile or checkout / "config" / "config.yaml").read_text())
    outdir, dataset = workdir / config["outdir"], config["dataset"]["name"]
    summary = pd.read_csv(outdir / "tables" / f"{dataset}.csv")
    untrained_fid = summary.loc[summary["kind"] == "untrained", "fid"].min()
    trained_fid = summary.loc[summary["kind"] == "trained", "fid"].max()
    return {
        "snakemake_command": " ".join(command),
        "checkout": str(checkout),
        "checkout_git_commit": git_commit(checkout),
        "load_average_1_5_15_before": load_before,
        "cores": cores,
        "cuda_visible": torch.cuda.is_available(),
        "wall_seconds": wall,
        "peak_pss_bytes": peak.pss,
        "peak_rss_sum_bytes": peak.rss,
        "memory_samples": peak.samples,
        "memory_sampling_seconds": peak.sampling_seconds,
        "memory_ratio_to_budget": peak.pss / BUDGET_BYTES,
        "worst_trained_fid": float(trained_fid),
        "best_untrained_fid": float(untrained_fid),
        "learning_ratio": float(trained_fid / untrained_fid),
        **efficiency(outdir / "logs" / dataset / "benchmark", wall, cores),
        **start_order(console),
    }


def comparison(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> dict[str, Any]:
    """Before/after figures per run and their ratios (after / before: under 1 is a shorter wall time)."""
    keys = (
        "wall_seconds",
        "efficiency",
        "cpu_efficiency",
        "jobs_started_before_teacher",
        "teacher_start_seconds",
        "load_average_1_5_15_before",
    )
    paired_wall = [b["wall_seconds"] / a["wall_seconds"] for a, b in zip(before, after)]
    return {
        "before": {"checkout_git_commit": before[0]["checkout_git_commit"], "runs": [{key: run[key] for key in keys} for run in before]},
        "after": {"checkout_git_commit": after[0]["checkout_git_commit"], "runs": [{key: run[key] for key in keys} for run in after]},
        "wall_ratio_after_to_before": statistics.median(run["wall_seconds"] for run in after)
        / statistics.median(run["wall_seconds"] for run in before),
        "paired_wall_ratios_after_to_before": paired_wall,
        "efficiency_ratio_after_to_before": statistics.median(run["efficiency"] for run in after)
        / statistics.median(run["efficiency"] for run in before),
        "cpu_efficiency_ratio_after_to_before": (
            statistics.median(run["cpu_efficiency"] for run in after) / statistics.median(run["cpu_efficiency"] for run in before)
        ),
    }


def log_run(label: str, run: dict[str, Any], budget_seconds: float) -> None:
    log.info(
        "%s: wall time %6.1f s (budget %.0f s, ratio %.2f), load before %.2f",
        label,
        run["wall_seconds"],
        budget_seconds,
        run["wall_seconds"] / budget_seconds,
        run["load_average_1_5_15_before"][0],
    )
    log.info(
        "%s: efficiency %.2f (job seconds %.0f / (%d cores x wall)), CPU efficiency %.2f (job CPU seconds %.0f)",
        label,
        run["efficiency"],
        run["job_seconds_sum"],
        run["cores"],
        run["cpu_efficiency"],
        run["job_cpu_seconds_sum"],
    )
    log.info(
        "%s: %s jobs started before train_teacher (%s s after the first); order: %s",
        label,
        run["jobs_started_before_teacher"],
        run["teacher_start_seconds"],
        ", ".join(run["start_order"]),
    )


def summarize(runs: dict[str, list[dict[str, Any]]], latest_label: str, budget_seconds: float) -> dict[str, Any]:
    """The JSON's results: the latest run of this checkout, and with a baseline the comparison of every pair so far."""
    latest = runs[latest_label][-1]
    result = {**latest, "budget_seconds": budget_seconds, "wall_ratio_to_budget": latest["wall_seconds"] / budget_seconds}
    if latest_label == "after":
        result["comparison"] = comparison(runs["before"], runs["after"])
        log.info(
            "\n%s",
            table(
                ["run", "checkout", "load before", "wall s", "efficiency", "CPU efficiency", "jobs before teacher"],
                [
                    [
                        f"{label} {i + 1}",
                        run["checkout_git_commit"][:12],
                        f"{run['load_average_1_5_15_before'][0]:.2f}",
                        f"{run['wall_seconds']:.1f}",
                        f"{run['efficiency']:.2f}",
                        f"{run['cpu_efficiency']:.2f}",
                        run["jobs_started_before_teacher"],
                    ]
                    for label in ("before", "after")
                    for i, run in enumerate(runs[label])
                ],
            ),
        )
        log.info(
            "after / before: wall %.2f (paired %s), efficiency %.2f, CPU efficiency %.2f",
            result["comparison"]["wall_ratio_after_to_before"],
            ", ".join(f"{ratio:.2f}" for ratio in result["comparison"]["paired_wall_ratios_after_to_before"]),
            result["comparison"]["efficiency_ratio_after_to_before"],
            result["comparison"]["cpu_efficiency_ratio_after_to_before"],
        )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--configfile", type=Path, default=None, help="default: config/config.yaml")
    parser.add_argument("--keep", type=Path, default=None, help="run in this folder and keep it (default: a temp dir)")
    parser.add_argument("--budget-seconds", type=float, default=300.0, help="wall-time budget (default: the default DAG's 5 minutes)")
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout to run alternately with this one (before/after)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each checkout with --baseline (default 1)")
    parser.add_argument("--out", type=Path, default=RESULTS / "dag_budget.json")
    args = parser.parse_args()
    setup_logging()
    info = machine(torch.device("cpu"))  # the jobs pick their own device (training.device: auto); this records the host

    root = args.keep or Path(tempfile.mkdtemp(prefix="akdg-dag-"))
    plan = [("before", args.baseline.resolve()), ("after", REPO)] * args.rounds if args.baseline else [("this", REPO)]
    latest_label = "after" if args.baseline else "this"
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": [], "this": []}
    settings = {
        "cores": args.cores,
        "configfile": str(args.configfile or "config/config.yaml"),
        "baseline": str(args.baseline) if args.baseline else None,
    }
    for index, (label, checkout) in enumerate(plan):
        workdir = root if len(plan) == 1 else root / f"{index}-{label}"
        run = run_dag(checkout, workdir, args.cores, args.configfile)
        if run is None:
            return 1
        log_run(label, run, args.budget_seconds)
        runs[label].append(run)
        if not args.keep:
            shutil.rmtree(workdir)
        if label == latest_label:  # after each pair: a run stopped early still leaves its complete pairs
            write_result(
                args.out, "dag_budget", info, {**settings, "rounds": len(runs[label])}, summarize(runs, latest_label, args.budget_seconds)
            )
    latest = runs[latest_label][-1]
    log.info(
        "peak memory   %6.2f GB PSS, %.2f GB summed RSS   (budget 4 GB, PSS ratio %.2f)",
        latest["peak_pss_bytes"] / 1024**3,
        latest["peak_rss_sum_bytes"] / 1024**3,
        latest["memory_ratio_to_budget"],
    )
    log.info(
        "learning      worst trained FID %.2f vs best untrained FID %.2f (ratio %.3f)",
        latest["worst_trained_fid"],
        latest["best_untrained_fid"],
        latest["learning_ratio"],
    )
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
