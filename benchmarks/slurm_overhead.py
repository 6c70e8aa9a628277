"""Per-job overhead of running the DAG through profiles/slurm: what a SLURM job costs beyond its own step.

Reads a finished run's working directory: Snakemake's own log of the run (``.snakemake/log/``, the
newest unless ``--log``) says which SLURM job ran which Snakemake job, when each was submitted and
when Snakemake saw it finish, and where its benchmark file is; each rule's benchmark file
(``<outdir>/logs/<dataset>/benchmark/**/*.tsv``, column ``s``) says how long the step itself ran;
SLURM says when each job started and ended on its node: ``scontrol show job --oneliner`` (a saved
listing with ``--jobs``, as the SLURM test saves it in ``logs/slurm/jobs.txt``, else asked live),
or ``sacct`` on clusters where finished jobs have left scontrol.

Per job, in seconds:

- ``in_job``: SLURM start to end, minus the step (the job's Snakemake start, srun, its own Snakemake
  start and bookkeeping): what the job holds its allocation for beyond the step;
- ``seen``: Snakemake's submission to Snakemake seeing the job finished, minus the step (adds the
  queue wait and the status-check interval): what each job adds to the DAG's critical path.

Timestamps are whole seconds on both sides, so single figures are +-1 s; medians over the jobs are
the figures to compare. A busy machine stretches both: the load average is recorded beside them.

    python benchmarks/slurm_overhead.py <workdir>                    # a run whose cluster is still up, or
    python benchmarks/slurm_overhead.py <workdir> --jobs <workdir>/logs/slurm/jobs.txt \\
        --code-commit 21733eb --out results/benchmarks/slurm_overhead.json
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import re
import shutil
import statistics
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import torch

from akdg.registry import AkdgError
from benchlib import RESULTS, machine, run, setup_logging, table, write_result

log = logging.getLogger("slurm_overhead")
SAVED_JOBS = Path("logs") / "slurm" / "jobs.txt"  # where the SLURM test saves scontrol's listing of its run
BLOCK_TIME = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
RULE = re.compile(r"^(?:local)?rule (\w+):$")
FIELD = re.compile(r"^\s+(jobid|benchmark): (.+)$")
SUBMITTED = re.compile(r"^Job (\d+) has been submitted with SLURM jobid (\d+)")
FINISHED = re.compile(r"^Finished jobid: (\d+)(?: \(Rule: (\w+)\))?")
# A rule with a `message:` prints "Job N: <message>" instead of its block; the workflow's messages end with the job's log.
MESSAGE = re.compile(r"^Job (\d+): .*\((?:progress|log): (\S+)\)$")


def benchmark_of(log_file: str) -> str:
    """The benchmark file of a job from its log file: the rules keep <outdir>/logs/<dataset>/X.log beside .../benchmark/X.tsv."""
    parts = Path(log_file).parts
    at = parts.index("logs") + 2  # past logs/<dataset>
    return str(Path(*parts[:at], "benchmark", *parts[at:]).with_suffix(".tsv"))


@dataclass
class Job:
    """One Snakemake job run as one SLURM job, with the times each side recorded."""

    rule: str
    snakemake_jobid: int
    slurm_jobid: str = ""
    benchmark: str = ""
    submitted: datetime | None = None
    seen_finished: datetime | None = None
    slurm_start: datetime | None = None
    slurm_end: datetime | None = None
    step_s: float | None = None

    def figures(self) -> dict[str, float]:
        slurm_s = (self.slurm_end - self.slurm_start).total_seconds()
        seen_s = (self.seen_finished - self.submitted).total_seconds()
        return {
            "step_s": self.step_s,
            "slurm_s": slurm_s,
            "in_job_s": slurm_s - self.step_s,
            "seen_s": seen_s,
            "seen_overhead_s": seen_s - self.step_s,
        }


def snakemake_log(workdir: Path, given: Path | None) -> Path:
    if given is not None:
        return given
    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    if not logs:
        raise AkdgError(f"{workdir} has no .snakemake/log/*.snakemake.log; pass the run's working directory or --log")
    return logs[-1]  # named by start time


def parse_snakemake_log(path: Path) -> dict[str, Job]:
    """SLURM job id -> the Snakemake job it ran, its benchmark file and when Snakemake submitted and saw it end."""
    by_jobid: dict[int, Job] = {}
    stamp: datetime | None = None
    current: Job | None = None
    for line in path.read_text().splitlines():
        if match := BLOCK_TIME.match(line):
            stamp = datetime.strptime(match[1], "%a %b %d %H:%M:%S %Y")
        elif match := RULE.match(line):
            current = Job(rule=match[1], snakemake_jobid=-1, submitted=stamp)
        elif (match := FIELD.match(line)) and current is not None:
            if match[1] == "jobid":
                current.snakemake_jobid = int(match[2])
                by_jobid[current.snakemake_jobid] = current
            else:
                current.benchmark = match[2].strip()
        elif match := MESSAGE.match(line):
            current = None
            by_jobid[int(match[1])] = Job(rule="", snakemake_jobid=int(match[1]), submitted=stamp, benchmark=benchmark_of(match[2]))
        elif match := SUBMITTED.match(line):
            by_jobid[int(match[1])].slurm_jobid = match[2]
        elif (match := FINISHED.match(line)) and int(match[1]) in by_jobid:
            by_jobid[int(match[1])].seen_finished = stamp
            by_jobid[int(match[1])].rule = by_jobid[int(match[1])].rule or match[2] or ""
    return {job.slurm_jobid: job for job in by_jobid.values() if job.slurm_jobid}


def slurm_times(jobs_file: Path | None, slurm_ids: list[str]) -> dict[str, tuple[datetime, datetime]]:
    """SLURM job id -> (start, end), from a saved ``scontrol show job --oneliner`` listing, scontrol or sacct."""
    if jobs_file is not None:
        listing = jobs_file.read_text()
    elif shutil.which("scontrol"):
        listing = subprocess.run(["scontrol", "show", "job", "--oneliner"], capture_output=True, text=True).stdout
    else:
        listing = ""
    times = {}
    for line in listing.splitlines():
        fields = dict(field.split("=", 1) for field in line.split() if "=" in field)
        if fields.get("JobId") in slurm_ids and fields.get("EndTime", "Unknown") != "Unknown":
            times[fields["JobId"]] = (datetime.fromisoformat(fields["StartTime"]), datetime.fromisoformat(fields["EndTime"]))
    missing = [job for job in slurm_ids if job not in times]
    if missing and jobs_file is None and shutil.which("sacct"):
        accounted = subprocess.run(
            ["sacct", "-X", "-n", "-P", "-o", "JobID,Start,End", "-j", ",".join(missing)], capture_output=True, text=True
        )
        for line in accounted.stdout.splitlines():
            job, start, end = line.split("|")
            if end not in ("Unknown", "None", ""):
                times[job] = (datetime.fromisoformat(start), datetime.fromisoformat(end))
    missing = [job for job in slurm_ids if job not in times]
    if missing:
        raise AkdgError(
            f"SLURM has no start and end time for jobs {', '.join(missing)}; run this while the cluster still knows them "
            "(scontrol keeps finished jobs for MinJobAge seconds, sacct for longer), or pass --jobs with a saved listing"
        )
    return times


def step_seconds(path: Path) -> float:
    """The step's own wall time: column ``s`` of Snakemake's benchmark file."""
    with path.open() as handle:
        return float(next(csv.DictReader(handle, delimiter="\t"))["s"])


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "mean": statistics.fmean(values), "min": min(values), "max": max(values)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", type=Path, help="the finished run's working directory (where Snakemake ran)")
    parser.add_argument("--log", type=Path, help="Snakemake's log of the run (default: the newest in <workdir>/.snakemake/log)")
    parser.add_argument(
        "--jobs",
        type=Path,
        help=f"a saved `scontrol show job --oneliner` listing (default: <workdir>/{SAVED_JOBS} if there, else asked live)",
    )
    parser.add_argument("--code-commit", default="", help="the commit of the code the run used, recorded in the JSON")
    parser.add_argument("--out", type=Path, help=f"write the figures here (e.g. {RESULTS / 'slurm_overhead.json'})")
    args = parser.parse_args()

    info = machine(torch.device("cpu"))
    log_path = snakemake_log(args.workdir, args.log)
    jobs = parse_snakemake_log(log_path)
    if not jobs:
        raise AkdgError(f"{log_path} records no SLURM submission; was the run made with --profile profiles/slurm?")
    jobs_file = args.jobs or (args.workdir / SAVED_JOBS if (args.workdir / SAVED_JOBS).exists() else None)
    for slurm_id, (start, end) in slurm_times(jobs_file, list(jobs)).items():
        jobs[slurm_id].slurm_start, jobs[slurm_id].slurm_end = start, end
    rows = []
    for slurm_id, job in sorted(jobs.items(), key=lambda item: int(item[0])):
        benchmark = args.workdir / job.benchmark
        if not job.benchmark or not benchmark.exists():
            raise AkdgError(
                f"SLURM job {slurm_id} ({job.rule}) has no benchmark file {benchmark}; the run is unfinished or its outputs were moved"
            )
        job.step_s = step_seconds(benchmark)
        rows.append({"slurm_jobid": slurm_id, "rule": job.rule, "benchmark": job.benchmark, **job.figures()})

    in_job = summary([row["in_job_s"] for row in rows])
    seen = summary([row["seen_overhead_s"] for row in rows])
    log.info(
        table(
            ["SLURM job", "rule", "step s", "SLURM s", "in-job overhead s", "submit-to-seen overhead s"],
            [
                [
                    row["slurm_jobid"],
                    row["rule"],
                    f"{row['step_s']:.1f}",
                    f"{row['slurm_s']:.0f}",
                    f"{row['in_job_s']:.1f}",
                    f"{row['seen_overhead_s']:.1f}",
                ]
                for row in rows
            ],
        )
    )
    log.info(
        "%d SLURM jobs; overhead per job (s): in the job median %.1f, mean %.1f; submission to seen finished median %.1f, mean %.1f",
        len(rows),
        in_job["median"],
        in_job["mean"],
        seen["median"],
        seen["mean"],
    )
    log.info("load average (1, 5, 15 min) now: %s", ", ".join(f"{value:.2f}" for value in os.getloadavg()))
    if args.out:
        settings = {
            "workdir": str(args.workdir),
            "snakemake_log": str(log_path),
            "jobs": str(jobs_file or "scontrol/sacct, live"),
            "code_commit": args.code_commit,
        }
        write_result(
            args.out, "slurm_overhead", info, settings, rows, summary={"jobs": len(rows), "in_job_s": in_job, "seen_overhead_s": seen}
        )
    return 0


if __name__ == "__main__":
    setup_logging()
    run(main)
