"""Code-aware reruns: editing one module replans exactly the jobs that run it, and what follows them.

A copy of the project records a finished run of the test grid (plus the example plug-in's method)
with ``snakemake --touch``, which stores every job's params as a real run does without training.
Each test then edits one module of the copy and compares the jobs ``snakemake -n`` plans with the
exact set expected.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest
import yaml

from akdg.fingerprint import fingerprint, imported_closure, module_digest
from conftest import REPO, copy_project, without_messages

pytestmark = [pytest.mark.slow, pytest.mark.workflow]

Job = tuple[str, str]  # (rule, its first output)
EXAMPLE_METHOD = "example-l1"


def planned_jobs(workdir: Path, *options: str) -> set[Job]:
    """The jobs `snakemake -n` plans, each as (rule, first output)."""
    return {(rule, outputs[0]) for rule, outputs in planned_outputs(workdir, *options)}


def planned_outputs(workdir: Path, *options: str) -> list[tuple[str, list[str]]]:
    """The jobs `snakemake -n` plans, each as (rule, all its outputs)."""
    command = [sys.executable, "-m", "snakemake", "-n", "all_tables", "--configfile", "grid.yaml", "--cores", "1", *options]
    result = subprocess.run(command, cwd=workdir, env=environment(workdir), capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    jobs, rule = [], None
    for line in result.stdout.splitlines():
        if match := re.match(r"(?:local)?rule (\w+):$", line):
            rule = match.group(1)
        elif (match := re.match(r"\s+output: (.+)", line)) and rule is not None:
            jobs.append((rule, [output.strip() for output in match.group(1).split(",")]))
    return jobs


def environment(workdir: Path) -> dict[str, str]:
    """The copy's akdg and plug-in first on the path: jobs, and the fingerprints, read the edited modules."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(workdir), str(workdir / "plugins")])}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[Job]]:
    """A copy of the project with a recorded finished run (empty outputs, real params) and all the grid's jobs."""
    workdir = without_messages(copy_project(tmp_path_factory.mktemp("rerun") / "project"))  # the dry run then names every job's outputs
    shutil.copytree(REPO / "tests" / "plugins", workdir / "plugins")
    grid = yaml.safe_load((workdir / "config" / "test.yaml").read_text())
    grid.update(outdir="out", plugins=["akdg_example_plugin"], methods={**grid["methods"], EXAMPLE_METHOD: {}})
    (workdir / "grid.yaml").write_text(yaml.safe_dump(grid, sort_keys=False))
    for _, outputs in planned_outputs(workdir, "--forceall"):
        for output in outputs:
            path = workdir / output
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir() if output.startswith("out/metrics") else path.touch()
    every_job = planned_jobs(workdir, "--forceall")
    students = len(grid["students"]) * len(grid["methods"]) * len(grid["seeds"])
    assert len(select(every_job, "train_student")) == students and select(every_job, "train_teacher"), "the dry run must list every job"
    command = [sys.executable, "-m", "snakemake", "--touch", "--forceall", "all_tables", "--configfile", "grid.yaml", "--cores", "1"]
    result = subprocess.run(command, cwd=workdir, env=environment(workdir), capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert planned_jobs(workdir) == set(), "a recorded run must leave nothing to do"
    return workdir, every_job


@pytest.fixture
def edit(finished: tuple[Path, set[Job]]) -> Iterator[Callable[[str, str], set[Job]]]:
    """Append ``text`` to a module of the copy and return what snakemake -n plans; the module is restored after."""
    workdir, _ = finished
    originals: dict[Path, str] = {}

    def apply(module: str, text: str) -> set[Job]:
        path = workdir / module
        originals.setdefault(path, path.read_text())
        path.write_text(path.read_text() + text)
        return planned_jobs(workdir)

    yield apply
    for path, original in originals.items():
        path.write_text(original)


def select(jobs: set[Job], *rules: str, where: Callable[[str], bool] = lambda output: True) -> set[Job]:
    return {(rule, output) for rule, output in jobs if rule in rules and where(output)}


def downstream_of_students(jobs: set[Job], method: str) -> set[Job]:
    """A method's students, their evaluations, the sample grid and the tables."""
    return select(jobs, "train_student", "evaluate_student", where=lambda output: f"/{method}/" in output) | select(
        jobs, "plot_samples", "aggregate", "all_tables"
    )


CODE = "\nCHANGED_BEHAVIOUR = 1\n"  # a statement: the module's code changes


def test_editing_the_akdg_method_replans_only_akdg_students_and_what_follows(finished, edit) -> None:
    _, every_job = finished
    assert edit("akdg/method_akdg.py", CODE) == downstream_of_students(every_job, "akdg")


def test_editing_a_plugin_method_replans_only_its_students(finished, edit) -> None:
    _, every_job = finished
    assert edit("plugins/akdg_example_plugin.py", CODE) == downstream_of_students(every_job, EXAMPLE_METHOD)


def test_editing_the_mlp_architecture_retrains_only_mlp_students(finished, edit) -> None:
    """measure_cost times every generator in one job, so every evaluation (which embeds its figures) follows."""
    _, every_job = finished
    expected = select(every_job, "train_student", where=lambda output: "/mlp-" in output) | select(
        every_job, "measure_cost", "evaluate_teacher", "evaluate_student", "evaluate_references", "plot_samples", "aggregate", "all_tables"
    )
    assert edit("akdg/arch_mlp.py", CODE) == expected


def test_editing_the_loop_retrains_every_generator_and_keeps_what_no_training_feeds(finished, edit) -> None:
    _, every_job = finished
    kept = select(every_job, "prepare_data", "train_extractor", "reference_stats", "measure_cost", "evaluate_references")
    assert edit("akdg/training.py", CODE) == every_job - kept


def test_editing_the_table_code_replans_only_the_report(finished, edit) -> None:
    _, every_job = finished
    assert edit("akdg/tables.py", CODE) == select(every_job, "aggregate", "all_tables")


def test_comments_docstrings_and_unrelated_modules_replan_nothing(finished, edit) -> None:
    workdir, _ = finished
    path = workdir / "akdg" / "training.py"
    text = path.read_text()
    first_docstring = re.search(r'"""(.+?)"""', text, re.S)
    assert first_docstring is not None
    edited = text.replace(first_docstring.group(0), '"""Reworded."""', 1) + "\n# a trailing comment\n"
    assert edit("akdg/training.py", "") == set()  # registers the original for restoring
    path.write_text(edited)
    assert planned_jobs(workdir) == set()
    assert edit("akdg/outdir_lock.py", CODE) == set()  # the workflow's own lock: no job runs it


def test_docstrings_and_comments_do_not_change_a_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "fingerprinted"
    package.mkdir()
    (package / "__init__.py").write_text("")
    module = package / "piece.py"
    monkeypatch.syspath_prepend(str(tmp_path))
    module.write_text('"""Module."""\n\n\ndef f(x):\n    """Doc."""\n    return x + 1  # note\n')
    before = module_digest.__wrapped__("fingerprinted.piece")
    module.write_text('"""Other words."""\n\n# a comment\ndef f(x):\n    """More doc."""\n    return x + 1\n')
    assert module_digest.__wrapped__("fingerprinted.piece") == before
    module.write_text('"""Module."""\n\n\ndef f(x):\n    return x + 2\n')
    assert module_digest.__wrapped__("fingerprinted.piece") != before


def test_the_loop_closure_leaves_out_the_pieces_it_builds_by_name() -> None:
    closure = imported_closure("akdg.training")
    assert {"akdg.training", "akdg.registry", "akdg.architectures", "akdg.losses", "akdg.resume"} <= closure
    assert not closure & {"akdg.arch_mlp", "akdg.arch_dcgan", "akdg.method_akdg", "baselines.mse", "akdg.tables"}


def test_a_fingerprint_names_the_pieces_a_job_builds() -> None:
    base = fingerprint("train", architectures=["dcgan"], methods=["vanilla"], losses=["hinge"])
    assert fingerprint("train", architectures=["dcgan"], methods=["vanilla"], losses=["hinge"]) == base
    assert fingerprint("train", architectures=["dcgan"], methods=["akdg"], losses=["hinge"]) != base
    assert fingerprint("train", architectures=["mlp"], methods=["vanilla"], losses=["hinge"]) != base
