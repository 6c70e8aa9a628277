"""A killed training job resumes where its last state left it, and ends with the uninterrupted weights."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from akdg import checkpoint, datasets, steps
from akdg.architectures import build_generator
from akdg.losses import LOSSES
from akdg.registry import AkdgError
from akdg.resume import Resumable
from akdg.training import TrainContext, train

SPEC = {
    "generator": {"arch": "dcgan", "width": 4},
    "discriminator": {"arch": "dcgan", "width": 4},
    "method": "akdg",
    "method_options": {"kd_weight": 1.0},
    "seed": 3,
    "steps": 400,
    "z_dim": 8,
    "loss": "hinge",
    "batch_size": 8,
    "n_dis": 1,
    "log_every": 50,
    "ema_decay": 0.9,
    "optimizer": {"lr_g": 2e-4, "lr_d": 2e-4, "betas": [0.5, 0.999]},
    "curve_fractions": [0.05, 0.5, 1.0],  # steps 20 (before the first state the kill waits for), 200 and 400
}


@pytest.fixture(scope="module")
def teacher(digits, tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    generator = build_generator({"arch": "sngan", "width": 4}, resolution=digits.resolution, channels=digits.channels, z_dim=8)
    path = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    meta = {
        "generator": {"arch": "sngan", "width": 4},
        "resolution": digits.resolution,
        "channels": digits.channels,
        "z_dim": 8,
        "training": {},
    }
    checkpoint.save_generator(path, generator, meta)
    return path


def train_command(out: Path, data: Path, teacher: Path, every: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "akdg",
        "train",
        "--spec",
        json.dumps(SPEC),
        "--data",
        str(data),
        "--teacher",
        str(teacher),
        "--threads",
        "1",
        "--checkpoint-every",
        str(every),
        "--out",
        str(out),
    ]


def weights(path: Path) -> dict[str, torch.Tensor]:
    """The saved (EMA) weights and, prefixed ``last:``, the raw last-step weights kept beside them, and each
    training-curve snapshot's, prefixed ``step N:``."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    snapshots = {
        f"step {snapshot['step']}:{name}": tensor
        for snapshot in payload.get("curve", [])
        for name, tensor in snapshot.get("state_dict", {}).items()
    }
    return {**payload["state_dict"], **{f"last:{name}": tensor for name, tensor in payload.get("last_state_dict", {}).items()}, **snapshots}


