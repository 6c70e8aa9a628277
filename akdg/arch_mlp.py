"""Fully connected generator (the paper's MLP student, 4 linear layers) and an MLP discriminator."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils.parametrizations import spectral_norm

from akdg.architectures import ARCHITECTURES, Architecture, upsampling_stages


class Generator(nn.Module):
    """z -> 3 hidden layers of ``width`` units (BN, ReLU) -> pixels, tanh."""

    def __init__(self, *, resolution: int, channels: int, z_dim: int, width: int) -> None:
        super().__init__()
        upsampling_stages(resolution)  # validates the resolution like the convolutional families
        self.shape = (channels, resolution, resolution)
        layers: list[nn.Module] = []
        in_features = z_dim
        for _ in range(3):
            layers += [nn.Linear(in_features, width), nn.BatchNorm1d(width), nn.ReLU()]
            in_features = width
        layers.append(nn.Linear(width, channels * resolution * resolution))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(z)).view(-1, *self.shape)


class Discriminator(nn.Module):
    """pixels -> 2 hidden layers of ``width`` units (spectral norm, LeakyReLU) -> score."""

    def __init__(self, *, resolution: int, channels: int, width: int) -> None:
        super().__init__()
        upsampling_stages(resolution)
        self.net = nn.Sequential(
            spectral_norm(nn.Linear(channels * resolution * resolution, width)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Linear(width, width)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Linear(width, 1)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).squeeze(1)


ARCHITECTURES.register("mlp")(Architecture(generator=Generator, discriminator=Discriminator))
