"""The file-backed datasets, each read from tiny data written in its real on-disk format."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import shutil
import tarfile
import zipfile
from pathlib import Path
from urllib.error import URLError

import lmdb
import numpy as np
import pytest
import torchvision.datasets.utils
from PIL import Image
from torchvision.datasets import CIFAR10

from akdg import dataset_lsun, datasets
from akdg.images import resize_uint8
from akdg.registry import AkdgError

# ---------------------------------------------------------------- CIFAR-10


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def cifar_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """cifar-10-python.tar.gz in the official layout (2 images per train batch, 3 test), MD5s patched in."""
    rng = np.random.default_rng(0)
    build = tmp_path / "build" / CIFAR10.base_folder
    build.mkdir(parents=True)
    batches = {f"data_batch_{i}": 2 for i in range(1, 6)} | {"test_batch": 3}
    content = {}
    for name, count in batches.items():
        data = rng.integers(0, 256, size=(count, 3072), dtype=np.uint8)  # rows: 1024 R, 1024 G, 1024 B
        labels = [int(label) for label in rng.integers(0, 10, size=count)]
        entry = {"batch_label": name, "labels": labels, "data": data, "filenames": [f"{name}_{i}.png" for i in range(count)]}
        (build / name).write_bytes(pickle.dumps(entry, protocol=2))
        content[name] = (data.reshape(count, 3, 32, 32), labels)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    meta = {"num_cases_per_batch": 2, "label_names": names, "num_vis": 3072}
    (build / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    root = tmp_path / "data"
    root.mkdir()
    archive = root / CIFAR10.filename
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(build, arcname=CIFAR10.base_folder)
    monkeypatch.setattr(CIFAR10, "tgz_md5", md5(archive))
    monkeypatch.setattr(CIFAR10, "train_list", [[f"data_batch_{i}", md5(build / f"data_batch_{i}")] for i in range(1, 6)])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5(build / "test_batch")]])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5(build / "batches.meta")})
    x_train = np.concatenate([content[f"data_batch_{i}"][0] for i in range(1, 6)])
    y_train = sum((content[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    return {"root": root, "x_train": x_train, "y_train": y_train, "x_test": content["test_batch"][0], "y_test": content["test_batch"][1]}


def test_cifar10_placed_archive_is_verified_and_extracted_offline(cifar_archive: dict) -> None:
    options = {"name": "cifar10", "resolution": 32, "root": str(cifar_archive["root"]), "download": False}
    splits = datasets.load(options)
    np.testing.assert_array_equal(splits.x_train, cifar_archive["x_train"])
    np.testing.assert_array_equal(splits.x_test, cifar_archive["x_test"])
    assert splits.y_train.dtype == np.int64 and splits.y_train.tolist() == cifar_archive["y_train"]
    assert splits.y_test.tolist() == cifar_archive["y_test"]
    assert "data_batch_1..5" in splits.protocol["split"] and "truck" in splits.protocol["split"]

    (cifar_archive["root"] / CIFAR10.filename).unlink()  # the extracted batches alone are enough now
    resized = datasets.load({**options, "resolution": 16})
    np.testing.assert_array_equal(resized.x_train, resize_uint8(cifar_archive["x_train"], 16))
    assert resized.x_train.shape == (10, 3, 16, 16) and "resized to 16x16" in resized.protocol["preprocessing"]


def test_cifar10_missing_archive_names_file_and_url(tmp_path: Path) -> None:
    options = {"name": "cifar10", "resolution": 32, "root": str(tmp_path), "download": False}
    with pytest.raises(AkdgError, match="cifar-10-python.tar.gz") as error:
        datasets.load(options)
    assert str(tmp_path / CIFAR10.filename) in str(error.value) and CIFAR10.url in str(error.value)
    assert "is missing" in str(error.value)


def test_cifar10_failed_download_says_what_to_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise URLError("no network")

    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", offline)
    with pytest.raises(AkdgError, match="download failed .*no network.*place the official cifar-10-python.tar.gz"):
        datasets.download({"name": "cifar10", "root": str(tmp_path), "download": True})


# ---------------------------------------------------------------- LSUN bedroom


def bordered_image(width: int, height: int, shade: int, fmt: str = "JPEG") -> bytes:
    """A flat green square of brightness ``shade`` centred between red (left/top) and blue (right/bottom) margins."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    pixels[...] = (255, 0, 0)
    pixels[top + side :, :] = pixels[:, left + side :] = (0, 0, 255)
    pixels[top : top + side, left : left + side] = (0, shade, 0)
    buffer = io.BytesIO()
    settings = {"quality": 95, "subsampling": 0} if fmt == "JPEG" else {"lossless": True}  # no chroma bleed over margins
    Image.fromarray(pixels).save(buffer, format=fmt, **settings)
    return buffer.getvalue()


