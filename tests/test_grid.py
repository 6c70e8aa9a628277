"""The grid a config describes: method variants, an imported teacher, and the jobs `snakemake -n` plans."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from akdg import checkpoint, datasets, steps
from akdg.architectures import build_generator
from akdg.config import method_variants, teacher_seed_for, validate_config
from akdg.registry import AkdgError
from conftest import REPO, copy_project, without_messages

TEST_CONFIG = yaml.safe_load((REPO / "config" / "test.yaml").read_text())


def dry_run(workdir: Path, *configfiles: str, extra: list[str] = ()) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "2", "all_tables", *extra, "--configfile", *configfiles]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True)


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run, as {rule: count}."""
    table = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {match[1]: int(match[2]) for match in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE) if match[1] != "total"}


def test_short_and_long_method_forms():
    config = copy.deepcopy(TEST_CONFIG)
    config["methods"] = {
        "vanilla-b64": {"method": "vanilla", "training": {"batch_size": 64}},
        "vanilla-b2048": {"method": "vanilla", "training": {"batch_size": 2048}},
        "akdg": {"kd_weight": 0.5},
    }
    variants = method_variants(validate_config(config))
    loss = TEST_CONFIG["loss"]  # a variant without a loss of its own trains with the grid's
    assert variants["vanilla-b2048"] == {"method": "vanilla", "options": {}, "training": {"batch_size": 2048}, "loss": loss}
    assert variants["akdg"] == {"method": "akdg", "options": {"kd_weight": 0.5}, "training": {}, "loss": loss}


@pytest.mark.parametrize(
    "methods, message",
    [
        ({"big": {"method": "vanila"}}, "unknown method 'vanila'"),
        ({"big": {"method": "vanilla", "training": {"batchsize": 8}}}, "'batchsize' was unexpected"),
        ({"big": {"method": "akdg", "kd_weight": 2}}, "'kd_weight' was unexpected"),
        ({"big": {"method": "akdg", "options": {"kd_wieght": 2}}}, r"methods.big.options: unknown option\(s\) \['kd_wieght'\]"),
        ({"a/b": {}}, "method label 'a/b' names files and folders"),
    ],
)
def test_bad_method_variants_are_named(methods, message):
    config = copy.deepcopy(TEST_CONFIG)
    config["methods"] = methods
    with pytest.raises(AkdgError, match=message):
        validate_config(config)


@pytest.mark.slow
def test_variant_overrides_reach_the_training_jobs(tmp_path: Path):
    """Table II's vanilla at two batch sizes: each label's jobs train with its own batch size."""
    workdir = copy_project(tmp_path)
    variants = {
        "methods": {
            "vanilla-b4": {"method": "vanilla", "training": {"batch_size": 4}},
            "vanilla-b8": {"method": "vanilla", "training": {"batch_size": 8}},
        }
    }
    (workdir / "variants.yaml").write_text(yaml.safe_dump(variants))
    result = dry_run(workdir, "config/test.yaml", "variants.yaml")
    assert result.returncode == 0, result.stderr
    specs = [json.loads(match) for match in re.findall(r"akdg train --spec '(\{.*?\})'", result.stdout)]
    students = [spec for spec in specs if spec["generator"] in TEST_CONFIG["students"]]
    # merged over test.yaml, whose methods stay: 2 students x 5 labels x 2 seeds
    assert len(students) == 2 * 5 * 2
    sizes = {(spec["method"], spec["batch_size"]) for spec in students}
    assert ("vanilla", 4) in sizes and ("vanilla", 8) in sizes and ("vanilla", TEST_CONFIG["training"]["batch_size"]) in sizes


def test_student_seed_i_distils_teacher_i_mod_n():
    config = copy.deepcopy(TEST_CONFIG)
    config["seeds"], config["teacher"]["seeds"] = [3, 1, 4, 9, 2], [10, 20]
    validate_config(config)
    assert [teacher_seed_for(config, seed) for seed in config["seeds"]] == [10, 20, 10, 20, 10]
    with pytest.raises(AkdgError, match=r"seed 7 is not among the config's seeds \[3, 1, 4, 9, 2\]"):
        teacher_seed_for(config, 7)


