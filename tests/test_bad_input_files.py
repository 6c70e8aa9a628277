"""Every bad file a step reads, and every output it cannot write: exit status 2, one sentence, nothing written.

One row per (file kind, damage, entry point). Most rows run the real CLI in this process
(``akdg.cli.main``: its parser, its handler, its exit status); one row per entry point runs it as a
subprocess, as a Snakemake job does, so that only the sentence reaches stderr. Further down: files the
suite repairs on its own (caches), the temporaries of killed writes, and the outdir lock.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from PIL import Image
from test_datasets import lsun_records, write_lmdb

from akdg import checkpoint, dataset_lsun, metrics
from akdg.architectures import build_generator
from akdg.cli import main
from akdg.feature_extractor_classifier import FORMAT as CLASSIFIER_FORMAT
from akdg.feature_extractor_classifier import NAME as CLASSIFIER
from akdg.feature_extractor_classifier import Classifier
from akdg.io import save_torch, sha256_file, write_json
from conftest import DIGITS, copy_project, tiny_train_spec

GENERATOR = {"arch": "dcgan", "width": 4}
RUN = {"dataset": "digits", "role": "student", "generator_label": "dcgan-w4", "generator": GENERATOR, "method": "mse", "seed": 0}
TRAIN_SPEC = tiny_train_spec(method="mse")  # a distillation student (it reads a teacher), two steps
EVALUATION = {"num_samples": 100, "isc_splits": 2, "kid_subsets": 2, "kid_subset_size": 50, "batch_size": 50, "rng_seed": 0}


# ---------------------------------------------------------------- good inputs, and what damages them


@pytest.fixture(scope="module")
def good(digits_npz: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One intact file of every kind; each row copies them and damages one."""
    folder = tmp_path_factory.mktemp("good")
    files = {"data": folder / "data.npz", "generator": folder / "generator.pt", "extractor": folder / "extractor.pt"}
    shutil.copy(digits_npz, files["data"])
    generator = build_generator(GENERATOR, resolution=16, channels=1, z_dim=8)
    checkpoint.save_generator(
        files["generator"], generator, {"generator": GENERATOR, "resolution": 16, "channels": 1, "z_dim": 8, "training": {}}
    )
    config = {"channels": 1, "num_classes": 10, "width": 8}
    save_torch({"format": CLASSIFIER_FORMAT, "config": config, "state_dict": Classifier(**config).state_dict()}, files["extractor"])
    files["extractor_json"] = folder / "extractor.json"
    write_json(files["extractor_json"], {"name": CLASSIFIER, "weights_sha256": sha256_file(files["extractor"]), "test_accuracy": 0.1})
    files["cost"] = folder / "cost.json"
    write_json(files["cost"], {"dcgan-w4": {"params": 1}})
    files["run_json"] = folder / "run.json"
    write_json(files["run_json"], {"run": RUN, "metrics": {"fid": 1.0}, "protocol": {}})
    files["inception"] = folder / "inception.pth"
    torch.save({"fc.weight": torch.zeros(4, 2048)}, files["inception"])
    rng = np.random.default_rng(0)
    for name, save in (("npz_stored", np.savez), ("npz_compressed", np.savez_compressed)):
        files[name] = folder / f"{name}.npz"
        with open(files[name], "wb") as handle:
            save(handle, images=rng.integers(0, 256, size=(40, 3, 16, 16), dtype=np.uint8))
    return files


def cut(fraction: float) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * fraction)])

    return damage


