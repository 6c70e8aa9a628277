"""The tuning stage: a validation split carved from train, chosen on without reading the test split, the choice applied."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from akdg import checkpoint, datasets, steps
from akdg.config import check_spec, validate_config
from akdg.io import read_json, write_json
from akdg.registry import AkdgError
from akdg.tables import tuning_lines
from akdg.tuning import apply_setting, candidate_label, candidates, select, tuned_source
from conftest import REPO, tiny_train_spec

DIGITS = {"name": "digits", "resolution": 16, "test_fraction": 0.2, "split_seed": 0}
VALIDATED = {**DIGITS, "validation_fraction": 0.15, "validation_seed": 0}
OPTIONS = {"num_samples": 40, "isc_splits": 2, "kid_subsets": 2, "kid_subset_size": 20, "batch_size": 40, "rng_seed": 0}
GENERATOR = {"arch": "dcgan", "width": 4}
SPEC = tiny_train_spec(steps=2, batch_size=8, log_every=50)


def rows_as_bytes(images: np.ndarray) -> list[bytes]:
    return sorted(image.tobytes() for image in images)


# --------------------------------------------------------------------------------------------------
# the validation split
# --------------------------------------------------------------------------------------------------


def test_the_validation_split_comes_from_train_only_is_disjoint_and_reproducible_from_its_seed():
    images = np.arange(100, dtype=np.uint8).reshape(100, 1, 1, 1)  # every image unique: disjointness is visible
    splits = datasets.ImageSplits(images, images[:0] + 200, np.arange(100), np.arange(0), {})
    first = datasets.carve_validation(splits, 0.2, seed=3)
    again = datasets.carve_validation(splits, 0.2, seed=3)
    other = datasets.carve_validation(splits, 0.2, seed=4)
    assert len(first.x_val) == 20 and len(first.x_train) == 80
    assert set(first.x_val.ravel()).isdisjoint(first.x_train.ravel())
    assert sorted([*first.x_val.ravel(), *first.x_train.ravel()]) == list(range(100))  # nothing lost, nothing added
    assert np.array_equal(first.y_val.ravel(), first.x_val.ravel())  # labels follow their images
    assert np.array_equal(first.x_val, again.x_val) and not np.array_equal(first.x_val, other.x_val)
    assert first.protocol["validation"]["seed"] == 3 and first.protocol["validation"]["samples"] == 20


def test_prepare_carves_validation_from_train_and_leaves_the_test_split_untouched(tmp_path: Path):
    plain, validated = tmp_path / "plain.npz", tmp_path / "validated.npz"
    datasets.prepare(DIGITS, plain)
    protocol = datasets.prepare(VALIDATED, validated)
    before = datasets.load_prepared(plain)
    after = datasets.load_prepared(validated, splits=("train", "test", "validation"))
    assert np.array_equal(before.x_test, after.x_test) and np.array_equal(before.y_test, after.y_test)
    assert rows_as_bytes(np.concatenate([after.x_train, after.x_val])) == rows_as_bytes(before.x_train)  # train's images, none of test's
    assert protocol["validation_samples"] == len(after.x_val) == int(np.ceil(0.15 * len(before.x_train)))
    assert protocol["train_samples"] == len(after.x_train)
    assert protocol["validation"]["content_sha256"] == datasets.content_hash(after.x_val)
    again = tmp_path / "again.npz"
    datasets.prepare(VALIDATED, again)
    assert datasets.load_prepared(again).protocol["content_sha256"] == protocol["content_sha256"]


def test_a_validation_fraction_of_zero_gives_todays_data(tmp_path: Path):
    plain, zero = tmp_path / "plain.npz", tmp_path / "zero.npz"
    protocol = datasets.prepare(DIGITS, plain)
    assert datasets.prepare({**DIGITS, "validation_fraction": 0.0, "validation_seed": 5}, zero) == protocol
    with np.load(plain) as left, np.load(zero) as right:
        assert left.files == right.files == ["x_train", "x_test", "y_train", "y_test", "protocol"]
        for key in left.files:
            assert left[key].tobytes() == right[key].tobytes()
    splits = datasets.load_prepared(plain)
    assert protocol["content_sha256"] == datasets.content_hash(splits.x_train, splits.x_test)  # the hash of before
    with pytest.raises(AkdgError, match="no validation split; set dataset.validation_fraction"):
        datasets.load_prepared(plain, splits=("validation",))


# --------------------------------------------------------------------------------------------------
# choosing never reads the test split
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def poisoned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A validated digits .npz whose test images are float NaN (reading them fails), an extractor, a cost file, two candidates."""
    folder = tmp_path_factory.mktemp("tuning")
    clean = folder / "clean.npz"
    datasets.prepare(VALIDATED, clean)
    with np.load(clean) as data:
        arrays = {key: data[key] for key in data.files}
    arrays["x_test"] = np.full(arrays["x_test"].shape, np.nan, dtype=np.float32)
    data = folder / "poisoned.npz"
    with open(data, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    extractor = folder / "extractor.pt"
    steps.train_extractor({"epochs": 1, "width": 16, "lr": 1e-3, "batch_size": 64, "seed": 0}, clean, extractor)
    cost = folder / "cost.json"
    write_json(cost, {"dcgan-w4": {"params": 1}})
    checkpoints = {}
    for setting in ({"lr": 2e-4}, {"lr": 1e-3}):
        checkpoints[candidate_label(setting)] = folder / f"{candidate_label(setting)}.pt"
        steps.train_generator(apply_setting(SPEC, setting), data, checkpoints[candidate_label(setting)])  # trains on train only
    return {"data": data, "extractor": extractor, "cost": cost, "folder": folder, **checkpoints}


def identity(candidate: str | None = None) -> dict:
    run = {"dataset": "digits", "role": "tuning", "generator_label": "dcgan-w4", "generator": GENERATOR, "method": "vanilla", "seed": 0}
    return run | ({"candidate": candidate} if candidate else {})


def test_the_test_split_of_the_poisoned_file_fails_loudly_when_read(poisoned: dict[str, Path]):
    with pytest.raises(AkdgError, match="'x_test' is float32.*not uint8 NCHW"):
        datasets.load_prepared(poisoned["data"])
    out = poisoned["folder"] / "main_row.json"
    row = {"kind": "trained", "checkpoint": str(poisoned["lr0.0002"]), "out": str(out), "run": identity()}
    with pytest.raises(AkdgError, match="x_test"):  # the tables' evaluation (train reference, test split loaded) cannot run on it
        steps.evaluate({"evaluation": OPTIONS, "z_dim": 8, "rows": [row]}, poisoned["data"], poisoned["extractor"], poisoned["cost"])
    assert not out.exists()


def test_tuning_scores_and_selects_on_the_validation_split_without_reading_the_test_split(poisoned: dict[str, Path], tmp_path: Path):
    settings = {"lr0.0002": {"lr": 2e-4}, "lr0.001": {"lr": 1e-3}}
    rows = [
        {"kind": "trained", "checkpoint": str(poisoned[label]), "out": str(tmp_path / f"{label}.json"), "run": identity(label)}
        for label in settings
    ]
    cache = tmp_path / "cache"
    steps.reference_stats(
        {"batch_size": 40, "split": "validation"}, poisoned["data"], poisoned["extractor"], cache, tmp_path / "validation.json"
    )
    spec = {"evaluation": OPTIONS, "z_dim": 8, "reference": "validation", "rows": rows}
    steps.evaluate(spec, poisoned["data"], poisoned["extractor"], poisoned["cost"], reference_cache=cache)
    run = read_json(tmp_path / "lr0.0002.json")
    assert run["protocol"]["dataset"]["reference_split"] == "validation"
    assert run["protocol"]["dataset"]["reference_samples"] == run["protocol"]["dataset"]["validation_samples"]
    assert run["protocol"]["reference_cache"]["hit"] is True  # the validation features reference-stats cached
    select_spec = {
        "student": "dcgan-w4",
        "generator": GENERATOR,
        "method": "vanilla",
        "method_registered": "vanilla",
        "seed": 0,
        "num_samples": 40,
        "candidates": settings,
    }
    out = tmp_path / "selection.json"
    steps.select_tuning(select_spec, [tmp_path / f"{label}.json" for label in settings], out)
    selection = read_json(out)
    fids = {candidate["label"]: candidate["fid"] for candidate in selection["candidates"]}
    assert selection["chosen"]["label"] == min(fids, key=fids.get)
    assert selection["chosen"]["validation_fid"] == min(fids.values())
    assert all(candidate["precision"] is not None for candidate in selection["candidates"])
    assert selection["protocol"]["reference_split"] == "validation"
    steps.tuning_tables([out], tmp_path / "tuning.md", tmp_path / "tuning.csv")
    table = pd.read_csv(tmp_path / "tuning.csv")
    assert list(table["candidate"]) == list(settings) and list(table["chosen"]) == [
        label == selection["chosen"]["label"] for label in settings
    ]
    rows = [line for line in (tmp_path / "tuning.md").read_text().splitlines() if line.startswith("| dcgan-w4")]
    assert [line.rstrip(" |").endswith("chosen") for line in rows] == list(table["chosen"]) and "| 0.0002 " in rows[0]
    with pytest.raises(AkdgError, match="never reads"):
        steps.evaluate(
            {**spec, "rows": [{"kind": "real", "out": str(tmp_path / "real.json"), "run": identity()}]},
            poisoned["data"],
            poisoned["extractor"],
            poisoned["cost"],
        )


# --------------------------------------------------------------------------------------------------
# selection and its application
# --------------------------------------------------------------------------------------------------


def fake_run(path: Path, fid: float, split: str = "validation") -> Path:
    write_json(
        path,
        {
            "metrics": {"fid": fid, "kid_mean": 0.1, "precision": 0.5, "recall": 0.4},
            "protocol": {"dataset": {"reference_split": split, "content_sha256": "x"}, "evaluation": OPTIONS, "feature_extractor": {}},
        },
    )
    return path


def test_selection_picks_the_lowest_validation_fid_and_a_tie_goes_to_the_grid_order(tmp_path: Path):
    settings = candidates({"kd_weight": [0.3, 1.0, 3.0], "lr": [2e-4]})
    assert list(settings) == ["kd_weight0.3-lr0.0002", "kd_weight1-lr0.0002", "kd_weight3-lr0.0002"]
    fids = dict(zip(settings, (9.0, 4.0, 4.0)))
    runs = {label: fake_run(tmp_path / f"{label}.json", fid) for label, fid in fids.items()}
    selection = select(runs, settings, {"student": "s", "generator": GENERATOR, "method": "akdg"})
    assert selection["chosen"] == {"label": "kd_weight1-lr0.0002", "setting": {"kd_weight": 1.0, "lr": 2e-4}, "validation_fid": 4.0}
    fake_run(runs["kd_weight3-lr0.0002"], 1.0, split="train")
    with pytest.raises(AkdgError, match="scored against the train split"):
        select(runs, settings, {})


def test_the_student_job_applies_the_chosen_setting_and_records_it(tmp_path: Path, digits_npz: Path):
    selection = tmp_path / "selection.json"
    write_json(
        selection,
        {
            "student": "dcgan-w4",
            "generator": GENERATOR,
            "method": "vanilla",
            "method_registered": "vanilla",
            "candidates": [{"label": "lr0.001"}, {"label": "lr0.0002"}],
            "chosen": {"label": "lr0.001", "setting": {"lr": 1e-3}, "validation_fid": 12.5},
            "rule": "lowest validation FID",
        },
    )
    out = tmp_path / "student.pt"
    steps.train_generator(SPEC, digits_npz, out, tuned=selection)
    training = checkpoint.read_checkpoint(out)["meta"]["training"]
    assert training["optimizer"]["lr_g"] == training["optimizer"]["lr_d"] == 1e-3
    assert training["tuning"]["setting"] == {"lr": 1e-3}
    assert training["tuning"]["validation_fid"] == 12.5 and training["tuning"]["candidates"] == 2
    with pytest.raises(AkdgError, match="made for generator"):
        steps.train_generator({**SPEC, "generator": {"arch": "dcgan", "width": 8}}, digits_npz, tmp_path / "other.pt", tuned=selection)


def test_the_table_notes_name_each_tuned_setting_its_validation_fid_and_a_shared_source():
    def result(method: str, source: str) -> dict:
        tuning = {"setting": {"kd_weight": 0.3, "lr": 2e-4}, "validation_fid": 20.1, "candidates": 3, "source_method": source}
        return {"run": {"role": "student", "generator_label": "dcgan-w4", "method": method}, "protocol": {"training": {"tuning": tuning}}}

    untuned = {"run": {"role": "teacher", "generator_label": "teacher", "method": "vanilla"}, "protocol": {"training": {}}}
    (line,) = tuning_lines([untuned, result("akdg", "akdg"), result("akdg-kd-only", "akdg")])
    assert "dcgan-w4 akdg: kd_weight=0.3, lr=0.0002 (validation FID 20.10, best of 3)" in line
    assert "dcgan-w4 akdg-kd-only: kd_weight=0.3, lr=0.0002 (validation FID 20.10, best of 3, akdg's)" in line
    assert tuning_lines([untuned]) == []


def test_apply_setting_sets_both_learning_rates_and_method_options():
    spec = apply_setting(tiny_train_spec(method="akdg", method_options={"kd_weight": 1.0}), {"kd_weight": 3.0, "lr": 4e-4})
    assert spec["method_options"] == {"kd_weight": 3.0}
    assert spec["optimizer"]["lr_g"] == spec["optimizer"]["lr_d"] == 4e-4


# --------------------------------------------------------------------------------------------------
# config validation
# --------------------------------------------------------------------------------------------------


def tuned_config() -> dict:
    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    config["dataset"].update(validation_fraction=0.15, validation_seed=0)
    config["methods"]["akdg-kd-only"] = {}
    config["tuning"] = {
        "seed": 0,
        "num_samples": 200,
        "grid": {"vanilla": {"lr": [2e-4, 4e-4]}, "mse": {"lr": [2e-4, 4e-4]}, "akdg": {"kd_weight": [0.3, 1.0], "lr": [2e-4]}},
        "share": {"akdg-kd-only": "akdg"},
    }
    return config


def test_a_tuning_config_validates_and_each_method_finds_its_source():
    config = tuned_config()
    config["tuning"]["grid"]["vanilla"]["lr"] = ["2e-4", 4e-4]  # as PyYAML and --config give it: text
    config = validate_config(config)
    assert config["tuning"]["grid"]["vanilla"]["lr"] == [2e-4, 4e-4]
    assert tuned_source(config, "akdg-kd-only") == "akdg" and tuned_source(config, "mse") == "mse"
    plain = validate_config(yaml.safe_load((REPO / "config" / "test.yaml").read_text()))
    assert "tuning" not in plain and tuned_source(plain, "akdg") is None


def drop_validation(config: dict) -> None:
    del config["dataset"]["validation_fraction"]


def unknown_method(config: dict) -> None:
    config["tuning"]["grid"]["wgan"] = {"lr": [1e-4]}


def unknown_knob(config: dict) -> None:
    config["tuning"]["grid"]["akdg"]["temperature"] = [1.0]


def untuned_method(config: dict) -> None:
    del config["tuning"]["share"]["akdg-kd-only"]


def empty_values(config: dict) -> None:
    config["tuning"]["grid"]["mse"]["lr"] = []


def bad_value(config: dict) -> None:
    config["tuning"]["grid"]["akdg"]["kd_weight"] = [-1.0]


def share_without_grid(config: dict) -> None:
    config["methods"]["akdg-paired"] = {}
    config["tuning"]["share"].update({"akdg-kd-only": "akdg-paired", "akdg-paired": "akdg"})


@pytest.mark.parametrize(
    "change, message",
    [
        (drop_validation, "tuning needs a validation split.*set dataset.validation_fraction"),
        (unknown_method, "tuning names method 'wgan', which is not in methods.*add it there or remove it"),
        (unknown_knob, "tuning.grid.akdg.temperature: 'temperature' is no knob of method 'akdg'.*kd_weight"),
        (untuned_method, "method 'akdg-kd-only' has neither a grid nor a share"),
        (empty_values, "tuning.grid.mse.lr is empty; list at least one value"),
        (bad_value, "tuning.grid.akdg.kd_weight.*option kd_weight"),
        (share_without_grid, "tuning.share.akdg-kd-only is 'akdg-paired', which has no grid"),
    ],
)
def test_config_validation_refuses_each_bad_tuning_input_with_exit_2(change, message: str, tmp_path: Path):
    config = tuned_config()
    change(config)
    with pytest.raises(AkdgError, match=message):
        validate_config(copy.deepcopy(config))
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "akdg", "validate-config", str(path)], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------------------------------
# the DAG
# --------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.workflow
def test_the_dag_tunes_each_method_once_per_student_and_the_students_read_their_selection(tmp_path: Path):
    """`snakemake -n -p`: one training per (student, candidate), one validation evaluation and selection per (student,
    tuned method); every main student job takes its (or its shared source's) selection; without tuning none of it."""
    config = tuned_config()
    (tmp_path / "tuned.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-n", "-p", "all_tables", "--configfile", "tuned.yaml"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    table = result.stdout.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    counts = {name: int(count) for name, count in re.findall(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}
    students, seeds = len(config["students"]), len(config["seeds"])
    grid_size = sum(len(candidates(grid)) for grid in config["tuning"]["grid"].values())
    assert counts["train_candidate"] == students * grid_size
    assert counts["select_tuning"] == students * len(config["tuning"]["grid"])
    assert all(counts[f"evaluate_tuning_{label}"] == students for label in ("vanilla", "mse", "akdg"))
    assert counts["validation_stats"] == counts["tuning_table"] == 1
    assert counts["train_student"] == students * len(config["methods"]) * seeds
    commands = [line for line in result.stdout.splitlines() if "akdg train " in line and "--tuned" in line]
    assert len(commands) == counts["train_student"]
    shared = [line for line in commands if "/dcgan-w4/akdg-kd-only/seed" in line]
    assert len(shared) == seeds and all("--tuned results/tuning/digits/dcgan-w4/akdg.json" in line for line in shared)
    specs = [(step, json.loads(spec)) for step, spec in re.findall(r"akdg ([a-z-]+) --spec '(\{.*?\})'", result.stdout)]
    assert {"select-tuning", "evaluate", "reference-stats", "train"} <= {step for step, _ in specs}
    assert any(spec.get("reference") == "validation" for step, spec in specs if step == "evaluate")
    for step, spec in specs:  # every tuning spec the DAG builds fits its step's schema
        check_spec(step, copy.deepcopy(spec))
    plain = subprocess.run([*command[:-1], str(REPO / "config" / "test.yaml")], cwd=tmp_path, capture_output=True, text=True)
    assert plain.returncode == 0 and "tuning" not in plain.stdout.split("Job stats:", 1)[1]
