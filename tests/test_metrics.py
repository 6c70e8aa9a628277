"""The metrics go through torch-fidelity and agree with an independent computation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import scipy.spatial
import torch

from akdg.architectures import build_generator
from akdg.feature_extractor_classifier import FORMAT as CLASSIFIER_FORMAT
from akdg.feature_extractor_classifier import Classifier, load_classifier
from akdg.feature_extractors import EXTRACTORS, feature_layers
from akdg.images import to_model_range
from akdg.metrics import fidelity_metrics

OPTIONS = {"num_samples": 300, "isc_splits": 5, "kid_subsets": 10, "kid_subset_size": 100, "batch_size": 100, "rng_seed": 2020}


def add_noise(images: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    noisy = images.astype(np.float64) + np.random.default_rng(seed).normal(0.0, sigma, images.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


@pytest.mark.slow
def test_fid_of_a_set_against_itself_is_zero_and_grows_with_noise(digits, extractor):
    images = digits.x_train[:500]
    fids = [
        fidelity_metrics(add_noise(images, sigma) if sigma else images, images, z_dim=1, extractor_weights=extractor, options=OPTIONS)[
            "fid"
        ]
        for sigma in (0, 20, 60, 120)
    ]
    assert abs(fids[0]) < 1e-3
    assert fids[0] < fids[1] < fids[2] < fids[3], fids


def frechet_distance_numpy(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID from its definition (Heusel et al. 2017), with scipy's matrix square root."""
    mu_a, mu_b = features_a.mean(0), features_b.mean(0)
    sigma_a, sigma_b = np.cov(features_a, rowvar=False), np.cov(features_b, rowvar=False)
    covmean = scipy.linalg.sqrtm(sigma_a @ sigma_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(sigma_a + sigma_b - 2 * covmean))


def test_torch_fidelity_fid_matches_numpy_scipy_on_the_same_features(digits, extractor):
    model = load_classifier(extractor)
    with torch.no_grad():
        features_test = model.features_and_logits(to_model_range(digits.x_test))[0].double().numpy()
        features_train = model.features_and_logits(to_model_range(digits.x_train))[0].double().numpy()
    expected = frechet_distance_numpy(features_test, features_train)
    got = fidelity_metrics(digits.x_test, digits.x_train, z_dim=1, extractor_weights=extractor, options=OPTIONS)["fid"]
    assert expected > 0.1  # the two splits differ, so the check is not 0 == 0
    assert got == pytest.approx(expected, rel=1e-3)


