"""End to end: the Snakemake DAG and `dvc repro` on the tiny config make the paper-style tables,
and a clone gets them back from a DVC remote with nothing left to run."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from dvc.repo import Repo

from conftest import REPO, command_environment, run_checked

pytestmark = [pytest.mark.slow, pytest.mark.workflow]

EXPECTED_ROWS = [
    "Teacher (sngan)",
    *(f"{student} {method}" for student in ("dcgan-w4", "mlp-w32") for method in ("untrained", "vanilla", "mse", "akdg")),
    "Real data (test split)",
]


def user_environment() -> dict[str, str]:
    """Like a user's shell: Python writes bytecode next to the code it imports (akdg/, baselines/: DVC deps)."""
    return {name: value for name, value in command_environment().items() if name != "PYTHONDONTWRITEBYTECODE"}


@pytest.fixture(scope="module")
def snakemake_run(test_grid_run: Path) -> Path:
    """The test grid's DAG, made by `dvc repro` (run once per session; the SLURM test compares with it)."""
    return test_grid_run


def test_snakemake_makes_the_tables_with_the_expected_rows(snakemake_run: Path):
    tables = snakemake_run / "results" / "tables"
    summary = pd.read_csv(tables / "digits.csv")
    assert summary["row"].tolist() == EXPECTED_ROWS
    assert (summary.loc[summary["kind"] == "trained", "seeds"] >= 1).all()
    assert summary.loc[summary["row"].str.endswith(" akdg"), "seeds"].tolist() == [2, 2]
    markdown = (tables / "digits.md").read_text()
    for row in EXPECTED_ROWS:
        assert row in markdown
    assert "feature extractor: akdg-classifier" in markdown and "test accuracy" in markdown
    assert "\\begin{tabular}" in (tables / "digits.tex").read_text()
    for plot in ("digits_fid_vs_params.png", "digits_samples.png"):
        assert (snakemake_run / "results" / "plots" / plot).stat().st_size > 1000


def test_every_run_json_carries_its_full_protocol(snakemake_run: Path):
    run_file = snakemake_run / "results" / "runs" / "digits" / "dcgan-w4" / "akdg" / "seed1.json"
    result = json.loads(run_file.read_text())
    protocol = result["protocol"]
    assert result["run"] == {**result["run"], "method": "akdg", "seed": 1, "generator_label": "dcgan-w4", "kind": "trained"}
    assert protocol["dataset"]["split"].startswith("stratified") and protocol["dataset"]["reference_split"] == "train"
    assert len(protocol["dataset"]["content_sha256"]) == 64
    assert len(protocol["feature_extractor"]["weights_sha256"]) == 64
    assert protocol["samples"]["generated"] == 200
    assert protocol["training"]["seed"] == 1 and protocol["training"]["method_options"] == {"kd_weight": 1.0}
    assert len(protocol["training"]["teacher_sha256"]) == 64
    assert protocol["environment"]["packages"]["torch-fidelity"]
    assert "git_commit" in protocol["environment"]
    assert {"params", "layers", "mult_adds", "images_per_s", "latency_ms", "speed_threads"} <= set(result["cost"])


def test_snakemake_lint_is_clean():
    result = run_checked([sys.executable, "-m", "snakemake", "--lint"], REPO)
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_a_rerun_finds_nothing_to_do(snakemake_run: Path):
    result = run_checked([sys.executable, "-m", "snakemake", "-n", "all_tables", "--configfile", "config/test.yaml"], snakemake_run)
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.fixture(scope="module")
def dvc_run(test_grid_run: Path) -> Path:
    """`dvc repro` of the tiny config in a git repository that ignores what this one does."""
    return test_grid_run


