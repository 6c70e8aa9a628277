"""DCGAN-style generator and discriminator, the paper's convolutional student.

Generator: linear to 4x4, stride-2 transposed convolutions halving the channels, a 3x3 conv to the
image (SNGAN's "standard CNN" layout: 5 weight layers at 32px). Discriminator: stride-2
convolutions doubling the channels, spectral norm on every layer (stable with either GAN loss).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils.parametrizations import spectral_norm

from akdg.architectures import ARCHITECTURES, Architecture, upsampling_stages


class Generator(nn.Module):
    """``width`` is the channel count of the last upsampling stage; each earlier stage doubles it."""

    def __init__(self, *, resolution: int, channels: int, z_dim: int, width: int) -> None:
        super().__init__()
        stages = upsampling_stages(resolution)
        self.seed_channels = width * 2**stages
        self.project = nn.Linear(z_dim, 4 * 4 * self.seed_channels)
        self.seed_norm = nn.BatchNorm2d(self.seed_channels)
        layers: list[nn.Module] = []
        for stage in range(stages):
            in_channels = width * 2 ** (stages - stage)
            layers += [nn.ConvTranspose2d(in_channels, in_channels // 2, 4, 2, 1), nn.BatchNorm2d(in_channels // 2), nn.ReLU()]
        self.upsample = nn.Sequential(*layers)
        self.to_image = nn.Conv2d(width, channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.seed_norm(self.project(z).view(-1, self.seed_channels, 4, 4)))
        return torch.tanh(self.to_image(self.upsample(h)))


class Discriminator(nn.Module):
    """``width`` is the channel count of the first stage; stride-2 stages double it down to 4x4."""

    def __init__(self, *, resolution: int, channels: int, width: int) -> None:
        super().__init__()
        stages = upsampling_stages(resolution)
        layers: list[nn.Module] = []
        in_channels = channels
        for stage in range(stages):
            out_channels = width * 2**stage
            layers += [spectral_norm(nn.Conv2d(in_channels, out_channels, 4, 2, 1)), nn.LeakyReLU(0.2)]
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.head = spectral_norm(nn.Linear(4 * 4 * in_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1)).squeeze(1)


ARCHITECTURES.register("dcgan")(Architecture(generator=Generator, discriminator=Discriminator))
