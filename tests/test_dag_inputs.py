"""Every input of a job is a Snakemake input: a dataset file or one image of a folder rewritten in place replans
prepare_data and everything after it, official files in place are inputs (never outputs Snakemake could delete),
and dataset.label names every path."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from akdg.config import validate_config
from akdg.dataset_cifar10 import BATCH_FILES, BATCH_FOLDER
from akdg.registry import AkdgError
from conftest import REPO, copy_project

pytestmark = [pytest.mark.slow, pytest.mark.workflow]

TEST_CONFIG = yaml.safe_load((REPO / "config" / "test.yaml").read_text())


def snakemake(workdir: Path, configfiles: list[str], *arguments: str) -> str:
    command = [sys.executable, "-m", "snakemake", "--cores", "2", *arguments, "all_tables", "--configfile", *configfiles]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


def planned(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run, as {rule: count}."""
    table = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {match[1]: int(match[2]) for match in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE) if match[1] != "total"}


def rule_block(output: str, rule: str) -> str:
    return output.split(f"rule {rule}:", 1)[1].split("\n\n", 1)[0]


def outputs(workdir: Path, configfiles: list[str]) -> dict[str, str]:
    """Every output file of the DAG -> the rule that makes it (`snakemake --summary`)."""
    rows = [line.split("\t") for line in snakemake(workdir, configfiles, "--summary").splitlines()]
    return {row[0]: row[2] for row in rows if len(row) == 6 and row[0] != "output_file"}


def mark_done(workdir: Path, configfiles: list[str]) -> set[str]:
    """The whole DAG as if run: placeholders, then `--touch --forceall` dates them in DAG order and records
    every job's params, as a real run would. Returns the rules of the DAG."""
    made = outputs(workdir, configfiles)
    for path, rule in made.items():
        if rule == "aggregate" and "/metrics/" in path:  # the DVC metrics folder: a directory() output
            (workdir / path).mkdir(parents=True)
        else:
            (workdir / path).parent.mkdir(parents=True, exist_ok=True)
            (workdir / path).touch()
    snakemake(workdir, configfiles, "--touch", "--forceall")
    assert "Nothing to be done" in snakemake(workdir, configfiles, "-n")
    return {*made.values(), "all_tables"}


def with_dataset(workdir: Path, dataset: dict) -> list[str]:
    """config/test.yaml with the dataset block replaced (merged key by key, as a second --configfile)."""
    (workdir / "dataset.yaml").write_text(yaml.safe_dump({"dataset": dataset}))
    return ["config/test.yaml", "dataset.yaml"]


def test_rewriting_an_npz_dataset_in_place_replans_everything_after_it(tmp_path: Path):
    workdir = copy_project(tmp_path)
    rng = np.random.default_rng(0)
    np.savez(
        workdir / "faces.npz", images=rng.integers(0, 256, (50, 8, 8), dtype=np.uint8), labels=np.arange(50) % 2
    )  # test.yaml trains its extractor
    configfiles = with_dataset(workdir, {"name": "npz", "path": "faces.npz", "channels": 1, "label": "faces"})
    rules = mark_done(workdir, configfiles)

    np.savez(workdir / "faces.npz", images=rng.integers(0, 256, (90, 8, 8), dtype=np.uint8), labels=np.arange(90) % 2)
    output = snakemake(workdir, configfiles, "-n", "-p")
    assert set(planned(output)) == rules
    prepare = rule_block(output, "prepare_data")
    assert "input: faces.npz" in prepare and "reason: Updated input files: faces.npz" in prepare
    spec = json.loads(re.search(r"akdg prepare-data --spec '(\{.*?\})'", output)[1])
    assert spec == {**TEST_CONFIG["dataset"], "name": "npz", "path": "faces.npz", "channels": 1}  # the label names paths only


def test_rewriting_one_image_of_a_folder_in_place_replans_everything_after_it(tmp_path: Path):
    """Same listing, same mtime, other pixels: the folder's content manifest (a param of prepare_data) sees it."""
    workdir = copy_project(tmp_path)
    rng = np.random.default_rng(0)
    for index in range(20):
        path = workdir / "pictures" / ("a" if index % 2 else "b") / f"{index}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(path)
    configfiles = with_dataset(workdir, {"name": "folder", "path": "pictures", "channels": 1, "label": "pictures"})
    rules = mark_done(workdir, configfiles)

    image = workdir / "pictures" / "a" / "1.png"
    before = image.stat()
    Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(image)
    os.utime(image, ns=(before.st_atime_ns, before.st_mtime_ns))
    output = snakemake(workdir, configfiles, "-n")
    assert set(planned(output)) == rules
    assert "reason: Params have changed since last execution" in rule_block(output, "prepare_data")


