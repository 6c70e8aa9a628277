"""CIFAR-10 through torchvision: the official 50,000 train / 10,000 test split, with labels.

The archive is fetched from the official URL when allowed; on a machine without network the user
places ``cifar-10-python.tar.gz`` under ``root`` and it is checked (MD5) and extracted locally.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from akdg.datasets import ImageSplits, Sources
from akdg.registry import DATASETS, DOWNLOADERS, SOURCES, AkdgError

log = logging.getLogger(__name__)
# torchvision is imported inside the functions: importing it costs seconds, and every akdg command
# imports this module through the DATASETS registry.
# torchvision's CIFAR10.base_folder and the names of its train_list, test_list and meta (a test checks they agree).
BATCH_FOLDER = "cifar-10-batches-py"
BATCH_FILES = (*(f"data_batch_{index}" for index in range(1, 6)), "test_batch", "batches.meta")


@SOURCES.register("cifar10")
def cifar10_sources(options: dict[str, Any]) -> Sources:
    """The extracted batches the loader reads: the downloader extracts them from a placed or fetched archive."""
    folder = Path(options["root"]).expanduser() / BATCH_FOLDER
    return Sources(files=[folder / name for name in BATCH_FILES])


def _batches_intact(root: Path) -> bool:
    """The extracted python batches and their metadata all match torchvision's MD5s."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity

    files = [*CIFAR10.train_list, *CIFAR10.test_list, [CIFAR10.meta["filename"], CIFAR10.meta["md5"]]]
    return all(check_integrity(str(root / CIFAR10.base_folder / name), md5) for name, md5 in files)


@DOWNLOADERS.register("cifar10")
def fetch_cifar10(options: dict[str, Any]) -> None:
    """Make sure the extracted batches are under ``root``: from a placed archive, else the official URL."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity, download_and_extract_archive, extract_archive

    root = Path(options["root"]).expanduser()
    if _batches_intact(root):
        return
    archive = root / CIFAR10.filename
    place = (
        f"place the official {CIFAR10.filename} (from {CIFAR10.url}, MD5 {CIFAR10.tgz_md5}) at {archive}"
        " and rerun; it is then verified and extracted without network access"
    )
    if check_integrity(str(archive), CIFAR10.tgz_md5):
        log.info("extracting %s", archive)
        try:
            extract_archive(str(archive), str(root))
        except OSError as error:  # e.g. batches left write-protected by the workflow's download_data
            raise AkdgError(f"CIFAR-10: could not extract {archive} ({error}); delete {root / CIFAR10.base_folder} and rerun") from None
    elif options["download"]:
        try:
            download_and_extract_archive(CIFAR10.url, str(root), filename=CIFAR10.filename, md5=CIFAR10.tgz_md5)
        except (OSError, RuntimeError) as error:
            placed = f"{archive} has the wrong MD5 (cut short, or another file) and the " if archive.exists() else ""
            raise AkdgError(f"CIFAR-10: {placed}download failed ({error}); {place}") from None
    else:
        state = "has the wrong MD5 (cut short, or another file)" if archive.exists() else "is missing"
        raise AkdgError(f"CIFAR-10: {archive} {state} and dataset.download is false; {place}")
    if not _batches_intact(root):
        raise AkdgError(
            f"CIFAR-10 files under {root / CIFAR10.base_folder} fail their MD5 checks; delete that folder and {archive}, and rerun"
        )


@DATASETS.register("cifar10")
def load_cifar10(options: dict[str, Any]) -> ImageSplits:
    """torchvision's CIFAR10 train and test sets as uint8 NCHW, resized if ``resolution`` is not 32."""
    from torchvision.datasets import CIFAR10

    from akdg.images import resize_uint8  # torch: imported where images are made, not when the workflow plans

    fetch_cifar10(options)
    root, resolution = Path(options["root"]).expanduser(), options["resolution"]
    splits = []
    for train in (True, False):
        dataset = CIFAR10(str(root), train=train, download=False)
        images = resize_uint8(np.ascontiguousarray(dataset.data.transpose(0, 3, 1, 2)), resolution)
        splits.append((images, np.asarray(dataset.targets, dtype=np.int64)))
    (x_train, y_train), (x_test, y_test) = splits
    protocol = {
        "source": f"CIFAR-10 ({CIFAR10.url}) via torchvision.datasets.CIFAR10, MD5-verified, under {root}",
        "preprocessing": "RGB 32x32" + (f", resized to {resolution}x{resolution} (bilinear, antialias)" if resolution != 32 else ""),
        "split": f"official: data_batch_1..5 = train ({len(x_train)}), test_batch = test ({len(x_test)}); "
        f"labels 0..9 = {', '.join(dataset.classes)}",
    }
    return ImageSplits(x_train, x_test, y_train, y_test, protocol)
