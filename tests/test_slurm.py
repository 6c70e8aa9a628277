"""`dvc repro` through the SLURM profile on a real SLURM cluster (controller and node on 127.0.0.1)
makes a local run's tables.

Needs Debian's slurm-wlm and munge and root; `scripts/test.sh` installs them and sets
AKDG_REQUIRE_SLURM=1, so that in CI a missing cluster fails instead of skipping. The grid is
config/test.yaml cut to one student, one seed and a teacher-free and a teacher-needing method: every
rule still runs, in 13 jobs instead of 27. Each SLURM job costs two Snakemake starts (sbatch's, then
srun's) on top of the step itself, so on 2 cores the job count, not the training, sets the time.
AKDG_SLURM_CONFIG=config/test.yaml or config/config.yaml runs that whole grid instead. The run is the
default stage of dvc.yaml with params.yaml's profile set to a copy of profiles/slurm holding the
loopback cluster's settings: one parameter turns a `dvc repro` into sbatch submissions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from slurm_cluster import loopback_cluster, missing_requirements

from conftest import REPO, command_environment, copy_project, dvc_project, small_grid

pytestmark = [pytest.mark.slow, pytest.mark.workflow, pytest.mark.slurm]

CONFIG = os.environ.get("AKDG_SLURM_CONFIG", "slurm_grid.yaml")
# profiles/slurm plus only what a cluster without an accounting database needs: squeue for job states, no account.
LOOPBACK_SETTINGS = {"slurm-status-command": "squeue", "slurm-no-account": True, "slurm-init-seconds-before-status-checks": 2}
LOOPBACK_PROFILE = "profiles/loopback"
# Every rule all_tables needs when the teacher is trained (import_teacher replaces train_teacher otherwise).
EVERY_RULE = {
    "prepare_data",
    "train_extractor",
    "reference_stats",
    "train_teacher",
    "measure_cost",
    "train_student",
    "evaluate_teacher",
    "evaluate_references",
    "evaluate_student",
    "plot_samples",
    "aggregate",
}
# Columns that depend on the machine's speed at the time, not on the computation.
TIMING_COLUMNS = ("images_per_s", "latency_ms")


def project(destination: Path) -> Path:
    """A copy of the project, with the SLURM grid (config/test.yaml, cut) in slurm_grid.yaml."""
    workdir = copy_project(destination)
    (workdir / "slurm_grid.yaml").write_text(yaml.safe_dump(small_grid(), sort_keys=False))
    return workdir


def start_snakemake(workdir: Path, profile: str, env: dict[str, str]) -> subprocess.Popen:
    """Snakemake in the background, its output to <workdir>/run.log (a pipe nobody reads would stall it)."""
    return start(workdir, [sys.executable, "-m", "snakemake", "--profile", profile, "all_tables", "--configfile", CONFIG], env)


def start_dvc_repro_on_slurm(workdir: Path, env: dict[str, str]) -> subprocess.Popen:
    """`dvc repro default` of the grid, with params.yaml's profile set to profiles/slurm and the loopback settings."""
    dvc_project(workdir, workdir / CONFIG if CONFIG != "config/config.yaml" else None)
    profile = yaml.safe_load((workdir / "profiles" / "slurm" / "config.yaml").read_text()) | LOOPBACK_SETTINGS
    (workdir / LOOPBACK_PROFILE).mkdir()
    (workdir / LOOPBACK_PROFILE / "config.yaml").write_text(yaml.safe_dump(profile))
    (workdir / "params.yaml").write_text(yaml.safe_dump({"profile": LOOPBACK_PROFILE}))
    return start(workdir, ["dvc", "repro", "default"], env)