@pytest.mark.slow
def test_two_teachers_train_apart_and_each_student_seed_waits_for_its_own(tmp_path: Path):
    """teacher.seeds [5, 7] and student seeds [0, 1, 2]: two teacher jobs; AKDG and MSE seeds 0, 2 distil teacher 5, seed 1
    teacher 7 (their commands name it and their evaluations record it); vanilla waits for no teacher."""
    workdir = copy_project(tmp_path)
    (workdir / "teachers.yaml").write_text(yaml.safe_dump({"teacher": {"seeds": [5, 7]}, "seeds": [0, 1, 2]}))
    result = dry_run(workdir, "config/test.yaml", "teachers.yaml")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    counts = job_counts(result.stdout)
    assert counts["train_teacher"] == 2 and counts["evaluate_teacher"] == 1 and counts["train_student"] == 2 * 3 * 3
    out = "results/models/digits"
    trained = re.findall(r"akdg train --spec '(\{.*?\})' --data \S+ (?:--teacher (\S+) )?.*?--out (\S+)", result.stdout)
    teachers = {path: json.loads(spec)["seed"] for spec, _, path in trained if "/teacher/" in path}
    assert teachers == {f"{out}/teacher/seed5.pt": 5, f"{out}/teacher/seed7.pt": 7}
    paired = {
        re.search(r"/([\w-]+)/(\w+)/seed(\d)\.pt$", path).groups(): teacher for _, teacher, path in trained if "/teacher/" not in path
    }
    expected = {
        **{(method, seed): f"{out}/teacher/seed{(5, 7, 5)[seed]}.pt" for method in ("akdg", "mse") for seed in (0, 1, 2)},
        **{("vanilla", seed): "" for seed in (0, 1, 2)},
    }
    assert {(student, method, int(seed)): teacher for (student, method, seed), teacher in paired.items()} == {
        (student, method, seed): teacher for student in ("dcgan-w4", "mlp-w32") for (method, seed), teacher in expected.items()
    }
    evaluated = [json.loads(spec) for spec in re.findall(r"akdg evaluate --spec '(\{.*?\})'", result.stdout)]
    runs = {
        (row["run"]["role"], row["run"]["method"], row["run"]["seed"]): row["run"].get("teacher_seed")
        for spec in evaluated
        for row in spec["rows"]
    }
    assert runs[("teacher", "vanilla", 5)] == 5 and runs[("teacher", "vanilla", 7)] == 7
    assert [runs[("student", "akdg", seed)] for seed in (0, 1, 2)] == [5, 7, 5] and runs[("student", "vanilla", 1)] is None


@pytest.fixture
def teacher_state(digits: datasets.ImageSplits) -> tuple[dict, dict]:
    spec = {"arch": "sngan", "width": 8}
    torch.manual_seed(3)
    generator = build_generator(spec, resolution=digits.resolution, channels=digits.channels, z_dim=16)
    return spec, generator.state_dict()


def test_import_a_plain_state_dict(tmp_path: Path, digits_npz: Path, teacher_state):
    spec, state = teacher_state
    torch.save(state, tmp_path / "elsewhere.pt")
    steps.import_teacher({"generator": spec, "z_dim": 16}, digits_npz, tmp_path / "elsewhere.pt", tmp_path / "teacher.pt")
    generator, meta = checkpoint.load_generator(tmp_path / "teacher.pt")
    assert meta["training"]["method"] == "imported"
    assert all(torch.equal(generator.state_dict()[key], value) for key, value in state.items())


def test_import_an_akdg_checkpoint_keeps_its_history(tmp_path: Path, digits_npz: Path, digits, teacher_state):
    spec, state = teacher_state
    generator = build_generator(spec, resolution=digits.resolution, channels=digits.channels, z_dim=16)
    generator.load_state_dict(state)
    meta = {"generator": spec, "resolution": digits.resolution, "channels": digits.channels, "z_dim": 16, "training": {"steps": 7}}
    checkpoint.save_generator(tmp_path / "ours.pt", generator, meta)
    steps.import_teacher({"generator": spec, "z_dim": 16}, digits_npz, tmp_path / "ours.pt", tmp_path / "teacher.pt")
    _, imported = checkpoint.load_generator(tmp_path / "teacher.pt")
    assert imported["training"]["original_training"] == {"steps": 7}


@pytest.mark.parametrize(
    "spec, z_dim, message",
    [
        ({"arch": "sngan", "width": 16}, 16, r"does not fit \{'arch': 'sngan', 'width': 16\}"),
        ({"arch": "dcgan", "width": 8}, 16, "does not fit"),
        ({"arch": "sngan", "width": 8}, 32, "z_dim 32"),
    ],
)
def test_import_rejects_a_mismatched_teacher(tmp_path: Path, digits_npz: Path, teacher_state, spec, z_dim, message):
    _, state = teacher_state
    torch.save(state, tmp_path / "elsewhere.pt")
    with pytest.raises(AkdgError, match=message):
        steps.import_teacher({"generator": spec, "z_dim": z_dim}, digits_npz, tmp_path / "elsewhere.pt", tmp_path / "teacher.pt")
    assert not (tmp_path / "teacher.pt").exists()


def test_import_rejects_a_file_that_is_not_a_checkpoint(tmp_path: Path, digits_npz: Path):
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    with pytest.raises(AkdgError, match="notes.pt is truncated or not a torch file"):
        steps.import_teacher(
            {"generator": {"arch": "sngan", "width": 8}, "z_dim": 16}, digits_npz, tmp_path / "notes.pt", tmp_path / "t.pt"
        )


