"""LSUN bedroom from the official LMDBs, decoded once into a cached uint8 array.

``bedroom_train_lmdb/`` is the train split (about 3M images, usually capped with
``max_train_images``), ``bedroom_val_lmdb/`` (300 images) the test split. Decoding millions of
JPEG/WebP images is slow, so each split is decoded, centre-cropped and resized once into a .npy
cache under ``root``. The cache name carries a SHA-256 over the LMDB records it was made from
(every key and value, in key order), so a changed LMDB, resolution, preprocessing or cap never
reuses a stale cache; hashing only the records used costs one read of them, not a decode.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import zipfile
from itertools import islice
from pathlib import Path
from typing import Any

import lmdb
import numpy as np
from PIL import Image, UnidentifiedImageError

from akdg.dataset_files import CROP_RESIZE, square_resize
from akdg.datasets import ImageSplits, Sources
from akdg.io import atomic_write, remove_stale_temporaries
from akdg.registry import DATASETS, DOWNLOADERS, LABELLED, SOURCES, AkdgError

log = logging.getLogger(__name__)

URLS = {
    "train": "http://dl.yf.io/lsun/scenes/bedroom_train_lmdb.zip",
    "val": "http://dl.yf.io/lsun/scenes/bedroom_val_lmdb.zip",
}
PREPROCESSING_TAG = "rgb-centrecrop-lanczos"  # part of the cache name: change it whenever square_resize changes


def lmdb_dir(root: Path, split: str) -> Path:
    return Path(root) / f"bedroom_{split}_lmdb"


def _place_message(root: Path, split: str) -> str:
    return (
        f"place the official LMDB folder {lmdb_dir(root, split)}/ (with data.mdb; unzip {URLS[split]} inside {root})"
        " or set dataset.download: true on a machine with network access"
    )


def download_lsun_bedroom(root: Path | str) -> None:
    """Fetch and unzip the official train and val LMDBs that are missing under ``root``.

    The zip is downloaded and extracted in a temporary folder and the LMDB folder renamed into
    place last, so an interrupted download never leaves a folder that looks complete.
    """
    from torchvision.datasets.utils import download_url, extract_archive  # seconds to import: only when downloading

    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    for split, url in URLS.items():
        target = lmdb_dir(root, split)
        if (target / "data.mdb").is_file():
            continue
        log.info("downloading %s to %s", url, target)
        try:
            with tempfile.TemporaryDirectory(dir=root, prefix=f".{target.name}-") as staging:
                download_url(url, staging)
                extract_archive(os.path.join(staging, Path(url).name), staging)
                os.replace(Path(staging) / target.name, target)
        except (OSError, RuntimeError, zipfile.BadZipFile) as error:
            raise AkdgError(f"LSUN bedroom download of {url} failed ({error}); {_place_message(root, split)}") from None


@SOURCES.register("lsun_bedroom")
def lsun_bedroom_sources(options: dict[str, Any]) -> Sources:
    """Each split's data.mdb: the only file of an LMDB folder that the loader reads (it opens it without a lock file)."""
    root = Path(options["root"]).expanduser()
    return Sources(files=[lmdb_dir(root, split) / "data.mdb" for split in URLS])


@DOWNLOADERS.register("lsun_bedroom")
def fetch_lsun_bedroom(options: dict[str, Any]) -> None:
    """Make sure both LMDBs are under ``root``, downloading them if ``download`` allows."""
    root = Path(options["root"]).expanduser()
    missing = [split for split in URLS if not (lmdb_dir(root, split) / "data.mdb").is_file()]
    if missing and not options["download"]:
        raise AkdgError(
            f"LSUN bedroom: {lmdb_dir(root, missing[0])}/data.mdb is missing and dataset.download is false; "
            + _place_message(root, missing[0])
        )
    if missing:
        download_lsun_bedroom(root)


def _records_sha256(txn: lmdb.Transaction, count: int) -> str:
    digest = hashlib.sha256()
    for key, value in islice(txn.cursor(), count):
        for part in (key, value):
            digest.update(len(part).to_bytes(8, "little"))
            digest.update(part)
    return digest.hexdigest()


def _decode(key: bytes, value: bytes, where: Path, resolution: int) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(value)) as image:
            return square_resize(image.convert("RGB"), resolution)
    except (UnidentifiedImageError, OSError) as error:
        raise AkdgError(f"{where}: record {key.decode(errors='replace')!r} is not a readable image ({error})") from None


