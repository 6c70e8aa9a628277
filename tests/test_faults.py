"""Faults: a DAG killed outright, a full disk, missing or mismatched inputs at every place they are read.

Each fault must end in one of two ways: a rerun that carries on (resuming training where its state
left it), or an AkdgError naming the file and the fix, with nothing half-written left behind.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import psutil  # a dependency of Snakemake (and DVC): always installed beside them
import pytest
import torch

from akdg import checkpoint, datasets, steps
from akdg.architectures import build_generator
from akdg.cli import main
from akdg.feature_extractor_classifier import FORMAT as CLASSIFIER_FORMAT
from akdg.feature_extractor_classifier import NAME as CLASSIFIER
from akdg.feature_extractor_classifier import Classifier, load_classifier
from akdg.feature_extractors import load_extractor
from akdg.io import atomic_write, save_torch, sha256_file, write_json
from akdg.registry import AkdgError
from akdg.resume import Resumable
from conftest import DIGITS, copy_project, tiny_train_spec

pytestmark = [pytest.mark.slow, pytest.mark.workflow]

STUDENT = "results/models/digits/dcgan-w4/vanilla/seed0.pt"  # a vanilla student needs no teacher: prepare_data, then it
STEPS = 120
TRAINING = f"training={{steps: {STEPS}, checkpoint_every: 10}}"  # --config merges this into config/test.yaml's block
DIE_BETWEEN_OUTPUTS = '''"""Test plugin: SIGKILL the whole DAG once prepare-data has written its .npz and not yet its .json."""
import os
import signal

from akdg import steps

_write_json = steps.write_json


def _die_before_the_protocol(path, payload):
    if str(path).endswith(os.path.join("data", "digits.json")):
        os.killpg(os.getpgrp(), signal.SIGKILL)
    _write_json(path, payload)


steps.write_json = _die_before_the_protocol
'''
SPEC = tiny_train_spec(method="mse")  # a student training spec, as the train_student rule passes it


def snakemake(*args: str) -> list[str]:
    """A Snakemake command line on the test grid; ``--configfile`` last, as it takes every following word."""
    return [sys.executable, "-m", "snakemake", "--cores", "1", *args, "--configfile", "config/test.yaml"]


def hard_kill(job: subprocess.Popen) -> None:
    """SIGKILL Snakemake's whole process group (it and its jobs), as a scheduler's time limit does: nothing cleans up."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(job.pid, signal.SIGKILL)
    job.wait()


