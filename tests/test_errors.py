"""Bad input gets a clear error, a non-zero exit and no half-written output."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from akdg import checkpoint, datasets
from akdg.architectures import build_generator
from akdg.config import load_config, student_training_spec, validate_config
from akdg.registry import AkdgError
from conftest import REPO, copy_project

DEFAULT = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def with_change(path: list[str], value) -> dict:
    config = copy.deepcopy(DEFAULT)
    node = config
    for key in path[:-1]:
        node = node[key] if not isinstance(node, list) else node[int(key)]
    node[path[-1] if not isinstance(node, list) else int(path[-1])] = value
    return config


@pytest.mark.parametrize("name", ["config.yaml", "test.yaml", "cpu_repro.yaml", "paper/cifar10.yaml", "paper/lsun_bedroom.yaml"])
def test_shipped_configs_are_valid(name: str):
    load_config(REPO / "config" / name)


def key_paths(node, prefix=()) -> set[tuple]:
    if not isinstance(node, dict):
        return {prefix}
    return set().union(*(key_paths(value, (*prefix, key)) for key, value in node.items())) | {prefix}


def test_test_config_names_every_key_of_the_default():
    """Merged over the default (--configfile) or in its place (DVC test), it must mean the same grid."""
    test = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    missing = {path for path in key_paths(DEFAULT) if not path or path[0] != "methods"} - key_paths(test)
    assert not missing, f"config/test.yaml lacks {sorted(missing)}"


@pytest.mark.parametrize(
    "path, value, message",
    [
        (["bogus"], 1, "'bogus' was unexpected"),
        (["training", "stpes"], 10, "'stpes' was unexpected"),
        (["students", "0", "arch"], "dcgn", "unknown architecture 'dcgn'"),
        (["teacher", "generator", "arch"], "pgan", "unknown architecture 'pgan'"),
        (["methods", "akdgg"], {}, "unknown method 'akdgg'"),
        (["methods", "akdg"], {"kd_wieght": 2}, r"unknown option\(s\) \['kd_wieght'\]"),
        (["dataset", "name"], "cifar100", "unknown dataset 'cifar100'"),
        (["loss"], "wasserstein", "unknown GAN loss 'wasserstein'"),
        (["dataset", "resolution"], 24, "24 is not one of"),
        (["training", "steps"], 0, "0 is less than the minimum"),
        (["evaluation", "kid_subset_size"], 5000, "kid_subset_size must not exceed"),
    ],
)
def test_invalid_config_is_rejected_with_a_message_naming_the_problem(path, value, message):
    with pytest.raises(AkdgError, match=message):
        validate_config(with_change(path, value))


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "akdg", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_validate_config_exits_non_zero_with_the_message(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(with_change(["students", "0", "arch"], "dcgn")))
    result = run_cli("validate-config", str(bad))
    assert result.returncode == 2
    assert "unknown architecture 'dcgn'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "override, message",
    [
        (["--config", "bogus=1"], "'bogus' was unexpected"),
        (["--config", "methods={vanila: {}}"], "unknown method 'vanila'"),
        (["--config", "dataset={name: mnist, resolution: 16}"], "unknown dataset 'mnist'"),
    ],
)
def test_snakemake_rejects_an_invalid_config_before_any_job_runs(tmp_path, override, message):
    workdir = copy_project(tmp_path)
    result = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", *override], cwd=workdir, capture_output=True, text=True)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (workdir / "results").exists(), "a job ran despite the invalid config"


def test_config_override_changes_only_what_it_names(tmp_path):
    workdir = copy_project(tmp_path)
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--config", "seeds=[0]"], cwd=workdir, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    counts = dict(
        line.split() for line in result.stdout.splitlines() if line.startswith(("train_student ", "train_teacher ", "evaluate_student "))
    )
    # 2 students x 3 methods x 1 seed; the teacher and the method list untouched by the override
    assert counts == {"train_student": "6", "train_teacher": "1", "evaluate_student": "6"}


def test_missing_dataset_file_names_the_fix(tmp_path):
    with pytest.raises(AkdgError, match=r"missing\.npz does not exist.*prepare-data"):
        datasets.load_prepared(tmp_path / "missing.npz")


def save_tiny_generator(path: Path, arch: str = "dcgan") -> None:
    generator = build_generator({"arch": arch, "width": 4}, resolution=16, channels=1, z_dim=8)
    checkpoint.save_generator(
        path, generator, {"generator": {"arch": arch, "width": 4}, "resolution": 16, "channels": 1, "z_dim": 8, "training": {}}
    )


def test_truncated_checkpoint_is_named_not_a_torch_traceback(tmp_path):
    path = tmp_path / "student.pt"
    save_tiny_generator(path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(AkdgError, match=r"student\.pt is truncated or not a torch file"):
        checkpoint.load_generator(path)


def test_checkpoint_for_another_architecture_or_resolution_is_rejected(tmp_path):
    path = tmp_path / "student.pt"
    save_tiny_generator(path, "mlp")
    with pytest.raises(AkdgError, match=r"student\.pt has generator=.*'mlp'.*'dcgan'"):
        checkpoint.load_generator(path, expect={"generator": {"arch": "dcgan", "width": 4}})
    with pytest.raises(AkdgError, match=r"student\.pt has resolution=16 but 32"):
        checkpoint.load_generator(path, expect={"resolution": 32})


def test_weights_that_do_not_fit_the_recorded_architecture_are_rejected(tmp_path):
    path = tmp_path / "tampered.pt"
    save_tiny_generator(path)
    payload = torch.load(path, weights_only=True)
    payload["meta"]["generator"]["width"] = 8
    torch.save(payload, path)
    with pytest.raises(AkdgError, match=r"tampered\.pt does not fit architecture"):
        checkpoint.load_generator(path)


@pytest.mark.slow
def test_training_step_with_missing_input_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "student.pt"
    config = validate_config(copy.deepcopy(DEFAULT))
    spec = json.dumps(student_training_spec(config, config["students"][0], "vanilla", 0))
    result = run_cli("train", "--spec", spec, "--data", str(tmp_path / "nope.npz"), "--out", str(out))
    assert result.returncode == 2
    assert "nope.npz does not exist" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_leaves_nothing_when_interrupted(tmp_path):
    from akdg.io import atomic_write

    target = tmp_path / "table.md"
    with pytest.raises(RuntimeError):
        with atomic_write(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
