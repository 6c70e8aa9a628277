"""Datasets, looked up by name. Each loader returns uint8 NCHW train/test splits plus their protocol.

The prepared splits are written once to an .npz by the ``prepare-data`` step, so every later step
(and every seed) reads exactly the same pixels, identified by a content hash in the protocol.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
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
    """Train, test and (optional) validation images as uint8 arrays of shape (N, C, H, W), labels if the data has them.

    A split that was not read (:func:`load_prepared`'s ``splits``) is None, so that a step that must not
    see the test split (tuning) cannot use it by mistake.
    """

    x_train: np.ndarray | None
    x_test: np.ndarray | None
    y_train: np.ndarray | None
    y_test: np.ndarray | None
    protocol: dict[str, Any] = field(default_factory=dict)
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    def _images(self) -> np.ndarray:
        return next(images for images in (self.x_train, self.x_val, self.x_test) if images is not None)

    @property
    def channels(self) -> int:
        return int(self._images().shape[1])

    @property
    def resolution(self) -> int:
        return int(self._images().shape[-1])


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


def carve_validation(splits: ImageSplits, fraction: float, seed: int) -> ImageSplits:
    """Move a seeded ``fraction`` of the train split into a validation split; the test split is untouched.

    The validation images are drawn from the train split only, so that choosing settings on them never
    looks at the test split the tables score; every model then trains on the reduced train split.
    """
    count = math.ceil(fraction * len(splits.x_train))
    if not 0 < count < len(splits.x_train):
        raise AkdgError(
            f"dataset.validation_fraction={fraction} leaves no train or no validation images out of {len(splits.x_train)}; change it"
        )
    order = np.random.default_rng(seed).permutation(len(splits.x_train))
    validation, train = np.sort(order[:count]), np.sort(order[count:])
    labelled = len(splits.y_train) > 0
    protocol = {
        **splits.protocol,
        "validation": {
            "fraction": fraction,
            "seed": seed,
            "source": "the train split (a numpy default_rng(seed) permutation; its first ceil(fraction * N) images)",
            "samples": int(count),
            "content_sha256": content_hash(splits.x_train[validation]),
        },
    }
    return ImageSplits(
        splits.x_train[train],
        splits.x_test,
        splits.y_train[train] if labelled else splits.y_train,
        splits.y_test,
        protocol,
        x_val=splits.x_train[validation],
        y_val=splits.y_train[validation] if labelled else splits.y_train,
    )


def prepare(options: dict[str, Any], out: Path) -> dict[str, Any]:
    """Load a dataset by name and write its splits to ``out`` (.npz); returns the protocol.

    With ``validation_fraction`` > 0 the train split gives up a validation split (:func:`carve_validation`),
    stored as ``x_val``/``y_val``; without it the file holds exactly the train and test splits.
    """
    splits = load(options)
    if splits.x_train.dtype != np.uint8 or splits.x_train.ndim != 4:
        raise AkdgError(f"dataset {options['name']!r} loader must return uint8 NCHW images")
    for images, labels in ((splits.x_train, splits.y_train), (splits.x_test, splits.y_test)):
        if labels.dtype != np.int64 or labels.shape not in ((0,), (len(images),)):
            raise AkdgError(f"dataset {options['name']!r} loader must return int64 labels, one per image or none (shape (0,))")
    fraction = options.get("validation_fraction", 0.0)
    if fraction:
        splits = carve_validation(splits, fraction, options.get("validation_seed", 0))
    validation = {"x_val": splits.x_val, "y_val": splits.y_val} if splits.x_val is not None else {}
    protocol = {
        "name": options["name"],
        **splits.protocol,
        "resolution": splits.resolution,
        "channels": splits.channels,
        "train_samples": int(len(splits.x_train)),
        "test_samples": int(len(splits.x_test)),
        **({"validation_samples": int(len(splits.x_val))} if validation else {}),
        "content_sha256": content_hash(splits.x_train, splits.x_test, *([splits.x_val] if validation else [])),
    }
    with atomic_write(out) as tmp:
        with open(tmp, "wb") as handle:  # a file handle keeps numpy from appending ".npz" to the temp name
            np.savez_compressed(
                handle,
                x_train=splits.x_train,
                x_test=splits.x_test,
                y_train=splits.y_train,
                y_test=splits.y_test,
                **validation,
                protocol=np.array(json.dumps(protocol)),
            )
    log.info(
        "wrote %s: %d train / %d test / %d validation images",
        out,
        protocol["train_samples"],
        protocol["test_samples"],
        protocol.get("validation_samples", 0),
    )
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


SPLIT_KEYS = {"train": ("x_train", "y_train"), "test": ("x_test", "y_test"), "validation": ("x_val", "y_val")}


def load_prepared(path: Path, splits: Iterable[str] = ("train", "test")) -> ImageSplits:
    """Read the ``splits`` written by :func:`prepare` (train, test, validation), with an actionable error if the file is missing or bad.

    Only the named splits are read from the file; the others are None. Images must be uint8 NCHW, so a
    damaged or foreign array fails here rather than in a metric.
    """
    path = Path(path)
    fix = "delete it and rerun 'akdg prepare-data'"
    if not path.exists():
        raise AkdgError(f"prepared dataset {path} does not exist; run 'akdg prepare-data' (or the Snakemake DAG) first")
    wanted = {key for split in splits for key in SPLIT_KEYS[split]} | {"protocol"}
    keys = [key for key in ("x_train", "x_test", "y_train", "y_test", "x_val", "y_val", "protocol") if key in wanted]
    arrays, _ = read_npz(path, keys, "prepared dataset", fix)
    missing = [key for key in keys if key not in arrays]
    if "x_val" in missing:
        raise AkdgError(f"prepared dataset {path} has no validation split; set dataset.validation_fraction above 0 and rerun the DAG")
    if missing:
        raise AkdgError(f"prepared dataset {path} lacks {', '.join(missing)}; {fix}")
    for key in ("x_train", "x_test", "x_val"):
        if key in arrays and (arrays[key].dtype != np.uint8 or arrays[key].ndim != 4):
            raise AkdgError(
                f"prepared dataset {path}: {key!r} is {arrays[key].dtype} of shape {arrays[key].shape}, not uint8 NCHW images; {fix}"
            )
    try:
        protocol = json.loads(str(arrays["protocol"]))
    except ValueError as error:
        raise AkdgError(f"prepared dataset {path} has an unreadable protocol ({error}); {fix}") from None
    return ImageSplits(
        arrays.get("x_train"),
        arrays.get("x_test"),
        arrays.get("y_train"),
        arrays.get("y_test"),
        protocol,
        x_val=arrays.get("x_val"),
        y_val=arrays.get("y_val"),
    )