@contextlib.contextmanager
def dag_in_background(workdir: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """Snakemake in a process group of its own; killed with its jobs on the way out, whatever happens."""
    job = subprocess.Popen(
        snakemake(*args), cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        yield job
    finally:
        hard_kill(job)


def trainer_of(job: subprocess.Popen, out: str) -> psutil.Process | None:
    """The `akdg train` process (not its shell) that Snakemake started for ``out``."""
    for process in psutil.Process(job.pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            arguments = process.cmdline()
            if "train" in arguments and "--out" in arguments and arguments[arguments.index("--out") + 1] == out:
                return process
    return None


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def kill_once_training_saved(job: subprocess.Popen, state: Path, out: str) -> list[str]:
    """Once the training job of ``out`` has written its ``state``, SIGKILL ``job``'s process group; the trainer's command."""
    deadline = time.monotonic() + 300
    while not state.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    trainer = trainer_of(job, out)
    assert trainer is not None, f"no akdg train process for {out} ({job.args} exit {job.poll()})"
    command = trainer.cmdline()
    hard_kill(job)
    psutil.wait_procs([trainer], timeout=30)
    assert not trainer.is_running() or trainer.status() == psutil.STATUS_ZOMBIE
    return command


def assert_uninterrupted_run_gives_the_weights(command: list[str], workdir: Path, out: str) -> None:
    """The very `akdg train` command a job ran, uninterrupted (no states), ends with the weights the job left in ``out``."""
    arguments = command[command.index("train") :]
    arguments[arguments.index("--out") + 1] = "whole.pt"
    arguments[arguments.index("--checkpoint-every") + 1] = "0"
    whole = subprocess.run([sys.executable, "-m", "akdg", *arguments], cwd=workdir, capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr[-3000:]
    resumed, uninterrupted = weights(workdir / out), weights(workdir / "whole.pt")
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[key], uninterrupted[key]) for key in resumed), "resumed weights differ from the uninterrupted run's"


def test_a_hard_killed_dag_reruns_what_was_cut_short_and_training_resumes(tmp_path: Path):
    """SIGKILL of Snakemake's process group, twice: between a rule's two outputs, then mid-training.

    The documented recovery, ``snakemake --unlock`` then the same command with ``--rerun-incomplete``,
    redoes the cut rule and resumes the training job from its state, to the uninterrupted weights.
    """
    workdir = copy_project(tmp_path / "project")
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir()
    (plugin_dir / "akdg_die_between_outputs.py").write_text(DIE_BETWEEN_OUTPUTS)
    state = workdir / f"{STUDENT}.state"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(snakemake(*args), cwd=workdir, capture_output=True, text=True, timeout=300)

    # 1. Killed between prepare_data's outputs: the .npz is there, its .json is not, and Snakemake knows it.
    plugin_env = {**os.environ, "PYTHONPATH": str(plugin_dir)}
    with dag_in_background(workdir, STUDENT, "--config", "plugins=[akdg_die_between_outputs]", env=plugin_env) as job:
        assert job.wait(timeout=300) == -signal.SIGKILL
    assert (workdir / "results/data/digits.npz").exists() and not (workdir / "results/data/digits.json").exists()
    refused = run(STUDENT)
    assert refused.returncode != 0, "Snakemake took the half-finished prepare_data as complete"
    assert "--rerun-incomplete" in refused.stderr and "Incomplete files:\nresults/data/digits.npz" in refused.stderr

    # 2. The documented recovery redoes prepare_data; the DAG is killed again once the student has written a state.
    assert run("--unlock").returncode == 0  # the kill left Snakemake's lock behind
    with dag_in_background(workdir, STUDENT, "--rerun-incomplete", "--config", TRAINING) as job:
        command = kill_once_training_saved(job, state, STUDENT)
    assert (workdir / "results/data/digits.json").exists(), "--rerun-incomplete did not redo prepare_data"
    assert not (workdir / STUDENT).exists(), "the job finished before it was killed; raise STEPS"
    saved_step = torch.load(state, weights_only=True)["step"]
    assert 0 < saved_step < STEPS

    # 3. The same recovery resumes the student from its state and finishes it.
    assert run("--unlock").returncode == 0
    rerun = run(STUDENT, "--rerun-incomplete", "--config", TRAINING)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    log = (workdir / "results/logs/digits/train/dcgan-w4_vanilla_seed0.log").read_text()
    assert f"resuming from {STUDENT}.state at step {saved_step + 1} of {STEPS}" in log, log[-2000:]
    assert not state.exists()

    # 4. The very command Snakemake ran, uninterrupted, ends with the same weights.
    assert_uninterrupted_run_gives_the_weights(command, workdir, STUDENT)


# A full disk: /dev/full fails every write with ENOSPC. A link to it where atomic_write puts its
# temporary file sends the real write (whatever the writer: text, torch, numpy) into it.


def full_disk_at(target: Path) -> Path:
    """Make the next atomic write of ``target`` by this process hit ENOSPC; returns the temporary path it uses."""
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full (Linux)")
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.symlink_to("/dev/full")
    return tmp


def tiny_generator() -> tuple[torch.nn.Module, dict]:
    generator = build_generator({"arch": "dcgan", "width": 4}, resolution=16, channels=1, z_dim=8)
    return generator, {"generator": {"arch": "dcgan", "width": 4}, "resolution": 16, "channels": 1, "z_dim": 8, "training": {}}


WRITERS = {
    "json": lambda path: write_json(path, {"fid": 1.0}),
    "checkpoint": lambda path: checkpoint.save_generator(path, *tiny_generator()),
    "training state": lambda path: Resumable(path, "identity", 1).save(1, {"generator": tiny_generator()[0].state_dict()}),
    "prepared data": lambda path: datasets.prepare(DIGITS, path),  # numpy through a file handle
}


@pytest.mark.parametrize("writer", WRITERS)
def test_a_full_disk_is_named_and_leaves_the_previous_output(tmp_path: Path, writer: str):
    target = tmp_path / "out.bin"
    target.write_bytes(b"the previous, complete output")
    tmp = full_disk_at(target)
    with pytest.raises(AkdgError) as raised:
        WRITERS[writer](target)
    message = str(raised.value)
    assert f"could not write {target}: no space left on the device" in message
    assert f"free on the filesystem of {tmp_path}" in message and "larger disk" in message
    assert target.read_bytes() == b"the previous, complete output"
    assert not tmp.exists() and not tmp.is_symlink(), "the partial temporary file was left behind"


def test_an_exceeded_quota_is_named_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def half_then_quota(self: Path, text: str, *args, **kwargs) -> int:
        with open(self, "w") as handle:
            handle.write(text[: len(text) // 2])
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), str(self))

    monkeypatch.setattr(Path, "write_text", half_then_quota)
    with pytest.raises(AkdgError, match=r"could not write .*run\.json: the disk quota is exceeded \(.* free on the filesystem"):
        write_json(tmp_path / "run.json", {"fid": 1.0})
    assert list(tmp_path.iterdir()) == []


def test_other_write_errors_pass_through_unchanged(tmp_path: Path):
    with pytest.raises(OSError, match="Input/output error") as raised:
        with atomic_write(tmp_path / "out.json") as tmp:
            tmp.write_text("half")
            raise OSError(errno.EIO, os.strerror(errno.EIO))
    assert not isinstance(raised.value, AkdgError) and list(tmp_path.iterdir()) == []


def test_cli_on_a_full_disk_exits_2_with_the_message(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    """``akdg download-data``'s record on a full disk: exit status 2 and the sentence, not a traceback."""
    out = tmp_path / "digits.download.json"
    out.write_text("previous")
    full_disk_at(out)
    assert main(["download-data", "--spec", json.dumps(DIGITS), "--out", str(out)]) == 2
    assert f"could not write {out}: no space left on the device" in caplog.text
    assert out.read_text() == "previous" and [path.name for path in tmp_path.iterdir()] == [out.name]


# Missing, truncated or mismatched inputs, at every place a step reads one.


def test_a_student_whose_teacher_is_missing_exits_2_and_writes_nothing(tmp_path: Path, digits_npz: Path):
    arguments = [
        "--spec",
        json.dumps(SPEC),
        "--data",
        str(digits_npz),
        "--teacher",
        "nowhere.pt",
        "--checkpoint-every",
        "1",
        "--out",
        "student.pt",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "akdg", "train", "--threads", "1", *arguments], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 2
    assert "checkpoint nowhere.pt does not exist; train it first" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage", ["truncated", "z_dim", "resolution"])
def test_a_bad_teacher_checkpoint_is_named(tmp_path: Path, digits_npz: Path, damage: str):
    teacher = tmp_path / "teacher.pt"
    generator, meta = tiny_generator()
    if damage == "resolution":
        generator = build_generator(meta["generator"], resolution=32, channels=1, z_dim=8)
        meta["resolution"] = 32
    checkpoint.save_generator(teacher, generator, {**meta, "z_dim": 16} if damage == "z_dim" else meta)
    if damage == "truncated":
        teacher.write_bytes(teacher.read_bytes()[:200])
    expected = {
        "truncated": "is truncated or not a torch file",
        "z_dim": "has z_dim=16 but 8 is needed",
        "resolution": "has resolution=32 but 16",
    }
    with pytest.raises(AkdgError, match=rf"teacher\.pt {expected[damage]}"):
        steps.train_generator(SPEC, digits_npz, tmp_path / "student.pt", teacher=teacher, checkpoint_every=1)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["teacher.pt"]


def test_a_truncated_prepared_dataset_is_named(tmp_path: Path, digits_npz: Path):
    data = tmp_path / "digits.npz"
    data.write_bytes(digits_npz.read_bytes()[:5000])
    with pytest.raises(AkdgError, match=r"digits\.npz is not an \.npz file.*rerun 'akdg prepare-data'"):
        steps.train_generator(SPEC, data, tmp_path / "student.pt")


@pytest.fixture
def extractor_files(tmp_path: Path) -> Path:
    """An (untrained) classifier extractor's .pt and protocol .json, as train-extractor writes them."""
    weights = tmp_path / "extractor.pt"
    config = {"channels": 1, "num_classes": 10, "width": 8}
    save_torch({"format": CLASSIFIER_FORMAT, "config": config, "state_dict": Classifier(**config).state_dict()}, weights)
    write_json(weights.with_suffix(".json"), {"name": CLASSIFIER, "weights_sha256": sha256_file(weights), "test_accuracy": 0.1})
    return weights


def evaluate_rows(tmp_path: Path, data: Path, extractor: Path, generator_checkpoint: Path) -> None:
    cost = tmp_path / "cost.json"
    write_json(cost, {"dcgan-w4": {}})  # the figures measure-cost writes per generator label
    run = {"generator": {"arch": "dcgan", "width": 4}, "generator_label": "dcgan-w4", "seed": 0}
    rows = [{"kind": "trained", "checkpoint": str(generator_checkpoint), "out": str(tmp_path / "run.json"), "run": run}]
    options = {"num_samples": 100, "isc_splits": 2, "kid_subsets": 2, "kid_subset_size": 50, "batch_size": 50, "rng_seed": 0}
    steps.evaluate({"evaluation": options, "z_dim": 16, "rows": rows}, data, extractor, cost)


def test_evaluate_names_missing_data_and_a_generator_of_another_z_size(tmp_path: Path, digits_npz: Path, extractor_files: Path):
    generator, meta = tiny_generator()  # z_dim 8; the evaluation draws 16
    checkpoint.save_generator(tmp_path / "student.pt", generator, meta)
    with pytest.raises(AkdgError, match=r"nope\.npz does not exist; run 'akdg prepare-data'"):
        evaluate_rows(tmp_path, tmp_path / "nope.npz", extractor_files, tmp_path / "student.pt")
    with pytest.raises(AkdgError, match=r"student\.pt has z_dim=8 but 16 is needed"):
        evaluate_rows(tmp_path, digits_npz, extractor_files, tmp_path / "student.pt")
    with pytest.raises(AkdgError, match=r"absent\.pt does not exist; train it first"):
        evaluate_rows(tmp_path, digits_npz, extractor_files, tmp_path / "absent.pt")
    assert not (tmp_path / "run.json").exists()


def test_sample_grids_name_a_generator_of_another_z_size(tmp_path: Path):
    generator, meta = tiny_generator()
    checkpoint.save_generator(tmp_path / "student.pt", generator, meta)
    with pytest.raises(AkdgError, match=r"student\.pt has z_dim=8 but 16 is needed"):
        steps.sample_grid_images({"student": tmp_path / "student.pt"}, z_dim=16, count=4, seed=0)


def test_a_truncated_or_swapped_extractor_is_named(extractor_files: Path):
    extractor_files.write_bytes(extractor_files.read_bytes()[:300])
    with pytest.raises(AkdgError, match=r"extractor\.pt changed since .*extractor\.json was written.*train-extractor"):
        load_extractor(extractor_files)
    with pytest.raises(AkdgError, match=r"extractor\.pt is truncated or not a torch file.*delete it and retrain"):
        load_classifier(extractor_files)
    wide = {"channels": 1, "num_classes": 10, "width": 16}  # weights of another width under the recorded config
    save_torch(
        {"format": CLASSIFIER_FORMAT, "config": {**wide, "width": 8}, "state_dict": Classifier(**wide).state_dict()}, extractor_files
    )
    with pytest.raises(AkdgError, match=r"extractor\.pt are unreadable \(Error\(s\) in loading state_dict"):
        load_classifier(extractor_files)
