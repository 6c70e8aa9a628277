"""Generator/discriminator families, looked up by name (``sngan``, ``dcgan``, ``mlp``, ``pggan``, and plug-ins).

A family is registered once with a generator and a discriminator factory; teacher and student pick
families independently, as in the paper (SNGAN or PGGAN teacher, DCGAN or MLP student).

A model spec is ``{arch, width}`` plus the family's own options, if it declares any (a JSON schema
per option, e.g. DCGAN's ``stage_channels``): they reach the factories as keyword arguments. Options
that set the layout on their own (``layout``) replace ``width``. :func:`check_model` checks a spec
from the family's metadata alone, so config validation runs it without importing torch, and every
build runs it too.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from akdg.registry import ARCHITECTURES, AkdgError

if TYPE_CHECKING:  # built by the family modules, which import torch; this module must not (config validation reads it)
    import torch.nn as nn


class GeneratorFactory(Protocol):
    def __call__(self, *, resolution: int, channels: int, z_dim: int, width: int | None, **options: Any) -> nn.Module: ...


class DiscriminatorFactory(Protocol):
    def __call__(self, *, resolution: int, channels: int, width: int | None, **options: Any) -> nn.Module: ...


@dataclass(frozen=True)
class Architecture:
    """A family: its two factories, whether its generator is residual (LIT needs that), and its spec options.

    ``options_schema`` maps each extra spec key to the JSON schema of its value; ``layout`` names the
    options that, given together, set every stage's channels, so that such a spec has no ``width``
    (the factories then get ``width=None``); ``per_stage`` names list options with one entry per
    resolution from the 4x4 seed up to the image's.
    """

    generator: GeneratorFactory
    discriminator: DiscriminatorFactory
    residual: bool = False
    options_schema: dict[str, dict[str, Any]] = field(default_factory=dict)
    layout: tuple[str, ...] = ()
    per_stage: tuple[str, ...] = ()


SUPPORTED_RESOLUTIONS = (16, 32, 64, 128, 256)
LABEL_SAFE = re.compile(r"[A-Za-z0-9_.-]+")


def upsampling_stages(resolution: int) -> int:
    """Number of 2x stages from the 4x4 seed to ``resolution``; rejects sizes the families can't make."""
    if resolution not in SUPPORTED_RESOLUTIONS:
        raise AkdgError(f"resolution {resolution} is not supported; use one of {SUPPORTED_RESOLUTIONS}")
    return int(math.log2(resolution // 4))


def model_options(spec: dict[str, Any]) -> dict[str, Any]:
    """The family options of a spec: every key but ``arch`` and ``width``."""
    return {key: value for key, value in spec.items() if key not in ("arch", "width")}


def check_model(spec: dict[str, Any], resolution: int | None, where: str = "model") -> None:
    """Refuse a spec its family cannot build at ``resolution``, in a sentence that names the key (``where``: its place).

    Reads the family's metadata only (the registry index for a built-in), so no torch is imported.
    Without a resolution (a step's spec, before its data is read), per-stage lists are not counted.
    """
    info = ARCHITECTURES.metadata(spec["arch"])
    schema, layout, per_stage = info.get("options_schema", {}), info.get("layout", []), info.get("per_stage", [])
    arch, options = spec["arch"], model_options(spec)
    unknown = sorted(set(options) - set(schema))
    if unknown:
        accepted = ", ".join(["width", *schema])
        raise AkdgError(f"{where}: {arch} has no option {', '.join(unknown)}; it accepts {accepted} (see docs/architectures.md)")
    for key, value in options.items():
        error = best_match(Draft202012Validator(schema[key]).iter_errors(value))
        if error is not None:
            place = where + "." + key + "".join(f"[{part}]" for part in error.absolute_path)
            raise AkdgError(f"{place}: {error.message}; {key}: {schema[key].get('description', 'see docs/architectures.md')}")
    alternative = " and ".join(layout)
    given = [key for key in layout if key in options]
    if "width" in spec and given:
        raise AkdgError(f"{where}: give {arch} either width or {alternative}, not both ({alternative} sets every stage's channels)")
    if "width" not in spec and not layout:
        raise AkdgError(f"{where}: {arch} needs a width (its channels or hidden units), e.g. {{arch: {arch}, width: 64}}")
    if "width" not in spec and not given:
        raise AkdgError(f"{where}: {arch} needs a width or {alternative} (docs/architectures.md)")
    if "width" not in spec and len(given) < len(layout):
        missing = ", ".join(key for key in layout if key not in options)
        raise AkdgError(f"{where}: {arch} needs a width, or {alternative} together ({missing} missing)")
    stages = upsampling_stages(resolution) if resolution is not None and per_stage else None
    for key in per_stage if stages is not None else ():
        if key in options and len(options[key]) != stages + 1:
            raise AkdgError(
                f"{where}.{key} has {len(options[key])} entries, but at {resolution} px a {arch} generator has {stages + 1} "
                f"stages (the 4x4 seed and {stages} doublings): give {stages + 1}, from the seed to the last stage"
            )
    label = model_label(spec)
    if not LABEL_SAFE.fullmatch(label):
        raise AkdgError(f"{where}: its label {label!r} must be a safe file name; option values may hold letters, digits, '.' and '_'")


def model_label(spec: dict[str, Any]) -> str:
    """The name a model goes by in paths and tables: ``dcgan-w16``, ``dcgan-sc244-202-202-202``, ``pggan-fb8192-fm512``.

    Each option adds its initials (``stage_channels`` -> ``sc``) and its value, a list joined by hyphens.
    """
    parts = [spec["arch"], *([f"w{spec['width']}"] if "width" in spec else [])]
    for key, value in sorted(model_options(spec).items()):
        initials = "".join(word[:1] for word in key.split("_"))
        parts.append(initials + ("-".join(str(item) for item in value) if isinstance(value, list) else str(value)))
    return "-".join(parts)


def build_generator(spec: dict[str, Any], *, resolution: int, channels: int, z_dim: int) -> nn.Module:
    """Build a generator from a ``{arch, width, **options}`` spec."""
    check_model(spec, resolution, f"generator {model_label(spec)}")
    family = ARCHITECTURES.get(spec["arch"])
    return family.generator(resolution=resolution, channels=channels, z_dim=z_dim, width=spec.get("width"), **model_options(spec))


def build_discriminator(spec: dict[str, Any], *, resolution: int, channels: int) -> nn.Module:
    """Build a discriminator from a ``{arch, width, **options}`` spec."""
    check_model(spec, resolution, f"discriminator {model_label(spec)}")
    family = ARCHITECTURES.get(spec["arch"])
    return family.discriminator(resolution=resolution, channels=channels, width=spec.get("width"), **model_options(spec))
