"""Config validation: Snakemake's JSON-schema validation, then names checked against the registries.

The same function runs in the Snakefile (before any job) and behind ``akdg validate-config``, so a
typo in a key or a name fails in one place, with a message that names it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from akdg.registry import AkdgError, import_plugins

SCHEMA = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"


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
    from akdg.datasets import DATASETS
    from akdg.losses import LOSSES
    from akdg.training import METHODS

    import_plugins(config.get("plugins", []))
    DATASETS.get(config["dataset"]["name"])
    LOSSES.get(config["loss"])
    models = [config["teacher"]["generator"], config["teacher"]["discriminator"], config["student_discriminator"], *config["students"]]
    for model in models:
        ARCHITECTURES.get(model["arch"])
    for name, options in config["methods"].items():
        method = METHODS.get(name)
        unknown = set(options or {}) - set(method.default_options)
        if unknown:
            raise AkdgError(f"methods.{name}: unknown option(s) {sorted(unknown)}; accepted: {sorted(method.default_options) or 'none'}")
    keys = [student_key(model) for model in config["students"]]
    if len(set(keys)) != len(keys):
        raise AkdgError(f"students: duplicate entries {keys}; each (arch, width) may appear once")
    evaluation = config["evaluation"]
    if evaluation["kid_subset_size"] > evaluation["num_samples"]:
        raise AkdgError("evaluation.kid_subset_size must not exceed evaluation.num_samples")
    if evaluation["isc_splits"] > evaluation["num_samples"]:
        raise AkdgError("evaluation.isc_splits must not exceed evaluation.num_samples")


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    validate_schema(config)
    check_names(config)
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


def student_key(model: dict[str, Any]) -> str:
    """The name a student generator goes by in paths and tables, e.g. ``dcgan-w16``."""
    return f"{model['arch']}-w{model['width']}"
