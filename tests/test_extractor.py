"""The classifier feature extractor as a metric: pinned weights, live features, sensitivity to blur, thread independence."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torchvision.transforms.functional import gaussian_blur

from akdg import datasets, metrics
from akdg.config import validate_config
from akdg.extractor_pins import PINNED, pinned_weights, resolve_source
from akdg.feature_extractor_classifier import load_classifier, train_classifier
from akdg.feature_extractors import CLASSIFIER, load_extractor
from akdg.images import to_model_range
from akdg.io import read_json, sha256_file
from akdg.registry import AkdgError
from conftest import REPO, copy_project

OPTIONS = {"num_samples": 360, "isc_splits": 10, "kid_subsets": 20, "kid_subset_size": 100, "batch_size": 250, "rng_seed": 2020}
DEFAULT_CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def pinned_digits() -> Path:
    found = pinned_weights("digits", 16)
    assert found is not None, "the digits classifier at 16 px must ship with the package"
    return found[0]


def fetched(tmp_path: Path) -> Path:
    """The pinned classifier as the DAG's fetch_extractor leaves it: a copy and its protocol JSON."""
    out = tmp_path / "extractor.json"
    from akdg.steps import fetch_extractor as fetch_step

    fetch_step({"feature_extractor": CLASSIFIER, "inception_weights": None, "pinned": {"dataset": "digits", "resolution": 16}}, out)
    return out


def test_the_shipped_weights_are_the_pinned_bytes() -> None:
    weights, expected = pinned_weights("digits", 16)
    assert sha256_file(weights) == expected == read_json(weights.with_suffix(".json"))["weights_sha256"]


def test_fetch_copies_the_pinned_classifier_and_its_protocol_says_how_it_was_made(tmp_path: Path) -> None:
    out = fetched(tmp_path)
    protocol = read_json(out)
    assert protocol["source"] == "pinned" and protocol["weights_sha256"] == PINNED["digits"][16]
    assert protocol["trained_on"]["dataset"] == "digits" and protocol["training"]["epochs"] >= 1 and protocol["test_accuracy"] > 0.9
    loaded = load_extractor(out)
    assert loaded.protocol["source"] == "pinned" and loaded.weights_sha256 == PINNED["digits"][16]


def test_a_changed_pinned_copy_is_refused_naming_both_hashes(tmp_path: Path) -> None:
    out = fetched(tmp_path)
    weights = out.with_suffix(".pt")
    model = load_classifier(weights)
    with torch.no_grad():
        model.logits.bias.add_(1.0)
    torch.save(
        {
            "format": torch.load(weights, weights_only=True)["format"],
            "config": torch.load(weights, weights_only=True)["config"],
            "state_dict": model.state_dict(),
        },
        weights,
    )
    protocol = read_json(out)
    protocol["weights_sha256"] = sha256_file(weights)  # even a protocol rewritten to match the new bytes does not help
    out.write_text(__import__("json").dumps(protocol))
    with pytest.raises(
        AkdgError, match=rf"sha256 {sha256_file(weights)[:16]}…, not the pinned {PINNED['digits'][16][:16]}…; reinstall akdg"
    ):
        load_extractor(out)


def test_auto_uses_the_pinned_classifier_where_one_ships_and_trains_elsewhere() -> None:
    config = validate_config(copy.deepcopy(DEFAULT_CONFIG))
    assert config["extractor"]["source"] == "auto" and resolve_source(config) == "pinned"
    at_32 = copy.deepcopy(DEFAULT_CONFIG)
    at_32["dataset"]["resolution"] = 32
    assert resolve_source(validate_config(at_32)) == "train"
    at_32["extractor"]["source"] = "pinned"
    with pytest.raises(AkdgError, match=r"no pinned classifier ships for dataset 'digits' at 32 px .*set extractor.source: train"):
        validate_config(at_32)


def classifier_features(weights: Path, images: np.ndarray) -> torch.Tensor:
    model = load_classifier(weights)
    with torch.no_grad():
        return model.features_and_logits(to_model_range(torch.from_numpy(images)))[0]


