"""Config validation: Snakemake's JSON-schema validation, then names checked against the registries.

The same function runs in the Snakefile (before any job) and behind ``akdg validate-config``, so a
typo in a key or a name fails in one place, with a message that names it.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import yaml

from akdg.extractor_pins import resolve_source
from akdg.registry import AkdgError, import_plugins

SCHEMA = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"
log = logging.getLogger(__name__)


def coerce_command_line_strings(config: Any, schema_path: Path = SCHEMA) -> Any:
    """Turn strings into the numbers/booleans the schema asks for, in place.

    Snakemake parses nested ``--config`` values (``seeds=[0]``) with YAML's BaseLoader, which keeps
    every scalar a string; without this, such an override could never validate.
    """
    schema = yaml.safe_load(schema_path.read_text())

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref", "")
        return schema["$defs"][ref.rsplit("/", 1)[-1]] if ref.startswith("#/$defs/") else node

    def coerce(value: Any, node: dict[str, Any]) -> Any:
        node = resolve(node)
        if isinstance(value, dict):
            properties, extra = node.get("properties", {}), node.get("additionalProperties")
            for key in value:
                sub = properties.get(key, extra if isinstance(extra, dict) else None)
                if sub is not None:
                    value[key] = coerce(value[key], sub)
        elif isinstance(value, list) and isinstance(node.get("items"), dict):
            return [coerce(item, node["items"]) for item in value]
        elif isinstance(value, str):
            parsers = {"integer": int, "number": float, "boolean": {"true": True, "false": False}.__getitem__}
            kind = node.get("type")
            parser = parsers.get(kind) if isinstance(kind, str) else None
            if parser is not None:
                try:
                    return parser(value.lower() if kind == "boolean" else value)
                except (ValueError, KeyError):
                    return value  # left for the validator to report
        return value

    return coerce(config, schema)


def validate_schema(config: dict[str, Any], schema: Path = SCHEMA) -> None:
    """Validate and fill defaults in place; an unknown or ill-typed key raises AkdgError naming it."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    try:
        validate(config, str(schema), set_default=True)
    except WorkflowError as error:
        raise AkdgError(f"invalid config: {error}") from None


def check_names(config: dict[str, Any]) -> None:
    """Every dataset, architecture, method and loss name must be registered; method options known."""
    from akdg.architectures import ARCHITECTURES
    from akdg.datasets import DATASETS, DOWNLOADERS, SOURCES
    from akdg.losses import LOSSES
    from akdg.training import METHODS

    import_plugins(config.get("plugins", []))
    dataset = config["dataset"]["name"]
    DATASETS.get(dataset)
    if dataset in DOWNLOADERS.names() and dataset not in SOURCES.names():
        raise AkdgError(
            f"dataset {dataset!r} has a downloader but no sources; register the files its loader reads with "
            f"akdg.datasets.SOURCES.register({dataset!r}), so that the workflow downloads and tracks them"
        )
    LOSSES.get(config["loss"])
    models = [config["teacher"]["generator"], config["teacher"]["discriminator"], config["student_discriminator"], *config["students"]]
    for model in models:
        ARCHITECTURES.get(model["arch"])
    for label, variant in method_variants(config).items():
        method = METHODS.get(variant["method"])
        unknown = set(variant["options"]) - set(method.default_options)
        if unknown:
            raise AkdgError(f"methods.{label}: unknown option(s) {sorted(unknown)}; accepted: {sorted(method.default_options) or 'none'}")
        for student in config["students"]:
            method.check_generators(student, config["teacher"]["generator"] if method.requires_teacher else None)
    checkpoint = config["teacher"].get("checkpoint")
    if checkpoint and not Path(checkpoint).is_file():
        raise AkdgError(f"teacher.checkpoint {checkpoint} does not exist; give the path of a trained teacher or remove the key to train one")
    keys = [student_key(model) for model in config["students"]]
    if len(set(keys)) != len(keys):
        raise AkdgError(f"students: duplicate entries {keys}; each (arch, width) may appear once")
    resolve_source(config)  # extractor.source: pinned asked for where none ships
    for line in capacity_warnings(config):
        log.warning("%s", line)
    evaluation = config["evaluation"]
    if evaluation["kid_subset_size"] > evaluation["num_samples"]:
        raise AkdgError("evaluation.kid_subset_size must not exceed evaluation.num_samples")
    if evaluation["isc_splits"] > evaluation["num_samples"]:
        raise AkdgError("evaluation.isc_splits must not exceed evaluation.num_samples")
    weights = evaluation.get("inception_weights")
    if evaluation.get("feature_extractor") == "inception-v3-compat" and weights and not Path(weights).expanduser().is_file():
        raise AkdgError(
            f"evaluation.inception_weights {weights} does not exist; give the path of a copy of torch-fidelity's "
            "Inception-v3 weights, or null to use its default location (downloaded there if missing)"
        )


def check_dataset_label(config: dict[str, Any], schema_path: Path = SCHEMA) -> None:
    """Refuse a ``dataset.label`` that is not a safe path component, in a sentence (the schema's own error is a dump)."""
    dataset = config.get("dataset")
    label = dataset.get("label") if isinstance(dataset, dict) else None
    pattern = yaml.safe_load(schema_path.read_text())["properties"]["dataset"]["properties"]["label"]["pattern"]
    if isinstance(label, str) and not re.fullmatch(pattern, label):
        raise AkdgError(
            f"invalid config: dataset.label {label!r} names files and folders, so it may hold only letters, digits and _, "
            "with single hyphens between them; rename it (e.g. cifar10-rerun)"
        )


