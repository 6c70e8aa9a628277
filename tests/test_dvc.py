"""dvc.yaml: one stage per grid, whose outputs DVC never deletes, so that a killed `dvc repro` loses nothing.

The SLURM side (`dvc repro` with the profile parameter set to profiles/slurm) is tests/test_slurm.py's run.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch
import yaml
from dvc.repo import Repo
from test_faults import assert_uninterrupted_run_gives_the_weights, hard_kill, kill_once_training_saved

from conftest import REPO, command_environment, copy_project, dvc_project, run_checked, small_grid

pytestmark = [pytest.mark.slow, pytest.mark.workflow]

GRIDS = {
    "default": "config/config.yaml",
    "cpu_repro": "config/cpu_repro.yaml",
    "size_sweep": "config/size_sweep.yaml",
    "cifar10": "config/paper/cifar10.yaml",
    "lsun_bedroom": "config/paper/lsun_bedroom.yaml",
}
# What every grid writes under its outdir (workflow/rules/common.smk), and what of it git keeps
# rather than DVC's cache: everything DVC caches is restorable with dvc pull.
OUTPUTS = ("data", "models", "cache", "cost", "runs", "tables", "metrics")
IN_GIT = {"tables", "metrics"}
STUDENT = "results/models/digits/dcgan-w4/vanilla/seed0.pt"  # vanilla: trains as soon as the data is ready
STEPS = 400
STUDENT_LOG = "results/logs/digits/train/dcgan-w4_vanilla_seed0.log"


@pytest.fixture(scope="module")
def stages(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every stage of dvc.yaml as DVC resolves it (templating done), in a copy of the project."""
    workdir = copy_project(tmp_path_factory.mktemp("stages"))
    run_checked(["dvc", "init", "--no-scm", "-q"], workdir)
    with Repo(str(workdir)) as repo:
        return {stage.name: stage for stage in repo.index.stages}


@pytest.mark.parametrize("name", GRIDS)
def test_each_grid_is_a_stage_running_its_config_into_its_own_outdir(stages: dict, name: str):
    stage = stages[name]
    config = yaml.safe_load((REPO / GRIDS[name]).read_text())
    outdir, dataset = config["outdir"], config["dataset"].get("label", config["dataset"]["name"])
    assert stage.cmd == f"python -m snakemake --profile profiles/local --nolock all_outputs --configfile {GRIDS[name]}"
    params = {(param.def_path, tuple(param.params)) for param in stage.deps if hasattr(param, "params")}
    assert (GRIDS[name], ()) in params, f"{name}: the whole of {GRIDS[name]} is not a param ({params})"
    assert {dep.def_path for dep in stage.deps} >= {"Snakefile", "workflow", "akdg", "baselines"}
    outs = {out.def_path: out for out in stage.outs}
    plots = [
        f"{outdir}/plots/{dataset}_fid_vs_params.csv",
        f"{outdir}/plots/{dataset}_fid_vs_params.png",
        f"{outdir}/plots/{dataset}_samples.png",
    ]
    if name == "size_sweep":  # several sizes of a family: the per-size comparison and the trade-off (akdg.sizes)
        plots += [f"{outdir}/plots/{dataset}_{plot}" for plot in ("sizes.png", "tradeoff.png", "tradeoff.csv")]
    if config.get("evaluation", {}).get("curve_fractions"):  # training curves (akdg.plots.training_curves)
        plots += [f"{outdir}/plots/{dataset}_curves.{ext}" for ext in ("png", "csv")]
    tuning = [f"{outdir}/tuning"] if config.get("tuning") else []  # candidates and selections: DVC-cached, never rerun in a clone
    assert sorted(outs) == sorted([f"{outdir}/{kind}" for kind in OUTPUTS] + plots + tuning)
    assert [path for path, out in outs.items() if not out.persist] == [], "DVC would delete these before a run"
    assert outs[f"{outdir}/metrics"].metric and all(outs[path].plot for path in plots)
    assert {path for path, out in outs.items() if not out.use_cache} >= {f"{outdir}/{kind}" for kind in IN_GIT} | set(plots)


def test_the_grids_outdirs_are_apart():
    """Two grids writing one outdir would be one DVC output of two stages, and one outdir lock for two DAGs."""
    outdirs = [yaml.safe_load((REPO / path).read_text())["outdir"] for path in GRIDS.values()]
    assert len(set(outdirs)) == len(outdirs), outdirs


@pytest.mark.parametrize("name", ["cifar10", "lsun_bedroom"])
def test_a_paper_stage_plans_its_downloads_on_a_clean_checkout(stages: dict, name: str, tmp_path: Path):
    """`dvc repro --dry <paper grid>` shows the stage's command; that command, dry, plans the dataset's download."""
    workdir = copy_project(tmp_path)
    run_checked(["dvc", "init", "--no-scm", "-q"], workdir)
    planned = run_checked(["dvc", "repro", "--dry", name], workdir).stdout
    assert f"> {stages[name].cmd}" in planned
    dry_run = run_checked([*stages[name].cmd.split(), "--dry-run"], workdir)
    assert "download_data" in dry_run.stdout and "all_outputs" in dry_run.stdout


def test_a_killed_dvc_repro_keeps_every_output_and_its_rerun_resumes_training(tmp_path: Path):
    """SIGKILL of `dvc repro`'s process group mid-training, then the same `dvc repro`: nothing was deleted,
    the student resumes from its state, and ends with the weights an uninterrupted run gives (on the CPU)."""
    workdir = copy_project(tmp_path / "project")
    grid = small_grid()
    grid["training"].update(steps=STEPS, checkpoint_every=10)
    (workdir / "grid.yaml").write_text(yaml.safe_dump(grid, sort_keys=False))
    dvc_project(workdir, workdir / "grid.yaml")
    kept = [workdir / "results" / "tables" / "earlier.md", workdir / "results" / "models" / "earlier.pt"]  # as of an earlier run
    for path in kept:
        path.parent.mkdir(parents=True)
        path.write_text("an earlier run's output")
    state = workdir / f"{STUDENT}.state"

    job = subprocess.Popen(
        ["dvc", "repro", "default"],
        cwd=workdir,
        env=command_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        command = kill_once_training_saved(job, state, STUDENT)
    finally:
        hard_kill(job)
    assert not (workdir / STUDENT).exists(), "the student finished before the kill; raise STEPS"
    saved_step = torch.load(state, weights_only=True)["step"]
    assert 0 < saved_step < STEPS
    assert all(path.exists() for path in kept), "DVC deleted an output when the stage started"

    run_checked(["dvc", "repro", "default"], workdir)  # no --unlock, no --force: the same command
    log = (workdir / STUDENT_LOG).read_text()
    assert f"resuming from {STUDENT}.state at step {saved_step + 1} of {STEPS}" in log, log[-2000:]
    assert not state.exists() and all(path.exists() for path in kept)
    assert "Data and pipelines are up to date." in run_checked(["dvc", "status", "default"], workdir).stdout

    assert_uninterrupted_run_gives_the_weights(command, workdir, STUDENT)  # the very command the stage's job ran
