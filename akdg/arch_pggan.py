"""PGGAN generator and discriminator (Karras et al. 2018), the paper's LSUN bedroom teacher.

Follows the paper's Table 2 and the official code: equalized learning rate (weights stored N(0, 1)
and scaled by He's constant at run time), pixel norm after every generator convolution, leaky ReLU
0.2, a 1x1 toRGB/fromRGB per resolution, minibatch standard deviation before the discriminator's
last block, and progressive growing with fade-in. Channels follow the official rule: at resolution
``r`` they are ``min(fmap_base // (r / 2), fmap_max)``, and the discriminator's dense layer has
``min(fmap_base, fmap_max)``. ``width`` stands for ``fmap_max = width, fmap_base = 8 * width`` (so
``min(width, 16 * width // r)``): width 512 at 256 px gives the paper's 18.3M parameters. The
official LSUN layout (``fmap_base: 8192, fmap_max: 512``: 512 channels up to 32 px, 23.0M
parameters) is given by those two options instead of ``width``, so that its converted weights load
(docs/architectures.md says how).

Departures, so the model fits the shared loop: the generator ends in tanh (every family's images
are -1..1; the official output is linear and clipped afterwards, which ``output: clip`` does for
imported official weights), the GAN loss is the configured one (not necessarily WGAN-GP with
drift), and growing is driven by :meth:`set_progress`.

Growing schedule (``growth_state``): training is split into equal shares, one per resolution from
4x4 up to the full one; each new resolution is faded in linearly over the first half of its share
and trained stable over the second half. A freshly built model is fully grown (progress 1.0), so a
checkpoint always loads as the final model. The generator always returns full-resolution images
(lower stages nearest-upsampled) and the discriminator average-pools its input to the current
stage, so the rest of the code never sees the growing.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from akdg.architectures import ARCHITECTURES, Architecture, upsampling_stages
from akdg.registry import AkdgError

LEAK = 0.2


FMAP = {"type": "integer", "minimum": 1, "maximum": 1048576}
OPTIONS = {
    "fmap_base": {
        **FMAP,
        "description": "the official layout's overall multiplier: channels at r px are min(fmap_base // (r / 2), fmap_max); give with fmap_max",
    },
    "fmap_max": {**FMAP, "description": "the official layout's channel cap (512 in every official network); give with fmap_base"},
    "output": {
        "enum": ["tanh", "clip"],
        "description": (
            "the generator's last step: tanh (default, as every family), or clip to -1..1, as the official code shows its "
            "linear output; clip for imported official weights (its gradient is zero where it clips, so train with tanh)"
        ),
    },
}


def feature_maps(resolution: int, width: int | None, fmap_base: int | None = None, fmap_max: int | None = None) -> list[int]:
    """Channels at 4, 8, ..., ``resolution`` px, then the discriminator's dense width: the official ``nf(1..)`` and ``nf(0)``.

    The official ``nf(stage) = min(fmap_base // 2**stage, fmap_max)`` gives the channels at 2**(stage + 1) px.
    ``width`` alone means ``fmap_base = 8 * width, fmap_max = width``.
    """
    if width is not None:
        fmap_base, fmap_max = 8 * width, width
    assert fmap_base is not None and fmap_max is not None  # check_model refuses a spec with neither
    stages = upsampling_stages(resolution)
    channels = [min(fmap_base // 2 ** (stage + 1), fmap_max) for stage in range(stages + 1)]
    if channels[-1] < 1:
        given, fix = (
            (f"width {width}", f"a width of at least {resolution // 16}")
            if width is not None
            else (
                f"fmap_base {fmap_base}",
                f"an fmap_base of at least {resolution // 2}",
            )
        )
        raise AkdgError(f"pggan {given} leaves no channels at {resolution} px; use {fix}")
    return [*channels, min(fmap_base, fmap_max)]


def growth_state(progress: float, stages: int) -> tuple[int, float]:
    """(current stage, fade-in weight of that stage) at ``progress`` (0 = start, 1 = end of training).

    Stage 0 is 4x4, stage ``stages`` the full resolution; each gets an equal share of training and
    fades in over the first half of it (the weight is 1.0 once a stage is stable, and for stage 0).
    """
    if not 0.0 <= progress <= 1.0:
        raise AkdgError(f"growing progress must lie in [0, 1], got {progress}")
    position = progress * (stages + 1)
    stage = min(int(position), stages)
    alpha = 1.0 if stage == 0 else min(1.0, 2.0 * (position - stage))
    return stage, alpha


class EqualizedConv2d(nn.Conv2d):
    """'Same'-padded Conv2d with equalized learning rate: N(0, 1) weights scaled by gain/sqrt(fan_in)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, gain: float = math.sqrt(2.0)) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.scale = gain / math.sqrt(in_channels * kernel_size * kernel_size)

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight)
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.scale, self.bias)


