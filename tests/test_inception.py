"""The Inception-v3 protocol end to end, offline: a stand-in for torch-fidelity's weights, real everything else.

The stand-in is torch-fidelity's own Inception module with its random initialisation kept, saved as a
state dict, so torch-fidelity loads it strictly exactly as it loads the real file: only the weights
differ from a real run. Inception runs at 299x299 on the CPU (0.1 to 1 s per image here, depending on
the load), so the images are few: 8 train, 4 test, 8 generated.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torch_fidelity.utils
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

from akdg import cli, datasets, feature_extractors, metrics
from akdg.feature_extractors import (
    INCEPTION,
    INCEPTION_SHA256,
    INCEPTION_URL,
    default_inception_weights_path,
    fetch_extractor,
    load_extractor,
)
from akdg.io import read_json, write_json
from akdg.registry import AkdgError
from akdg.tables import extractor_origin
from conftest import standin_weights

TRAIN, TEST, GENERATED = 8, 4, 8
OPTIONS = {
    "num_samples": GENERATED,
    "isc_splits": 2,
    "kid_subsets": 2,
    "kid_subset_size": 4,
    "batch_size": 8,
    "rng_seed": 2020,
    "feature_extractor": INCEPTION,
    "allow_nonstandard_inception": True,  # the stand-in is not torch-fidelity's file
}
ROW_RUN = {
    "dataset": "tiny-digits",
    "role": "student",
    "generator_label": "dcgan-w4",
    "generator": {"arch": "dcgan", "width": 4},
    "method": "untrained",
    "seed": 0,
}


@datasets.DATASETS.register("tiny-digits")
def tiny_digits(options: dict) -> datasets.ImageSplits:
    """A slice of the real 1-channel digits; ``offset`` picks which train images (a change of content)."""
    full = datasets.DATASETS.get("digits")({**options, "test_fraction": 0.2, "split_seed": 0})
    train = slice(options["offset"], options["offset"] + TRAIN)
    return datasets.ImageSplits(
        full.x_train[train], full.x_test[:TEST], full.y_train[train], full.y_test[:TEST], {"source": "digits slice"}
    )


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return standin_weights(tmp_path_factory.mktemp("inception") / "standin-inception.pth", seed=0)


def prepare(folder: Path, offset: int) -> Path:
    out = folder / f"tiny{offset}.npz"
    datasets.prepare({"name": "tiny-digits", "resolution": 16, "offset": offset}, out)
    return out


class FeatureSpy:
    """Counts torch-fidelity's feature computations: a cache hit computes none for the reference."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.datasets: list[int] = []
        self.generated: list[int] = []
        from_dataset, from_model = (
            torch_fidelity.utils.get_featuresdict_from_dataset,
            torch_fidelity.utils.get_featuresdict_from_generative_model,
        )

        def dataset_spy(dataset, *args, **kwargs):
            self.datasets.append(len(dataset))
            return from_dataset(dataset, *args, **kwargs)

        def model_spy(gen_model, feat_extractor, num_samples, *args, **kwargs):
            self.generated.append(num_samples)
            return from_model(gen_model, feat_extractor, num_samples, *args, **kwargs)

        monkeypatch.setattr(torch_fidelity.utils, "get_featuresdict_from_dataset", dataset_spy)
        monkeypatch.setattr(torch_fidelity.utils, "get_featuresdict_from_generative_model", model_spy)

    def reset(self) -> None:
        self.datasets.clear()
        self.generated.clear()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def akdg(*argv: str) -> None:
    assert cli.main([str(arg) for arg in argv]) == 0


def evaluate(tmp_path: Path, data: Path, extractor: Path, name: str, cache: Path | None) -> dict:
    cost = tmp_path / "cost.json"
    write_json(cost, {"dcgan-w4": {"params": 1}})
    out = tmp_path / f"{name}.json"
    spec = {"evaluation": OPTIONS, "z_dim": 8, "rows": [{"kind": "untrained", "out": str(out), "run": ROW_RUN}]}
    akdg(
        "evaluate",
        "--spec",
        json.dumps(spec),
        "--data",
        data,
        "--extractor",
        extractor,
        "--cost",
        cost,
        *(["--reference-cache", cache] if cache else []),
    )
    return read_json(out)


