"""Training curves: each run keeps its generator at the configured fractions of its steps, the evaluation
scores each with curve_samples samples, and the aggregate step plots FID against steps per method."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from test_faults import extractor_files  # noqa: F401 (a fixture: an untrained classifier extractor)

from akdg import checkpoint, steps
from akdg.config import student_training_spec, teacher_training_spec, validate_config
from akdg.io import write_json
from akdg.plots import curve_outputs, curve_points, curves_figure, training_curves
from akdg.registry import AkdgError
from akdg.training import curve_steps
from conftest import REPO, copy_project, tiny_train_spec

CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
EMA_SPEC = tiny_train_spec(steps=6, ema_decay=0.9, ema_bn_batches=3, z_dim=16)


def configured(**evaluation: object) -> dict:
    config = copy.deepcopy(CONFIG)
    config["evaluation"].update(evaluation)
    return validate_config(config)


def test_curve_steps_round_merge_and_never_fall_below_one():
    assert curve_steps([0.25, 0.5, 1.0], 10) == [2, 5, 10]  # round half to even: 2.5 -> 2
    assert curve_steps([0.01, 0.5, 0.51, 1.0], 10) == [1, 5, 10]
    assert curve_steps([], 10) == []


def test_without_curves_the_training_specs_are_unchanged_and_with_them_they_carry_the_fractions():
    plain, curved = validate_config(copy.deepcopy(CONFIG)), configured(curve_fractions=[0.5, 1.0])
    assert plain["evaluation"]["curve_fractions"] == [] and plain["evaluation"]["curve_samples"] == 500
    for config, expected in ((plain, None), (curved, [0.5, 1.0])):
        specs = [teacher_training_spec(config), student_training_spec(config, config["students"][0], next(iter(config["methods"])), 0)]
        assert all(spec.get("curve_fractions") == expected for spec in specs)
        assert all(("curve_fractions" in spec) == (expected is not None) for spec in specs)


def test_curve_samples_beyond_num_samples_are_refused_only_with_curves():
    configured(curve_samples=10**6)  # no curves: the key is not read
    with pytest.raises(AkdgError, match=r"curve_samples=5000 exceeds evaluation.num_samples=1000.*lower curve_samples"):
        configured(curve_fractions=[0.5], curve_samples=5000)
    with pytest.raises(AkdgError, match=r"curve_samples=3 leaves no 3-th nearest neighbour.*raise curve_samples"):
        configured(curve_fractions=[0.5], curve_samples=3)


@pytest.fixture(scope="module")
def curved_checkpoint(digits_npz: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("curves") / "student.pt"
    steps.train_generator({**EMA_SPEC, "curve_fractions": [1 / 3, 0.5, 0.55, 1.0]}, digits_npz, out)
    return out


def test_snapshots_are_kept_at_exactly_the_configured_steps(curved_checkpoint: Path):
    curve = checkpoint.read_checkpoint(curved_checkpoint)["curve"]
    assert [(snapshot["step"], snapshot["fraction"]) for snapshot in curve] == [(2, 2 / 6), (3, 0.5), (6, 1.0)]
    assert ["state_dict" in snapshot for snapshot in curve] == [True, True, False]  # the last is the saved generator


def test_a_snapshot_is_the_generator_a_run_of_that_many_steps_saves(curved_checkpoint: Path, digits_npz: Path, tmp_path: Path):
    """The EMA at step 3 with its own standing statistics, as a 3-step run ends; and the last point is the saved generator."""
    steps.train_generator({**EMA_SPEC, "steps": 3}, digits_npz, tmp_path / "short.pt")
    points = {point["step"]: generator for point, generator in checkpoint.curve_generators(curved_checkpoint)}
    short, _ = checkpoint.load_generator(tmp_path / "short.pt")
    final, _ = checkpoint.load_generator(curved_checkpoint)
    for snapshot, saved in ((points[3], short), (points[6], final)):
        theirs = saved.state_dict()
        assert any("running_mean" in name for name in theirs)  # BatchNorm statistics are compared too
        assert all(torch.equal(tensor, theirs[name]) for name, tensor in snapshot.state_dict().items())
    steps.train_generator(EMA_SPEC, digits_npz, tmp_path / "plain.pt")  # curves leave training itself as it was
    plain = checkpoint.read_checkpoint(tmp_path / "plain.pt")
    curved = checkpoint.read_checkpoint(curved_checkpoint)
    for key in ("state_dict", "last_state_dict"):
        assert all(torch.equal(tensor, curved[key][name]) for name, tensor in plain[key].items())
    weight = next(name for name in final.state_dict() if name.endswith("weight"))
    assert not torch.equal(points[2].state_dict()[weight], final.state_dict()[weight])


def test_the_run_json_has_one_finite_curve_point_per_step(curved_checkpoint: Path, digits_npz: Path, extractor_files: Path, tmp_path: Path):  # noqa: F811
    cost, out = tmp_path / "cost.json", tmp_path / "run.json"
    write_json(cost, {"dcgan-w4": {}})
    run = {"generator": {"arch": "dcgan", "width": 4}, "generator_label": "dcgan-w4", "seed": 0, "role": "student", "method": "vanilla"}
    options = {"num_samples": 100, "isc_splits": 2, "kid_subsets": 2, "kid_subset_size": 50, "batch_size": 50, "rng_seed": 0}
    options |= {"curve_fractions": [1 / 3, 0.5, 0.55, 1.0], "curve_samples": 40}
    steps.train_generator(EMA_SPEC, digits_npz, tmp_path / "plain.pt")
    rows = [
        {"kind": "trained", "checkpoint": str(curved_checkpoint), "out": str(out), "run": run},
        {"kind": "trained", "checkpoint": str(tmp_path / "plain.pt"), "out": str(tmp_path / "plain.json"), "run": run},
    ]
    steps.evaluate({"evaluation": options, "z_dim": 16, "rows": rows}, digits_npz, extractor_files, cost)
    result = json.loads(out.read_text())
    assert [point["step"] for point in result["curve"]] == [2, 3, 6]
    assert all(math.isfinite(point["fid"]) and 0 <= point["precision"] <= 1 for point in result["curve"])
    assert result["protocol"]["curve"]["samples"] == 40 and result["protocol"]["curve"]["evaluation"]["kid_subset_size"] == 40
    assert result["curve"][-1]["fid"] != result["metrics"]["fid"]  # the same weights on 40 samples, not the table's 100
    plain = json.loads((tmp_path / "plain.json").read_text())
    assert "curve" not in plain and "curve" not in plain["protocol"]  # a run trained without curves scores none


def synthetic_runs(folder: Path) -> list[Path]:
    """Run JSONs of two methods x three seeds on one student, and a teacher, with made-up curves."""
    paths = []
    for method in ("vanilla", "akdg"):
        for seed in range(3):
            curve = [
                {"step": step, "fraction": step / 100, "fid": 100 / step + seed + (method == "akdg"), "precision": 0.5}
                for step in (25, 50, 100)
            ]
            run = {"generator_label": "dcgan-w4", "role": "student", "method": method, "seed": seed}
            paths.append(folder / f"{method}{seed}.json")
            write_json(paths[-1], {"run": run, "curve": curve, "protocol": {"curve": {"samples": 40}}})
    teacher_curve = [{"step": step, "fraction": step / 200, "fid": 50 / step} for step in (50, 100, 200)]
    paths.append(folder / "teacher.json")
    teacher = {"generator_label": "teacher", "role": "teacher", "method": "vanilla", "seed": 0}
    write_json(paths[-1], {"run": teacher, "curve": teacher_curve, "protocol": {"curve": {"samples": 40}}})
    write_json(folder / "real.json", {"run": {"generator_label": None, "role": "real", "method": None, "seed": 0}, "protocol": {}})
    return [*paths, folder / "real.json"]


def test_the_curve_plot_and_its_data_have_one_line_per_method(tmp_path: Path):
    runs = synthetic_runs(tmp_path)
    png, csv = curve_outputs(tmp_path, "digits")
    training_curves(runs, ["vanilla", "akdg"], png, csv, "digits")
    data = pd.read_csv(csv)
    assert png.stat().st_size > 0 and len(data) == 2 * 3 * 3 + 3
    assert data.groupby("method")["seed"].nunique().to_dict() == {"akdg": 3, "teacher": 1, "vanilla": 3}
    axis = curves_figure(curve_points(runs), ["vanilla", "akdg"], "digits").axes[0]
    lines = [line for line in axis.get_lines() if len(line.get_xdata()) == 3]  # the mean lines (legend handles have fewer points)
    assert len(lines) == 3 and sorted(line.get_ydata()[0] for line in lines) == pytest.approx([1.0, 5.0, 6.0])
    assert {line.get_linestyle() for line in lines} == {"-", "--"}


def test_no_curves_are_refused_with_a_sentence(tmp_path: Path):
    write_json(tmp_path / "run.json", {"run": {"generator_label": "x", "role": "student", "method": "vanilla", "seed": 0}, "protocol": {}})
    with pytest.raises(AkdgError, match="no run JSON has a training curve; set evaluation.curve_fractions"):
        training_curves([tmp_path / "run.json"], ["vanilla"], *curve_outputs(tmp_path, "digits"), "digits")


@pytest.mark.slow
@pytest.mark.workflow
def test_the_dag_plans_the_curve_plot_only_with_curves(tmp_path: Path):
    workdir = copy_project(tmp_path)
    (workdir / "curves.yaml").write_text(yaml.safe_dump({"evaluation": {"curve_fractions": [0.5, 1.0], "curve_samples": 100}}))

    def planned_outputs(*configfiles: str) -> str:
        command = [sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "1", "all_tables", "--configfile", *configfiles]
        result = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    assert "_curves.png" not in planned_outputs("config/test.yaml")
    plan = planned_outputs("config/test.yaml", "curves.yaml")
    assert "digits_curves.png" in plan and "digits_curves.csv" in plan and "--curves" in plan
