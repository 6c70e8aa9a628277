"""Generator/discriminator families, looked up by name (``sngan``, ``dcgan``, ``mlp``, ``pggan``, and plug-ins).

A family is registered once with a generator and a discriminator factory; teacher and student pick
families independently, as in the paper (SNGAN or PGGAN teacher, DCGAN or MLP student).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from akdg.registry import ARCHITECTURES, AkdgError

if TYPE_CHECKING:  # built by the family modules, which import torch; this module must not (config validation reads it)
    import torch.nn as nn


class GeneratorFactory(Protocol):
    def __call__(self, *, resolution: int, channels: int, z_dim: int, width: int) -> nn.Module: ...


class DiscriminatorFactory(Protocol):
    def __call__(self, *, resolution: int, channels: int, width: int) -> nn.Module: ...


@dataclass(frozen=True)
class Architecture:
    """A family: its two factories, and whether its generator is residual (LIT needs that)."""

    generator: GeneratorFactory
    discriminator: DiscriminatorFactory
    residual: bool = False


SUPPORTED_RESOLUTIONS = (16, 32, 64, 128, 256)


def upsampling_stages(resolution: int) -> int:
    """Number of 2x stages from the 4x4 seed to ``resolution``; rejects sizes the families can't make."""
    if resolution not in SUPPORTED_RESOLUTIONS:
        raise AkdgError(f"resolution {resolution} is not supported; use one of {SUPPORTED_RESOLUTIONS}")
    return int(math.log2(resolution // 4))


def build_generator(spec: dict[str, Any], *, resolution: int, channels: int, z_dim: int) -> nn.Module:
    """Build a generator from a ``{arch, width}`` spec."""
    family = ARCHITECTURES.get(spec["arch"])
    return family.generator(resolution=resolution, channels=channels, z_dim=z_dim, width=spec["width"])


def build_discriminator(spec: dict[str, Any], *, resolution: int, channels: int) -> nn.Module:
    """Build a discriminator from a ``{arch, width}`` spec."""
    family = ARCHITECTURES.get(spec["arch"])
    return family.discriminator(resolution=resolution, channels=channels, width=spec["width"])