def write_lmdb(folder: Path, records: dict[bytes, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with lmdb.open(str(folder), map_size=1 << 24) as env, env.begin(write=True) as txn:
        for key, value in records.items():
            txn.put(key, value)


def lsun_records(count: int, fmt: str = "JPEG") -> dict[bytes, bytes]:
    sizes = [(48, 32), (32, 48), (40, 40)]  # margins on 8-pixel JPEG block edges, so JPEG keeps them apart
    return {f"{index:04x}".encode(): bordered_image(*sizes[index % 3], shade=100 + 10 * index, fmt=fmt) for index in range(count)}


@pytest.fixture
def lsun_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write_lmdb(dataset_lsun.lmdb_dir(root, "train"), lsun_records(12))
    write_lmdb(dataset_lsun.lmdb_dir(root, "val"), lsun_records(4, fmt="WEBP"))
    return root


def lsun(root: Path, resolution: int = 16, cap: int | None = 5) -> datasets.ImageSplits:
    options = {"name": "lsun_bedroom", "resolution": resolution, "root": str(root), "download": False, "max_train_images": cap}
    return datasets.load(options)


def test_lsun_crops_the_centre_square_and_resizes(lsun_root: Path) -> None:
    splits = lsun(lsun_root)
    assert splits.x_train.shape == (5, 3, 16, 16) and splits.x_test.shape == (4, 3, 16, 16)
    assert splits.y_train.shape == (0,) and splits.y_train.dtype == np.int64 and splits.y_test.shape == (0,)
    for images in (splits.x_train, splits.x_test):  # only the green centre survives: no red or blue margin
        assert images[:, 0].max() <= 12 and images[:, 2].max() <= 12
    expected_green = 100 + 10 * np.arange(5)  # records in key order, JPEG-lossy
    assert np.abs(splits.x_train[:, 1].mean(axis=(1, 2)) - expected_green).max() < 3
    assert "first 5 records" in splits.protocol["split"] and "Lanczos" in splits.protocol["preprocessing"]


def test_lsun_cache_is_reused_only_for_identical_input(lsun_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = lsun(lsun_root)
    caches = sorted((lsun_root / "cache").glob("*.npy"))
    assert len(caches) == 2  # train and val

    def no_decoding(*args: object) -> None:
        raise AssertionError("decoded although a matching cache exists")

    with monkeypatch.context() as patch:
        patch.setattr(dataset_lsun, "_decode", no_decoding)
        np.testing.assert_array_equal(lsun(lsun_root).x_train, first.x_train)
        with pytest.raises(AssertionError, match="decoded although"):
            lsun(lsun_root, resolution=32)  # another resolution needs a fresh decode
        with pytest.raises(AssertionError, match="decoded although"):
            lsun(lsun_root, cap=6)  # so does another cap

    with lmdb.open(str(dataset_lsun.lmdb_dir(lsun_root, "train")), map_size=1 << 24) as env, env.begin(write=True) as txn:
        txn.put(b"0000", bordered_image(48, 32, shade=250))
    changed = lsun(lsun_root)
    assert abs(changed.x_train[0, 1].mean() - 250) < 3 and abs(first.x_train[0, 1].mean() - 100) < 3
    np.testing.assert_array_equal(changed.x_train[1:], first.x_train[1:])
    assert len(list((lsun_root / "cache").glob("lsun_bedroom_train_*.npy"))) == 2
    assert not list((lsun_root / "cache").glob(".*"))  # no temporary file left behind


def test_lsun_missing_lmdb_says_what_to_place(tmp_path: Path) -> None:
    with pytest.raises(AkdgError, match="bedroom_train_lmdb") as error:
        lsun(tmp_path)
    assert "http://dl.yf.io/lsun/scenes/bedroom_train_lmdb.zip" in str(error.value) and "download is false" in str(error.value)
    with pytest.raises(AkdgError, match="bedroom_train_lmdb"):  # the workflow's download hook reports the same
        datasets.download({"name": "lsun_bedroom", "root": str(tmp_path), "download": False})
    datasets.download({"name": "digits"})  # nothing to fetch: a no-op


def test_lsun_download_unzips_into_place_or_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "source"
    for split in ("train", "val"):
        write_lmdb(dataset_lsun.lmdb_dir(source, split), lsun_records(3))

    def fake_download(url: str, folder: str) -> None:  # the official zips hold bedroom_<split>_lmdb/
        name = Path(url).name
        with zipfile.ZipFile(Path(folder) / name, "w") as archive:
            for file in dataset_lsun.lmdb_dir(source, name.split("_")[1]).iterdir():
                archive.write(file, f"{name.removesuffix('.zip')}/{file.name}")

    root = tmp_path / "data"
    monkeypatch.setattr(torchvision.datasets.utils, "download_url", fake_download)
    splits = datasets.load({"name": "lsun_bedroom", "resolution": 16, "root": str(root)})  # download defaults on
    assert splits.x_train.shape == (3, 3, 16, 16) and splits.x_test.shape == (3, 3, 16, 16)
    assert sorted(path.name for path in root.iterdir()) == ["bedroom_train_lmdb", "bedroom_val_lmdb", "cache"]

    def failing_download(url: str, folder: str) -> None:
        (Path(folder) / Path(url).name).write_bytes(b"half a zip")
        raise OSError("connection reset")

    monkeypatch.setattr(torchvision.datasets.utils, "download_url", failing_download)
    shutil.rmtree(dataset_lsun.lmdb_dir(root, "val"))
    with pytest.raises(AkdgError, match="connection reset.*bedroom_val_lmdb"):
        dataset_lsun.download_lsun_bedroom(root)
    assert sorted(path.name for path in root.iterdir()) == ["bedroom_train_lmdb", "cache"]


# ---------------------------------------------------------------- folder


def save(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, lossless=True)  # WebP lossless; the other formats here are lossless anyway


def folder(path: Path, **options: object) -> datasets.ImageSplits:
    return datasets.load({"name": "folder", "resolution": 16, "test_fraction": 0.25, "split_seed": 0, "path": str(path), **options})


def test_folder_with_class_subfolders_is_labelled(tmp_path: Path) -> None:
    colours = {"cats": (200, 0, 0), "dogs": (0, 0, 200)}
    for name, colour in colours.items():
        for index in range(4):
            pixels = np.zeros((20, 31, 3), dtype=np.uint8)
            pixels[:, 5:25] = colour  # the centre square (offset (31 - 20) // 2 = 5); black margins of 5 and 6
            save(tmp_path / name / ("sub" if index == 3 else "") / f"{index}.{['PNG', 'png', 'bmp', 'WebP'][index]}", pixels)
    (tmp_path / "cats" / "notes.txt").write_text("not an image")
    splits = folder(tmp_path)
    assert splits.x_train.shape == (6, 3, 16, 16) and splits.x_test.shape == (2, 3, 16, 16)
    assert sorted(splits.y_test.tolist()) == [0, 1]  # stratified: one of each class held out
    for images, labels in ((splits.x_train, splits.y_train), (splits.x_test, splits.y_test)):
        for image, label in zip(images, labels):
            expected = np.array(colours[["cats", "dogs"][label]])[:, None, None]
            assert np.abs(image.astype(int) - expected).max() <= 4  # no black margin, right class
    assert "2 classes from first-level subfolders: cats, dogs" in splits.protocol["source"]

    gray = folder(tmp_path, channels=1, split_seed=1)
    assert gray.x_train.shape == (6, 1, 16, 16)
    assert abs(int(gray.x_train[gray.y_train == 0].mean()) - round(0.299 * 200)) <= 4


def test_folder_with_loose_images_is_unlabelled_and_prepares(tmp_path: Path) -> None:
    images = tmp_path / "images"
    rng = np.random.default_rng(0)
    for index in range(5):
        save(images / ("nested" if index % 2 else "") / f"{index}.bmp", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    splits = folder(images)
    assert splits.y_train.shape == (0,) and splits.y_test.shape == (0,) and "unlabelled" in splits.protocol["source"]
    assert len(splits.x_train) == 3 and len(splits.x_test) == 2

    out = tmp_path / "prepared.npz"
    protocol = datasets.prepare({"name": "folder", "resolution": 16, "test_fraction": 0.25, "split_seed": 0, "path": str(images)}, out)
    loaded = datasets.load_prepared(out)
    assert loaded.y_train.shape == (0,) and loaded.y_train.dtype == np.int64 and loaded.channels == 3
    assert protocol["train_samples"] == 3 and loaded.protocol["content_sha256"] == datasets.content_hash(loaded.x_train, loaded.x_test)
    from akdg.feature_extractor_classifier import train_classifier

    with pytest.raises(AkdgError, match="labelled dataset"):
        train_classifier(loaded, {"epochs": 1, "width": 8, "lr": 1e-3, "batch_size": 4, "seed": 0}, tmp_path / "x.pt")


def test_folder_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(AkdgError, match="is not a folder"):
        folder(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AkdgError, match=r"no images found .*\.png, \.webp"):
        folder(tmp_path / "empty")
    save(tmp_path / "bad" / "good.png", np.zeros((8, 8, 3), dtype=np.uint8))
    (tmp_path / "bad" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(AkdgError, match="broken.png could not be read"):
        folder(tmp_path / "bad")
    with pytest.raises(AkdgError, match="needs dataset.path"):
        datasets.load({"name": "folder", "resolution": 16, "test_fraction": 0.25, "split_seed": 0})


# ---------------------------------------------------------------- npz


def npz(path: Path, **options: object) -> datasets.ImageSplits:
    return datasets.load({"name": "npz", "resolution": 16, "test_fraction": 0.25, "split_seed": 0, "path": str(path), **options})


def test_npz_own_split_in_nhwc(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x_train, x_test = rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8), rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x_train=x_train, x_test=x_test, y_train=np.arange(6, dtype=np.uint8), y_test=np.array([1, 2]))
    splits = npz(tmp_path / "d.npz")
    np.testing.assert_array_equal(splits.x_train, x_train.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(splits.x_test, x_test.transpose(0, 3, 1, 2))
    assert splits.y_train.dtype == np.int64 and splits.y_train.tolist() == list(range(6)) and splits.y_test.tolist() == [1, 2]
    assert "NHWC" in splits.protocol["source"] and "own x_train" in splits.protocol["split"]

    red = np.zeros((4, 3, 32, 24), dtype=np.uint8)
    red[:, 0] = 255
    np.savez(tmp_path / "red.npz", x_train=red, x_test=red)
    gray = npz(tmp_path / "red.npz", channels=1)
    assert gray.x_train.shape == (4, 1, 16, 16) and np.all(gray.x_train == 76) and gray.y_train.shape == (0,)


def test_npz_images_are_split_with_the_seed(tmp_path: Path) -> None:
    images = np.arange(8, dtype=np.uint8)[:, None, None, None].repeat(16, 2).repeat(16, 3)  # image i is all i, NCHW, 1 channel
    np.savez(tmp_path / "d.npz", images=images, labels=np.array([0, 1] * 4))
    splits = npz(tmp_path / "d.npz")
    assert splits.x_train.shape == (6, 3, 16, 16) and splits.x_test.shape == (2, 3, 16, 16)
    np.testing.assert_array_equal(splits.x_test[:, 0, 0, 0] % 2, splits.y_test)  # labels travel with their images
    assert sorted([*splits.x_train[:, 0, 0, 0], *splits.x_test[:, 0, 0, 0]]) == list(range(8))
    assert sorted(splits.y_test.tolist()) == [0, 1] and splits.protocol["split"].startswith("stratified")
    again, other = npz(tmp_path / "d.npz"), npz(tmp_path / "d.npz", split_seed=3)
    np.testing.assert_array_equal(again.x_test, splits.x_test)
    assert not np.array_equal(other.x_train, splits.x_train)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"images": np.zeros((2, 3, 8, 8), dtype=np.float32)}, "'images' has dtype float32; expected uint8"),
        ({"x_train": np.zeros((2, 3, 8, 8), dtype=np.uint8)}, r"has keys \['x_train'\]; expected 'x_train' and 'x_test'"),
        ({"images": np.zeros((2, 64), dtype=np.uint8)}, r"'images' has shape \(2, 64\); expected \(N, C, H, W\)"),
        ({"images": np.zeros((2, 3, 8, 3), dtype=np.uint8)}, "both axis 1 and axis 3 could be the channel axis"),
        ({"images": np.zeros((4, 3, 8, 8), dtype=np.uint8), "labels": np.zeros(3, dtype=np.int64)}, "'labels' has shape \\(3,\\)"),
    ],
)
def test_npz_errors_name_key_and_expectation(tmp_path: Path, arrays: dict, message: str) -> None:
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(AkdgError, match=message):
        npz(tmp_path / "d.npz")


# ---------------------------------------------------------------- sources: what the workflow tracks of each dataset


def test_folder_manifest_changes_with_what_the_loader_reads_only(tmp_path: Path) -> None:
    """An image rewritten in place (same listing) or renamed changes it; a touched image or a skipped file does not."""
    images = tmp_path / "images"
    rng = np.random.default_rng(0)
    for index in range(3):
        save(images / f"{index}.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    options = {"name": "folder", "resolution": 16, "test_fraction": 0.34, "split_seed": 0, "path": str(images)}
    first = datasets.sources(options)
    assert first.files == [] and len(first.manifest) == 64

    (images / "notes.txt").write_text("not an image")
    os.utime(images / "0.png", (1, 1))
    assert datasets.sources(options).manifest == first.manifest
    original = (images / "0.png").read_bytes()
    save(images / "0.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    assert sorted(images.iterdir()) == sorted([images / "0.png", images / "1.png", images / "2.png", images / "notes.txt"])
    assert datasets.sources(options).manifest != first.manifest
    (images / "0.png").write_bytes(original)
    assert datasets.sources(options).manifest == first.manifest
    (images / "2.png").rename(images / "9.png")
    renamed = datasets.sources(options).manifest
    assert renamed != first.manifest

    protocol = datasets.prepare(options, tmp_path / "prepared.npz")
    assert protocol["manifest_sha256"] == renamed


def test_sources_are_the_files_each_loader_reads(tmp_path: Path, lsun_root: Path) -> None:
    np.savez(tmp_path / "d.npz", images=np.zeros((4, 8, 8), dtype=np.uint8))
    assert datasets.sources({"name": "npz", "path": str(tmp_path / "d.npz")}).files == [tmp_path / "d.npz"]
    with pytest.raises(AkdgError, match="absent.npz does not exist"):
        datasets.sources({"name": "npz", "path": str(tmp_path / "absent.npz")})
    assert datasets.sources({"name": "digits"}) == datasets.Sources()

    cifar = datasets.sources({"name": "cifar10", "root": str(tmp_path)}).files
    official = [name for name, _ in (*CIFAR10.train_list, *CIFAR10.test_list)] + [CIFAR10.meta["filename"]]
    assert cifar == [tmp_path / CIFAR10.base_folder / name for name in official]

    lsun_files = datasets.sources({"name": "lsun_bedroom", "root": str(lsun_root)}).files
    assert lsun_files == [dataset_lsun.lmdb_dir(lsun_root, split) / "data.mdb" for split in ("train", "val")]
    for path in lsun_files:  # the loader needs nothing else of an LMDB folder, and reads a write-protected one
        (path.parent / "lock.mdb").unlink()
        path.chmod(0o444)
    assert [path.name for path in lsun_root.rglob("*") if path.is_file()] == ["data.mdb", "data.mdb"]
    assert lsun(lsun_root).x_train.shape == (5, 3, 16, 16)
