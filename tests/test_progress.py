"""Training and evaluation logs say how far a job is, how fast it goes and when it will end, as whole lines."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from akdg.architectures import build_generator
from akdg.metrics import fidelity_metrics
from akdg.progress import INTERVAL_VARIABLE, LoggedProgress, interval_seconds
from akdg.registry import AkdgError
from conftest import tiny_train_spec

NUMBER = r"[0-9.e+-]+"
TRAINING_LINE = re.compile(
    rf"train vanilla: (\d+)/30 steps \(\d+%\), (starting|{NUMBER} steps/s, {NUMBER} images/s, elapsed [0-9:]+(, ETA [0-9:]+)?)$"
)


def train_logged(tmp_path: Path, digits_npz: Path, interval: str) -> list[str]:
    """``akdg train`` as a Snakemake job runs it, stdout and stderr into a log file; returns the log's lines."""
    out, log = tmp_path / "g.pt", tmp_path / "train.log"
    spec = tiny_train_spec(steps=30, log_every=10)
    command = [
        sys.executable,
        "-m",
        "akdg",
        "train",
        "--spec",
        json.dumps(spec),
        "--data",
        str(digits_npz),
        "--threads",
        "1",
        "--out",
        str(out),
    ]
    with log.open("w") as sink:
        subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, INTERVAL_VARIABLE: interval}, check=True)
    text = log.read_text()
    assert "\r" not in text, "a log file got a redrawn bar"
    return text.splitlines()


def progress_lines(lines: list[str]) -> list[re.Match]:
    return [match for line in lines if (match := TRAINING_LINE.search(line))]


def test_a_training_log_shows_step_of_total_rate_and_eta(tmp_path: Path, digits_npz: Path) -> None:
    lines = train_logged(tmp_path, digits_npz, interval="0")
    progress = progress_lines(lines)
    steps = [int(match.group(1)) for match in progress]
    assert steps[0] == 0 and steps[-1] == 30 and len(steps) > 2, lines
    assert any(0 < step < 30 and match.group(3) for step, match in zip(steps, progress)), "no line in the middle with an ETA"
    assert sum("step 10/30:" in line for line in lines) == 1, "the loss line every log_every steps is gone"


def test_progress_lines_are_throttled_to_the_interval(tmp_path: Path, digits_npz: Path) -> None:
    lines = train_logged(tmp_path, digits_npz, interval="600")
    assert [int(match.group(1)) for match in progress_lines(lines)] == [0, 30], lines  # the start and the end only


def test_an_evaluation_logs_the_images_it_generates(digits, extractor, caplog: pytest.LogCaptureFixture, monkeypatch) -> None:
    monkeypatch.setenv(INTERVAL_VARIABLE, "0")
    options = {"num_samples": 200, "isc_splits": 2, "kid_subsets": 2, "kid_subset_size": 50, "batch_size": 50, "rng_seed": 0}
    torch.manual_seed(0)
    generator = build_generator({"arch": "dcgan", "width": 4}, resolution=16, channels=1, z_dim=8).eval()
    with caplog.at_level(logging.INFO, logger="akdg.metrics"):
        fidelity_metrics(generator, digits.x_train, z_dim=8, extractor_weights=extractor, options=options, label="the tiny one")
    generated = [
        record.getMessage() for record in caplog.records if record.getMessage().startswith("generate and extract features of the tiny one")
    ]
    counts = [int(re.search(r": (\d+)/200 images", message).group(1)) for message in generated]
    assert counts == [50, 100, 150, 200], generated  # one line per batch at interval 0, counted from the first batch
    assert re.search(rf"{NUMBER} images/s, elapsed [0-9:]+, ETA [0-9:]+$", generated[1]), generated
    reference = [record.getMessage() for record in caplog.records if record.getMessage().startswith("reference features for the tiny one")]
    assert reference and f"{len(digits.x_train)}/{len(digits.x_train)} images (100%)" in reference[-1], reference


def test_a_bad_interval_is_refused_in_a_sentence(monkeypatch) -> None:
    monkeypatch.setenv(INTERVAL_VARIABLE, "often")
    with pytest.raises(AkdgError, match=f"{INTERVAL_VARIABLE}='often' is not a number of seconds"):
        interval_seconds()


def test_a_resumed_loop_counts_from_where_it_resumed(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("akdg.test_progress")
    with caplog.at_level(logging.INFO, logger=logger.name):
        for _ in LoggedProgress(range(41, 51), total=50, initial=40, desc="train", unit="steps", logger=logger, interval=600):
            pass
    assert [record.getMessage().split(" (")[0] for record in caplog.records] == ["train: 40/50 steps", "train: 50/50 steps"]