def test_two_datasets_of_one_loader_share_an_outdir_under_their_labels(tmp_path: Path):
    workdir = copy_project(tmp_path)
    made = {}
    for label in ("faces", "textures"):
        np.savez(workdir / f"{label}.npz", images=np.zeros((40, 8, 8), dtype=np.uint8), labels=np.arange(40) % 2)
        made[label] = set(outputs(workdir, with_dataset(workdir, {"name": "npz", "path": f"{label}.npz", "channels": 1, "label": label})))
    assert not made["faces"] & made["textures"]
    assert {"results/tables/faces.csv", "results/plots/faces_samples.png", "results/runs/faces/teacher/seed0.json"} <= made["faces"]
    assert all("textures" in path for path in made["textures"])


def test_official_files_in_place_are_inputs_and_only_missing_ones_are_downloaded(tmp_path: Path):
    """CIFAR-10 batches placed by hand and a local copy of Inception's weights: inputs of the jobs that read them;
    a missing batch is the only output of download_data (Snakemake deletes a job's outputs before it runs)."""
    workdir = copy_project(tmp_path)
    batches = [f"data/{BATCH_FOLDER}/{name}" for name in BATCH_FILES]
    for path in [*batches, "inception.pth"]:
        (workdir / path).parent.mkdir(parents=True, exist_ok=True)
        (workdir / path).touch()
    (workdir / "local.yaml").write_text(yaml.safe_dump({"evaluation": {"inception_weights": "inception.pth"}}))
    configfiles = ["config/paper/cifar10.yaml", "local.yaml"]
    output = snakemake(workdir, configfiles, "-n")
    assert "download_data" not in planned(output)
    assert f"input: {', '.join(batches)}\n" in rule_block(output, "prepare_data")
    assert "input: inception.pth\n" in rule_block(output, "fetch_extractor")

    (workdir / batches[-2]).unlink()
    output = snakemake(workdir, configfiles, "-n")
    assert f"output: {batches[-2]}\n" in rule_block(output, "download_data")


def test_a_changed_evaluation_block_replans_every_evaluation(tmp_path: Path):
    """The evaluation spec is a param of each evaluate job that Snakemake compares with the last run's."""
    workdir = copy_project(tmp_path)
    mark_done(workdir, ["config/test.yaml"])
    (workdir / "evaluation.yaml").write_text(yaml.safe_dump({"evaluation": {"num_samples": 150}}))
    counts = planned(snakemake(workdir, ["config/test.yaml", "evaluation.yaml"], "-n"))
    evaluations = {
        "evaluate_teacher": 1,
        "evaluate_student": len(TEST_CONFIG["students"]) * len(TEST_CONFIG["methods"]),
        "evaluate_references": 1,
    }
    assert {rule: counts.get(rule) for rule in evaluations} == evaluations


@pytest.mark.parametrize("label", ["a/b", "..", "cifar 10", "-x", "x-", "x--y", ""])
def test_a_label_that_is_not_a_safe_path_component_is_refused(label: str):
    config = copy.deepcopy(TEST_CONFIG)
    config["dataset"]["label"] = label
    with pytest.raises(AkdgError, match=f"dataset.label {re.escape(repr(label))} names files and folders"):
        validate_config(config)


def test_the_label_defaults_to_the_loader_name():
    assert validate_config(copy.deepcopy(TEST_CONFIG))["dataset"]["label"] == TEST_CONFIG["dataset"]["name"]
    config = copy.deepcopy(TEST_CONFIG)
    config["dataset"]["label"] = "digits_v2-small"
    assert validate_config(config)["dataset"]["label"] == "digits_v2-small"


def test_missing_inception_weights_are_refused_at_validation(tmp_path: Path):
    config = yaml.safe_load((REPO / "config" / "paper" / "cifar10.yaml").read_text())
    config["evaluation"]["inception_weights"] = str(tmp_path / "absent.pth")
    with pytest.raises(AkdgError, match="evaluation.inception_weights .*absent.pth does not exist"):
        validate_config(config)