@pytest.mark.slow
def test_sigkill_midway_then_rerun_resumes_and_matches_an_uninterrupted_run(tmp_path: Path, digits_npz: Path, teacher: Path):
    killed, whole = tmp_path / "killed.pt", tmp_path / "whole.pt"
    state = Path(f"{killed}.state")
    job = subprocess.Popen(train_command(killed, digits_npz, teacher, every=20), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not state.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(job.pid, signal.SIGKILL)
    job.wait()
    assert not killed.exists(), "the job finished before it could be killed; raise SPEC['steps']"
    saved_step = torch.load(state, weights_only=True)["step"]
    assert 0 < saved_step < SPEC["steps"]

    rerun = subprocess.run(train_command(killed, digits_npz, teacher, every=20), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    resumed_at = [line for line in rerun.stderr.splitlines() if "resuming from" in line]
    assert resumed_at and f"at step {saved_step + 1} of {SPEC['steps']}" in resumed_at[0], rerun.stderr[-2000:]
    assert not state.exists(), "the state of a finished run must be removed"

    uninterrupted_run = subprocess.run(train_command(whole, digits_npz, teacher, every=0), capture_output=True, text=True)  # same threads
    assert uninterrupted_run.returncode == 0, uninterrupted_run.stderr[-3000:]
    resumed, uninterrupted = weights(killed), weights(whole)
    assert resumed.keys() == uninterrupted.keys() and any(key.startswith("last:") for key in resumed)  # EMA and raw weights both
    assert {key.split(":")[0] for key in resumed if key.startswith("step ")} == {"step 20", "step 200"}  # step 20's from before the kill
    assert all(torch.equal(resumed[key], uninterrupted[key]) for key in resumed), "resumed weights differ from the uninterrupted run's"
    trainings = [torch.load(path, map_location="cpu", weights_only=True)["meta"]["training"] for path in (killed, whole)]
    seen = [{key: training[key] for key in ("images_seen", "real_images_seen", "ema_bn_statistics")} for training in trainings]
    assert (
        seen[0] == seen[1] and seen[0]["real_images_seen"] == SPEC["steps"] * SPEC["batch_size"] * SPEC["n_dis"]
    )  # counted over both runs
    assert seen[0]["images_seen"] == SPEC["steps"] * SPEC["batch_size"] and seen[0]["ema_bn_statistics"].startswith("recomputed")


@pytest.mark.slow
def test_a_nan_stop_keeps_the_last_good_state(tmp_path: Path, digits_npz: Path, teacher: Path, monkeypatch: pytest.MonkeyPatch):
    from baselines.vanilla import Vanilla

    calls = {"steps": 0}
    original = Vanilla.train_step

    def poisoned(self):
        calls["steps"] += 1
        losses = original(self)
        return {**losses, "d": float("nan")} if calls["steps"] == 7 else losses

    monkeypatch.setattr(Vanilla, "train_step", poisoned)
    out = tmp_path / "student.pt"
    with pytest.raises(AkdgError, match="loss 'd' became nan at step 7"):
        steps.train_generator({**SPEC, "method": "vanilla", "method_options": {}, "steps": 20}, digits_npz, out, checkpoint_every=3)
    assert not out.exists()
    assert torch.load(Path(f"{out}.state"), weights_only=True)["step"] == 6


@pytest.mark.slow
def test_a_corrupt_state_is_named_and_a_finished_run_leaves_none(tmp_path: Path, digits_npz: Path):
    out = tmp_path / "student.pt"
    spec = {**SPEC, "method": "vanilla", "method_options": {}, "steps": 6}
    Path(f"{out}.state").write_bytes(b"not a state")
    with pytest.raises(AkdgError, match=r"student\.pt\.state is truncated or not a torch file.*delete it"):
        steps.train_generator(spec, digits_npz, out, checkpoint_every=2)
    Path(f"{out}.state").unlink()
    steps.train_generator(spec, digits_npz, out, checkpoint_every=4)  # leaves nothing behind once done
    assert not Path(f"{out}.state").exists()


def test_a_state_that_does_not_fit_the_models_is_named(tmp_path: Path, digits: datasets.ImageSplits):
    """Same identity, other tensors (the architecture code changed): an AkdgError, not load_state_dict's traceback."""
    ctx = TrainContext(
        generator=build_generator({"arch": "dcgan", "width": 4}, resolution=digits.resolution, channels=digits.channels, z_dim=8),
        teacher=None,
        images=torch.from_numpy(digits.x_train),
        z_dim=8,
        batch_size=8,
        loss=LOSSES.get("hinge"),
        discriminator_spec={"arch": "dcgan", "width": 4},
        optimizer=SPEC["optimizer"],
        n_dis=1,
        device=torch.device("cpu"),
        rng=torch.Generator().manual_seed(0),
    )
    other = build_generator({"arch": "dcgan", "width": 8}, resolution=digits.resolution, channels=digits.channels, z_dim=8)
    path = tmp_path / "student.pt.state"
    Resumable(path, "same-run", 1).save(1, {"generator": other.state_dict()})
    with pytest.raises(AkdgError, match=r"student\.pt\.state was written for this run but does not fit its models.*Delete it"):
        train("vanilla", {}, ctx, 4, resume=Resumable(path, "same-run", 1))


@pytest.mark.slow
def test_a_run_with_an_lr_schedule_and_a_gradient_penalty_resumes_exactly(
    tmp_path: Path, digits_npz: Path, monkeypatch: pytest.MonkeyPatch
):
    """The schedule is a function of the step and the optimisers' state; the penalty's draws come from the saved RNG."""
    from baselines.vanilla import Vanilla

    spec = {
        **SPEC,
        "method": "vanilla",
        "method_options": {},
        "steps": 12,
        "loss": {"name": "wgan-gp", "gp_weight": 10.0},
        "lr_schedule": {"kind": "linear", "start": 2},
        "generator_batch_size": 12,
        "curve_fractions": [0.25, 0.5, 1.0],  # steps 3 and 6 are kept before the state at step 6, 12 is the final generator
    }
    original, calls = Vanilla.train_step, {"steps": 0}

    def stopped_at_step_8(self):
        calls["steps"] += 1
        if calls["steps"] == 8:
            raise KeyboardInterrupt  # as a killed job: the last state on disk is step 6's
        return original(self)

    interrupted, whole = tmp_path / "interrupted.pt", tmp_path / "whole.pt"
    monkeypatch.setattr(Vanilla, "train_step", stopped_at_step_8)
    with pytest.raises(KeyboardInterrupt):
        steps.train_generator(spec, digits_npz, interrupted, checkpoint_every=3)
    monkeypatch.setattr(Vanilla, "train_step", original)
    assert torch.load(Path(f"{interrupted}.state"), weights_only=True)["step"] == 6
    steps.train_generator(spec, digits_npz, interrupted, checkpoint_every=3)
    steps.train_generator(spec, digits_npz, whole, checkpoint_every=0)
    resumed, uninterrupted = weights(interrupted), weights(whole)
    assert resumed.keys() == uninterrupted.keys() and {key.split(":")[0] for key in resumed if key.startswith("step ")} == {
        "step 3",
        "step 6",
    }
    assert all(torch.equal(resumed[key], uninterrupted[key]) for key in resumed), "resumed weights differ from the uninterrupted run's"