@pytest.mark.slow
def test_dag_imports_instead_of_training_the_teacher(tmp_path: Path, teacher_state):
    workdir = copy_project(tmp_path / "project")
    _, state = teacher_state
    torch.save(state, tmp_path / "elsewhere.pt")
    (workdir / "import.yaml").write_text(yaml.safe_dump({"teacher": {"checkpoint": str(tmp_path / "elsewhere.pt")}}))
    result = dry_run(workdir, "config/test.yaml", "import.yaml")
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    assert counts.get("import_teacher") == 1 and "train_teacher" not in counts
    missing = dry_run(workdir, "config/test.yaml", "import.yaml", extra=["--config", "teacher={checkpoint: /nowhere/g.pt}"])
    assert missing.returncode != 0 and "teacher.checkpoint /nowhere/g.pt does not exist" in missing.stderr + missing.stdout


PAPER_JOBS = {
    "cifar10": {"train_student": 2 * 3 * 3, "evaluate_student": 2 * 3},  # 2 students x (vanilla, mse, akdg) x 3 seeds
    "lsun_bedroom": {"train_student": 1 * 6 * 3, "evaluate_student": 1 * 6},  # 1 student x (vanilla-b64, -b2048, mse(-b2048), akdg(-b2048))
}
ONCE = (
    "download_data", "fetch_extractor", "prepare_data", "reference_stats", "train_teacher", "measure_cost",
    "evaluate_teacher", "evaluate_references", "aggregate", "plot_samples", "all_tables",
)  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("dataset", sorted(PAPER_JOBS))
def test_paper_config_plans_exactly_the_expected_jobs(tmp_path: Path, dataset: str):
    """`snakemake -n` on a paper config: the full grid with Inception, downloads, and per-job resources."""
    workdir = without_messages(copy_project(tmp_path))  # the job blocks list each job's resources
    result = dry_run(workdir, f"config/paper/{dataset}.yaml")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert job_counts(result.stdout) == {**dict.fromkeys(ONCE, 1), **PAPER_JOBS[dataset]}
    config = yaml.safe_load((workdir / "config" / "paper" / f"{dataset}.yaml").read_text())
    for rule, group in (
        ("train_teacher", "teacher"),
        ("train_student", "student"),
        ("evaluate_student", "evaluate"),
        ("aggregate", "report"),
    ):
        block = result.stdout.split(f"rule {rule}:", 1)[1].split("\n\n", 1)[0]
        wanted = config["resources"][group]
        asked = dict(re.findall(r"(gpu|runtime|mem_mb)=(\d+)", block.split("resources:", 1)[1].splitlines()[0]))
        assert asked == {key: str(value) for key, value in wanted.items()}, (rule, asked)


SIZE_SWEEP_STUDENTS = 3 + 3  # DCGAN at three channel schedules, MLP at three widths


@pytest.mark.slow
def test_the_paper_size_sweep_plans_every_size_and_the_size_outputs(tmp_path: Path):
    """`snakemake -n` on config/paper/cifar10_sizes.yaml: each size is a student with its own runs, and the
    aggregate also writes the per-size comparison and the trade-off."""
    workdir = without_messages(copy_project(tmp_path))
    result = dry_run(workdir, "config/paper/cifar10_sizes.yaml")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    methods, seeds = 3, 3
    expected = {"train_student": SIZE_SWEEP_STUDENTS * methods * seeds, "evaluate_student": SIZE_SWEEP_STUDENTS * methods}
    assert job_counts(result.stdout) == {**dict.fromkeys(ONCE, 1), **expected}
    out = "results/paper/cifar10_sizes"
    students = set(re.findall(rf"{out}/models/cifar10/([\w-]+)/akdg/seed2\.pt", result.stdout))
    assert len(students) == SIZE_SWEEP_STUDENTS and {"mlp-w155", "mlp-w290", "mlp-w518"} <= students, students
    for path in ("tables/cifar10_sizes.md", "tables/cifar10_sizes.csv", "plots/cifar10_sizes.png", "plots/cifar10_tradeoff.png"):
        assert f"{out}/{path}" in result.stdout, path


@pytest.mark.slow
def test_a_configfile_is_a_whole_grid_not_merged_into_the_default(tmp_path: Path):
    """LSUN's method labels replace the default's: no stray 'vanilla' label from config/config.yaml."""
    workdir = copy_project(tmp_path)
    result = dry_run(workdir, "config/paper/lsun_bedroom.yaml")
    labels = set(
        re.findall(r"results/paper/lsun_bedroom/models/lsun_bedroom/dcgan-sc312-156-78-44-44-44-44/([\w-]+)/seed0\.pt", result.stdout)
    )
    assert labels == {"vanilla-b64", "vanilla-b2048", "mse", "akdg", "mse-b2048", "akdg-b2048"}