def start(workdir: Path, command: list[str], env: dict[str, str]) -> subprocess.Popen:
    with open(workdir / "run.log", "w") as log:
        return subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen, workdir: Path) -> None:
    process.wait(timeout=3600)
    output = (workdir / "run.log").read_text()
    assert process.returncode == 0, f"{process.args} failed in {workdir}:\n{output[-8000:]}"


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, str]], Path]:
    """`dvc repro` through profiles/slurm on a fresh loopback cluster, what SLURM recorded of each job, and a local run.

    The local run of the same config: for the embedded default, the one committed under results/
    (`dvc repro`, recorded in dvc.lock against this code); for the test grid, the run the other
    end-to-end tests share; for any other grid, one through profiles/local here, beside the SLURM
    run, whose jobs spend much of their time waiting for the plugin's next status check.
    """
    reason = missing_requirements()
    if reason:
        if os.environ.get("AKDG_REQUIRE_SLURM") == "1":
            pytest.fail(f"AKDG_REQUIRE_SLURM=1 but no loopback SLURM cluster can start: {reason}")
        pytest.skip(reason)
    local, local_process = REPO, None
    if CONFIG == "config/test.yaml":
        local = request.getfixturevalue("test_grid_run")
    elif CONFIG != "config/config.yaml":
        local = project(tmp_path_factory.mktemp("local"))
        local_process = start_snakemake(local, "profiles/local", command_environment())
    workdir = project(tmp_path_factory.mktemp("slurm"))
    try:
        with loopback_cluster(tmp_path_factory.mktemp("cluster")) as cluster_env:
            env = command_environment(cluster_env)
            finish(start_dvc_repro_on_slurm(workdir, env), workdir)
            listing = subprocess.run(["scontrol", "show", "job", "--oneliner"], env=env, capture_output=True, text=True, check=True)
        saved = workdir / "logs" / "slurm" / "jobs.txt"  # for benchmarks/slurm_overhead.py, after the cluster is gone
        saved.parent.mkdir(parents=True, exist_ok=True)  # the plugin removes the folder with the logs of successful jobs
        saved.write_text(listing.stdout)
        if local_process:
            finish(local_process, local)
    finally:
        if local_process and local_process.poll() is None:
            local_process.kill()
            local_process.wait()
    jobs = [dict(field.split("=", 1) for field in line.split() if "=" in field) for line in listing.stdout.splitlines()]
    return workdir, jobs, local


def test_every_job_went_through_slurm_and_gpu_jobs_asked_for_one_gpu(runs):
    _, jobs, _ = runs
    by_rule: dict[str, set[str]] = {}
    for job in jobs:  # the plugin comments each job with rule_<name>_wildcards_<values>
        assert job["JobState"] == "COMPLETED", f"SLURM job {job['Comment']} ended {job['JobState']}"
        by_rule.setdefault(job["Comment"].split("_wildcards")[0].removeprefix("rule_"), set()).add(job.get("TresPerJob", "none"))
    assert set(by_rule) == EVERY_RULE, f"SLURM ran {sorted(by_rule)}; the DAG has {sorted(EVERY_RULE)}"
    for rule in ("train_teacher", "train_student", "measure_cost", "evaluate_student", "evaluate_teacher"):
        assert by_rule[rule] == {"gres:gpu:1"}, f"{rule} asked SLURM for {by_rule[rule]}"
    for rule in ("prepare_data", "aggregate", "plot_samples"):
        assert by_rule[rule] == {"none"}, f"{rule} should ask for no GPU, asked {by_rule[rule]}"


def test_slurm_tables_match_a_local_run_with_the_same_config(runs):
    workdir, _, local_run = runs
    tables = sorted(path.name for path in (local_run / "results" / "tables").glob("*.csv"))
    assert tables == sorted(path.name for path in (workdir / "results" / "tables").glob("*.csv")) and tables
    for name in tables:
        ours = pd.read_csv(workdir / "results" / "tables" / name)
        local = pd.read_csv(local_run / "results" / "tables" / name)
        assert list(ours.columns) == list(local.columns)
        if "metric" in local.columns:  # the claims table: claim 5's throughput rows are timings too
            ours, local = ours[ours["metric"] != "images/s"], local[local["metric"] != "images/s"]
        same = [column for column in local.columns if not column.startswith(TIMING_COLUMNS)]
        # Same seeds and thread counts: training and evaluation are deterministic on CPU, whoever schedules them.
        pd.testing.assert_frame_equal(ours[same], local[same], check_exact=False, rtol=1e-9, obj=name)


def test_the_slurm_run_is_recorded_in_dvc_lock_with_its_profile(runs):
    """DVC recorded the stage, its command naming params.yaml's profile: the grid is up to date as run on SLURM."""
    workdir, _, _ = runs
    lock = yaml.safe_load((workdir / "dvc.lock").read_text())["stages"]["default"]
    assert f"--profile {LOOPBACK_PROFILE} " in lock["cmd"]
    status = subprocess.run(["dvc", "status", "default"], cwd=workdir, env=command_environment(), capture_output=True, text=True)
    assert "Data and pipelines are up to date." in status.stdout, status.stdout + status.stderr


def test_the_overhead_benchmark_reads_every_slurm_job_of_the_run(runs, tmp_path: Path):
    """benchmarks/slurm_overhead.py pairs each SLURM job with its Snakemake job and benchmark file."""
    workdir, jobs, _ = runs
    out = tmp_path / "slurm_overhead.json"
    script = REPO / "benchmarks" / "slurm_overhead.py"
    result = subprocess.run([sys.executable, str(script), str(workdir), "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(out.read_text())["results"]
    assert sorted(row["slurm_jobid"] for row in rows) == sorted(job["JobId"] for job in jobs)
    for row in rows:  # the step ran inside its SLURM job: never longer, but for SLURM's whole-second times
        assert row["step_s"] <= row["slurm_s"] + 1, row
