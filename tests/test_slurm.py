"""The SLURM profile on a real SLURM cluster (controller and node on 127.0.0.1) makes a local run's tables.

Needs Debian's slurm-wlm and munge and root; `scripts/test.sh` installs them and sets
AKDG_REQUIRE_SLURM=1, so that in CI a missing cluster fails instead of skipping. The grid is
config/test.yaml by default (every rule, in minutes); AKDG_SLURM_CONFIG=config/config.yaml runs the
embedded default instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO, copy_project
from slurm_cluster import loopback_cluster, missing_requirements

CONFIG = os.environ.get("AKDG_SLURM_CONFIG", "config/test.yaml")
# Only what a cluster without an accounting database needs: squeue for job states, no account.
LOOPBACK_OPTIONS = ["--slurm-status-command", "squeue", "--slurm-no-account", "--slurm-init-seconds-before-status-checks", "2"]
# Columns that depend on the machine's speed at the time, not on the computation.
TIMING_COLUMNS = ("images_per_s", "latency_ms")


def environment(extra: dict[str, str]) -> dict[str, str]:
    """This interpreter's bin first on PATH: sbatch exports it, so every job runs our snakemake and akdg."""
    return {**extra, "PATH": os.pathsep.join([str(Path(sys.executable).parent), extra["PATH"]])}


def snakemake(workdir: Path, profile: str, env: dict[str, str], *options: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--profile", profile, "all_tables", "--configfile", CONFIG, *options]
    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


@pytest.fixture(scope="module")
def slurm_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, str]]]:
    """The DAG through profiles/slurm on a fresh loopback cluster; also what SLURM recorded of each job."""
    reason = missing_requirements()
    if reason:
        if os.environ.get("AKDG_REQUIRE_SLURM") == "1":
            pytest.fail(f"AKDG_REQUIRE_SLURM=1 but no loopback SLURM cluster can start: {reason}")
        pytest.skip(reason)
    workdir = copy_project(tmp_path_factory.mktemp("slurm"))
    with loopback_cluster(tmp_path_factory.mktemp("cluster")) as cluster_env:
        env = environment(cluster_env)
        snakemake(workdir, "profiles/slurm", env, *LOOPBACK_OPTIONS)
        listing = subprocess.run(["scontrol", "show", "job", "--oneliner"], env=env, capture_output=True, text=True, check=True)
    jobs = [dict(field.split("=", 1) for field in line.split() if "=" in field) for line in listing.stdout.splitlines()]
    return workdir, jobs


@pytest.fixture(scope="module")
def local_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local run of the same config.

    The embedded default's is the one committed under results/ (`dvc repro`, recorded in dvc.lock
    against this code); the test grid's is the run the other end-to-end tests share; any other
    config runs here through profiles/local.
    """
    if CONFIG == "config/config.yaml":
        return REPO
    if CONFIG == "config/test.yaml":
        return request.getfixturevalue("test_grid_run")
    workdir = copy_project(tmp_path_factory.mktemp("local"))
    snakemake(workdir, "profiles/local", environment(dict(os.environ)))
    return workdir


def test_every_job_went_through_slurm_and_gpu_jobs_asked_for_one_gpu(slurm_run):
    _, jobs = slurm_run
    by_rule: dict[str, set[str]] = {}
    for job in jobs:  # the plugin comments each job with rule_<name>_wildcards_<values>
        assert job["JobState"] == "COMPLETED", f"SLURM job {job['Comment']} ended {job['JobState']}"
        by_rule.setdefault(job["Comment"].split("_wildcards")[0].removeprefix("rule_"), set()).add(job.get("TresPerJob", "none"))
    assert {"prepare_data", "train_teacher", "train_student", "measure_cost", "evaluate_student", "aggregate"} <= set(by_rule)
    for rule in ("train_teacher", "train_student", "measure_cost", "evaluate_student", "evaluate_teacher"):
        assert by_rule[rule] == {"gres:gpu:1"}, f"{rule} asked SLURM for {by_rule[rule]}"
    for rule in ("prepare_data", "aggregate", "plot_samples"):
        assert by_rule[rule] == {"none"}, f"{rule} should ask for no GPU, asked {by_rule[rule]}"


def test_slurm_tables_match_a_local_run_with_the_same_config(slurm_run, local_run: Path):
    workdir, _ = slurm_run
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
