"""Every bad config or argument gets one clear sentence; every valid one is accepted.

One row per case, as a user meets it: a config file (``akdg validate-config FILE``, the validation the
Snakefile runs too), ``--config`` overrides (parsed and merged by Snakemake's own functions, then
validated the same way), ``akdg`` arguments, and a few ``snakemake -n`` runs in a copy of the project.
A refused row must exit 2 (Snakemake: 1) with the sentence's fragment, no traceback, no schema dump
and no file written; an accepted row must exit 0.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

from akdg.cli import main
from akdg.config import check_spec, student_training_spec, validate_config
from akdg.training import EMA_BN_BATCHES, METHODS, Method
from conftest import REPO, copy_project, tiny_train_spec

DEFAULT = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
DELETE = object()
UNLABELLED_FIX = "use a labelled dataset (a folder: one subfolder per class; an npz: a 'labels' or 'y_train' key) or set evaluation.feature_extractor: inception-v3-compat"


class TypedByDefault(Method):
    """A plug-in's method that declares its option by its default only: a number."""

    default_options = {"weight": 0.5}


@pytest.fixture
def plugin_method(monkeypatch: pytest.MonkeyPatch) -> None:
    """TypedByDefault registered for one test only (other test files list every registered method)."""
    monkeypatch.setitem(METHODS._entries, "test-typed-by-default", TypedByDefault)


def changed(*changes: tuple[str, Any]) -> dict:
    """The default config with ``(dotted.path, value)`` changes; DELETE removes the key."""
    config = copy.deepcopy(DEFAULT)
    for path, value in changes:
        *parents, last = path.split(".")
        node = config
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is DELETE:
            del node[last]
        else:
            node[int(last) if isinstance(node, list) else last] = value
    return config


def overridden(*entries: str) -> dict:
    """The default config with ``--config`` entries, parsed and merged as Snakemake does."""
    from snakemake.cli import parse_config
    from snakemake.utils import update_config

    config = copy.deepcopy(DEFAULT)
    update_config(config, parse_config(list(entries)))
    return config


