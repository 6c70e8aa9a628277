"""Datasets, looked up by name. Each loader returns uint8 NCHW train/test splits plus their protocol.

The prepared splits are written once to an .npz by the ``prepare-data`` step, so every later step
(and every seed) reads exactly the same pixels, identified by a content hash in the protocol.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from akdg.io import atomic_write
from akdg.registry import AkdgError, Registry

log = logging.getLogger(__name__)


@dataclass
class ImageSplits:
    """Train and test images as uint8 arrays of shape (N, C, H, W), labels if the data has them."""

    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    protocol: dict[str, Any] = field(default_factory=dict)

    @property
    def channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def resolution(self) -> int:
        return int(self.x_train.shape[-1])


DatasetLoader = Callable[[dict[str, Any]], ImageSplits]
DATASETS: Registry[DatasetLoader] = Registry("dataset")
Downloader = Callable[[dict[str, Any]], None]
DOWNLOADERS: Registry[Downloader] = Registry("dataset downloader")


@dataclass
class Sources:
    """What a dataset is prepared from, in the two forms a workflow can track so that a change reruns prepare-data.

    ``files``: the files its loader reads, inputs of the job (where the dataset has a downloader, the
    files it writes); ``manifest``: a SHA-256 over names and contents, for sources with too many files
    to list as inputs (an image folder), passed as a job parameter.
    """

    files: list[Path] = field(default_factory=list)
    manifest: str | None = None


SourceFinder = Callable[[dict[str, Any]], Sources]
SOURCES: Registry[SourceFinder] = Registry("dataset sources")
LabelCheck = Callable[[dict[str, Any]], bool]
LABELLED: Registry[LabelCheck] = Registry("dataset labels")  # datasets whose labels depend on their files, or that have none


def download(options: dict[str, Any]) -> None:
    """Fetch (or verify) the dataset's files under its ``root``; a no-op for datasets without files to fetch.

    Loaders fetch on their own too; this hook lets a workflow download in a step of its own
    (e.g. on a node with network access) before ``prepare-data`` runs.
    """
    if options["name"] in DOWNLOADERS.names():
        DOWNLOADERS.get(options["name"])(options)


def sources(options: dict[str, Any]) -> Sources:
    """A dataset's sources; none for a dataset that brings its data along (digits ships with scikit-learn)."""
    name = options["name"]
    return SOURCES.get(name)(options) if name in SOURCES.names() else Sources()


def has_labels(options: dict[str, Any]) -> bool:
    """Whether the dataset's images carry class labels, on which a classifier feature extractor is trained.

    Config validation asks, so that a grid training one on unlabelled images fails before any job runs;
    a dataset without a ``LABELLED`` entry is taken to have them.
    """
    name = options["name"]
    return LABELLED.get(name)(options) if name in LABELLED.names() else True


def content_hash(*arrays: np.ndarray) -> str:
    """SHA-256 over the arrays' bytes and shapes: the identity of the data, not its file name."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def resize_uint8(images: np.ndarray, resolution: int) -> np.ndarray:
    """Resize uint8 NCHW images with antialiased bilinear interpolation, back to uint8."""
    if images.shape[-1] == resolution and images.shape[-2] == resolution:
        return images
    tensor = torch.from_numpy(images).float()
    resized = F.interpolate(tensor, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)
    return resized.round().clamp(0, 255).to(torch.uint8).numpy()


@DATASETS.register("digits")
def load_digits(options: dict[str, Any]) -> ImageSplits:
    """scikit-learn's 1,797 handwritten 8x8 digits (shipped inside the package: no download)."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # 0..16 -> 0..255
    images = resize_uint8(images, options["resolution"])
    try:
        x_train, x_test, y_train, y_test = train_test_split(
            images,
            bunch.target.astype(np.int64),
            test_size=options["test_fraction"],
            random_state=options["split_seed"],
            stratify=bunch.target,
        )
    except ValueError as error:  # a stratified split needs each of the 10 classes on both sides
        raise AkdgError(f"cannot split the {len(images)} digits with test_fraction={options['test_fraction']} ({error}); change dataset.test_fraction") from None
    protocol = {
        "source": "sklearn.datasets.load_digits (UCI optical digits, 8x8, values 0..16)",
        "preprocessing": f"scaled to 0..255, resized 8->{options['resolution']} (bilinear, antialias), 1 channel",
        "split": f"stratified train_test_split(test_size={options['test_fraction']}, random_state={options['split_seed']})",
    }
    return ImageSplits(x_train, x_test, y_train, y_test, protocol)


def prepare(options: dict[str, Any], out: Path) -> dict[str, Any]:
    """Load a dataset by name and write its splits to ``out`` (.npz); returns the protocol."""
    splits = DATASETS.get(options["name"])(options)
    if splits.x_train.dtype != np.uint8 or splits.x_train.ndim != 4:
        raise AkdgError(f"dataset {options['name']!r} loader must return uint8 NCHW images")
    for images, labels in ((splits.x_train, splits.y_train), (splits.x_test, splits.y_test)):
        if labels.dtype != np.int64 or labels.shape not in ((0,), (len(images),)):
            raise AkdgError(f"dataset {options['name']!r} loader must return int64 labels, one per image or none (shape (0,))")
    protocol = {
        "name": options["name"],
        **splits.protocol,
        "resolution": splits.resolution,
        "channels": splits.channels,
        "train_samples": int(len(splits.x_train)),
        "test_samples": int(len(splits.x_test)),
        "content_sha256": content_hash(splits.x_train, splits.x_test),
    }
    with atomic_write(out) as tmp:
        with open(tmp, "wb") as handle:  # a file handle keeps numpy from appending ".npz" to the temp name
            np.savez_compressed(
                handle,
                x_train=splits.x_train,
                x_test=splits.x_test,
                y_train=splits.y_train,
                y_test=splits.y_test,
                protocol=np.array(json.dumps(protocol)),
            )
    log.info("wrote %s: %d train / %d test images", out, protocol["train_samples"], protocol["test_samples"])
    return protocol


def load_prepared(path: Path) -> ImageSplits:
    """Read splits written by :func:`prepare`, with an actionable error if the file is missing or bad."""
    path = Path(path)
    if not path.exists():
        raise AkdgError(f"prepared dataset {path} does not exist; run 'akdg prepare-data' (or the Snakemake DAG) first")
    try:
        with np.load(path) as data:
            return ImageSplits(
                data["x_train"], data["x_test"], data["y_train"], data["y_test"], json.loads(str(data["protocol"]))
            )
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:  # truncated: BadZipFile, empty: EOFError
        raise AkdgError(f"prepared dataset {path} is unreadable ({error}); delete it and rerun 'akdg prepare-data'") from error


def to_model_range(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> float -1..1, the range generators produce with tanh."""
    tensor = torch.as_tensor(images)
    return tensor.float().div(127.5).sub(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float -1..1 -> uint8 0..255, the input torch-fidelity's feature extractors expect."""
    return images.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def _register_builtin_datasets() -> None:
    # Datasets with files of their own live in their own modules and register themselves on import.
    from akdg import dataset_cifar10, dataset_files, dataset_lsun  # noqa: F401


_register_builtin_datasets()
