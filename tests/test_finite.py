"""Nothing non-finite reaches a table: diverging training stops unsaved, NaN generators are not scored."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from akdg import checkpoint, steps
from akdg.architectures import build_generator
from akdg.config import student_training_spec, validate_config
from akdg.io import write_json
from akdg.registry import AkdgError
from akdg.training import METHODS, PROBE_SAMPLES
from baselines.vanilla import Vanilla
from conftest import REPO, tiny_train_spec

SPEC = tiny_train_spec(steps=6, batch_size=8, log_every=50)
POISONED_STEP = 4


@METHODS.register("test-poisons-generator")
class _PoisonsGenerator(Vanilla):
    """Vanilla whose generator weights turn NaN after the update of step POISONED_STEP; its losses stay finite."""

    def train_step(self) -> dict[str, float]:
        losses = super().train_step()
        self.steps_done = getattr(self, "steps_done", 0) + 1
        if self.steps_done == POISONED_STEP:
            with torch.no_grad():
                next(self.ctx.generator.parameters()).fill_(float("nan"))
        return losses


def test_a_huge_learning_rate_stops_training_and_writes_no_checkpoint(tmp_path: Path, digits_npz: Path):
    """lr_g 1e38 leaves finite weights after one step whose images are all NaN: the probe refuses them."""
    out = tmp_path / "student.pt"
    spec = {**SPEC, "steps": 1, "optimizer": {**SPEC["optimizer"], "lr_g": 1e38}}
    with pytest.raises(AkdgError, match=rf"{PROBE_SAMPLES} probe images hold \d+ NaN or Inf values.*training\.optimizer") as error:
        steps.train_generator(spec, digits_npz, out)
    assert "lower the learning rates" not in str(error.value)
    assert list(tmp_path.iterdir()) == []  # no checkpoint, no half-written file


def test_a_loss_beyond_max_abs_loss_stops_naming_the_loss_the_step_and_the_bound(tmp_path: Path, digits_npz: Path):
    out = tmp_path / "student.pt"
    with pytest.raises(
        AkdgError, match=r"loss 'd' reached .*, beyond training\.max_abs_loss=0\.5, at step 1: training diverged.*negative weight"
    ):
        steps.train_generator({**SPEC, "max_abs_loss": 0.5}, digits_npz, out)  # hinge D losses start near 2
    assert not out.exists()


def test_nan_weights_stop_training_before_a_state_is_saved(tmp_path: Path, digits_npz: Path):
    """Finite losses, NaN generator weights at step 4: caught by the check before step 4's state is saved."""
    out = tmp_path / "student.pt"
    name = next(iter(build_generator(SPEC["generator"], resolution=16, channels=1, z_dim=8).state_dict()))
    with pytest.raises(AkdgError, match=rf"weight '{name}' of the generator holds NaN or Inf at step {POISONED_STEP}"):
        steps.train_generator({**SPEC, "method": "test-poisons-generator"}, digits_npz, out, checkpoint_every=2)
    assert not out.exists()
    state = torch.load(Path(f"{out}.state"), weights_only=True)
    assert state["step"] == 2 and all(tensor.isfinite().all() for tensor in state["generator"].values())


def test_a_normal_run_passes_every_check_and_records_them(tmp_path: Path, digits_npz: Path):
    out = tmp_path / "student.pt"
    steps.train_generator({**SPEC, "log_every": 2, "ema_decay": 0.5}, digits_npz, out, checkpoint_every=3)
    assert checkpoint.read_checkpoint(out)["meta"]["training"]["checks"] == {
        "finite_losses": "every step",
        "max_abs_loss": 1e4,
        "finite_weights": "every 2 steps, before each saved state and at the end",
        "probe_samples_finite": PROBE_SAMPLES,
    }