# (config or YAML text, expected fragment; None: valid). "{tmp}" in a string value is the row's temporary folder.
CONFIG_ROWS = {
    # The cases.
    "yaml-list": ("- outdir: results\n- dataset: digits\n", "holds a list; a config maps keys"),
    "yaml-scalar": ("results\n", "holds a single value; a config maps keys"),
    "outdir-empty": (changed(("outdir", "")), "outdir: '' should be non-empty"),
    "kd-weight-negative": (
        changed(("methods.akdg", {"kd_weight": -1})),
        "methods.akdg: option kd_weight: -1 is less than the minimum of 0",
    ),
    "kd-weight-word": (changed(("methods.akdg", {"kd_weight": "high"})), "methods.akdg: option kd_weight: 'high' is not of type 'number'"),
    "joint-a-above-one": (changed(("methods", {"joint": {"a": 2}})), "methods.joint: option a: 2 is greater than the maximum of 1"),
    "lit-weight-negative": (
        changed(("methods", {"lit": {"ir_weight": -0.5}}), ("students", [{"arch": "sngan", "width": 8}])),
        "methods.lit: option ir_weight: -0.5 is less than the minimum of 0",
    ),
    "dataset-path-missing": (
        changed(("dataset", {"name": "npz", "resolution": 16, "path": "{tmp}/nope.npz"})),
        "nope.npz does not exist; point it at",
    ),
    "npz-without-labels": (changed(("dataset", {"name": "npz", "resolution": 16, "path": "{tmp}/unlabelled.npz"})), UNLABELLED_FIX),
    "folder-without-classes": (changed(("dataset", {"name": "folder", "resolution": 16, "path": "{tmp}/flat"})), UNLABELLED_FIX),
    "lsun-with-the-classifier": (
        changed(
            ("dataset", {"name": "lsun_bedroom", "resolution": 16, "root": "{tmp}"}), ("evaluation.feature_extractor", "akdg-classifier")
        ),
        "dataset 'lsun_bedroom' has none",
    ),
    "kd-weight-via-config": (overridden("methods={akdg: {kd_weight: 0.5}}"), None),
    "long-form-via-config": (overridden("methods={vanilla-b64: {method: vanilla, training: {batch_size: 64}}}"), None),
    "kd-weight-word-via-config": (
        overridden("methods={akdg: {kd_weight: high}}"),
        "methods.akdg: option kd_weight: 'high' is not of type 'number'",
    ),
    "top-level-typo": (
        changed(("stepz", 10)),
        "top level: Additional properties are not allowed ('stepz' was unexpected); allowed here: plugins, outdir",
    ),
    # Valid inputs that must stay valid.
    "npz-with-labels": (changed(("dataset", {"name": "npz", "resolution": 16, "path": "{tmp}/labelled.npz"})), None),
    "folder-with-classes": (changed(("dataset", {"name": "folder", "resolution": 16, "path": "{tmp}/classes"})), None),
    "npz-without-labels-scored-by-inception": (
        changed(
            ("dataset", {"name": "npz", "resolution": 16, "path": "{tmp}/unlabelled.npz"}),
            ("evaluation.feature_extractor", "inception-v3-compat"),
        ),
        None,
    ),
    "lr-in-e-notation": ("{default}training:\n  steps: 1e3\n  batch_size: 32\n  optimizer: {lr_g: 2e-4, lr_d: 2e-4}\n", None),
    "integral-float": (changed(("z_dim", 32.0)), None),
    "quoted-numbers-and-booleans": (
        changed(("dataset.resolution", "16"), ("training.amp", "false"), ("resources", {"student": {"gpu": "1"}})),
        None,
    ),
    "compile-off-unquoted": ("{default}training: {steps: 250, batch_size: 32, compile: off}\n", None),
    "method-without-options": ("{default}methods:\n  vanilla:\n  mse:\n", None),
    "plugin-option-by-its-default": (overridden("methods={test-typed-by-default: {weight: 0.25}}"), None),
    "largest-seed": (changed(("seeds", [4294967295])), None),
    "null-via-config": (
        overridden("teacher={checkpoint: null}", "evaluation={feature_extractor: inception-v3-compat, inception_weights: null}"),
        None,
    ),
    "method-without-options-via-config": (overridden("methods={vanilla: , akdg: ~}"), None),
    # Found by fuzzing as a user who mistypes: wrong types.
    "z-dim-word": (changed(("z_dim", "abc")), "z_dim: 'abc' is not of type 'integer'"),
    "z-dim-fraction": (changed(("z_dim", 32.5)), "z_dim: 32.5 is not of type 'integer'"),
    "z-dim-boolean": (changed(("z_dim", True)), "z_dim: True is not of type 'integer'"),
    "amp-word": (changed(("training.amp", "maybe")), "training.amp: 'maybe' is not of type 'boolean'"),
    "amp-number": (changed(("training.amp", 1)), "training.amp: 1 is not of type 'boolean'"),
    "test-fraction-percent": (changed(("dataset.test_fraction", "20%")), "dataset.test_fraction: '20%' is not of type 'number'"),
    "plugin-option-word": (
        overridden("methods={test-typed-by-default: {weight: heavy}}"),
        "option weight: 'heavy' is not of type 'number'",
    ),
    "long-form-option-word": (
        changed(("methods", {"v": {"method": "akdg", "options": {"kd_weight": "x"}}})),
        "methods.v.options: option kd_weight: 'x' is not",
    ),
    "long-form-method-number": (changed(("methods", {"v": {"method": 5}})), "methods.v.method: 5 is not of type 'string'"),
    "inception-weights-number": (
        changed(("evaluation.inception_weights", 5)),
        "evaluation.inception_weights: 5 is not of type 'string', 'null'",
    ),
    "infinite-via-config": (overridden("training={max_abs_loss: 1e999}"), "training.max_abs_loss: '1e999' is not of type 'number'"),
    # Negative, empty and very large values.
    "steps-negative": (changed(("training.steps", -5)), "training.steps: -5 is less than the minimum of 1"),
    "seed-negative": (changed(("seeds", [-1])), "seeds[0]: -1 is less than the minimum of 0"),
    "seed-beyond-numpy": (changed(("seeds", [2**32])), "seeds[0]: 4294967296 is greater than the maximum of 4294967295"),
    "split-seed-beyond-numpy": (changed(("dataset.split_seed", 2**40)), "dataset.split_seed: 1099511627776 is greater than the maximum"),
    "width-beyond-memory": (changed(("students.0.width", 2**30)), "students[0].width: 1073741824 is greater than the maximum of 1048576"),
    "nan-in-yaml": (
        "{default}dataset: {name: digits, resolution: 16, test_fraction: .nan}\n",
        "dataset.test_fraction: 'nan' is not of type 'number'",
    ),
    "checkpoint-empty-via-config": (overridden("teacher={checkpoint: }"), "teacher.checkpoint: '' should be non-empty"),
    "weight-beyond-float": ("{default}methods: {akdg: {kd_weight: 1e999}}\n", "option kd_weight: '1e999' is not of type 'number'"),
    "loss-empty": (changed(("loss", "")), "unknown GAN loss ''"),
    "arch-empty": (changed(("students.0.arch", "")), "unknown architecture ''"),
    "method-label-empty": (changed(("methods", {"": {}})), "method label '' names files and folders"),
    "teacher-checkpoint-empty": (
        changed(("teacher", {"generator": {"arch": "sngan", "width": 32}, "checkpoint": ""})),
        "teacher.checkpoint: '' should be non-empty",
    ),
    "methods-empty": (changed(("methods", {})), "methods: {} should be non-empty"),
    "students-empty": (changed(("students", [])), "students: [] should be non-empty"),
    "lr-zero": (changed(("training.optimizer.lr_g", 0)), "training.optimizer.lr_g: 0 is less than or equal to the minimum of 0"),
    "ema-one": (changed(("training.ema_decay", 1)), "training.ema_decay: 1 is greater than or equal to the maximum of 1"),
    "gpus-negative": (changed(("resources", {"student": {"gpu": -1}})), "resources.student.gpu: -1 is less than the minimum of 0"),
    # Unknown keys at every level.
    "dataset-typo": (
        changed(("dataset.resolutoin", 16)),
        "dataset: Additional properties are not allowed ('resolutoin' was unexpected); allowed here: name, label",
    ),
    "teacher-typo": (changed(("teacher.step", 10)), "teacher: Additional properties are not allowed ('step' was unexpected)"),
    "teacher-seed-one-form": (changed(("teacher.seeds", DELETE), ("teacher.seed", 3)), None),
    "teacher-seeds-two": (changed(("teacher.seeds", [0, 1])), None),
    "teacher-seeds-two-via-config": (overridden("teacher={seeds: [0, 1]}"), None),
    "teacher-seed-and-seeds": (changed(("teacher.seed", 0)), "teacher gives both seed and seeds; keep seeds"),
    "teacher-seeds-empty": (changed(("teacher.seeds", [])), "teacher.seeds: [] should be non-empty"),
    "teacher-seeds-repeated": (changed(("teacher.seeds", [1, 1])), "teacher.seeds: [1, 1] has non-unique elements"),
    "teacher-without-a-student-seed": (
        changed(("teacher.seeds", [0, 1, 2, 3])),
        "4 teacher seeds but 3 student seeds, so the teacher(s) of seed 3 would distil into no student",
    ),
    "imported-teacher-two-seeds": (
        changed(("teacher.checkpoint", "teacher.pt"), ("teacher.seeds", [0, 1])),
        "teacher.checkpoint imports one teacher, but teacher.seeds lists 2",
    ),
    "student-typo": (changed(("students.0.widht", 8)), "students[0]: dcgan has no option widht; it accepts width, stage_channels"),
    "optimizer-typo": (
        changed(("training.optimizer.lr", 0.1)),
        "training.optimizer: Additional properties are not allowed ('lr' was unexpected); allowed here: lr_g, lr_d, betas",
    ),
    "resources-typo": (
        changed(("resources", {"students": {}})),
        "resources: Additional properties are not allowed ('students' was unexpected)",
    ),
    "long-form-typo": (
        changed(("methods", {"v": {"method": "vanilla", "trainig": {}}})),
        "methods.v: Additional properties are not allowed ('trainig' was unexpected); allowed here: method, options, training",
    ),
    "long-form-training-typo": (
        changed(("methods", {"v": {"method": "vanilla", "training": {"batch": 64}}})),
        "methods.v.training: Additional properties are not allowed ('batch' was unexpected)",
    ),
    "short-form-unknown-option": (
        changed(("methods.akdg", {"kd_wieght": 2})),
        "methods.akdg: unknown option(s) ['kd_wieght']; accepted: ['kd_weight']",
    ),
    "long-form-unknown-option": (
        changed(("methods", {"v": {"method": "vanilla", "options": {"kd_weight": 1}}})),
        "methods.v.options: unknown option(s) ['kd_weight']; accepted: none",
    ),
    # Wrong nesting.
    "steps-at-top-level": (changed(("steps", 100)), "('steps' was unexpected)"),
    "methods-as-list": (changed(("methods", ["vanilla", "mse"])), "methods: ['vanilla', 'mse'] is not of type 'object'"),
    "students-as-mapping": (
        changed(("students", {"arch": "dcgan", "width": 8})),
        "students: {'arch': 'dcgan', 'width': 8} is not of type 'array'",
    ),
    "seeds-as-number": (changed(("seeds", 0)), "seeds: 0 is not of type 'array'"),
    "plugins-as-string": (changed(("plugins", "mymodule")), "plugins: 'mymodule' is not of type 'array'"),
    "betas-as-number": (changed(("training.optimizer.betas", 0.5)), "training.optimizer.betas: 0.5 is not of type 'array'"),
    "teacher-without-steps": (changed(("teacher.steps", DELETE)), "teacher: 'steps' is a required property"),
    # Student sweeps (students: [{arch, widths: [...]}]).
    "sweep-with-width": (
        changed(("students", [{"arch": "dcgan", "width": 4, "widths": [4, 8]}])),
        "students[0] (dcgan) gives both width and widths; keep widths",
    ),
    "sweep-empty": (changed(("students", [{"arch": "dcgan", "widths": []}])), "students[0] (dcgan).widths must be a non-empty list"),
    "sweep-width-zero": (
        changed(("students", [{"arch": "mlp", "widths": [32, 0]}])),
        "students[0] (mlp).widths holds 0; a width is a positive",
    ),
    "sweep-width-fraction": (changed(("students", [{"arch": "mlp", "widths": [1.5]}])), "students[0] (mlp).widths holds 1.5"),
    "sweep-duplicate-across-entries": (
        changed(("students", [{"arch": "dcgan", "width": 8}, {"arch": "dcgan", "widths": [4, 8]}])),
        "student dcgan-w8 appears twice (in students[0] and students[1])",
    ),
    "sweep-unbuildable": (
        changed(("dataset.resolution", 32), ("students", [{"arch": "pggan", "widths": [16, 1]}])),
        "student pggan-w1 cannot be built at 32 px (pggan width 1 leaves no channels at 32 px",
    ),
    "sweep-valid": (changed(("students", [{"arch": "dcgan", "widths": [2, 4]}, {"arch": "mlp", "width": "32"}])), None),
    # Names and labels, unicode included.
    "device-gpu": (changed(("training.device", "gpu")), "training.device: 'gpu' is not one of ['auto', 'cpu', 'cuda']"),
    "extractor-name": (changed(("evaluation.feature_extractor", "inception")), "evaluation.feature_extractor: 'inception' is not one of"),
    "resolution-24": (changed(("dataset.resolution", 24)), "dataset.resolution: 24 is not one of [16, 32, 64, 128, 256]"),
    "dataset-label-unicode": (changed(("dataset.label", "cïfar")), "dataset.label 'cïfar' names files and folders"),
    "method-label-unicode": (changed(("methods", {"vänilla": {}})), "method label 'vänilla' names files and folders"),
    "method-label-spaces": (
        changed(("methods", {"vanilla b64": {"method": "vanilla"}})),
        "method label 'vanilla b64' names files and folders",
    ),
    "arch-unicode": (changed(("students.0.arch", "dcgán")), "unknown architecture 'dcgán'"),
    "plugin-missing": (changed(("plugins", ["no_such_plugin_module"])), "plugin module 'no_such_plugin_module' could not be imported"),
    # Family options in a model spec (docs/architectures.md).
    "stage-channels": (changed(("students.0", {"arch": "dcgan", "stage_channels": [16, 8, 8]})), None),
    "stage-channels-via-config": (overridden("students=[{arch: dcgan, stage_channels: [16, 8, 8]}]"), None),
    "pggan-official-layout": (changed(("students.0", {"arch": "pggan", "fmap_base": 64, "fmap_max": 16})), None),
    "stage-channels-too-few": (
        changed(("students.0", {"arch": "dcgan", "stage_channels": [16, 8]})),
        "students[0].stage_channels has 2 entries, but at 16 px a dcgan generator has 3 stages (the 4x4 seed and 2 doublings): give 3",
    ),
    "stage-channels-zero": (
        changed(("students.0", {"arch": "dcgan", "stage_channels": [16, 0, 8]})),
        "students[0].stage_channels[1]: 0 is less than the minimum of 1",
    ),
    "stage-channels-negative-discriminator": (
        changed(("student_discriminator", {"arch": "dcgan", "stage_channels": [16, 8, -8]})),
        "student_discriminator.stage_channels[2]: -8 is less than the minimum of 1",
    ),
    "stage-channels-word-via-config": (
        overridden("students=[{arch: dcgan, stage_channels: [16, many, 8]}]"),
        "students[0].stage_channels[1]: 'many' is not of type 'integer'",
    ),
    "family-option-unknown": (
        changed(("students.1", {"arch": "mlp", "width": 8, "stage_channels": [16, 8, 8]})),
        "students[1]: mlp has no option stage_channels; it accepts width (see docs/architectures.md)",
    ),
    "width-and-stage-channels": (
        changed(("students.0", {"arch": "dcgan", "width": 8, "stage_channels": [16, 8, 8]})),
        "students[0]: give dcgan either width or stage_channels, not both",
    ),
    "pggan-half-layout": (
        changed(("teacher.generator", {"arch": "pggan", "fmap_base": 8192})),
        "teacher.generator: pggan needs a width, or fmap_base and fmap_max together (fmap_max missing)",
    ),
    "pggan-output-unknown": (
        changed(("teacher.generator", {"arch": "pggan", "width": 32, "output": "linear"})),
        "teacher.generator.output: 'linear' is not one of ['tanh', 'clip']",
    ),
    "width-missing": (changed(("students.1", {"arch": "mlp"})), "students[1]: mlp needs a width (its channels or hidden units)"),
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Datasets of the user's own: npz files with and without labels, image folders with and without class subfolders."""
    root = tmp_path_factory.mktemp("inputs")
    images = np.random.default_rng(0).integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    np.savez(root / "unlabelled.npz", images=images)
    np.savez(root / "labelled.npz", images=images, labels=np.arange(20) % 2)
    for index, image in enumerate(images[:4]):
        for folder in ("flat", f"classes/{index % 2}"):
            (root / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(root / folder / f"{index}.png")
    return root


def written(config: dict | str, root: Path, inputs: Path) -> Path:
    """The row's config as a file, "{tmp}" pointing at the prepared inputs; "{default}" is the default's other top-level keys."""
    if isinstance(config, str):
        own = yaml.safe_load(config.replace("{default}", ""))
        text = config.replace(
            "{default}", yaml.safe_dump({key: value for key, value in DEFAULT.items() if key not in own}, sort_keys=False)
        )
    else:
        text = yaml.safe_dump(config, allow_unicode=True)
    path = root / "config.yaml"
    path.write_text(text.replace("{tmp}", str(inputs)))
    return path


def run_main(argv: list[str], capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture) -> tuple[int, str]:
    """``akdg ARGV`` in this process: its exit status and everything it printed or logged."""
    with caplog.at_level(logging.INFO):
        try:
            status = main(argv)
        except SystemExit as exit:  # argparse refuses an argument with status 2
            status = exit.code
    captured = capsys.readouterr()
    return status, captured.out + captured.err + caplog.text


def assert_refused(status: int, output: str, fragment: str, code: int = 2) -> None:
    assert status == code, output
    assert fragment in output, output
    assert "Traceback" not in output and "Failed validating" not in output, output


@pytest.mark.parametrize("row", list(CONFIG_ROWS))
@pytest.mark.usefixtures("plugin_method")
def test_validate_config(row: str, tmp_path: Path, inputs: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture) -> None:
    config, fragment = CONFIG_ROWS[row]
    path = written(config, tmp_path, inputs)
    status, output = run_main(["validate-config", str(path)], capsys, caplog)
    if fragment is None:
        assert status == 0, output
    else:
        assert_refused(status, output, fragment)
        errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
        assert len(errors) == 1 and "\n" not in errors[0].getMessage(), output  # one sentence, not Snakemake's dump
    assert sorted(tmp_path.iterdir()) == [path]


def test_validate_config_verbose_shows_the_schemas_full_report(tmp_path: Path) -> None:
    """In a process of its own, as a user runs it: one sentence, and with --verbose the schema's full report too."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(changed(("stepz", 10))))
    quiet, verbose = (
        subprocess.run([sys.executable, "-m", "akdg", "validate-config", *flags, str(path)], capture_output=True, text=True)
        for flags in ([], ["--verbose"])
    )
    assert_refused(
        quiet.returncode, quiet.stdout + quiet.stderr, "top level: Additional properties are not allowed ('stepz' was unexpected)"
    )
    assert verbose.returncode == 2 and "Failed validating 'additionalProperties'" in verbose.stderr


SPEC = tiny_train_spec()
DATASET = {"name": "digits", "resolution": 16}
EVALUATION = {"num_samples": 10, "kid_subset_size": 5}


def without(spec: dict, key: str) -> dict:
    return {name: value for name, value in spec.items() if name != key}


def train(spec: Any, *extra: str) -> list[str]:
    return ["train", "--spec", spec if isinstance(spec, str) else json.dumps(spec), "--data", "data.npz", "--out", "student.pt", *extra]


# akdg arguments, run in an empty folder (expected fragment; None: valid).
ARGUMENT_ROWS = {
    "train-spec-without-seed": (train(without(SPEC, "seed")), "akdg train --spec: top level: 'seed' is a required property"),
    "train-spec-steps-word": (train({**SPEC, "steps": "abc"}), "akdg train --spec: steps: 'abc' is not of type 'integer'"),
    "train-spec-typo": (train({**SPEC, "stpes": 2}), "('stpes' was unexpected)"),
    "train-spec-list": (train("[1, 2]"), "akdg train --spec: top level: [1, 2] is not of type 'object'"),
    "train-spec-not-json": (train("{steps: 2}"), "--spec must be JSON or @file.json"),
    "train-spec-missing-file": (train("@nowhere.json"), "--spec must be JSON or @file.json"),
    "train-threads-zero": (train(SPEC, "--threads", "0"), "argument --threads: '0' is not an integer >= 1"),
    "train-threads-word": (train(SPEC, "--threads", "all"), "argument --threads: 'all' is not an integer >= 1"),
    "train-checkpoint-every-negative": (
        train(SPEC, "--checkpoint-every", "-5"),
        "argument --checkpoint-every: '-5' is not an integer >= 0",
    ),
    "prepare-resolution-24": (
        ["prepare-data", "--spec", json.dumps({**DATASET, "resolution": 24}), "--out", "d.npz"],
        "resolution: 24 is not one of",
    ),
    "prepare-unknown-key": (
        ["prepare-data", "--spec", json.dumps({**DATASET, "labels": True}), "--out", "d.npz"],
        "('labels' was unexpected)",
    ),
    "prepare-without-name": (
        ["prepare-data", "--spec", json.dumps({"resolution": 16}), "--out", "d.npz"],
        "top level: 'name' is a required property",
    ),
    "download-without-resolution": (["download-data", "--spec", json.dumps({"name": "cifar10"})], "'resolution' is a required property"),
    "extractor-epochs-zero": (
        [
            "train-extractor",
            "--spec",
            json.dumps({"epochs": 0, "width": 8, "lr": 0.1, "batch_size": 8, "seed": 0}),
            "--data",
            "d.npz",
            "--out",
            "e.pt",
        ],
        "epochs: 0 is less than the minimum of 1",
    ),
    "import-teacher-without-width": (
        [
            "import-teacher",
            "--spec",
            json.dumps({"generator": {"arch": "dcgan"}, "z_dim": 8}),
            "--data",
            "d.npz",
            "--checkpoint",
            "t.pt",
            "--out",
            "o.pt",
        ],
        "akdg import-teacher --spec: generator: dcgan needs a width or stage_channels (docs/architectures.md)",
    ),
    "measure-cost-no-generators": (
        ["measure-cost", "--spec", json.dumps({"generators": {}, "z_dim": 8, "speed": {}}), "--data", "d.npz", "--out", "c.json"],
        "generators: {} should be non-empty",
    ),
    "evaluate-trained-row-without-checkpoint": (
        [
            "evaluate",
            "--spec",
            json.dumps({"evaluation": EVALUATION, "z_dim": 8, "rows": [{"kind": "trained", "run": {}, "out": "r.json"}]}),
            "--data",
            "d.npz",
            "--extractor",
            "e.json",
            "--cost",
            "c.json",
        ],
        "rows[0]: 'checkpoint' is a required property",
    ),
    "evaluate-row-kind": (
        [
            "evaluate",
            "--spec",
            json.dumps({"evaluation": EVALUATION, "z_dim": 8, "rows": [{"kind": "fake", "run": {}, "out": "r.json"}]}),
            "--data",
            "d.npz",
            "--extractor",
            "e.json",
            "--cost",
            "c.json",
        ],
        "rows[0].kind: 'fake' is not one of ['trained', 'untrained', 'real']",
    ),
    "fetch-extractor-name": (
        ["fetch-extractor", "--spec", json.dumps({"feature_extractor": "inception"}), "--out", "e.json"],
        "feature_extractor: 'inception' is not one of",
    ),
    "reference-stats-without-batch-size": (
        ["reference-stats", "--spec", "{}", "--data", "d.npz", "--extractor", "e.json", "--cache-dir", "cache", "--out", "s.json"],
        "'batch_size' is a required property",
    ),
    "plot-samples-z-dim-zero": (
        ["plot-samples", "--checkpoint", "a=a.pt", "--z-dim", "0", "--out", "s.png"],
        "argument --z-dim: '0' is not an integer >= 1",
    ),
    "plot-samples-count-negative": (
        ["plot-samples", "--checkpoint", "a=a.pt", "--z-dim", "8", "--count", "-1", "--out", "s.png"],
        "argument --count: '-1'",
    ),
    "plot-samples-seed-negative": (
        ["plot-samples", "--checkpoint", "a=a.pt", "--z-dim", "8", "--seed", "-1", "--out", "s.png"],
        "argument --seed: '-1' is not an integer >= 0",
    ),
    "run-cores-zero": (["run", "--cores", "0"], "argument --cores: '0' is not an integer >= 1"),
    "validate-config-missing": (["validate-config", "nowhere.yaml"], "config file nowhere.yaml does not exist"),
    "validate-config-folder": (["validate-config", "."], "config file . cannot be read as text"),
    "prepare-digits-test-fraction-tiny": (
        ["prepare-data", "--spec", json.dumps({**DATASET, "test_fraction": 0.001}), "--out", "d.npz"],
        "cannot split the 1797 digits with test_fraction=0.001",
    ),
    "prepare-without-test-fraction": (
        ["prepare-data", "--spec", json.dumps(DATASET), "--out", "d.npz"],
        None,
    ),  # the schema's defaults fill in
}


@pytest.mark.parametrize("row", list(ARGUMENT_ROWS))
def test_akdg_arguments(
    row: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    argv, fragment = ARGUMENT_ROWS[row]
    monkeypatch.chdir(tmp_path)
    status, output = run_main(argv, capsys, caplog)
    if fragment is None:
        assert status == 0, output
    else:
        assert_refused(status, output, fragment)
        assert list(tmp_path.iterdir()) == []


def test_values_from_the_command_line_reach_the_jobs_as_numbers() -> None:
    """What the rows above accept arrives typed: a number, not the string Snakemake parsed, and an int where one is due."""
    config = validate_config(
        overridden("methods={akdg: {kd_weight: 0.5}, vanilla-b64: {method: vanilla, training: {batch_size: 64}}}", "training={steps: 1e3}")
    )
    assert student_training_spec(config, config["students"][0], "akdg", 0)["method_options"] == {"kd_weight": 0.5}
    assert student_training_spec(config, config["students"][0], "vanilla-b64", 0)["batch_size"] == 64
    assert type(config["training"]["steps"]) is int and config["training"]["steps"] == 1000
    assert validate_config(changed(("training.compile", False)))["training"]["compile"] == "off"
    spec = {**SPEC, "steps": 10.0}
    check_spec("train", spec)
    assert type(spec["steps"]) is int


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", "-n", "-p", "all_tables", *args], cwd=workdir, capture_output=True, text=True)


def specs_in(output: str) -> list[tuple[str, dict]]:
    """Every (step, spec) of the shell commands a dry run printed."""
    return [(step, json.loads(spec)) for step, spec in re.findall(r"akdg ([a-z-]+) --spec '(\{.*?\})'", output)]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(tmp_path_factory.mktemp("project"))


# --config overrides through the Snakefile: Snakemake exits 1 with the sentence, and nothing runs.
SNAKEMAKE_ROWS = {
    "top-level-typo": (
        ["--config", "training={stpes: 10}"],
        "invalid config: training: Additional properties are not allowed ('stpes' was unexpected)",
    ),
    "option-word": (
        ["--config", "methods={akdg: {kd_weight: high}}"],
        "invalid config: methods.akdg: option kd_weight: 'high' is not of type 'number'",
    ),
    "outdir-empty": (["--config", "outdir="], "invalid config: outdir: None is not of type 'string'"),
}


@pytest.mark.slow
@pytest.mark.parametrize("row", list(SNAKEMAKE_ROWS))
def test_snakemake_refuses(row: str, project: Path) -> None:
    args, fragment = SNAKEMAKE_ROWS[row]
    result = snakemake(project, *args)
    output = result.stdout + result.stderr
    assert_refused(result.returncode, output, fragment, code=1)
    assert len(output.splitlines()) < 10, output  # the sentence, not the schema
    assert not (project / "results").exists()


@pytest.mark.slow
def test_snakemake_accepts_options_and_variants_from_the_command_line_and_every_spec_fits_its_step(project: Path, tmp_path: Path) -> None:
    """The issue's valid overrides, and every step's spec the DAG builds (two grids cover all nine) passes check_spec unchanged."""
    default = snakemake(project, "--config", "methods={akdg: {kd_weight: 0.5}, vanilla-b64: {method: vanilla, training: {batch_size: 64}}}")
    assert default.returncode == 0, default.stdout + default.stderr
    teacher = tmp_path / "teacher.pt"
    teacher.write_bytes(b"")
    other = snakemake(
        project,
        "--config",
        f"teacher={{checkpoint: {teacher}}}",
        f"dataset={{name: cifar10, resolution: 32, root: {tmp_path}}}",
        "--configfile",
        "config/test.yaml",
    )
    assert other.returncode == 0, other.stdout + other.stderr
    specs = specs_in(default.stdout) + specs_in(other.stdout)
    assert {step for step, _ in specs} == {
        "download-data",
        "prepare-data",
        "train-extractor",
        "fetch-extractor",
        "reference-stats",
        "train",
        "import-teacher",
        "measure-cost",
        "evaluate",
    }
    for step, spec in specs:
        before = copy.deepcopy(spec)
        check_spec(step, spec)
        if step == "train" and not before["ema_decay"]:
            # the one key the DAG leaves out on purpose: without an EMA it changes nothing, and a job without one
            # must not rerun when its default changes (config.training_spec); the step fills it and ignores it
            assert spec.pop("ema_bn_batches") == EMA_BN_BATCHES
        assert spec == before, step
    trained = [spec for step, spec in specs_in(default.stdout) if step == "train"]
    assert {json.dumps(spec["method_options"]) for spec in trained if spec["method"] == "akdg"} == {'{"kd_weight": 0.5}'}
    assert {spec["batch_size"] for spec in trained if spec["method"] == "vanilla"} == {32, 64}