def cut_last_byte(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-1])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def flip_a_bit(path: Path) -> None:
    """One bit flipped in the middle of the largest member's data: the zip's CRC-32 no longer matches."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        member = max(archive.infolist(), key=lambda info: info.compress_size)
    header = member.header_offset
    name_length, extra_length = (
        int.from_bytes(data[header + 26 : header + 28], "little"),
        int.from_bytes(data[header + 28 : header + 30], "little"),
    )
    data[header + 30 + name_length + extra_length + member.compress_size // 2] ^= 0x10
    path.write_bytes(bytes(data))


def text(path: Path) -> None:
    path.write_text("these are notes, not the file the step expects\n")


def binary(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * 4)


def folder_instead(path: Path) -> None:
    path.unlink()
    path.mkdir()


def contents(payload: object) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        path.write_text(json.dumps(payload))

    return damage


def replaced_by(kind: str) -> Callable[[Path], None]:
    """The file swapped for another kind the suite writes (a torch file for an .npz, an .npz for a torch file)."""

    def damage(path: Path) -> None:
        if kind == "torch":
            torch.save({"weights": torch.zeros(3)}, path)
        elif kind == "prepared":
            with open(path, "wb") as handle:  # a handle: numpy would add ".npz" to a path
                np.savez(handle, images=np.zeros((2, 1, 4, 4), dtype=np.uint8))
        elif kind == "object array":
            with open(path, "wb") as handle:
                np.savez(handle, images=np.array([{"an": "image"}, None], dtype=object))
        elif kind == "npy":
            with open(path, "wb") as handle:
                np.save(handle, np.zeros((4, 3, 16, 16), dtype=np.uint8))
        elif kind == "list":
            torch.save([torch.zeros(3)], path)

    return damage


# ---------------------------------------------------------------- the inputs each entry point reads


def dataset_files(target: str, good: dict[str, Path], folder: Path) -> dict[str, object]:
    """The dataset spec (and its files, made under ``folder``) whose ``target`` file a prepare-data or download-data row damages."""
    if target.startswith("npz_"):
        path = folder / "images.npz"
        shutil.copy(good[target], path)
        return {
            "spec": {"name": "npz", "path": str(path), "resolution": 16, "channels": 3, "test_fraction": 0.2, "split_seed": 0},
            target: path,
        }
    if target == "folder_image":
        rng = np.random.default_rng(0)
        (folder / "images").mkdir()
        for index in range(6):
            Image.fromarray(rng.integers(0, 256, size=(20, 20, 3), dtype=np.uint8)).save(folder / "images" / f"{index}.png")
        spec = {"name": "folder", "path": str(folder / "images"), "resolution": 16, "test_fraction": 0.2, "split_seed": 0}
        return {"spec": spec, target: folder / "images" / "3.png"}
    if target.startswith("lsun_"):
        records = lsun_records(6)
        if target == "lsun_record":
            records[b"0003"] = b"\xff\xd8 half a JPEG header, then text"
        write_lmdb(dataset_lsun.lmdb_dir(folder / "lsun", "train"), records)
        write_lmdb(dataset_lsun.lmdb_dir(folder / "lsun", "val"), lsun_records(3))
        spec = {"name": "lsun_bedroom", "root": str(folder / "lsun"), "resolution": 16, "download": False}
        return {"spec": spec, target: dataset_lsun.lmdb_dir(folder / "lsun", "train") / "data.mdb"}
    if target == "cifar_archive":
        root = folder / "cifar"
        (root / "build").mkdir(parents=True)
        (root / "build" / "data_batch_1").write_bytes(b"\x80" * 4096)
        with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
            tar.add(root / "build", arcname="cifar-10-batches-py")
        return {
            "spec": {"name": "cifar10", "root": str(root), "resolution": 32, "download": False},
            target: root / "cifar-10-python.tar.gz",
        }
    raise ValueError(target)


def inputs(entry: str, target: str, good: dict[str, Path], folder: Path, out: Path) -> tuple[list[str], dict[str, Path]]:
    """The command line of ``entry`` on copies of the good files under ``folder``, writing under ``out``; and the files by role."""
    folder.mkdir()
    copies = {  # role: (the good file, the copy's name)
        "data": ("data", "data.npz"),
        "teacher": ("generator", "teacher.pt"),
        "checkpoint": ("generator", "student.pt"),
        "cost": ("cost", "cost.json"),
        "run_json": ("run_json", "run.json"),
        "extractor": ("extractor", "extractor.pt"),
        "extractor_json": ("extractor_json", "extractor.json"),
        "inception": ("inception", "inception.pth"),
    }
    files = {role: folder / name for role, (_, name) in copies.items()}
    for role, (source, _) in copies.items():
        shutil.copy(good[source], files[role])
    files["state"] = out / "student.pt.state"
    if entry == "train" and target == "state":
        shutil.copy(good["generator"], files["state"])
    data, dataset = str(files["data"]), {}
    if entry in ("prepare-data", "download-data"):
        dataset = dataset_files(target, good, folder) if target != "out" else {"spec": DIGITS}
        files.update({key: value for key, value in dataset.items() if key != "spec"})
    evaluation = {
        "evaluation": EVALUATION,
        "z_dim": 8,
        "rows": [{"kind": "trained", "checkpoint": str(files["checkpoint"]), "out": str(out / "run.json"), "run": RUN}],
    }
    command = {
        "train": [
            "train",
            "--threads",
            "1",
            "--spec",
            json.dumps(TRAIN_SPEC),
            "--data",
            data,
            "--teacher",
            str(files["teacher"]),
            "--checkpoint-every",
            "1",
            "--out",
            str(out / "student.pt"),
        ],
        "evaluate": [
            "evaluate",
            "--threads",
            "1",
            "--spec",
            json.dumps(evaluation),
            "--data",
            data,
            "--extractor",
            str(files["extractor_json"]),
            "--cost",
            str(files["cost"]),
        ],
        "plot-samples": [
            "plot-samples",
            "--checkpoint",
            f"student={files['checkpoint']}",
            "--z-dim",
            "8",
            "--count",
            "8",
            "--out",
            str(out / "samples.png"),
        ],
        "import-teacher": [
            "import-teacher",
            "--spec",
            json.dumps({"generator": GENERATOR, "z_dim": 8}),
            "--data",
            data,
            "--checkpoint",
            str(files["teacher"]),
            "--out",
            str(out / "teacher.pt"),
        ],
        "prepare-data": ["prepare-data", "--spec", json.dumps(dataset.get("spec")), "--out", str(out / "data.npz")],
        "download-data": ["download-data", "--spec", json.dumps(dataset.get("spec")), "--out", str(out / "download.json")],
        "train-extractor": [
            "train-extractor",
            "--threads",
            "1",
            "--spec",
            json.dumps({"epochs": 1, "width": 8, "lr": 1e-3, "batch_size": 64, "seed": 0}),
            "--data",
            data,
            "--out",
            str(out / "extractor.pt"),
        ],
        "measure-cost": [
            "measure-cost",
            "--threads",
            "1",
            "--spec",
            json.dumps({"generators": {"teacher": GENERATOR}, "z_dim": 8, "speed": {"batch_size": 4, "min_run_time": 0.01, "rounds": 3}}),
            "--data",
            data,
            "--out",
            str(out / "cost.json"),
        ],
        "reference-stats": [
            "reference-stats",
            "--threads",
            "1",
            "--spec",
            json.dumps({"feature_extractor": CLASSIFIER, "batch_size": 50}),
            "--data",
            data,
            "--extractor",
            str(files["extractor_json"]),
            "--cache-dir",
            str(out / "cache"),
            "--out",
            str(out / "reference.json"),
        ],
        "fetch-extractor": [
            "fetch-extractor",
            "--spec",
            json.dumps({"feature_extractor": "inception-v3-compat", "inception_weights": str(files["inception"])}),
            "--out",
            str(out / "extractor.json"),
        ],
        "aggregate": [
            "aggregate",
            "--runs",
            str(files["run_json"]),
            "--method-order",
            "mse",
            "--dataset",
            "digits",
            "--tables-dir",
            str(out / "tables"),
            "--plots-dir",
            str(out / "plots"),
            "--metrics-dir",
            str(out / "metrics"),
        ],
    }[entry]
    return command, files


# ---------------------------------------------------------------- the table


DAMAGES: dict[str, Callable[[Path], None]] = {
    "cut to 25%": cut(0.25),
    "cut to 50%": cut(0.5),
    "cut to 60%": cut(0.6),
    "cut by 1 byte": cut_last_byte,
    "empty": empty,
    "bit flipped": flip_a_bit,
    "text": text,
    "binary": binary,
    "a folder": folder_instead,
    "a torch file": replaced_by("torch"),
    "an images-only npz": replaced_by("prepared"),
    "an object array": replaced_by("object array"),
    "an .npy file": replaced_by("npy"),
    "a list of tensors": replaced_by("list"),
    "a JSON list": contents([1, 2]),
    "a JSON object of another kind": contents({"name": CLASSIFIER}),
    "without the generator": contents({"another-generator": {"params": 1}}),
    "without its fields": contents({"run": {}}),
    "as made": lambda path: None,  # the setup made it bad (a record that is no image, an archive of other files)
}


@dataclass(frozen=True)
class Case:
    entry: str  # the akdg subcommand
    target: str  # the role of the damaged file, or "out" for an output that cannot be written
    damage: str  # a key of DAMAGES, or for "out" a key of UNWRITABLE
    expected: str  # a regular expression the sentence must match
    subprocess: bool = False

    def __str__(self) -> str:
        return f"{self.entry}|{self.target}|{self.damage}{'|subprocess' if self.subprocess else ''}"


TORCH = r"is truncated or not a torch file"
TEACHER = r"checkpoint \S+teacher\.pt "
NOT_NPZ = r"prepared dataset \S+data\.npz is not an \.npz file \(it is empty, cut short, or not a zip archive of arrays\); delete it and rerun 'akdg prepare-data'"
USER_NOT_NPZ = r"dataset\.path \S+images\.npz is not an \.npz file .*; save the images with numpy\.savez"
CASES = [
    # generator checkpoints: cut anywhere from a quarter to the last byte, emptied, a flipped bit, another kind of file
    *(
        Case("train", "teacher", damage, TEACHER + TORCH + r" \(.*\); delete it and retrain", damage == "cut to 60%")
        for damage in ("cut to 25%", "cut to 60%", "cut by 1 byte", "empty", "text", "an images-only npz")
    ),
    Case("train", "teacher", "bit flipped", TEACHER + TORCH + r" \(bad CRC-32 in \S+\); delete it and retrain"),
    Case("train", "teacher", "a folder", TEACHER + r"is a folder, not a file; pass the file itself"),
    *(
        Case("evaluate", "checkpoint", damage, r"checkpoint \S+student\.pt " + TORCH, damage == "cut by 1 byte")
        for damage in ("cut by 1 byte", "cut to 60%", "bit flipped")
    ),
    *(
        Case("plot-samples", "checkpoint", damage, r"checkpoint \S+student\.pt " + TORCH, damage == "cut to 25%")
        for damage in ("cut to 25%", "cut to 60%", "empty")
    ),
    *(
        Case(
            "import-teacher",
            "teacher",
            damage,
            r"teacher checkpoint \S+teacher\.pt " + TORCH + r" .*point teacher\.checkpoint at the right file",
            damage == "cut to 60%",
        )
        for damage in ("cut to 60%", "cut by 1 byte", "bit flipped", "text")
    ),
    # training state (resumed by train --checkpoint-every)
    *(
        Case("train", "state", damage, r"training state \S+student\.pt\.state " + TORCH + r" .*delete it to train from step 1")
        for damage in ("cut to 60%", "bit flipped", "text")
    ),
    # the prepared dataset, at every step that reads it
    *(Case("train", "data", damage, NOT_NPZ) for damage in ("cut to 50%", "empty", "text")),
    Case(
        "train",
        "data",
        "bit flipped",
        r"prepared dataset \S+data\.npz is damaged \(BadZipFile: Bad CRC-32 for file '\w+\.npy'\); delete it and rerun",
    ),
    Case(
        "train",
        "data",
        "a torch file",
        r"prepared dataset \S+data\.npz lacks x_train, y_train, protocol; delete it and rerun",  # training reads the train split alone
    ),
    Case("train", "data", "an images-only npz", r"data\.npz lacks x_train, y_train, protocol"),
    Case("evaluate", "data", "an images-only npz", r"data\.npz lacks x_train, x_test, y_train, y_test, protocol"),
    Case("evaluate", "data", "cut to 25%", NOT_NPZ),
    Case("import-teacher", "data", "bit flipped", r"data\.npz is damaged \(BadZipFile"),
    Case("train-extractor", "data", "text", NOT_NPZ, subprocess=True),
    Case("measure-cost", "data", "empty", NOT_NPZ),
    Case("reference-stats", "data", "cut to 60%", NOT_NPZ),
    # a user's .npz dataset: stored or compressed, cut, emptied, flipped; arrays of objects; not an .npz at all
    *(Case("prepare-data", name, damage, USER_NOT_NPZ) for name in ("npz_stored", "npz_compressed") for damage in ("cut to 50%", "empty")),
    *(
        Case("prepare-data", name, "bit flipped", r"dataset\.path \S+images\.npz is damaged \((BadZipFile|error): ")
        for name in ("npz_stored", "npz_compressed")
    ),
    Case("prepare-data", "npz_stored", "text", USER_NOT_NPZ),
    Case("prepare-data", "npz_stored", "an .npy file", USER_NOT_NPZ),
    Case(
        "prepare-data",
        "npz_stored",
        "an object array",
        r"images\.npz: 'images' is an array of Python objects, which akdg does not unpickle; save it as a numeric array",
    ),
    # an image folder, LSUN's LMDBs, CIFAR-10's archive
    *(
        Case("prepare-data", "folder_image", damage, r"image \S+3\.png could not be read \(.*\); fix or remove it")
        for damage in ("cut to 50%", "text", "empty")
    ),
    Case("prepare-data", "lsun_record", "as made", r"bedroom_train_lmdb: record '0003' is not a readable image \(.*\)"),
    Case(
        "prepare-data",
        "lsun_truncated",
        "cut to 50%",
        r"bedroom_train_lmdb/data\.mdb is truncated \(\d+ of at least \d+ bytes\); delete that folder, then place",
        subprocess=True,
    ),  # it crashed the process (SIGBUS) before
    Case("prepare-data", "lsun_truncated", "cut by 1 byte", r"data\.mdb is truncated", subprocess=False),
    Case(
        "download-data",
        "cifar_archive",
        "cut to 50%",
        r"cifar-10-python\.tar\.gz has the wrong MD5 \(cut short, or another file\) and dataset\.download is false; place the official",
        subprocess=True,
    ),
    Case("prepare-data", "cifar_archive", "as made", r"cifar-10-python\.tar\.gz has the wrong MD5 .* and dataset\.download is false"),
    # feature extractors: the classifier's weights and protocol, Inception's weights
    Case("evaluate", "extractor", "cut to 60%", r"feature extractor weights \S+extractor\.pt changed since \S+extractor\.json was written"),
    Case(
        "evaluate", "extractor_json", "cut to 50%", r"extractor\.json is not valid JSON \(.*\); delete it and rerun the step that makes it"
    ),
    Case("evaluate", "extractor_json", "a JSON list", r"extractor\.json holds a JSON list, not an object"),
    Case(
        "reference-stats",
        "extractor_json",
        "a JSON object of another kind",
        r"feature extractor protocol \S+extractor\.json lacks weights_sha256; delete it",
        subprocess=True,
    ),
    Case("reference-stats", "extractor_json", "binary", r"extractor\.json is not valid JSON"),
    *(
        Case(
            "fetch-extractor",
            "inception",
            damage,
            r"Inception weights file \S+inception\.pth " + TORCH + r" .*; replace it: download https://",
            damage == "cut to 60%",
        )
        for damage in ("cut to 60%", "empty")
    ),
    Case(
        "fetch-extractor",
        "inception",
        "a list of tensors",
        r"Inception weights file \S+inception\.pth is not a state dict of tensors; replace it",
    ),
    # the cost JSON and the run JSONs
    Case("evaluate", "cost", "cut to 50%", r"cost\.json is not valid JSON"),
    Case("evaluate", "cost", "a JSON list", r"cost\.json holds a JSON list, not an object"),
    Case("evaluate", "cost", "without the generator", r"cost file \S+cost\.json has no figures for dcgan-w4; rerun 'akdg measure-cost'"),
    Case("evaluate", "cost", "a folder", r"cost\.json could not be read \(Is a directory\); it is a folder: pass the file itself"),
    Case("aggregate", "run_json", "cut to 50%", r"run\.json is not valid JSON \(.*\); delete it and rerun", subprocess=True),
    Case("aggregate", "run_json", "binary", r"run\.json is not valid JSON"),
    Case("aggregate", "run_json", "a JSON list", r"run\.json holds a JSON list"),
    Case(
        "aggregate",
        "run_json",
        "without its fields",
        r"run JSON \S+run\.json lacks a field a run has \(KeyError: 'dataset'\); delete it and rerun the evaluation",
    ),
]

ENTRIES = (
    "train",
    "evaluate",
    "plot-samples",
    "import-teacher",
    "prepare-data",
    "download-data",
    "train-extractor",
    "measure-cost",
    "reference-stats",
    "fetch-extractor",
    "aggregate",
)
FIRST_OUTPUT = {  # what each entry point checks first, relative to its output folder
    "train": "student.pt",
    "evaluate": "run.json",
    "plot-samples": "samples.png",
    "import-teacher": "teacher.pt",
    "prepare-data": "data.npz",
    "download-data": "download.json",
    "train-extractor": "extractor.pt",
    "measure-cost": "cost.json",
    "reference-stats": "reference.json",
    "fetch-extractor": "extractor.json",
    "aggregate": "plots/digits_fid_vs_params.png",
}
UNWRITABLE = {  # where the output goes, and what the sentence says
    "under /proc": r"cannot write /proc/akdg-test/\S+: no file can be created in /proc \(.*\); point the output .* at a writable folder",
    "under /sys": r"cannot write /sys/akdg-test/\S+: no file can be created in /sys \(.*\); point the output",
    "under a file": r"cannot write \S+: \S+/a-file is a file, not a folder; point the output",
    "a folder in the way": r"cannot write \S+: a folder of that name is in the way; move it away or point the output",
    "read-only mount": r"cannot write \S+: no file can be created in \S+/read-only \(Read-only file system\); point the output",
}
CASES += [
    Case(entry, "out", where, UNWRITABLE[where], subprocess=entry == "measure-cost" and where == "under /proc")
    for entry in ENTRIES
    for where in UNWRITABLE
    if where != "read-only mount"
]
CASES += [Case("train", "out", "read-only mount", UNWRITABLE["read-only mount"], subprocess=True)]


def files_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if not path.is_dir()) if folder.is_dir() else []


def read_only_mount(folder: Path) -> list[str]:
    """A command prefix that runs the rest with ``folder`` a read-only tmpfs, in a mount namespace of its own (needs root)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("a read-only mount needs root and unshare(1)")
    probe = subprocess.run(["unshare", "-m", "mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)], capture_output=True)
    if probe.returncode:
        pytest.skip(f"cannot mount here: {probe.stderr.decode().strip()}")
    return ["unshare", "-m", "sh", "-c", f'mount -t tmpfs -o ro,size=64k tmpfs {folder} && exec "$0" "$@"']


@pytest.mark.parametrize("case", [pytest.param(case, marks=pytest.mark.slow) if case.subprocess else case for case in CASES], ids=str)
def test_bad_input_or_output_exits_2_with_one_sentence_and_writes_nothing(
    case: Case, good: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    out = (
        {
            "under /proc": Path("/proc/akdg-test"),
            "under /sys": Path("/sys/akdg-test"),
            "under a file": tmp_path / "a-file" / "out",
            "read-only mount": tmp_path / "read-only",
        }.get(case.damage, tmp_path / "out")
        if case.target == "out"
        else tmp_path / "out"
    )
    if case.target == "out" and case.damage == "under a file":
        (tmp_path / "a-file").write_text("a file where the output folder should be\n")
    (tmp_path / "out").mkdir()
    command, files = inputs(case.entry, case.target, good, tmp_path / "in", out)
    if case.target == "out" and case.damage == "a folder in the way":
        (out / FIRST_OUTPUT[case.entry]).mkdir(parents=True)
    elif case.target == "out" and case.damage == "read-only mount":
        out.mkdir()
    elif case.target != "out":
        DAMAGES[case.damage](files[case.target])
    before = files_under(tmp_path / "out")

    if case.subprocess:
        prefix = read_only_mount(out) if case.damage == "read-only mount" else []
        result = subprocess.run([*prefix, sys.executable, "-m", "akdg", *command], capture_output=True, text=True)
        status, output = result.returncode, result.stdout + result.stderr
        assert output.count(" ERROR ") == 1, output
    else:
        caplog.clear()
        status, output = main(command), caplog.text
    assert status == 2, output
    assert re.search(case.expected, output), f"{case.expected!r} not in:\n{output}"
    assert "Traceback" not in output and "allow_pickle" not in output
    assert files_under(tmp_path / "out") == before, "the step left a file behind"
    if case.damage == "under a file":
        assert (tmp_path / "a-file").read_text() == "a file where the output folder should be\n"


def test_the_table_covers_every_entry_point_from_a_subprocess():
    assert {case.entry for case in CASES if case.subprocess} == set(ENTRIES)
    assert {case.entry for case in CASES if case.target != "out"} == set(ENTRIES)


# ---------------------------------------------------------------- caches: repaired, not refused


def test_a_damaged_reference_cache_is_removed_and_computed_again(good: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture):
    cache = tmp_path / "cache"
    spec = json.dumps({"feature_extractor": CLASSIFIER, "batch_size": 200})
    arguments = ["--threads", "1", "--data", str(good["data"]), "--extractor", str(good["extractor_json"])]
    assert main(["reference-stats", "--spec", spec, *arguments, "--cache-dir", str(cache), "--out", str(tmp_path / "reference.json")]) == 0
    entry = sorted(cache.glob("*.pt"))
    flip_a_bit(entry[0])  # torch would load it (it checks no CRC-32) and score with a wrong feature
    rows = [{"kind": "real", "out": str(tmp_path / "real.json"), "run": {**RUN, "role": "reference", "kind": "real"}}]
    evaluation = json.dumps({"evaluation": EVALUATION, "z_dim": 8, "rows": rows})
    caplog.clear()
    assert main(["evaluate", "--spec", evaluation, *arguments, "--cost", str(good["cost"]), "--reference-cache", str(cache)]) == 0
    assert f"reference feature cache {entry[0]} is damaged; removing its entry" in caplog.text
    assert sorted(cache.glob("*.pt")) == entry and all(metrics._intact_zip(path) for path in entry)
    assert json.loads((tmp_path / "real.json").read_text())["protocol"]["reference_cache"]["hit"] is False


def test_lsun_decodes_again_over_a_damaged_cache_a_full_disk_or_an_unwritable_cache(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    root = tmp_path / "lsun"
    write_lmdb(dataset_lsun.lmdb_dir(root, "val"), lsun_records(3))
    images = dataset_lsun.load_lmdb_split(root, "val", 16, None)[0]
    (cache,) = (root / "cache").glob("*.npy")
    cut(0.5)(cache)
    np.testing.assert_array_equal(dataset_lsun.load_lmdb_split(root, "val", 16, None)[0], images)
    assert f"cache {cache} is damaged" in caplog.text
    np.testing.assert_array_equal(np.load(cache), images)  # written again, whole

    cache.unlink()
    if Path("/dev/full").exists():  # a full disk: every write of the cache fails with ENOSPC
        cache.with_name(f".{cache.name}.tmp-{os.getpid()}").symlink_to("/dev/full")
        np.testing.assert_array_equal(dataset_lsun.load_lmdb_split(root, "val", 16, None)[0], images)
        assert f"could not cache the decoded images in {cache} (could not write {cache}: no space left on the device" in caplog.text
        assert list((root / "cache").iterdir()) == []

    shutil.rmtree(root / "cache")
    (root / "cache").write_text("a file where the cache folder goes\n")  # as a read-only dataset folder, the cache cannot be written
    np.testing.assert_array_equal(dataset_lsun.load_lmdb_split(root, "val", 16, None)[0], images)
    assert "could not cache the decoded images" in caplog.text


# ---------------------------------------------------------------- the temporaries of killed writes

KILLED_WRITER = """
import sys, time
from akdg.io import atomic_write
with atomic_write(sys.argv[1]) as tmp:
    tmp.write_bytes(b"the first half of a training state")
    print("writing", flush=True)
    time.sleep(600)  # until the kill
"""


def test_a_rerun_removes_the_temporaries_its_killed_writes_left_and_no_others(
    digits_npz: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    out = tmp_path / "student.pt"
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, f"{out}.state"], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline() == "writing\n"
    writer.send_signal(signal.SIGKILL)  # as a scheduler's time limit: no clean-up runs
    writer.wait()
    writer.stdout.close()
    stale = [tmp_path / f".student.pt.state.tmp-{writer.pid}", tmp_path / f".student.pt.tmp-{writer.pid}"]
    stale[1].write_bytes(b"half a checkpoint")
    assert stale[0].read_bytes() == b"the first half of a training state"
    kept = [tmp_path / f".student.pt.tmp-{os.getppid()}", tmp_path / f".other.pt.tmp-{writer.pid}"]  # a live writer's; another output's
    for path in kept:
        path.write_bytes(b"not this job's")
    spec = {**TRAIN_SPEC, "method": "vanilla"}
    assert (
        main(
            ["train", "--threads", "1", "--spec", json.dumps(spec), "--data", str(digits_npz), "--checkpoint-every", "1", "--out", str(out)]
        )
        == 0
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(["student.pt", *(path.name for path in kept)])
    for path in stale:
        assert f"removing {path}, left by a writer (PID {writer.pid}) that is gone" in caplog.text


# ---------------------------------------------------------------- the outdir lock


def dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def holder(pid: int, directory: str = "/home/someone/another-clone") -> dict[str, object]:
    return {"host": socket.gethostname(), "pid": pid, "started": "2026-01-01T09:00:00+01:00", "directory": directory}


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """Snakemake on config/test.yaml; ``--configfile`` last, as it takes every following word."""
    command = [sys.executable, "-m", "snakemake", "--cores", "1", *args, "--configfile", "config/test.yaml"]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_a_run_on_an_outdir_another_clone_holds_is_refused_naming_it_and_a_dry_run_is_not(tmp_path: Path):
    shared = tmp_path / "shared-results"
    shared.mkdir()
    lock = shared / ".akdg.lock"
    owner = holder(os.getpid(), str(tmp_path / "clone-a"))  # a live process on this host: a running DAG
    lock.write_text(json.dumps(owner))
    clone = copy_project(tmp_path / "clone-b")
    target = f"{shared}/data/digits.npz"
    refused = snakemake(clone, target, "--config", f"outdir={shared}")
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert (
        f"the outdir {shared} is in use by another run: host {owner['host']}, PID {owner['pid']}, started {owner['started']}, "
        f"in {tmp_path / 'clone-a'}; wait for it to finish, or, if that process is gone, remove {lock} and rerun"
    ) in output
    assert "Traceback" not in output
    assert sorted(path.name for path in shared.iterdir()) == [".akdg.lock"] and json.loads(lock.read_text()) == owner

    dry = snakemake(clone, "-n", target, "--config", f"outdir={shared}")
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert json.loads(lock.read_text()) == owner


@pytest.mark.slow
def test_a_stale_lock_is_taken_over_with_a_warning_and_released_when_the_run_succeeds(tmp_path: Path):
    workdir = copy_project(tmp_path)
    data = workdir / "results" / "data"
    data.mkdir(parents=True)
    for name in ("digits.npz", "digits.json"):
        (data / name).write_bytes(b"")
    lock = workdir / "results" / ".akdg.lock"
    stale = holder(dead_pid())
    lock.write_text(json.dumps(stale))
    result = snakemake(workdir, "results/data/digits.npz", "--touch", "--forceall")  # a run whose job only touches its outputs
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        f"taking over {lock}, left by a run that is gone: host {stale['host']}, PID {stale['pid']}, started {stale['started']}"
        in result.stderr
    )
    assert not lock.exists()


@pytest.mark.slow
def test_the_lock_is_released_when_the_run_fails(tmp_path: Path):
    workdir = copy_project(tmp_path)
    # names and labels pass config validation, which reads only the keys; prepare_data then refuses the float pixels
    np.savez(workdir / "images.npz", images=np.zeros((20, 1, 16, 16)), labels=np.zeros(20, dtype=np.int64))
    lock = workdir / "results" / ".akdg.lock"
    lock.parent.mkdir()
    lock.write_text(json.dumps(holder(dead_pid())))
    result = snakemake(workdir, "results/data/npz.npz", "--config", "dataset={name: npz, path: images.npz, resolution: 16}")
    assert result.returncode != 0
    assert f"taking over {lock}" in result.stderr  # so this run held it
    assert "'images' has dtype float64; expected uint8 images" in (workdir / "results" / "logs" / "npz" / "prepare_data.log").read_text()
    assert not lock.exists()


def test_lock_sentences_for_a_holder_on_another_host_a_full_disk_an_unreadable_lock_and_an_unwritable_outdir(tmp_path: Path):
    from akdg.outdir_lock import OutdirLock
    from akdg.registry import AkdgError

    lock = OutdirLock(tmp_path)
    elsewhere = {**holder(dead_pid()), "host": "node-17"}  # its PID cannot be checked from here: never taken over
    lock.path.write_text(json.dumps(elsewhere))
    with pytest.raises(AkdgError, match=r"in use by another run: host node-17, PID \d+, .*remove \S+\.akdg\.lock and rerun"):
        lock.acquire()
    lock.path.unlink()
    if Path("/dev/full").exists():
        staging = lock.path.with_name(f".akdg.lock.{lock.owner['host']}.{lock.owner['pid']}")
        staging.symlink_to("/dev/full")
        with pytest.raises(AkdgError, match=r"cannot create the lock \S+\.akdg\.lock \(No space left on device\)"):
            lock.acquire()
        assert list(tmp_path.iterdir()) == []
    lock.path.write_text("{half a lock")
    with pytest.raises(
        AkdgError, match=r"the outdir lock \S+\.akdg\.lock is unreadable .*if no run is writing to \S+, remove it and rerun"
    ):
        lock.acquire()
    with pytest.raises(AkdgError, match=r"cannot create the outdir /proc/akdg-test \(.*\); set outdir to a writable folder"):
        OutdirLock("/proc/akdg-test").acquire()
    lock.path.write_text(json.dumps({**lock.owner, "started": "2026-01-01T09:00:00+01:00"}))  # a killed run's, whose PID is ours now
    lock.acquire()
    assert json.loads(lock.path.read_text()) == lock.owner and sorted(path.name for path in tmp_path.iterdir()) == [".akdg.lock"]
    lock.release()
    assert list(tmp_path.iterdir()) == []