def test_dvc_repro_makes_the_rows_and_dvc_shows_every_runs_metrics(dvc_run: Path):
    assert pd.read_csv(dvc_run / "results" / "tables" / "digits.csv")["row"].tolist() == EXPECTED_ROWS
    assert "default" in yaml.safe_load((dvc_run / "dvc.lock").read_text())["stages"]
    shown = run_checked(["dvc", "metrics", "show", "--json"], dvc_run).stdout
    for run_name in ("teacher/seed0", "real", "dcgan-w4/akdg/seed1", "mlp-w32/untrained/seed0"):
        assert f"results/metrics/digits/{run_name}.json" in shown


def dvc_outs(workdir: Path) -> dict[str, bool]:
    """Each output (metrics and plots included) of the default stage -> whether DVC caches it, i.e. whether a remote stores it."""
    with Repo(str(workdir)) as repo:
        (stage,) = repo.stage.collect("default")
        return {out.def_path: out.use_cache for out in stage.outs}


def file_hashes(workdir: Path, paths: list[str]) -> dict[str, str]:
    """sha256 of every file under ``paths``, keyed by its path relative to ``workdir``."""
    return {
        file.relative_to(workdir).as_posix(): hashlib.sha256(file.read_bytes()).hexdigest()
        for path in paths
        for file in sorted((workdir / path).rglob("*"))
        if file.is_file()
    }


def test_a_clone_pulls_the_outputs_from_a_dvc_remote_and_finds_nothing_to_run(dvc_run: Path, tmp_path: Path):
    """The documented sequence on another machine: clone, dvc pull, then neither DVC nor Snakemake reruns anything."""
    outs = dvc_outs(dvc_run)
    cached = [path for path, is_cached in outs.items() if is_cached]
    run_checked(["dvc", "remote", "add", "-d", "store", str(tmp_path / "remote")], dvc_run)
    run_checked(["dvc", "push"], dvc_run)
    git = ["git", "-c", "user.name=akdg", "-c", "user.email=akdg@localhost", "-c", "commit.gpgsign=false"]
    run_checked([*git, "add", "-A"], dvc_run)
    run_checked([*git, "commit", "-q", "-m", "tiny run"], dvc_run)
    clone = tmp_path / "clone"
    run_checked(["git", "clone", "-q", str(dvc_run), str(clone)], tmp_path)
    # git brings the code, dvc.lock, the remote's address and the uncached outputs (tables, plots, metrics,
    # which no remote stores); everything cached must come from the remote, into an empty cache.
    assert [path for path in cached if (clone / path).exists()] == []
    assert [path for path, is_cached in outs.items() if not is_cached and not (clone / path).exists()] == []
    assert not (clone / ".dvc" / "cache").exists() and not (clone / ".snakemake").exists()

    shell = user_environment()
    run_checked(["dvc", "pull", "default"], clone, shell)
    pulled = file_hashes(clone, cached)
    assert {"results/models/digits/teacher/seed0.pt", "results/runs/digits/dcgan-w4/akdg/seed1.json"} <= set(pulled)
    assert pulled == file_hashes(dvc_run, cached)

    # Pulled files are dated now, after the tables git wrote and in no particular order among themselves,
    # and a clone has no .snakemake with checksums to excuse them: Snakemake wants to rerun what DVC
    # proves (by content, against dvc.lock) unchanged. `snakemake --touch` re-dates them in DAG order.
    stale = run_checked([sys.executable, "-m", "snakemake", "-n", "all_tables"], clone, shell)
    assert "reason: Updated input files" in stale.stdout + stale.stderr
    repro = run_checked(["dvc", "repro", "default"], clone, shell).stdout
    assert "Stage 'default' didn't change, skipping" in repro and "Data and pipelines are up to date." in repro
    run_checked([sys.executable, "-m", "snakemake", "--touch", "all_tables"], clone, shell)
    after = run_checked([sys.executable, "-m", "snakemake", "-n", "all_tables"], clone, shell)
    assert "Nothing to be done" in after.stdout + after.stderr
    assert "Data and pipelines are up to date." in run_checked(["dvc", "status", "default"], clone, shell).stdout
    assert run_checked(["git", "status", "--porcelain"], clone, shell).stdout == ""  # dates changed, no committed byte
