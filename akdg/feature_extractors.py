"""Which network turns images into IS/FID/KID features, and the exact weights it runs with.

``evaluation.feature_extractor`` picks one of two:

- ``akdg-classifier``: a small CNN trained on the dataset's train split, the default, because
  Inception features of 16x16 grey digits measure resize artefacts; pinned (shipped with the
  package, ``akdg fetch-extractor``) where :mod:`akdg.extractor_pins` has one, else trained by the DAG
  (``akdg train-extractor``);
- ``inception-v3-compat``: torch-fidelity's TF-ported Inception-v3, the paper protocol
  (``akdg fetch-extractor`` resolves its weights: a local file, or torch-fidelity's own download).

Either way a protocol JSON names the extractor, its weights and their sha256, and the feature layer
each metric uses; evaluation re-hashes the weights against it, so every number is traced to the
exact bytes that produced it.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
import torch_fidelity
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

from akdg.extractor_pins import pinned_weights, shipped
from akdg.feature_extractor_classifier import NAME as CLASSIFIER
from akdg.feature_extractor_classifier import register_with_torch_fidelity
from akdg.io import atomic_write, load_torch, read_json, sha256_file
from akdg.registry import AkdgError

log = logging.getLogger(__name__)

INCEPTION = "inception-v3-compat"
EXTRACTORS = (CLASSIFIER, INCEPTION)
RGB_ONLY = frozenset({INCEPTION})  # these take 3-channel images; akdg.metrics repeats grey ones
INCEPTION_URL = URL_INCEPTION_V3
METRIC_KEYS = {"is": "isc", "fid": "fid", "kid": "kid", "prc": "prc"}  # protocol name -> torch-fidelity's


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


def check_state_dict(weights: Path) -> None:
    """Refuse Inception weights that are not a readable state dict now, not when torch-fidelity loads them to evaluate."""
    fix = f"replace it: {_how_to_get(weights)}"
    state = load_torch(weights, "Inception weights file", fix, fix)
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise AkdgError(f"Inception weights file {weights} is not a state dict of tensors; {fix}")


def check_pinned(weights: Path, expected: str) -> str:
    """Refuse pinned classifier weights whose bytes are not the ones the package pins; returns the checksum."""
    checksum = sha256_file(weights)
    if checksum != expected:
        raise AkdgError(
            f"pinned feature extractor weights {weights} have sha256 {checksum[:16]}…, not the pinned {expected[:16]}…; "
            "reinstall akdg (or restore the file from git) so that every FID is computed with the same metric"
        )
    return checksum


def fetch_pinned_classifier(dataset: str, resolution: int, weights_out: Path) -> dict[str, Any]:
    """Copy the shipped classifier for ``dataset`` next to the DAG's outputs after checking its SHA-256; its protocol."""
    found = pinned_weights(dataset, resolution)
    if found is None:
        raise AkdgError(
            f"no pinned {CLASSIFIER} ships for dataset {dataset!r} at {resolution} px (shipped: {shipped()}); set extractor.source: train"
        )
    weights, expected = found
    if not weights.is_file():
        raise AkdgError(f"the pinned feature extractor {weights} is missing from the installed package; reinstall akdg")
    check_pinned(weights, expected)
    with atomic_write(weights_out) as tmp:
        shutil.copyfile(weights, tmp)
    shipped_protocol = read_json(weights.with_suffix(".json"))
    return {
        **shipped_protocol,
        "name": CLASSIFIER,
        "source": "pinned",
        "pinned_file": f"akdg/data/extractors/{weights.name}",
        "weights": str(weights_out),
        "weights_sha256": expected,
    }


def fetch_extractor(spec: dict[str, Any], weights_out: Path | None = None) -> dict[str, Any]:
    """Resolve a pretrained extractor's weights and return its protocol.

    ``spec``: the evaluation block's extractor keys; for the pinned classifier also ``pinned``
    ({dataset, resolution}), whose weights are copied to ``weights_out``.
    """
    name = spec["feature_extractor"]
    if name == CLASSIFIER:
        if not spec.get("pinned") or weights_out is None:
            raise AkdgError(f"{CLASSIFIER!r} without a pinned copy is trained on the data, not fetched: run 'akdg train-extractor'")
        return {
            **fetch_pinned_classifier(spec["pinned"]["dataset"], spec["pinned"]["resolution"], weights_out),
            "features": feature_layers(name),
        }
    if name != INCEPTION:
        raise AkdgError(f"unknown feature extractor {name!r}; available: {', '.join(EXTRACTORS)}")
    weights, source = resolve_inception_weights(spec.get("inception_weights"))
    check_state_dict(weights)
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
    missing = [key for key in ("name", "weights_sha256") if key not in stored]
    missing += ["weights"] if stored.get("name", CLASSIFIER) != CLASSIFIER and "weights" not in stored else []
    if missing:
        raise AkdgError(
            f"feature extractor protocol {protocol_path} lacks {', '.join(missing)}; delete it and rerun the step that makes it "
            "('akdg fetch-extractor' or 'akdg train-extractor')"
        )
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
    if stored.get("source") == "pinned":
        trained_on = stored.get("trained_on") or {}
        found = pinned_weights(trained_on.get("dataset"), trained_on.get("resolution"))
        if found is None:
            raise AkdgError(f"{protocol_path} names a pinned extractor this version of akdg does not ship; rerun 'akdg fetch-extractor'")
        check_pinned(weights, found[1])
    protocol = {
        "name": name,
        "weights": str(weights),
        "weights_sha256": checksum,
        "features": feature_layers(name),
        "source": stored.get("source"),
    }
    if name == CLASSIFIER:
        protocol.update({key: stored[key] for key in ("test_accuracy", "trained_on", "training") if key in stored})
    return Extractor(name=name, weights=weights, weights_sha256=checksum, protocol=protocol)