def precision_recall_numpy(generated: np.ndarray, real: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall from their definition (Kynkäänniemi et al. 2019): a sample is covered by the
    other set when it lies within some sample's distance to that sample's k-th nearest neighbour in its own set."""

    def radii(features: np.ndarray) -> np.ndarray:
        return np.sort(scipy.spatial.distance.cdist(features, features), axis=1)[:, k]  # column 0 is the sample itself

    covered_generated = (scipy.spatial.distance.cdist(generated, real) <= radii(real)[None, :]).any(1)
    covered_real = (scipy.spatial.distance.cdist(real, generated) <= radii(generated)[None, :]).any(1)
    return float(covered_generated.mean()), float(covered_real.mean())


def test_precision_and_recall_match_their_definition_on_the_same_features(digits, extractor):
    model = load_classifier(extractor)
    with torch.no_grad():
        features_test = model.features_and_logits(to_model_range(digits.x_test))[0].double().numpy()
        features_train = model.features_and_logits(to_model_range(digits.x_train))[0].double().numpy()
    precision, recall = precision_recall_numpy(features_test, features_train)
    scores = fidelity_metrics(digits.x_test, digits.x_train, z_dim=1, extractor_weights=extractor, options=OPTIONS)
    assert 0.5 < precision < 1 and 0.5 < recall < 1  # held-out digits: mostly, not all, covered
    assert scores["precision"] == pytest.approx(precision, abs=2 / len(digits.x_test))  # float32 cdist ties at the radius
    assert scores["recall"] == pytest.approx(recall, abs=2 / len(digits.x_train))


@pytest.mark.parametrize("name", EXTRACTORS)
def test_precision_and_recall_read_the_fid_features(name: str):
    layers = feature_layers(name)
    assert layers["prc"] == layers["fid"]


class ConstantGenerator(torch.nn.Module):
    """Every z gives the same image: total mode collapse."""

    def __init__(self, image: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("image", image)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.image.expand(len(z), *self.image.shape)


def test_a_collapsed_generator_keeps_some_precision_but_has_no_recall(digits, extractor):
    one_digit = to_model_range(digits.x_test[:1])[0]
    scores = fidelity_metrics(ConstantGenerator(one_digit), digits.x_train, z_dim=4, extractor_weights=extractor, options=OPTIONS)
    real = fidelity_metrics(digits.x_test, digits.x_train, z_dim=4, extractor_weights=extractor, options=OPTIONS)
    assert 0 <= scores["precision"] <= 1 and 0 <= scores["recall"] <= 1
    assert scores["recall"] < 0.01 < real["recall"] - 0.5  # one image's ball has radius 0: it covers no real digit
    assert scores["precision"] == pytest.approx(1.0)  # a real digit: inside the real manifold


def test_inception_score_is_one_when_the_classifier_output_is_constant(digits, tmp_path: Path):
    model = Classifier(channels=1, num_classes=10, width=16)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.logits.bias.copy_(torch.linspace(-2, 2, 10))  # constant, non-uniform prediction
    path = tmp_path / "constant.pt"
    torch.save(
        {"format": CLASSIFIER_FORMAT, "config": {"channels": 1, "num_classes": 10, "width": 16}, "state_dict": model.state_dict()}, path
    )
    scores = fidelity_metrics(digits.x_test, digits.x_train, z_dim=1, extractor_weights=path, options=OPTIONS)
    assert scores["is_mean"] == pytest.approx(1.0, abs=1e-9)


def test_inception_score_of_real_digits_is_well_above_one(digits, extractor):
    scores = fidelity_metrics(digits.x_test, digits.x_train, z_dim=1, extractor_weights=extractor, options=OPTIONS)
    assert scores["is_mean"] > 5.0  # 10 balanced classes, confidently recognised


@pytest.mark.slow
def test_generator_in_memory_path_is_deterministic_and_scores_worse_than_real(digits, extractor):
    torch.manual_seed(0)
    generator = build_generator({"arch": "dcgan", "width": 8}, resolution=16, channels=1, z_dim=16).eval()
    first = fidelity_metrics(generator, digits.x_train, z_dim=16, extractor_weights=extractor, options=OPTIONS)
    second = fidelity_metrics(generator, digits.x_train, z_dim=16, extractor_weights=extractor, options=OPTIONS)
    real = fidelity_metrics(digits.x_test, digits.x_train, z_dim=16, extractor_weights=extractor, options=OPTIONS)
    assert first == second
    assert first["fid"] > 10 * real["fid"]


def test_reference_cache_key_changes_with_each_thing_the_reference_features_depend_on(digits, monkeypatch):
    from dataclasses import replace

    import torch_fidelity

    from akdg import metrics

    def key(splits=digits, extractor="akdg-classifier", weights="a" * 64, split="train") -> str:
        return metrics.reference_cache("cache", splits, extractor, weights, split).key

    base = key()
    other_content = replace(digits, protocol={**digits.protocol, "content_sha256": "0" * 64})
    variants = [
        key(splits=other_content),
        key(split="test"),
        key(splits=replace(digits, x_train=digits.x_train[:-1])),
        key(splits=replace(digits, x_train=digits.x_train[..., :8, :8])),
        key(splits=replace(digits, x_train=np.repeat(digits.x_train, 3, axis=1))),
        key(extractor="inception-v3-compat"),
        key(weights="b" * 64),
    ]
    assert base == metrics.reference_cache("elsewhere", digits, "akdg-classifier", "a" * 64).key  # the folder is no part of it
    monkeypatch.setattr(torch_fidelity, "__version__", "9.9.9")
    variants.append(key())
    assert len({base, *variants}) == len(variants) + 1, variants


def test_classifier_reference_features_are_read_from_the_cache_not_recomputed(digits, extractor, tmp_path: Path, monkeypatch):
    import torch_fidelity.utils

    from akdg import metrics
    from akdg.io import sha256_file

    cache = metrics.reference_cache(tmp_path, digits, "akdg-classifier", sha256_file(extractor))
    files = metrics.fill_reference_cache(
        digits.x_train, extractor="akdg-classifier", extractor_weights=extractor, batch_size=100, cache=cache
    )
    assert sorted(path.name for path in files) == sorted(path.name for path in tmp_path.iterdir())
    computed = []
    original = torch_fidelity.utils.get_featuresdict_from_dataset

    def spy(input, *args, **kwargs):
        computed.append(len(input))
        return original(input, *args, **kwargs)

    monkeypatch.setattr(torch_fidelity.utils, "get_featuresdict_from_dataset", spy)
    cached = fidelity_metrics(digits.x_test, digits.x_train, z_dim=1, extractor_weights=extractor, options=OPTIONS, cache=cache)
    assert computed == [len(digits.x_test)]  # only the candidate: the reference came from the cache
    fresh = fidelity_metrics(digits.x_test, digits.x_train, z_dim=1, extractor_weights=extractor, options=OPTIONS)
    assert computed == [len(digits.x_test), len(digits.x_test), len(digits.x_train)]
    assert cached == fresh


def test_grey_images_are_repeated_to_rgb_for_inception_only(digits):
    from akdg.feature_extractors import input_channels
    from akdg.metrics import UInt8Generator, UInt8Images
    from akdg.registry import AkdgError

    assert input_channels("inception-v3-compat", 1) == 3 and input_channels("akdg-classifier", 1) == 1
    rgb = UInt8Images(digits.x_train[:4], channels=3)[2]
    assert rgb.shape == (3, 16, 16) and all(torch.equal(rgb[c], torch.from_numpy(digits.x_train[2, 0])) for c in range(3))
    generator = build_generator({"arch": "dcgan", "width": 4}, resolution=16, channels=1, z_dim=8).eval()
    with torch.no_grad():
        images = UInt8Generator(generator, channels=3)(torch.randn(2, 8))
    assert images.dtype == torch.uint8 and images.shape == (2, 3, 16, 16) and torch.equal(images[:, 0], images[:, 2])
    with pytest.raises(AkdgError, match="1- or 3-channel"):
        input_channels("inception-v3-compat", 2)
