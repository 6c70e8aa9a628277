"""SNGAN ResNet generator and discriminator (Miyato et al. 2018), the paper's CIFAR-10 teacher.

The generator's shortcut is the identity (after upsampling) when channels are unchanged, which is
what the paper's 4.1M-parameter count implies; the discriminator uses spectral norm throughout.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from akdg.architectures import ARCHITECTURES, Architecture, upsampling_stages


class GeneratorBlock(nn.Module):
    """BN-ReLU-up-conv-BN-ReLU-conv with an upsampled identity shortcut."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = F.interpolate(x, scale_factor=2, mode="nearest")
        h = F.interpolate(F.relu(self.norm1(x)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.norm2(self.conv1(h))))
        return h + shortcut


class Generator(nn.Module):
    """z -> ``stem`` (linear to a 4x4 map) -> residual up-``blocks`` -> ``head`` (BN-ReLU-conv-tanh).

    The three stages are separate so that block-wise distillation (LIT) can feed and read each
    residual block on its own; ``forward`` is exactly ``head(blocks(stem(z)))``.
    """

    def __init__(self, *, resolution: int, channels: int, z_dim: int, width: int) -> None:
        super().__init__()
        self.width = width
        self.project = nn.Linear(z_dim, 4 * 4 * width)
        self.blocks = nn.ModuleList(GeneratorBlock(width) for _ in range(upsampling_stages(resolution)))
        self.norm = nn.BatchNorm2d(width)
        self.to_image = nn.Conv2d(width, channels, 3, padding=1)

    def stem(self, z: torch.Tensor) -> torch.Tensor:
        """The 4x4 feature map the first residual block takes."""
        return self.project(z).view(-1, self.width, 4, 4)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """The last block's output to an image in -1..1."""
        return torch.tanh(self.to_image(F.relu(self.norm(h))))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.stem(z)
        for block in self.blocks:
            h = block(h)
        return self.head(h)


class DiscriminatorBlock(nn.Module):
    """ReLU-conv-ReLU-conv (optionally average-pooled) with a learnable shortcut when shapes change."""

    def __init__(self, in_channels: int, out_channels: int, *, downsample: bool, first: bool) -> None:
        super().__init__()
        self.first = first
        self.downsample = downsample
        self.conv1 = spectral_norm(nn.Conv2d(in_channels, out_channels, 3, padding=1))
        self.conv2 = spectral_norm(nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.shortcut_conv = spectral_norm(nn.Conv2d(in_channels, out_channels, 1)) if downsample or in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        shortcut = x
        if self.first:  # SNGAN's "optimized" first block pools before its 1x1 shortcut conv
            shortcut = self.shortcut_conv(F.avg_pool2d(x, 2))
        elif self.shortcut_conv is not None:
            shortcut = self.shortcut_conv(x)
            shortcut = F.avg_pool2d(shortcut, 2) if self.downsample else shortcut
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        return h + shortcut


class Discriminator(nn.Module):
    """Downsampling blocks to 8x8, two plain blocks, ReLU, global sum, spectral-norm linear."""

    def __init__(self, *, resolution: int, channels: int, width: int) -> None:
        super().__init__()
        downsamplings = max(1, upsampling_stages(resolution) - 1)
        blocks = [DiscriminatorBlock(channels, width, downsample=True, first=True)]
        blocks += [DiscriminatorBlock(width, width, downsample=True, first=False) for _ in range(downsamplings - 1)]
        blocks += [DiscriminatorBlock(width, width, downsample=False, first=False) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.head = spectral_norm(nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))
        return self.head(h).squeeze(1)


ARCHITECTURES.register("sngan")(Architecture(generator=Generator, discriminator=Discriminator, residual=True))
