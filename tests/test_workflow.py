"""End to end: the Snakemake DAG and `dvc repro` on the tiny config make the paper-style tables."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO, copy_project

EXPECTED_ROWS = [
    "Teacher (sngan)",
    *(f"{student} {method}" for student in ("dcgan-w4", "mlp-w32") for method in ("untrained", "vanilla", "mse", "akdg")),
    "Real data (test split)",
]
def environment() -> dict[str, str]:
    """This interpreter's bin first on PATH, so `python -m snakemake` in dvc.yaml is ours."""
    return {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=environment())
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def snakemake_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = copy_project(tmp_path_factory.mktemp("snakemake"))
    run([sys.executable, "-m", "snakemake", "--cores", "2", "all_tables", "--configfile", "config/test.yaml"], workdir)
    return workdir


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
    result = run([sys.executable, "-m", "snakemake", "--lint"], REPO)
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


def test_a_rerun_finds_nothing_to_do(snakemake_run: Path):
    result = run([sys.executable, "-m", "snakemake", "-n", "all_tables", "--configfile", "config/test.yaml"], snakemake_run)
    assert "Nothing to be done" in result.stdout + result.stderr


def test_dvc_repro_makes_the_same_rows(snakemake_run: Path, tmp_path: Path):
    workdir = copy_project(tmp_path / "dvc")
    shutil.copy(workdir / "config" / "test.yaml", workdir / "config" / "config.yaml")
    run(["dvc", "init", "--no-scm", "-q"], workdir)
    run(["dvc", "repro"], workdir)
    ours = pd.read_csv(workdir / "results" / "tables" / "digits.csv")
    theirs = pd.read_csv(snakemake_run / "results" / "tables" / "digits.csv")
    assert ours["row"].tolist() == theirs["row"].tolist() == EXPECTED_ROWS
    # Same seeds, one thread per job: training and evaluation are deterministic on CPU.
    pd.testing.assert_series_equal(ours["fid"], theirs["fid"], rtol=1e-6)
    shown = run(["dvc", "metrics", "show", "--json"], workdir).stdout
    for run_name in ("teacher", "real", "dcgan-w4/akdg/seed1", "mlp-w32/untrained/seed0"):
        assert f"results/metrics/digits/{run_name}.json" in shown
