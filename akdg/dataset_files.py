"""Datasets from the user's own files: a folder of images (``folder``) or an .npz of uint8 arrays (``npz``).

Both end as square uint8 NCHW images at the configured resolution with a seeded train/test split,
so any image collection can be run through the same grid as the paper's datasets.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from akdg.datasets import ImageSplits, Sources, read_npz
from akdg.registry import DATASETS, LABELLED, SOURCES, AkdgError

IMAGE_EXTENSIONS = (".bmp", ".jpeg", ".jpg", ".png", ".webp")
CROP_RESIZE = "centre crop to the shorter side, then PIL Lanczos resize"
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601-2, the weights of PIL's convert("L")


def square_resize(image: Image.Image, resolution: int) -> np.ndarray:
    """Centre-crop to the largest square and resize with Lanczos; uint8 (C, H, W).

    Cropping keeps the aspect ratio (no squashing); Lanczos is the antialiasing filter the
    StyleGAN/ProGAN dataset tools use for LSUN. The crop comes first (not ``resize(box=...)``,
    whose filter reads pixels outside the box), so nothing outside the square leaks in.
    """
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    array = np.asarray(square.resize((resolution, resolution), Image.Resampling.LANCZOS), dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def seeded_split(
    images: np.ndarray, labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """Split images (and labels, if any) with a seed; stratified where every class can appear on both sides."""
    from sklearn.model_selection import train_test_split  # imported where used, as in load_digits

    n_test = math.ceil(test_fraction * len(images))
    classes, counts = np.unique(labels, return_counts=True)
    stratify = labels.size > 0 and counts.min() >= 2 and len(classes) <= min(n_test, len(images) - n_test)
    try:
        train, test = train_test_split(
            np.arange(len(images)), test_size=test_fraction, random_state=seed, stratify=labels if stratify else None
        )
    except ValueError as error:
        raise AkdgError(
            f"cannot split {len(images)} images with test_fraction={test_fraction} ({error}); add images or change dataset.test_fraction"
        ) from None
    y_train, y_test = (labels[train], labels[test]) if labels.size else (labels, labels)
    description = f"{'stratified ' if stratify else ''}train_test_split(test_size={test_fraction}, random_state={seed})"
    return images[train], images[test], y_train, y_test, description


def _path_option(options: dict[str, Any]) -> Path:
    if not options.get("path"):
        raise AkdgError(f"dataset {options['name']!r} needs dataset.path (the location of its files)")
    return Path(options["path"]).expanduser()


def _read_image(path: Path, mode: str, resolution: int) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return square_resize(image.convert(mode), resolution)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise AkdgError(f"image {path} could not be read ({error}); fix or remove it") from None


def folder_images(options: dict[str, Any]) -> tuple[Path, list[Path]]:
    """The folder and the images the folder loader reads, sorted by relative path (the order it splits)."""
    root = _path_option(options)
    if not root.is_dir():
        raise AkdgError(f"dataset.path {root} is not a folder; point it at a folder of images")
    paths = sorted(
        (path for path in root.rglob("*") if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()),
        key=lambda path: path.relative_to(root).as_posix(),
    )
    if not paths:
        raise AkdgError(f"no images found under {root} (searched recursively for {', '.join(IMAGE_EXTENSIONS)}, any case)")
    return root, paths


def folder_manifest(root: Path, paths: list[Path]) -> str:
    """SHA-256 over each image's relative path and bytes, streamed: an image added, removed, renamed or
    rewritten in place changes it, while copying the folder elsewhere or touching a file does not."""
    digest = hashlib.sha256()
    for path in paths:
        name = path.relative_to(root).as_posix().encode()
        try:
            with open(path, "rb") as handle:
                content = hashlib.file_digest(handle, "sha256").digest()
        except OSError as error:
            raise AkdgError(f"image {path} could not be read ({error.strerror}); fix its permissions or remove it") from None
        digest.update(len(name).to_bytes(8, "little") + name + content)
    return digest.hexdigest()


@SOURCES.register("folder")
def folder_sources(options: dict[str, Any]) -> Sources:
    """Too many files to be a job's inputs: a manifest of them instead."""
    return Sources(manifest=folder_manifest(*folder_images(options)))


def in_class_folders(root: Path, paths: list[Path]) -> bool:
    """Whether every image sits in a first-level subfolder of ``root``, which is then its class."""
    return all(len(path.relative_to(root).parts) >= 2 for path in paths)


@LABELLED.register("folder")
def folder_labelled(options: dict[str, Any]) -> bool:
    return in_class_folders(*folder_images(options))


@DATASETS.register("folder")
def load_folder(options: dict[str, Any]) -> ImageSplits:
    """Every image under ``path`` (recursive, sorted); classes = first-level subfolders if all images sit in one."""
    root, paths = folder_images(options)
    folders = [path.relative_to(root).parts[0] for path in paths]
    labelled = in_class_folders(root, paths)
    classes = sorted(set(folders)) if labelled else []
    labels = np.array([classes.index(folder) for folder in folders] if labelled else [], dtype=np.int64)
    channels, resolution = options["channels"], options["resolution"]
    images = np.stack([_read_image(path, "L" if channels == 1 else "RGB", resolution) for path in paths])
    x_train, x_test, y_train, y_test, split = seeded_split(images, labels, options["test_fraction"], options["split_seed"])
    protocol = {
        "source": f"image folder {root} ({len(paths)} files; "
        + (f"{len(classes)} classes from first-level subfolders: {', '.join(classes)})" if labelled else "unlabelled)"),
        "preprocessing": f"PIL decode, convert to {'L' if channels == 1 else 'RGB'}, {CROP_RESIZE} to {resolution}x{resolution}",
        "split": split + " over the sorted relative paths",
        "manifest_sha256": folder_manifest(root, paths),
    }
    return ImageSplits(x_train, x_test, y_train, y_test, protocol)