def ten_class_bars(count: int, seed: int) -> datasets.ImageSplits:
    """A labelled 10-class dataset unlike digits: class k is a bright bar at row 1 + k, on noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=count).astype(np.int64)
    images = rng.integers(0, 60, size=(count, 1, 16, 16)).astype(np.uint8)
    for index, label in enumerate(labels):
        images[index, 0, 1 + label, 2:14] = 230
    split = count * 4 // 5
    protocol = {"name": "bars", "content_sha256": datasets.content_hash(images)}
    return datasets.ImageSplits(images[:split], images[split:], labels[:split], labels[split:], protocol)


def test_no_feature_unit_is_dead_on_the_reference_set(digits: datasets.ImageSplits, tmp_path: Path) -> None:
    """A unit constant over the reference set makes FID's covariance singular: every unit must vary."""
    spread = classifier_features(pinned_digits(), digits.x_train).std(dim=0)
    assert spread.min() > 1e-3 * spread.max(), f"pinned digits classifier: {int((spread <= 1e-3 * spread.max()).sum())} dead units"
    bars = ten_class_bars(1000, seed=0)
    weights = tmp_path / "bars.pt"
    train_classifier(bars, {"epochs": 3, "width": 64, "lr": 1e-3, "batch_size": 64, "seed": 0}, weights)
    spread = classifier_features(weights, bars.x_train).std(dim=0)
    assert spread.min() > 1e-3 * spread.max(), f"classifier trained on bars: {int((spread <= 1e-3 * spread.max()).sum())} dead units"


def test_features_register_blur(digits: datasets.ImageSplits) -> None:
    """The test split blurred with a Gaussian of sigma = 1 px scores at least 5x the FID of the test split itself."""
    blurred = (
        gaussian_blur(torch.from_numpy(digits.x_test).float(), kernel_size=[7, 7], sigma=[1.0, 1.0])
        .round()
        .clamp(0, 255)
        .to(torch.uint8)
        .numpy()
    )
    sharp = metrics.fidelity_metrics(digits.x_test, digits.x_train, z_dim=1, extractor_weights=pinned_digits(), options=OPTIONS)["fid"]
    soft = metrics.fidelity_metrics(blurred, digits.x_train, z_dim=1, extractor_weights=pinned_digits(), options=OPTIONS)["fid"]
    assert soft >= 5 * sharp, f"FID of the blurred test split {soft:.2f} is not 5x that of the test split {sharp:.2f}"


def test_scores_do_not_depend_on_the_thread_count(digits: datasets.ImageSplits) -> None:
    """The table's cells (2 decimals for IS and FID, 4 for KID) are the same with 1 and 2 threads."""
    before = torch.get_num_threads()
    cells = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            scores = metrics.fidelity_metrics(digits.x_test, digits.x_train, z_dim=1, extractor_weights=pinned_digits(), options=OPTIONS)
            cells.append((f"{scores['is_mean']:.2f}", f"{scores['fid']:.2f}", f"{scores['kid_mean']:.4f}"))
    finally:
        torch.set_num_threads(before)
    assert cells[0] == cells[1]


def test_the_committed_default_table_was_scored_with_the_pinned_classifier() -> None:
    table = (REPO / "results" / "tables" / "digits.md").read_text()
    assert f"weights sha256 {PINNED['digits'][16][:16]}…" in table and "pinned" in table


@pytest.mark.slow
def test_the_default_dag_fetches_the_pinned_classifier(tmp_path: Path) -> None:
    """fetch_extractor as the default config plans it: the copy and protocol land in the outdir, nothing is trained."""
    project = copy_project(tmp_path / "project")
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", "results/models/digits/extractor.json"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "train_extractor" not in done.stderr
    extractor = load_extractor(project / "results" / "models" / "digits" / "extractor.json")
    assert extractor.protocol["source"] == "pinned" and extractor.weights_sha256 == PINNED["digits"][16]