def planned_size(model: dict[str, Any], config: dict[str, Any]) -> dict[str, int]:
    """Params, layers and mult-adds of one generator of the grid, built on the meta device (no memory, no compute).

    Channels are the dataset's where the config states them (1 for digits), else 3: only the last layer depends on them.
    """
    import torch

    from akdg.architectures import build_generator
    from akdg.cost import generator_size

    dataset = config["dataset"]
    channels = dataset.get("channels", 1 if dataset["name"] == "digits" else 3)
    with torch.device("meta"):
        generator = build_generator(model, resolution=dataset["resolution"], channels=channels, z_dim=config["z_dim"])
    return generator_size(generator, config["z_dim"])


def capacity_warnings(config: dict[str, Any]) -> list[str]:
    """A sentence for every student that is not smaller than its teacher in parameters or mult-adds.

    The paper's students have about 0.5-0.65x the teacher's parameters and far fewer mult-adds; a
    grid without that gap tests distillation into a model as large as its source.
    """
    teacher = planned_size(config["teacher"]["generator"], config)
    warnings = []
    for student in config["students"]:
        size = planned_size(student, config)
        if size["params"] >= teacher["params"] or size["mult_adds"] >= teacher["mult_adds"]:
            warnings.append(
                f"student {student_key(student)} is not smaller than the teacher {student_key(config['teacher']['generator'])} "
                f"({size['params']:,} vs {teacher['params']:,} parameters, {size['mult_adds']:,} vs {teacher['mult_adds']:,} mult-adds at "
                f"{config['dataset']['resolution']} px): the grid lacks the paper's capacity gap; narrow the student or widen the teacher"
            )
    return warnings


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Coerce, validate against the schema (filling defaults), check names: the Snakefile runs this too."""
    coerce_command_line_strings(config)
    check_dataset_label(config)  # before the schema, whose error for its pattern would not say what a label may hold
    validate_schema(config)
    config["dataset"].setdefault("label", config["dataset"]["name"])  # a schema default cannot copy another key
    try:
        check_names(config)
    except AkdgError as error:
        raise AkdgError(f"invalid config: {error}") from None
    return config


def load_config(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise AkdgError(f"config file {path} does not exist")
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise AkdgError(f"config file {path} is not valid YAML: {error}") from None
    return validate_config(config)


def method_variants(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each method label's registered method, options and training overrides, whichever form the config used.

    Short form ``akdg: {kd_weight: 1.0}``: the label is the method. Long form
    ``vanilla-b2048: {method: vanilla, training: {batch_size: 2048}}``: a variant of a registered method.
    """
    variants = {}
    for label, value in config["methods"].items():
        value = value or {}
        if "method" in value:
            variants[label] = {"method": value["method"], "options": value.get("options") or {}, "training": value.get("training") or {}}
        else:
            variants[label] = {"method": label, "options": value, "training": {}}
    return variants


def student_key(model: dict[str, Any]) -> str:
    """The name a student generator goes by in paths and tables, e.g. ``dcgan-w16``."""
    return f"{model['arch']}-w{model['width']}"


def training_spec(config: dict[str, Any], generator: dict[str, Any], discriminator: dict[str, Any], method: str, options: dict[str, Any], seed: int, overrides: dict[str, Any]) -> dict[str, Any]:
    """Everything one training job depends on: the config's training block with ``overrides`` applied.

    The DAG passes it to ``akdg train --spec``; the benchmarks build theirs here too, so a benchmarked
    job is the DAG's job.
    """
    training = {**config["training"], **overrides, "optimizer": {**config["training"]["optimizer"], **overrides.get("optimizer", {})}}
    return {
        "generator": generator,
        "discriminator": discriminator,
        "method": method,
        "method_options": options,
        "seed": seed,
        "steps": training["steps"],
        "z_dim": config["z_dim"],
        "loss": config["loss"],
        "batch_size": training["batch_size"],
        "n_dis": training["n_dis"],
        "log_every": training["log_every"],
        "ema_decay": training["ema_decay"],
        "optimizer": training["optimizer"],
        "device": training["device"],  # as asked (auto by default), not as resolved: the spec is the same on every machine
        "amp": training["amp"],
        "channels_last": training["channels_last"],
        "compile": training["compile"],
        "max_abs_loss": training["max_abs_loss"],
    }


def student_training_spec(config: dict[str, Any], student: dict[str, Any], label: str, seed: int) -> dict[str, Any]:
    """The spec of one student for one method label (its variant's options and training overrides) and seed."""
    variant = method_variants(config)[label]
    return training_spec(config, student, config["student_discriminator"], variant["method"], variant["options"], seed, variant["training"])


def teacher_training_spec(config: dict[str, Any]) -> dict[str, Any]:
    """The teacher's spec: vanilla GAN training with the teacher's own steps, EMA and training overrides."""
    teacher = config["teacher"]
    overrides = {**teacher.get("training", {}), "steps": teacher["steps"], "ema_decay": teacher["ema_decay"]}
    return training_spec(config, teacher["generator"], teacher["discriminator"], "vanilla", {}, teacher["seed"], overrides)
