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
from typing import Any, Iterable

import numpy as np

from akdg.config import fill_spec_defaults
from akdg.io import atomic_write
from akdg.registry import DATASETS, DOWNLOADERS, SOURCES, AkdgError

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


@dataclass
class Sources:
    """What a dataset is prepared from, in the two forms a workflow can track so that a change reruns prepare-data.

    ``files``: the files its loader reads, inputs of the job (where the dataset has a downloader, the
    files it writes); ``manifest``: a SHA-256 over names and contents, for sources with too many files
    to list as inputs (an image folder), passed as a job parameter.
    """

    files: list[Path] = field(default_factory=list)
    manifest: str | None = None


def download(options: dict[str, Any]) -> None:
    """Fetch (or verify) the dataset's files under its ``root``; a no-op for datasets without files to fetch.

    Loaders fetch on their own too; this hook lets a workflow download in a step of its own
    (e.g. on a node with network access) before ``prepare-data`` runs.
    """
    if options["name"] in DOWNLOADERS.names():
        DOWNLOADERS.get(options["name"])(with_defaults(options))


def sources(options: dict[str, Any]) -> Sources:
    """A dataset's sources; none for a dataset that brings its data along (digits ships with scikit-learn)."""
    name = options["name"]
    return SOURCES.get(name)(with_defaults(options)) if name in SOURCES.names() else Sources()


def content_hash(*arrays: np.ndarray) -> str:
    """SHA-256 over the arrays' bytes and shapes: the identity of the data, not its file name."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


@DATASETS.register("digits")
def load_digits(options: dict[str, Any]) -> ImageSplits:
    """scikit-learn's 1,797 handwritten 8x8 digits (shipped inside the package: no download)."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    from akdg.images import resize_uint8  # torch: imported where images are made, not when the workflow plans

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
        raise AkdgError(
            f"cannot split the {len(images)} digits with test_fraction={options['test_fraction']} ({error}); change dataset.test_fraction"
        ) from None
    protocol = {
        "source": "sklearn.datasets.load_digits (UCI optical digits, 8x8, values 0..16)",
        "preprocessing": f"scaled to 0..255, resized 8->{options['resolution']} (bilinear, antialias), 1 channel",
        "split": f"stratified train_test_split(test_size={options['test_fraction']}, random_state={options['split_seed']})",
    }
    return ImageSplits(x_train, x_test, y_train, y_test, protocol)


def with_defaults(options: dict[str, Any]) -> dict[str, Any]:
    """A copy of a dataset spec with the config schema's defaults for the keys its dataset reads: the loaders index them."""
    return fill_spec_defaults("prepare-data", {key: value for key, value in options.items() if key != "label"})


def load(options: dict[str, Any]) -> ImageSplits:
    """A dataset's splits by name, with the schema's defaults for what ``options`` omits."""
    return DATASETS.get(options["name"])(with_defaults(options))


def prepare(options: dict[str, Any], out: Path) -> dict[str, Any]:
    """Load a dataset by name and write its splits to ``out`` (.npz); returns the protocol."""
    splits = load(options)
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


def read_npz(path: Path, keys: Iterable[str], what: str, fix: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """The arrays ``keys`` (those it has) of an .npz, and all its keys; a file numpy cannot read becomes an AkdgError.

    It is opened as a zip first: numpy would read anything else as a pickle and answer with advice about
    ``allow_pickle``. Object arrays are refused, never unpickled. Messages start with ``what`` and end with ``fix``.
    """
    if not zipfile.is_zipfile(path):
        raise AkdgError(f"{what} {path} is not an .npz file (it is empty, cut short, or not a zip archive of arrays); {fix}")
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(path) as data:
            names = list(data.files)
            for key in (key for key in keys if key in names):
                try:
                    arrays[key] = data[key]
                except ValueError as error:
                    if "allow_pickle" not in str(error):
                        raise
                    raise AkdgError(
                        f"{what} {path}: {key!r} is an array of Python objects, which akdg does not unpickle; save it as a numeric array"
                    ) from None
                if not isinstance(arrays[key], np.ndarray):
                    raise AkdgError(f"{what} {path}: {key!r} is not a numpy array (no .npy header); {fix}")
    except AkdgError:
        raise
    except Exception as error:  # a damaged member fails in zipfile, zlib or numpy's header parser, each its own way
        raise AkdgError(f"{what} {path} is damaged ({type(error).__name__}: {error}); {fix}") from None
    return arrays, names


PREPARED_KEYS = ("x_train", "x_test", "y_train", "y_test", "protocol")


def load_prepared(path: Path) -> ImageSplits:
    """Read splits written by :func:`prepare`, with an actionable error if the file is missing or bad."""
    path = Path(path)
    fix = "delete it and rerun 'akdg prepare-data'"
    if not path.exists():
        raise AkdgError(f"prepared dataset {path} does not exist; run 'akdg prepare-data' (or the Snakemake DAG) first")
    arrays, _ = read_npz(path, PREPARED_KEYS, "prepared dataset", fix)
    missing = [key for key in PREPARED_KEYS if key not in arrays]
    if missing:
        raise AkdgError(f"prepared dataset {path} lacks {', '.join(missing)}; {fix}")
    try:
        protocol = json.loads(str(arrays["protocol"]))
    except ValueError as error:
        raise AkdgError(f"prepared dataset {path} has an unreadable protocol ({error}); {fix}") from None
    return ImageSplits(arrays["x_train"], arrays["x_test"], arrays["y_train"], arrays["y_test"], protocol)