def _to_nchw(array: np.ndarray, where: str) -> tuple[np.ndarray, str]:
    """(N, H, W) is one channel; for rank 4 the layout is where the only axis of size 1 or 3 is (1: NCHW, 3: NHWC)."""
    if array.ndim == 3:
        return array[:, None], "NHW"
    expected = "(N, C, H, W), (N, H, W, C) with C 1 or 3, or (N, H, W)"
    if array.ndim != 4:
        raise AkdgError(f"{where} has shape {array.shape}; expected {expected}")
    first, last = array.shape[1] in (1, 3), array.shape[3] in (1, 3)
    if first == last:
        problem = "both axis 1 and axis 3 could be" if first else "neither axis 1 nor axis 3 is"
        raise AkdgError(f"{where} has shape {array.shape}: {problem} the channel axis; expected {expected}")
    return (array, "NCHW") if first else (array.transpose(0, 3, 1, 2), "NHWC")


def _convert_channels(images: np.ndarray, channels: int) -> np.ndarray:
    if images.shape[1] == channels:
        return images
    if channels == 3:
        return images.repeat(3, axis=1)
    return np.einsum("nchw,c->nhw", images.astype(np.float64), LUMA).round().astype(np.uint8)[:, None]


def _center_crop(images: np.ndarray) -> np.ndarray:
    height, width = images.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return images[..., top : top + side, left : left + side]


def _npz_images(arrays: dict[str, np.ndarray], key: str, where: Path, channels: int, resolution: int) -> tuple[np.ndarray, str]:
    array = arrays[key]
    if array.dtype != np.uint8:
        raise AkdgError(f"{where}: {key!r} has dtype {array.dtype}; expected uint8 images (0..255)")
    if len(array) == 0:
        raise AkdgError(f"{where}: {key!r} holds no images")
    from akdg.images import resize_uint8  # torch: imported where images are made, not when the workflow plans

    images, layout = _to_nchw(array, f"{where}: {key!r}")
    images = resize_uint8(np.ascontiguousarray(_center_crop(_convert_channels(images, channels))), resolution)
    return images, layout


def _npz_labels(arrays: dict[str, np.ndarray], key: str, where: Path, count: int) -> np.ndarray:
    if key not in arrays:
        return np.zeros(0, dtype=np.int64)
    labels = arrays[key]
    if labels.shape != (count,) or labels.dtype.kind not in "iu" or (labels.size and labels.min() < 0):
        raise AkdgError(f"{where}: {key!r} has shape {labels.shape} and dtype {labels.dtype}; expected {count} non-negative integer labels")
    return labels.astype(np.int64)


def _npz_file(options: dict[str, Any]) -> Path:
    path = _path_option(options)
    if not path.is_file():
        raise AkdgError(f"dataset.path {path} does not exist; point it at an .npz file")
    return path


@SOURCES.register("npz")
def npz_sources(options: dict[str, Any]) -> Sources:
    return Sources(files=[_npz_file(options)])


NPZ_FIX = "save the images with numpy.savez (or savez_compressed) and point dataset.path at it"


@LABELLED.register("npz")
def npz_labelled(options: dict[str, Any]) -> bool:
    """Labels are 'y_train' (beside 'x_train') or 'labels' (beside 'images'); the arrays are not read."""
    names = read_npz(_npz_file(options), (), "dataset.path", NPZ_FIX)[1]
    return "y_train" in names if {"x_train", "x_test"} <= set(names) else "labels" in names


@DATASETS.register("npz")
def load_npz(options: dict[str, Any]) -> ImageSplits:
    """uint8 images from ``path``: keys x_train/x_test (+ y_train/y_test), or images (+ labels) split with a seed."""
    path = _npz_file(options)
    channels, resolution = options["channels"], options["resolution"]
    names = read_npz(path, (), "dataset.path", NPZ_FIX)[1]
    own_split = {"x_train", "x_test"} <= set(names)
    arrays, _ = read_npz(path, ("x_train", "x_test", "y_train", "y_test") if own_split else ("images", "labels"), "dataset.path", NPZ_FIX)
    if own_split:
        x_train, layout = _npz_images(arrays, "x_train", path, channels, resolution)
        x_test, _ = _npz_images(arrays, "x_test", path, channels, resolution)
        y_train = _npz_labels(arrays, "y_train", path, len(x_train))
        y_test = _npz_labels(arrays, "y_test", path, len(x_test))
        if (y_train.size == 0) != (y_test.size == 0):
            raise AkdgError(f"{path}: give both 'y_train' and 'y_test', or neither")
        split = "the file's own x_train / x_test"
    elif "images" in arrays:
        images, layout = _npz_images(arrays, "images", path, channels, resolution)
        labels = _npz_labels(arrays, "labels", path, len(images))
        x_train, x_test, y_train, y_test, split = seeded_split(images, labels, options["test_fraction"], options["split_seed"])
    else:
        raise AkdgError(
            f"{path} has keys {sorted(names)}; expected 'x_train' and 'x_test' (optional 'y_train', 'y_test')"
            " or 'images' (optional 'labels')"
        )
    protocol = {
        "source": f"npz file {path} ({layout} uint8, {'labelled' if y_train.size else 'unlabelled'})",
        "preprocessing": f"to {channels} channel(s) (1->3 repeated, 3->1 ITU-R 601-2 luma), centre crop to square, "
        f"resized to {resolution}x{resolution} (bilinear, antialias)",
        "split": split,
    }
    return ImageSplits(x_train, x_test, y_train, y_test, protocol)