@pytest.mark.slow
def test_inception_protocol_end_to_end_with_a_reference_cache_keyed_by_content(
    tmp_path: Path, weights: Path, monkeypatch: pytest.MonkeyPatch
):
    data = prepare(tmp_path, offset=0)
    extractor, cache, stats = tmp_path / "extractor.json", tmp_path / "cache", tmp_path / "stats.json"
    akdg("fetch-extractor", "--spec", json.dumps({**OPTIONS, "inception_weights": str(weights)}), "--out", extractor)
    assert read_json(extractor)["weights_sha256"] == sha256(weights)
    spy = FeatureSpy(monkeypatch)

    akdg("reference-stats", "--spec", json.dumps(OPTIONS), "--data", data, "--extractor", extractor, "--cache-dir", cache, "--out", stats)
    filled = read_json(stats)
    assert spy.datasets == [TRAIN] and not filled["already_filled"]
    assert filled["fields"]["weights_sha256"] == sha256(weights) and filled["fields"]["channels"] == 1
    assert filled["files"] == {name: sha256(cache / name) for name in os.listdir(cache)}  # 2 feature layers + FID stats
    assert len(filled["files"]) == 3

    spy.reset()
    cached = evaluate(tmp_path, data, extractor, "cached", cache)
    assert spy.datasets == [] and spy.generated == [GENERATED]  # the reference came from the cache
    assert filled["files"] == {name: sha256(cache / name) for name in os.listdir(cache)}  # read, not rewritten
    protocol = cached["protocol"]
    assert protocol["reference_cache"]["hit"] and protocol["reference_cache"]["key"] == filled["key"]
    assert protocol["feature_extractor"]["weights_sha256"] == sha256(weights)
    assert protocol["feature_extractor"]["features"] == {"is": "logits_unbiased", "fid": "2048", "kid": "2048", "prc": "2048"}
    assert protocol["metrics_device"] == "cpu"
    assert protocol["feature_extractor"]["weights_check"].startswith("non-standard Inception weights")
    assert "non-standard Inception weights" in extractor_origin(protocol["feature_extractor"])  # the table's extractor line

    spy.reset()
    uncached = evaluate(tmp_path, data, extractor, "uncached", None)
    assert spy.datasets == [TRAIN] and uncached["protocol"]["reference_cache"] is None
    assert uncached["metrics"] == cached["metrics"]  # same inputs, same numbers, from the cache or not
    assert cached["metrics"]["fid"] > 0 and np.isfinite(list(cached["metrics"].values())).all()

    spy.reset()  # new pixels: a new key, computed afresh; the first entry stays as it was
    other = prepare(tmp_path, offset=TRAIN)
    akdg(
        "reference-stats",
        "--spec",
        json.dumps(OPTIONS),
        "--data",
        other,
        "--extractor",
        extractor,
        "--cache-dir",
        cache,
        "--out",
        tmp_path / "other.json",
    )
    assert spy.datasets == [TRAIN] and read_json(tmp_path / "other.json")["key"] != filled["key"]
    assert len(os.listdir(cache)) == 6


