"""Which network turns images into IS/FID/KID features, and the exact weights it runs with.

``evaluation.feature_extractor`` picks one of two:

- ``akdg-classifier``: a small CNN trained on the dataset's train split (``akdg train-extractor``),
  the default, because Inception features of 16x16 grey digits measure resize artefacts;
- ``inception-v3-compat``: torch-fidelity's TF-ported Inception-v3, the paper protocol
  (``akdg fetch-extractor`` resolves its weights: a local file, or torch-fidelity's own download).

Either way a protocol JSON names the extractor, its weights and their sha256, and the feature layer
each metric uses; evaluation re-hashes the weights against it, so every number is traced to the
exact bytes that produced it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
import torch_fidelity
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

from akdg.feature_extractor_classifier import NAME as CLASSIFIER
from akdg.feature_extractor_classifier import register_with_torch_fidelity
from akdg.io import read_json, sha256_file
from akdg.registry import AkdgError

log = logging.getLogger(__name__)

INCEPTION = "inception-v3-compat"
EXTRACTORS = (CLASSIFIER, INCEPTION)
RGB_ONLY = frozenset({INCEPTION})  # these take 3-channel images; akdg.metrics repeats grey ones
INCEPTION_URL = URL_INCEPTION_V3
METRIC_KEYS = {"is": "isc", "fid": "fid", "kid": "kid"}  # protocol name -> torch-fidelity's


def feature_layers(name: str) -> dict[str, str]:
    """The layer each metric reads: the extractor's torch-fidelity defaults, which akdg never overrides."""
    register_with_torch_fidelity()
    if name not in EXTRACTORS:
        raise AkdgError(f"unknown feature extractor {name!r}; available: {', '.join(EXTRACTORS)}")
    extractor = torch_fidelity.registry.FEATURE_EXTRACTORS_REGISTRY[name]
    return {key: extractor.get_default_feature_layer_for_metric(metric) for key, metric in METRIC_KEYS.items()}


def input_channels(name: str, channels: int) -> int:
    """Channels the extractor is fed: the data's own, or 3 for RGB-only extractors (grey repeated)."""
    if name not in RGB_ONLY or channels == 3:
        return channels
    if channels != 1:
        raise AkdgError(f"feature extractor {name!r} takes 1- or 3-channel images, the data has {channels}")
    return 3


def default_inception_weights_path() -> Path:
    """Where torch-fidelity's download lands: torch.hub's checkpoints folder (moved by ``TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(INCEPTION_URL).path).name


def _how_to_get(path: Path) -> str:
    return (
        f"download {INCEPTION_URL} to {path}, or set evaluation.inception_weights to a copy of it "
        f"(null: torch-fidelity downloads it to {default_inception_weights_path()})"
    )


def resolve_inception_weights(path: Path | str | None) -> tuple[Path, str]:
    """The weights file and where it came from: ``path`` (must exist) or the default location, downloaded if missing."""
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise AkdgError(f"Inception weights {path} do not exist; {_how_to_get(path)}")
        return path.resolve(), "local file"
    target = default_inception_weights_path()
    if not target.is_file():
        log.info("downloading %s to %s", INCEPTION_URL, target)
        try:
            with contextlib.redirect_stdout(sys.stderr):  # as torch-fidelity does: stdout may carry data
                torch.hub.load_state_dict_from_url(INCEPTION_URL, map_location="cpu", progress=False)
        except OSError as error:  # URLError and HTTPError included
            raise AkdgError(f"could not download the Inception weights ({error}); {_how_to_get(target)}") from None
    return target, INCEPTION_URL


def fetch_extractor(spec: dict[str, Any]) -> dict[str, Any]:
    """Resolve a pretrained extractor's weights and return its protocol (``spec``: the evaluation block)."""
    name = spec["feature_extractor"]
    if name == CLASSIFIER:
        raise AkdgError(f"{CLASSIFIER!r} is trained on the data, not fetched: run 'akdg train-extractor'")
    if name != INCEPTION:
        raise AkdgError(f"unknown feature extractor {name!r}; available: {', '.join(EXTRACTORS)}")
    weights, source = resolve_inception_weights(spec.get("inception_weights"))
    return {
        "name": name,
        "weights": str(weights),
        "source": source,
        "weights_sha256": sha256_file(weights),
        "features": feature_layers(name),
        "input": "uint8 RGB, resized to 299x299 inside torch-fidelity (TF1-compatible bilinear); "
        "1-channel data repeated to 3 channels by akdg.metrics",
        "torch_fidelity": torch_fidelity.__version__,
    }


@dataclass(frozen=True)
class Extractor:
    """A resolved feature extractor: what torch-fidelity needs to run it and what a run records."""

    name: str
    weights: Path
    weights_sha256: str
    protocol: dict[str, Any]


def load_extractor(path: Path | str) -> Extractor:
    """Read an extractor's protocol JSON (``path`` may be it or the classifier's .pt beside it); re-hash its weights.

    The classifier's weights are the .pt beside its JSON; Inception's are the file its JSON names.
    """
    protocol_path = Path(path).with_suffix(".json")
    stored = read_json(protocol_path)
    name = stored["name"]
    if name == CLASSIFIER:
        weights, remedy = protocol_path.with_suffix(".pt"), "run 'akdg train-extractor'"
    else:
        weights, remedy = Path(stored["weights"]), f"{_how_to_get(Path(stored['weights']))}, then rerun 'akdg fetch-extractor'"
    if not weights.is_file():
        raise AkdgError(f"feature extractor weights {weights} (named by {protocol_path}) do not exist; {remedy}")
    checksum = sha256_file(weights)
    if checksum != stored["weights_sha256"]:
        raise AkdgError(
            f"feature extractor weights {weights} changed since {protocol_path} was written "
            f"(sha256 {checksum[:16]}… != {stored['weights_sha256'][:16]}…); {remedy}"
        )
    protocol = {"name": name, "weights": str(weights), "weights_sha256": checksum, "features": feature_layers(name)}
    if name == CLASSIFIER:
        protocol["test_accuracy"] = stored["test_accuracy"]
    else:
        protocol["source"] = stored["source"]
    return Extractor(name=name, weights=weights, weights_sha256=checksum, protocol=protocol)
