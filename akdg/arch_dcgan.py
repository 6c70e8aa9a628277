"""DCGAN-style generator and discriminator, the paper's convolutional student.

Generator: linear to 4x4, stride-2 transposed convolutions, a 3x3 conv to the image (SNGAN's
"standard CNN" layout: 5 weight layers at 32px). By default ``width`` is the last stage's channels
and each earlier stage has twice its successor's; ``stage_channels`` instead lists every stage's
channels, from the 4x4 seed to the last stage (e.g. a flatter schedule with a channel floor, which
matches both the paper's parameters and its mult-adds; docs/architectures.md). Discriminator:
stride-2 convolutions mirroring the generator's stages (doubling from ``width``), spectral norm on
every layer (stable with either GAN loss).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils.parametrizations import spectral_norm

from akdg.architectures import ARCHITECTURES, Architecture, upsampling_stages

STAGE_CHANNELS = {
    "type": "array",
    "items": {"type": "integer", "minimum": 1, "maximum": 1048576},
    "minItems": 1,
    "description": (
        "the generator's channels at every stage, from the 4x4 seed to the last (one entry per resolution: "
        "4 at 32 px, 7 at 256 px), in place of width; the discriminator mirrors them"
    ),
}


def schedule(resolution: int, width: int | None, stage_channels: list[int] | None) -> list[int]:
    """Channels from the 4x4 seed to the last stage: the given list, or ``width`` doubled back to the seed."""
    if stage_channels is not None:
        return list(stage_channels)
    stages = upsampling_stages(resolution)
    return [width * 2 ** (stages - stage) for stage in range(stages + 1)]


class Generator(nn.Module):
    """z -> linear to ``channels[0]`` x 4x4 -> one transposed conv per stage -> 3x3 conv to the image."""

    def __init__(self, *, resolution: int, channels: int, z_dim: int, width: int | None, stage_channels: list[int] | None = None) -> None:
        super().__init__()
        features = schedule(resolution, width, stage_channels)
        self.seed_channels = features[0]
        self.project = nn.Linear(z_dim, 4 * 4 * self.seed_channels)
        self.seed_norm = nn.BatchNorm2d(self.seed_channels)
        layers: list[nn.Module] = []
        for in_channels, out_channels in zip(features, features[1:]):
            layers += [nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1), nn.BatchNorm2d(out_channels), nn.ReLU()]
        self.upsample = nn.Sequential(*layers)
        self.to_image = nn.Conv2d(features[-1], channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.seed_norm(self.project(z).view(-1, self.seed_channels, 4, 4)))
        return torch.tanh(self.to_image(self.upsample(h)))


class Discriminator(nn.Module):
    """Stride-2 stages down to 4x4: stage k has the generator's channels k stages before its last (``width * 2**k`` by default)."""

    def __init__(self, *, resolution: int, channels: int, width: int | None, stage_channels: list[int] | None = None) -> None:
        super().__init__()
        features = schedule(resolution, width, stage_channels)
        layers: list[nn.Module] = []
        in_channels = channels
        for out_channels in reversed(features[1:]):
            layers += [spectral_norm(nn.Conv2d(in_channels, out_channels, 4, 2, 1)), nn.LeakyReLU(0.2)]
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.head = spectral_norm(nn.Linear(4 * 4 * in_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1)).squeeze(1)


ARCHITECTURES.register("dcgan")(
    Architecture(
        generator=Generator,
        discriminator=Discriminator,
        options_schema={"stage_channels": STAGE_CHANNELS},
        layout=("stage_channels",),
        per_stage=("stage_channels",),
    )
)