def load_lmdb_split(root: Path, split: str, resolution: int, max_images: int | None) -> tuple[np.ndarray, str, int]:
    """Images of one split (first ``max_images`` records in key order), from the cache if it matches.

    Returns the images, the SHA-256 of the records used and the LMDB's record count.
    """
    path = lmdb_dir(root, split)
    try:
        env = lmdb.open(str(path), readonly=True, lock=False, readahead=False)
    except lmdb.Error as error:
        raise AkdgError(f"{path} is not a readable LMDB ({error}); {_place_message(root, split)}") from None
    with env:
        _check_complete(env, path, root, split)
        try:
            with env.begin() as txn:
                total = txn.stat()["entries"]
                count = total if max_images is None else min(total, max_images)
                records = _records_sha256(txn, count)
                name = f"lsun_bedroom_{split}_{records[:16]}_{resolution}px_{PREPROCESSING_TAG}_max-{max_images or 'all'}.npy"
                cache = Path(root) / "cache" / name
                cached = _read_cache(cache)
                if cached is not None:
                    return cached, records, total
                log.info("decoding %d images of %s into %s", count, path, cache)
                images = np.empty((count, 3, resolution, resolution), dtype=np.uint8)
                for index, (key, value) in enumerate(islice(txn.cursor(), count)):
                    images[index] = _decode(key, value, path, resolution)
        except lmdb.Error as error:  # a damaged page: MDB_CORRUPTED, MDB_PAGE_NOTFOUND, ...
            raise AkdgError(f"{path} is damaged ({error}); delete that folder, then {_place_message(root, split)}") from None
    remove_stale_temporaries(cache)
    try:
        with atomic_write(cache) as tmp, open(tmp, "wb") as handle:  # a handle keeps numpy from renaming the temp file
            np.save(handle, images)
    except (OSError, AkdgError) as error:  # a read-only dataset folder, a full disk: the images are decoded all the same
        log.warning("could not cache the decoded images in %s (%s); the next run decodes them again", cache, error)
    return images, records, total


LABELLED.register("lsun_bedroom")(lambda options: False)


def _check_complete(env: lmdb.Environment, path: Path, root: Path, split: str) -> None:
    """Refuse an LMDB whose data.mdb is shorter than its own last page: reading it would crash the process (SIGBUS)."""
    needed = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    size = (path / "data.mdb").stat().st_size
    if size < needed:
        raise AkdgError(
            f"{path}/data.mdb is truncated ({size} of at least {needed} bytes); delete that folder, then {_place_message(root, split)}"
        )


def _read_cache(cache: Path) -> np.ndarray | None:
    """The decoded images cached earlier, or None (a damaged cache is removed and decoded again)."""
    if not cache.is_file():
        return None
    try:
        images = np.load(cache)
    except (OSError, ValueError, EOFError) as error:
        log.warning("cache %s is damaged (%s); decoding the images again", cache, error)
        cache.unlink(missing_ok=True)
        return None
    log.info("reusing %s", cache)
    return images


@DATASETS.register("lsun_bedroom")
def load_lsun_bedroom(options: dict[str, Any]) -> ImageSplits:
    """Official LSUN bedroom train (capped by ``max_train_images``) / val splits, unlabelled."""
    fetch_lsun_bedroom(options)
    root, resolution = Path(options["root"]).expanduser(), options["resolution"]
    cap = options.get("max_train_images")
    x_train, train_sha, train_total = load_lmdb_split(root, "train", resolution, cap)
    x_test, test_sha, test_total = load_lmdb_split(root, "val", resolution, None)
    no_labels = np.zeros(0, dtype=np.int64)
    protocol = {
        "source": f"LSUN bedroom official LMDBs under {root} (train {train_total} records, records used sha256 {train_sha}; "
        f"val {test_total} records, sha256 {test_sha})",
        "preprocessing": f"PIL decode, RGB, {CROP_RESIZE} to {resolution}x{resolution}",
        "split": f"official: train = first {len(x_train)} records of bedroom_train_lmdb in key order"
        f" (max_train_images={cap}), test = all {len(x_test)} records of bedroom_val_lmdb",
    }
    return ImageSplits(x_train, x_test, no_labels, no_labels.copy(), protocol)
