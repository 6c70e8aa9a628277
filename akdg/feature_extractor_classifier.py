"""A small domain classifier used as torch-fidelity's feature extractor where Inception is meaningless.

Inception-v3 on 16x16 grey digits measures resize artefacts, not digits. Instead a CNN trained on
the dataset's train split is registered with torch-fidelity, so IS, FID and KID go through exactly
the code paths Inception uses: only the features differ. Like Inception's, its weights must not
change under the user: where the package ships a pinned classifier for the dataset (see
:mod:`akdg.extractor_pins`) that one is used, its SHA-256 checked on every load; otherwise the DAG trains one
and its protocol says so.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch_fidelity
from torch_fidelity.feature_extractor_base import FeatureExtractorBase

from akdg.datasets import ImageSplits
from akdg.extractor_pins import UNLABELLED
from akdg.images import to_model_range
from akdg.io import load_torch, save_torch
from akdg.progress import LoggedProgress
from akdg.registry import AkdgError

log = logging.getLogger(__name__)

NAME = "akdg-classifier"
FORMAT = "akdg-classifier-v2"  # v2: FID/KID features taken before the ReLU (v1's post-ReLU units could be dead)


class Classifier(nn.Module):
    """Two conv stages and a ``width``-unit penultimate layer (the FID/KID features); logits for IS.

    The features are the penultimate layer's pre-activations: after a ReLU, units that are negative on
    every reference image are constant zeros, and FID then runs on a singular covariance.
    """

    def __init__(self, channels: int, num_classes: int, width: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
        )
        self.penultimate = nn.Linear(64 * 4 * 4, width)
        self.logits = nn.Linear(width, num_classes)

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.penultimate(self.conv(x).flatten(1))
        return features, self.logits(F.relu(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(x)[1]


def load_classifier(path: Path | str) -> Classifier:
    payload = load_torch(path, "feature extractor weights file", "run 'akdg train-extractor' first", "delete it and retrain")
    try:
        if payload.get("format") != FORMAT:
            raise ValueError(f"format {payload.get('format')!r}, expected {FORMAT!r}")
        model = Classifier(**payload["config"])
        model.load_state_dict(payload["state_dict"])
    except Exception as error:  # any failure here means the file is not the classifier we wrote
        raise AkdgError(f"feature extractor weights {path} are unreadable ({error}); delete them and retrain") from None
    return model.eval()


class ClassifierFeatureExtractor(FeatureExtractorBase):
    """torch-fidelity adapter: uint8 NCHW in, (features, logits) out."""

    def __init__(self, name: str, features_list: list[str], feature_extractor_weights_path: str | None = None, **kwargs: Any):
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            raise AkdgError(f"feature extractor {NAME!r} needs 'feature_extractor_weights_path' (its trained weights)")
        self.model = load_classifier(feature_extractor_weights_path)
        self.requires_grad_(False)

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return ("features", "logits")

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return {"isc": "logits", "fid": "features", "kid": "features", "prc": "features"}[metric]

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    @staticmethod
    def get_dummy_input_for_compile() -> torch.Tensor:
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if images.dtype != torch.uint8:
            raise AkdgError(f"{NAME} expects uint8 images, got {images.dtype}")
        features, logits = self.model.features_and_logits(to_model_range(images))
        provided = {"features": features, "logits": logits}
        return tuple(provided[name] for name in self.features_list)


def register_with_torch_fidelity() -> None:
    """Idempotent: torch-fidelity refuses a second registration under one name."""
    if NAME not in torch_fidelity.registry.FEATURE_EXTRACTORS_REGISTRY:
        torch_fidelity.register_feature_extractor(NAME, ClassifierFeatureExtractor)


def train_classifier(splits: ImageSplits, options: dict[str, Any], out: Path) -> dict[str, Any]:
    """Train on the train split, report test accuracy, save weights atomically; returns the protocol."""
    if splits.y_train.size == 0:
        raise AkdgError(UNLABELLED.format(dataset=splits.protocol.get("name")))
    torch.manual_seed(options["seed"])
    num_classes = int(max(splits.y_train.max(), splits.y_test.max()) + 1)
    config = {"channels": splits.channels, "num_classes": num_classes, "width": options["width"]}
    model = Classifier(**config)
    optimizer = torch.optim.Adam(model.parameters(), lr=options["lr"])
    x_train, y_train = to_model_range(splits.x_train), torch.from_numpy(splits.y_train)
    generator = torch.Generator().manual_seed(options["seed"])
    batches = math.ceil(len(x_train) / options["batch_size"])
    progress = LoggedProgress(
        total=options["epochs"] * batches,
        desc="train the classifier",
        unit="batches",
        logger=log,
        per_unit=(options["batch_size"], "images"),
    )
    for epoch in range(options["epochs"]):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        for start in range(0, len(order), options["batch_size"]):
            index = order[start : start + options["batch_size"]]
            loss = F.cross_entropy(model(x_train[index]), y_train[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            progress.update()
        log.info("classifier epoch %d: last batch loss %.4f", epoch + 1, loss.item())
    progress.close()
    model.eval()
    with torch.no_grad():
        predictions = model(to_model_range(splits.x_test)).argmax(1).numpy()
    accuracy = float(np.mean(predictions == splits.y_test))
    save_torch({"format": FORMAT, "config": config, "state_dict": model.state_dict()}, out)
    log.info("classifier test accuracy %.4f -> %s", accuracy, out)
    trained_on = {
        "dataset": splits.protocol.get("name"),
        "resolution": splits.resolution,
        "split": f"train ({len(x_train)} images), the dataset's {num_classes} class labels",
        "content_sha256": splits.protocol.get("content_sha256"),
    }
    return {
        "name": NAME,
        "source": "trained",
        "trained_on": trained_on,
        "test_accuracy": accuracy,
        "architecture": config,
        "training": dict(options),
    }