class EqualizedLinear(nn.Linear):
    """Linear layer with equalized learning rate (see :class:`EqualizedConv2d`)."""

    def __init__(self, in_features: int, out_features: int, *, gain: float = math.sqrt(2.0), bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.scale = gain / math.sqrt(in_features)

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


def pixel_norm(x: torch.Tensor) -> torch.Tensor:
    """Normalise each pixel's feature vector to unit mean square (PGGAN's replacement for batch norm)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """Append one feature map: the standard deviation across groups of samples, averaged.

    Groups are of ``group_size`` (or the largest divisor of the batch below it), sample ``i`` in
    group ``i % (n / group)`` as in the official code. This is why the discriminator mixes the batch.
    """
    n, c, h, w = x.shape
    group = min(group_size, n)
    while n % group:
        group -= 1
    grouped = x.reshape(group, -1, c, h, w)
    std = (grouped - grouped.mean(dim=0)).pow(2).mean(dim=0).add(1e-8).sqrt().mean(dim=(1, 2, 3))
    return torch.cat([x, std.view(-1, 1, 1, 1).repeat(group, 1, h, w)], dim=1)


class GeneratorBlock(nn.Module):
    """Upsample 2x (nearest), then two 3x3 convolutions, each followed by leaky ReLU and pixel norm."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3)
        self.conv2 = EqualizedConv2d(out_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(x, scale_factor=2, mode="nearest")
        h = pixel_norm(F.leaky_relu(self.conv1(h), LEAK))
        return pixel_norm(F.leaky_relu(self.conv2(h), LEAK))


class Generator(nn.Module):
    """z -> pixel norm -> dense 4x4 + 3x3 conv -> one block per doubling; toRGB at every stage."""

    def __init__(
        self,
        *,
        resolution: int,
        channels: int,
        z_dim: int,
        width: int | None,
        fmap_base: int | None = None,
        fmap_max: int | None = None,
        output: str = "tanh",
    ) -> None:
        super().__init__()
        self.output = output
        stages = upsampling_stages(resolution)
        features = feature_maps(resolution, width, fmap_base, fmap_max)[:-1]
        self.resolution = resolution
        self.seed_channels = features[0]
        # The official "dense" layer: a 4x4 map per latent, one bias per channel, gain sqrt(2)/4.
        self.project = EqualizedLinear(z_dim, 16 * features[0], gain=math.sqrt(2.0) / 4, bias=False)
        self.project_bias = nn.Parameter(torch.zeros(features[0]))
        self.seed_conv = EqualizedConv2d(features[0], features[0], 3)
        self.blocks = nn.ModuleList(GeneratorBlock(features[k - 1], features[k]) for k in range(1, stages + 1))
        self.to_rgb = nn.ModuleList(EqualizedConv2d(f, channels, 1, gain=1.0) for f in features)
        self.progress = 1.0

    def set_progress(self, fraction: float) -> None:
        """Move the growing schedule to ``fraction`` of training (a plain attribute: not saved)."""
        growth_state(fraction, len(self.blocks))
        self.progress = float(fraction)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        stage, alpha = growth_state(self.progress, len(self.blocks))
        h = self.project(pixel_norm(z)).view(-1, self.seed_channels, 4, 4) + self.project_bias.view(1, -1, 1, 1)
        h = pixel_norm(F.leaky_relu(h, LEAK))
        h = pixel_norm(F.leaky_relu(self.seed_conv(h), LEAK))
        previous = h
        for block in self.blocks[:stage]:
            previous, h = h, block(h)
        image = self.to_rgb[stage](h)
        if alpha < 1.0:  # fading in: blend with the previous stage's image, upsampled
            faded = F.interpolate(self.to_rgb[stage - 1](previous), scale_factor=2, mode="nearest")
            image = torch.lerp(faded, image, alpha)
        if image.shape[-1] != self.resolution:
            image = F.interpolate(image, size=(self.resolution, self.resolution), mode="nearest")
        return torch.tanh(image) if self.output == "tanh" else image.clamp(-1.0, 1.0)


class DiscriminatorBlock(nn.Module):
    """Two 3x3 convolutions with leaky ReLU (the second changes the channels), then 2x average pooling."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = EqualizedConv2d(in_channels, in_channels, 3)
        self.conv2 = EqualizedConv2d(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv1(x), LEAK)
        return F.avg_pool2d(F.leaky_relu(self.conv2(h), LEAK), 2)


class Discriminator(nn.Module):
    """fromRGB at the current stage, blocks down to 4x4, minibatch stddev, 3x3 conv, two dense layers."""

    mixes_batch = True  # minibatch stddev: real and fake batches must be scored in separate passes

    def __init__(
        self,
        *,
        resolution: int,
        channels: int,
        width: int | None,
        fmap_base: int | None = None,
        fmap_max: int | None = None,
        output: str = "tanh",  # the generator's; a discriminator built from the same spec has no use for it
    ) -> None:
        super().__init__()
        stages = upsampling_stages(resolution)
        *features, dense = feature_maps(resolution, width, fmap_base, fmap_max)
        self.resolution = resolution
        self.from_rgb = nn.ModuleList(EqualizedConv2d(channels, f, 1) for f in features)
        # blocks[k - 1] takes stage k (4 * 2**k px) down to stage k - 1.
        self.blocks = nn.ModuleList(DiscriminatorBlock(features[k], features[k - 1]) for k in range(1, stages + 1))
        self.final_conv = EqualizedConv2d(features[0] + 1, features[0], 3)
        self.final_dense = EqualizedLinear(16 * features[0], dense)
        self.head = EqualizedLinear(dense, 1, gain=1.0)
        self.progress = 1.0

    def set_progress(self, fraction: float) -> None:
        """Move the growing schedule to ``fraction`` of training (in step with the generator's)."""
        growth_state(fraction, len(self.blocks))
        self.progress = float(fraction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stage, alpha = growth_state(self.progress, len(self.blocks))
        size = 4 * 2**stage
        if x.shape[-1] != size:
            x = F.avg_pool2d(x, x.shape[-1] // size)
        h = F.leaky_relu(self.from_rgb[stage](x), LEAK)
        if stage > 0:
            h = self.blocks[stage - 1](h)
            if alpha < 1.0:  # fading in: blend with the previous stage's fromRGB of the pooled image
                skipped = F.leaky_relu(self.from_rgb[stage - 1](F.avg_pool2d(x, 2)), LEAK)
                h = torch.lerp(skipped, h, alpha)
            for block in reversed(self.blocks[: stage - 1]):
                h = block(h)
        h = F.leaky_relu(self.final_conv(minibatch_stddev(h)), LEAK)
        h = F.leaky_relu(self.final_dense(h.flatten(1)), LEAK)
        return self.head(h).squeeze(1)


ARCHITECTURES.register("pggan")(
    Architecture(generator=Generator, discriminator=Discriminator, options_schema=OPTIONS, layout=("fmap_base", "fmap_max"))
)