def test_max_abs_loss_is_a_schema_key_a_variant_can_override():
    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    config["methods"]["vanilla-wide"] = {"method": "vanilla", "training": {"max_abs_loss": 500}}
    validate_config(config)
    student = config["students"][0]
    assert student_training_spec(config, student, "vanilla-wide", 0)["max_abs_loss"] == 500
    assert student_training_spec(config, student, "vanilla", 0)["max_abs_loss"] == 1e4
    bad = copy.deepcopy(config)
    bad["training"]["max_abs_loss"] = 0
    with pytest.raises(AkdgError, match="max_abs_loss"):
        validate_config(bad)


# --------------------------------------------------------------------------------------------------
# evaluation refuses NaN generators
# --------------------------------------------------------------------------------------------------

OPTIONS = {"num_samples": 40, "isc_splits": 2, "kid_subsets": 2, "kid_subset_size": 20, "batch_size": 40, "rng_seed": 0}
GENERATOR = {"arch": "dcgan", "width": 4}


def run_identity(method: str) -> dict:
    return {"dataset": "digits", "role": "student", "generator_label": "dcgan-w4", "generator": GENERATOR, "method": method, "seed": 0}


@pytest.fixture(scope="module")
def evaluation_inputs(digits_npz: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A quickly trained classifier extractor (with its protocol JSON), a cost JSON and a checkpoint with NaN weights."""
    folder = tmp_path_factory.mktemp("finite_evaluation")
    extractor = folder / "extractor.pt"
    steps.train_extractor({"epochs": 1, "width": 16, "lr": 1e-3, "batch_size": 64, "seed": 0}, digits_npz, extractor)
    cost = folder / "cost.json"
    write_json(cost, {"dcgan-w4": {"params": 1}})
    generator = build_generator(GENERATOR, resolution=16, channels=1, z_dim=8)
    with torch.no_grad():
        for parameter in generator.parameters():
            parameter.fill_(float("nan"))
    nan_checkpoint = folder / "nan.pt"
    checkpoint.save_generator(
        nan_checkpoint, generator, {"generator": GENERATOR, "resolution": 16, "channels": 1, "z_dim": 8, "training": {}}
    )
    return {"extractor": extractor, "cost": cost, "nan_checkpoint": nan_checkpoint}


def evaluation_spec(tmp_path: Path, nan_checkpoint: Path) -> dict:
    """An untrained (finite) row first, then the NaN generator's row."""
    rows = [
        {"kind": "untrained", "out": str(tmp_path / "untrained.json"), "run": run_identity("untrained")},
        {"kind": "trained", "checkpoint": str(nan_checkpoint), "out": str(tmp_path / "nan.json"), "run": run_identity("vanilla")},
    ]
    return {"evaluation": OPTIONS, "z_dim": 8, "rows": rows}


def test_evaluation_refuses_a_nan_generator_naming_the_run_and_count_and_writes_no_run_json(
    tmp_path: Path, digits_npz: Path, evaluation_inputs: dict[str, Path]
):
    spec = evaluation_spec(tmp_path, evaluation_inputs["nan_checkpoint"])
    expected = rf"method vanilla, seed 0\] from checkpoint {evaluation_inputs['nan_checkpoint']}: 40 of 40 generated images contain NaN or Inf values.*retrain"
    with pytest.raises(AkdgError, match=expected):
        steps.evaluate(spec, digits_npz, evaluation_inputs["extractor"], evaluation_inputs["cost"])
    assert list(tmp_path.iterdir()) == []  # not the NaN row's JSON, nor the valid row's before it


@pytest.mark.slow
def test_cli_evaluate_of_a_nan_generator_exits_2_without_a_traceback(tmp_path: Path, digits_npz: Path, evaluation_inputs: dict[str, Path]):
    spec = evaluation_spec(tmp_path / "runs", evaluation_inputs["nan_checkpoint"])
    command = [
        sys.executable,
        "-m",
        "akdg",
        "evaluate",
        "--spec",
        json.dumps(spec),
        "--data",
        str(digits_npz),
        "--extractor",
        str(evaluation_inputs["extractor"]),
        "--cost",
        str(evaluation_inputs["cost"]),
        "--threads",
        "1",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "40 of 40 generated images contain NaN or Inf values" in result.stderr
    assert str(evaluation_inputs["nan_checkpoint"]) in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_a_finite_trained_generator_is_scored_and_its_run_json_records_the_checks(
    tmp_path: Path, digits_npz: Path, evaluation_inputs: dict[str, Path]
):
    trained = tmp_path / "student.pt"
    steps.train_generator({**SPEC, "steps": 2}, digits_npz, trained)
    out = tmp_path / "run.json"
    row = {"kind": "trained", "checkpoint": str(trained), "out": str(out), "run": run_identity("vanilla")}
    steps.evaluate(
        {"evaluation": OPTIONS, "z_dim": 8, "rows": [row]}, digits_npz, evaluation_inputs["extractor"], evaluation_inputs["cost"]
    )
    result = json.loads(out.read_text())
    protocol = result["protocol"]
    assert "metrics_last" not in result and "weights_scored" not in protocol  # ema_decay 0: one weight set
    assert protocol["samples_checked_finite"] is True
    assert protocol["training"]["checks"]["probe_samples_finite"] == PROBE_SAMPLES
    assert protocol["training"]["checks"]["max_abs_loss"] == 1e4


def test_an_ema_run_is_scored_on_its_ema_and_on_its_raw_last_weights(tmp_path: Path, digits_npz: Path, evaluation_inputs: dict[str, Path]):
    """metrics_last equals the metrics of a checkpoint made of the raw weights alone (the form of an older checkpoint)."""
    trained = tmp_path / "student.pt"
    steps.train_generator({**SPEC, "steps": 3, "ema_decay": 0.5}, digits_npz, trained)
    payload = checkpoint.read_checkpoint(trained)
    assert payload["last_state_dict"].keys() == payload["state_dict"].keys()
    assert any(not torch.equal(payload["last_state_dict"][name], payload["state_dict"][name]) for name in payload["state_dict"])
    raw, meta = checkpoint.load_generator(trained, last=True)
    raw_only = tmp_path / "raw_only.pt"
    checkpoint.save_generator(raw_only, raw, meta)
    assert not checkpoint.has_last_weights(raw_only)
    with pytest.raises(AkdgError, match="holds no last-step weights"):
        checkpoint.load_generator(raw_only, last=True)
    rows = [
        {"kind": "trained", "checkpoint": str(path), "out": str(tmp_path / f"{path.stem}.json"), "run": run_identity("vanilla")}
        for path in (trained, raw_only)
    ]
    steps.evaluate({"evaluation": OPTIONS, "z_dim": 8, "rows": rows}, digits_npz, evaluation_inputs["extractor"], evaluation_inputs["cost"])
    both, alone = (json.loads((tmp_path / f"{path.stem}.json").read_text()) for path in (trained, raw_only))
    assert both["metrics_last"] == alone["metrics"]
    assert both["metrics"]["fid"] != both["metrics_last"]["fid"]
    assert both["protocol"]["weights_scored"] == "ema" and "metrics_last" in both["protocol"]["weights_note"]
    assert "metrics_last" not in alone and "weights_scored" not in alone["protocol"]


def test_evaluation_refuses_nan_last_weights_naming_them(tmp_path: Path, digits_npz: Path, evaluation_inputs: dict[str, Path]):
    generator = build_generator(GENERATOR, resolution=16, channels=1, z_dim=8)
    nan_weights = checkpoint.read_checkpoint(evaluation_inputs["nan_checkpoint"])["state_dict"]
    path = tmp_path / "student.pt"
    checkpoint.save_generator(
        path, generator, {"generator": GENERATOR, "resolution": 16, "channels": 1, "z_dim": 8, "training": {}}, nan_weights
    )
    row = {"kind": "trained", "checkpoint": str(path), "out": str(tmp_path / "run.json"), "run": run_identity("vanilla")}
    with pytest.raises(AkdgError, match=r"\(its last-step weights\): 40 of 40 generated images contain NaN or Inf"):
        steps.evaluate(
            {"evaluation": OPTIONS, "z_dim": 8, "rows": [row]}, digits_npz, evaluation_inputs["extractor"], evaluation_inputs["cost"]
        )
    assert not (tmp_path / "run.json").exists()
