"""Which datasets have a pinned classifier feature extractor shipped with the package, and its checksum.

A metric must not change under its user: Inception's weights are one fixed file, and so are these.
A classifier retrained on another CPU (other SIMD kernels, other thread counts) ends with other
weights and moves every FID cell, so the embedded default scores with the shipped weights, whose
SHA-256 is fixed here and checked on every load. This module imports nothing heavy: config
validation and dry runs read it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from akdg.registry import AkdgError

PINNED_DIR = Path(__file__).resolve().parent / "data" / "extractors"
# dataset loader name -> resolution -> SHA-256 of the shipped weights (scripts/pin_extractor.py made them)
PINNED: dict[str, dict[int, str]] = {
    "digits": {16: "a5c32073088d43d856d7ae484b8591765f4b5e0961e407df484b23774fe556e7"},
}
UNLABELLED = (
    "the classifier feature extractor (extractor.source: train, or auto where none is pinned) trains on the train split's class "
    "labels, but dataset {dataset!r} has none; use a labelled dataset (a folder: one subfolder per class; an npz: a 'labels' or "
    "'y_train' key) or set evaluation.feature_extractor: inception-v3-compat"
)


def pinned_weights(dataset: str, resolution: int) -> tuple[Path, str] | None:
    """The shipped weights for ``dataset`` at ``resolution`` and their expected SHA-256, or None if none ships."""
    expected = PINNED.get(dataset, {}).get(resolution)
    return None if expected is None else (PINNED_DIR / f"{dataset}-r{resolution}.pt", expected)


def shipped() -> str:
    """The pinned classifiers there are, for messages: ``digits at 16 px``."""
    return ", ".join(f"{name} at {size} px" for name, sizes in PINNED.items() for size in sizes)


def resolve_source(config: dict[str, Any]) -> str | None:
    """``pinned`` or ``train`` for the classifier extractor (``auto``: pinned where one ships); None for Inception."""
    if config["evaluation"].get("feature_extractor", "akdg-classifier") != "akdg-classifier":
        return None
    dataset, resolution = config["dataset"]["name"], config["dataset"]["resolution"]
    asked, ships = config["extractor"].get("source", "auto"), pinned_weights(dataset, resolution) is not None
    if asked == "train" or (asked == "auto" and not ships):
        return "train"
    if not ships:
        raise AkdgError(
            f"extractor.source is 'pinned' but no pinned classifier ships for dataset {dataset!r} at {resolution} px "
            f"(shipped: {shipped()}); set extractor.source: train (or auto) to train one on the train split"
        )
    return "pinned"
