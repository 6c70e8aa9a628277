"""What config validation checks of a method without importing it: its options and the generators it can train
(and of a loss: its parameters, declared the same way).

A method's class declares these (``default_options``, ``option_schemas``, ``residual_generators``);
the registry index stores them, so that a bad option or an unsuitable student fails at validation,
before any job runs and without importing torch. The class's own checks call the same functions.
"""

from __future__ import annotations

from typing import Any, Callable

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from akdg.registry import AkdgError

WEIGHT = {"type": "number", "minimum": 0}  # a loss term's weight: a negative one rewards moving away from the term's target
OPTION_TYPES = {bool: "boolean", int: "number", float: "number", str: "string"}  # JSON types of options declared by their default only


LossSpec = str | dict[str, Any]  # a config's loss: a registered name, or {name: ..., parameter: value, ...}


def loss_name(spec: LossSpec) -> str:
    return spec if isinstance(spec, str) else spec["name"]


def loss_parameters(spec: LossSpec) -> dict[str, Any]:
    return {} if isinstance(spec, str) else {key: value for key, value in spec.items() if key != "name"}


def options_schema(default_options: dict[str, Any], option_schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The JSON schema of a method's options: each one's declared schema, or its default's type."""
    properties = {
        key: option_schemas.get(key, {"type": OPTION_TYPES[type(default)]} if type(default) in OPTION_TYPES else {})
        for key, default in default_options.items()
    }
    return {"type": "object", "additionalProperties": False, "properties": properties}


def check_options(schema: dict[str, Any], options: dict[str, Any], where: str) -> None:
    """Raise AkdgError naming the first unknown option, or one of the wrong type or out of range (``where``: its place)."""
    unknown = sorted(set(options) - set(schema["properties"]))
    if unknown:
        raise AkdgError(f"{where}: unknown option(s) {unknown}; accepted: {sorted(schema['properties']) or 'none'}")
    for key, value in options.items():
        error = best_match(Draft202012Validator(schema["properties"][key]).iter_errors(value))
        if error is not None:
            raise AkdgError(f"{where}: option {key}: {error.message}")


def check_residual_generators(
    method: str, student_spec: dict[str, Any], teacher_spec: dict[str, Any] | None, is_residual: Callable[[str], bool]
) -> None:
    """Refuse a student (and teacher) that is not a residual family, for a method that matches residual blocks."""
    names = f"student {student_spec['arch']!r}" + (f", teacher {teacher_spec['arch']!r}" if teacher_spec else "")
    for role, spec in (("student", student_spec), ("teacher", teacher_spec)):
        if spec is not None and not is_residual(spec["arch"]):
            raise AkdgError(
                f"{method} distils between residual blocks; {role} {spec['arch']!r} is not residual "
                f"(use a residual family such as sngan for the {role}; got {names})"
            )