def test_changed_weights_give_another_key_and_missing_weights_say_where_to_get_them(
    tmp_path: Path, weights: Path, caplog: pytest.LogCaptureFixture
):
    splits = datasets.load_prepared(prepare(tmp_path, offset=0))
    changed = tmp_path / "changed.pth"
    state = torch.load(weights, weights_only=True)
    state["fc.bias"] += 1.0
    torch.save(state, changed)
    keys = []
    for path in (weights, changed):
        link = tmp_path / "links" / path.name  # a hard link, so deleting it later leaves the fixture alone
        link.parent.mkdir(exist_ok=True)
        os.link(path, link)
        out = tmp_path / f"{path.stem}.json"
        akdg("fetch-extractor", "--spec", json.dumps({**OPTIONS, "inception_weights": str(link)}), "--out", out)
        extractor = load_extractor(out, allow_nonstandard_inception=True)
        keys.append(metrics.reference_cache(tmp_path / "cache", splits, extractor.name, extractor.weights_sha256).key)
    assert keys[0] != keys[1]

    link.unlink()  # the weights a protocol names disappear before evaluation
    with pytest.raises(AkdgError, match=f"{link}.*do not exist.*{INCEPTION_URL}"):
        load_extractor(out, allow_nonstandard_inception=True)
    with caplog.at_level(logging.ERROR):
        assert cli.main(["fetch-extractor", "--spec", json.dumps({**OPTIONS, "inception_weights": str(link)}), "--out", str(out)]) == 2
    assert str(link) in caplog.text and INCEPTION_URL in caplog.text


def test_null_weights_use_torch_fidelitys_own_location(tmp_path: Path, weights: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(*args: object, **kwargs: object) -> None:
        raise URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(AkdgError, match=f"could not download.*no network.*{INCEPTION_URL}"):
        fetch_extractor({"feature_extractor": INCEPTION, "inception_weights": None})

    default = default_inception_weights_path()
    default.parent.mkdir(parents=True)
    os.link(weights, default)
    with pytest.raises(AkdgError, match="not the sha256 .* of torch-fidelity's official file"):  # the default location is checked too
        fetch_extractor({"feature_extractor": INCEPTION, "inception_weights": None})
    protocol = fetch_extractor({"feature_extractor": INCEPTION, "inception_weights": None, "allow_nonstandard_inception": True})
    assert protocol["weights"] == str(default) and protocol["source"] == INCEPTION_URL
    # torch-fidelity, given no path, loads the very same file (no download: it is already there)
    model = FeatureExtractorInceptionV3(INCEPTION, ["2048"])
    assert torch.equal(model.fc.bias, torch.load(weights, weights_only=True)["fc.bias"])


def test_weights_other_than_torch_fidelitys_file_are_refused_naming_both_hashes_unless_allowed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    small = tmp_path / "small.pth"
    torch.save({"fc.bias": torch.zeros(3)}, small)  # a readable state dict, just not the official bytes
    spec = {"feature_extractor": INCEPTION, "inception_weights": str(small)}
    out = tmp_path / "extractor.json"
    with caplog.at_level(logging.ERROR):
        assert cli.main(["fetch-extractor", "--spec", json.dumps(spec), "--out", str(out)]) == 2
    assert sha256(small) in caplog.text and INCEPTION_SHA256 in caplog.text
    assert "evaluation.allow_nonstandard_inception: true" in caplog.text and not out.exists()

    akdg("fetch-extractor", "--spec", json.dumps({**spec, "allow_nonstandard_inception": True}), "--out", out)
    recorded = read_json(out)
    assert recorded["weights_sha256"] == sha256(small) and recorded["weights_check"].startswith("non-standard Inception weights")
    extractor = load_extractor(out, allow_nonstandard_inception=True)
    assert "non-standard Inception weights" in extractor.protocol["weights_check"]
    with pytest.raises(AkdgError, match=f"sha256 {sha256(small)}, not the sha256 {INCEPTION_SHA256}"):
        load_extractor(out)  # evaluation checks again: an extractor fetched with the switch is refused without it

    monkeypatch.setattr(feature_extractors, "INCEPTION_SHA256", sha256(small))  # as if these were the official bytes
    assert fetch_extractor(spec)["weights_check"].startswith("torch-fidelity's official weights")


def test_the_pinned_sha256_carries_the_prefix_in_torch_fidelitys_file_name():
    """torch.hub names a checked file <name>-<first digits of its sha256>.<ext>: the pinned digest must begin with them."""
    prefix = Path(INCEPTION_URL).stem.rsplit("-", 1)[1]
    assert len(prefix) == 8 and INCEPTION_SHA256.startswith(prefix) and len(INCEPTION_SHA256) == 64
