"""Tests for the generator/discriminator families in ``akdg.architectures`` (CPU only, small widths).

Covers, for every built-in family (sngan, dcgan, mlp, pggan):
  * output shapes / value range at 16, 32 and 64 px, for 1- and 3-channel images;
  * one hinge-loss discriminator step and one generator step with Adam;
  * parameter counts against a closed-form hand calculation written out layer by layer;
  * weight-layer counts (``akdg.cost.count_weight_layers``) against the paper's "layers" column;
  * errors for an unknown family name and an unsupported resolution.
Then: the paper-sized configurations against Tables I and II (and docs/architectures.md), PGGAN's
progressive growing (schedule, fade-in continuity, the training loop's progress hook, checkpoints,
the two-pass discriminator update) and the cost module's layer counting and speed samples.

The hand calculations below deliberately do NOT import or inspect the model code: they are the
arithmetic a reader would do from the layer lists in the modules' docstrings.
Conventions: Linear(i, o) = i*o + o; Conv2d(i, o, k) = i*o*k*k + o;
ConvTranspose2d(i, o, k) = i*o*k*k + o; BatchNorm(C) = 2*C (weight and bias; running stats are
buffers); spectral norm adds no parameters (its u/v vectors are buffers, the weight is just moved
to ``parametrizations.weight.original``).
"""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch.utils.flop_counter import FlopCounterMode

from akdg import checkpoint
from akdg.arch_pggan import growth_state
from akdg.architectures import ARCHITECTURES, SUPPORTED_RESOLUTIONS, build_discriminator, build_generator
from akdg.config import validate_config
from akdg.cost import count_parameters, count_weight_layers, generator_size, measure_speeds
from akdg.losses import LOSSES
from akdg.registry import AkdgError
from akdg.training import METHODS, TrainContext, train
from conftest import REPO

FAMILIES = ("sngan", "dcgan", "mlp", "pggan")
RESOLUTIONS = (16, 32, 64)
# Small widths keep the whole file fast on CPU (mimicry's ngf=16 style for the conv families).
SMALL_WIDTH = {"sngan": 16, "dcgan": 16, "mlp": 32, "pggan": 16}
Z_DIM = 32


def _stages(resolution: int) -> int:
    """2x upsampling stages from a 4x4 seed: 16 -> 2, 32 -> 3, 64 -> 4."""
    return {16: 2, 32: 3, 64: 4, 128: 5, 256: 6}[resolution]


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------------------------------
# Hand-calculated parameter counts
# --------------------------------------------------------------------------------------------------


def linear(i: int, o: int) -> int:
    return i * o + o


def conv(i: int, o: int, k: int) -> int:
    return i * o * k * k + o


def conv_t(i: int, o: int, k: int) -> int:
    return i * o * k * k + o


def bn(c: int) -> int:
    return 2 * c


def expected_sngan_generator(resolution: int, channels: int, z_dim: int, width: int) -> int:
    w, s = width, _stages(resolution)
    total = 0
    # project: Linear(z_dim -> 4*4*w)                                  = z*16w + 16w
    total += linear(z_dim, 16 * w)
    # s residual up-blocks, each w -> w with an identity shortcut (no 1x1 conv):
    #   norm1 BN(w) = 2w; conv1 Conv3x3(w->w) = 9w^2 + w;
    #   norm2 BN(w) = 2w; conv2 Conv3x3(w->w) = 9w^2 + w            -> 18w^2 + 6w per block
    total += s * (bn(w) + conv(w, w, 3) + bn(w) + conv(w, w, 3))
    # final BN(w) = 2w, then to_image Conv3x3(w -> C)               = 9wC + C
    total += bn(w) + conv(w, channels, 3)
    return total


def expected_sngan_discriminator(resolution: int, channels: int, width: int) -> int:
    w, c = width, channels
    # Downsampling blocks take the image to 8x8: 16 -> 1, 32 -> 2, 64 -> 3 of them.
    downsamplings = max(1, _stages(resolution) - 1)
    total = 0
    # first ("optimized") block C -> w, downsampling:
    #   conv1 Conv3x3(C->w) = 9Cw + w; conv2 Conv3x3(w->w) = 9w^2 + w; shortcut Conv1x1(C->w) = Cw + w
    total += conv(c, w, 3) + conv(w, w, 3) + conv(c, w, 1)
    # (downsamplings - 1) further downsampling blocks w -> w, each with a learnable 1x1 shortcut:
    #   9w^2 + w  +  9w^2 + w  +  w^2 + w
    total += (downsamplings - 1) * (conv(w, w, 3) + conv(w, w, 3) + conv(w, w, 1))
    # 2 plain blocks w -> w at 8x8, identity shortcut: 2 * (9w^2 + w + 9w^2 + w)
    total += 2 * (conv(w, w, 3) + conv(w, w, 3))
    # head: Linear(w -> 1) = w + 1
    total += linear(w, 1)
    return total


def expected_dcgan_generator(resolution: int, channels: int, z_dim: int, width: int) -> int:
    w, s = width, _stages(resolution)
    seed = w * 2**s  # channels at 4x4; halved by each of the s stages down to w
    total = 0
    # project: Linear(z -> 16*seed) = z*16*seed + 16*seed; seed BN(seed) = 2*seed
    total += linear(z_dim, 16 * seed) + bn(seed)
    # stage k (k = 0..s-1): ConvT4x4(cin -> cin/2) = 16*cin*cin/2 + cin/2; BN(cin/2) = cin
    #   with cin = w * 2^(s-k): e.g. s=3: 8w->4w, 4w->2w, 2w->w
    for k in range(s):
        cin = w * 2 ** (s - k)
        total += conv_t(cin, cin // 2, 4) + bn(cin // 2)
    # to_image: Conv3x3(w -> C) = 9wC + C
    total += conv(w, channels, 3)
    return total


def expected_dcgan_discriminator(resolution: int, channels: int, width: int) -> int:
    w, s = width, _stages(resolution)
    total = 0
    # s stride-2 Conv4x4 stages: C -> w, w -> 2w, 2w -> 4w, ... (resolution / 2^s = 4x4 at the end)
    cin = channels
    for k in range(s):
        cout = w * 2**k
        total += conv(cin, cout, 4)  # 16*cin*cout + cout
        cin = cout
    # head: Linear(4*4*w*2^(s-1) -> 1) = 16*cin + 1
    total += linear(16 * cin, 1)
    return total


def expected_mlp_generator(resolution: int, channels: int, z_dim: int, width: int) -> int:
    w, pixels = width, channels * resolution * resolution
    # Linear(z -> w) + BN1d(w):  z*w + w + 2w
    # Linear(w -> w) + BN1d(w):  w^2 + w + 2w
    # Linear(w -> w) + BN1d(w):  w^2 + w + 2w
    # Linear(w -> C*R*R):         w*CRR + CRR
    return linear(z_dim, w) + bn(w) + linear(w, w) + bn(w) + linear(w, w) + bn(w) + linear(w, pixels)


def expected_mlp_discriminator(resolution: int, channels: int, width: int) -> int:
    w, pixels = width, channels * resolution * resolution
    # Linear(CRR -> w) = CRR*w + w; Linear(w -> w) = w^2 + w; Linear(w -> 1) = w + 1
    return linear(pixels, w) + linear(w, w) + linear(w, 1)


def _pggan_channels(resolution: int, width: int) -> list[int]:
    """Channels at 4, 8, ..., resolution px: min(width, 16*width // r), e.g. width 512 at 256 px ->
    512, 512, 512, 256, 128, 64, 32."""
    return [min(width, 16 * width // (4 * 2**k)) for k in range(_stages(resolution) + 1)]


def expected_pggan_generator(resolution: int, channels: int, z_dim: int, width: int) -> int:
    return pggan_generator_params(_pggan_channels(resolution, width), channels, z_dim)


def pggan_generator_params(f: list[int], channels: int, z_dim: int) -> int:
    """A PGGAN generator with ``f[k]`` channels at 4 * 2**k px."""
    # dense z -> 4x4 x f0 without a per-unit bias (16*f0*z), plus one bias per channel (f0)
    total = z_dim * 16 * f[0] + f[0]
    # 3x3 conv at 4x4: f0 -> f0
    total += conv(f[0], f[0], 3)
    # one block per doubling: Conv3x3 f[k-1] -> f[k], Conv3x3 f[k] -> f[k]
    total += sum(conv(f[k - 1], f[k], 3) + conv(f[k], f[k], 3) for k in range(1, len(f)))
    # a 1x1 toRGB per resolution (all are parameters, only the current one is used): f[k]*C + C
    total += sum(conv(fk, channels, 1) for fk in f)
    return total


def expected_pggan_discriminator(resolution: int, channels: int, width: int) -> int:
    f = _pggan_channels(resolution, width)
    return pggan_discriminator_params(f, f[0], channels)


def pggan_discriminator_params(f: list[int], dense: int, channels: int) -> int:
    """A PGGAN discriminator with ``f[k]`` channels at 4 * 2**k px and ``dense`` units in its first dense layer."""
    # a 1x1 fromRGB per resolution: C*f[k] + f[k]
    total = sum(conv(channels, fk, 1) for fk in f)
    # one block per halving: Conv3x3 f[k] -> f[k], Conv3x3 f[k] -> f[k-1]
    total += sum(conv(f[k], f[k], 3) + conv(f[k], f[k - 1], 3) for k in range(1, len(f)))
    # at 4x4: Conv3x3 (f0 + 1 stddev map) -> f0, dense 16*f0 -> dense, dense -> 1
    total += conv(f[0] + 1, f[0], 3) + linear(16 * f[0], dense) + linear(dense, 1)
    return total


EXPECTED_GENERATOR = {
    "sngan": expected_sngan_generator,
    "dcgan": expected_dcgan_generator,
    "mlp": expected_mlp_generator,
    "pggan": expected_pggan_generator,
}
EXPECTED_DISCRIMINATOR = {
    "sngan": expected_sngan_discriminator,
    "dcgan": expected_dcgan_discriminator,
    "mlp": expected_mlp_discriminator,
    "pggan": expected_pggan_discriminator,
}


def test_builtin_families_are_registered():
    # The parametrized tests below cover exactly these; a missing built-in family would fail here.
    assert set(FAMILIES) <= set(ARCHITECTURES.names())
    assert ARCHITECTURES.get("sngan").residual is True
    assert ARCHITECTURES.get("dcgan").residual is False
    assert ARCHITECTURES.get("mlp").residual is False
    assert ARCHITECTURES.get("pggan").residual is False


def test_hand_formulas_match_worked_numbers():
    """Pin the closed forms to fully expanded numbers, so a slip in the helpers shows up too."""
    # SNGAN CIFAR-10 generator (width 256, z 128, 32px, RGB), the paper's ~4.1M teacher:
    #   Linear 128 -> 4096:           128*4096 + 4096          =   528,384
    #   3 blocks * (2*(9*256^2+256) + 4*256) = 3 * 1,181,184   = 3,543,552
    #   BN(256)                                                =       512
    #   Conv3x3 256 -> 3:             256*3*9 + 3              =     6,915
    #   total                                                  = 4,079,363
    assert expected_sngan_generator(32, 3, 128, 256) == 4_079_363
    # DCGAN "standard CNN" generator (width 64 -> seed 512, z 128, 32px, RGB):
    #   Linear 128 -> 8192:  1,056,768;  BN(512): 1,024
    #   ConvT 512->256: 2,097,408; BN(256): 512
    #   ConvT 256->128:   524,416; BN(128): 256
    #   ConvT 128->64:    131,136; BN(64):  128
    #   Conv3x3 64->3:      1,731
    #   total: 3,813,379
    assert expected_dcgan_generator(32, 3, 128, 64) == 3_813_379
    # MLP generator (width 128, z 128, 32px, RGB):
    #   128*128+128 + 256 = 16,768 (x3 for the three hidden layers = 50,304)
    #   128*3072 + 3072 = 396,288  -> total 446,592
    assert expected_mlp_generator(32, 3, 128, 128) == 446_592
    # DCGAN discriminator (width 32, 32px, RGB): 3->32: 1,568; 32->64: 32,832; 64->128: 131,200;
    #   head 16*128 + 1 = 2,049 -> 167,649
    assert expected_dcgan_discriminator(32, 3, 32) == 167_649
    # PGGAN LSUN generator (width 512, z 512, 256px, RGB), channels 512,512,512,256,128,64,32:
    #   dense 512*16*512 + 512 bias: 4,194,816;  Conv3x3 512->512 at 4x4: 2,359,808
    #   blocks 8,16: 2 * 4,719,616;  32: 1,179,904 + 590,080;  64: 295,040 + 147,584
    #   128: 73,792 + 36,928;  256: 18,464 + 9,248;  toRGBs: 3*1,539 + 771 + 387 + 195 + 99 = 6,069
    #   total 18,350,965 (the paper's 18.3M)
    assert expected_pggan_generator(256, 3, 512, 512) == 18_350_965


# --------------------------------------------------------------------------------------------------
# 1. Output shapes
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("resolution", RESOLUTIONS)
@pytest.mark.parametrize("channels", (1, 3))
@pytest.mark.parametrize("family", FAMILIES)
def test_output_shapes(family, resolution, channels):
    torch.manual_seed(0)
    spec = {"arch": family, "width": SMALL_WIDTH[family]}
    generator = build_generator(spec, resolution=resolution, channels=channels, z_dim=Z_DIM)
    discriminator = build_discriminator(spec, resolution=resolution, channels=channels)
    n = 3
    with torch.no_grad():
        images = generator.train()(torch.randn(n, Z_DIM))
        assert images.shape == (n, channels, resolution, resolution)
        assert torch.isfinite(images).all()
        assert images.min() >= -1.0 and images.max() <= 1.0
        # different z give different images (the output depends on z, not a constant)
        assert not torch.allclose(images[0], images[1])
        # eval mode (running BN statistics) keeps the same shape contract, even for a batch of 1
        single = generator.eval()(torch.randn(1, Z_DIM))
        assert single.shape == (1, channels, resolution, resolution)
        assert single.min() >= -1.0 and single.max() <= 1.0

        scores = discriminator(torch.rand(n, channels, resolution, resolution) * 2 - 1)
        assert scores.shape == (n,)
        assert torch.isfinite(scores).all()
        # and on the generator's own output
        assert discriminator(images).shape == (n,)


# --------------------------------------------------------------------------------------------------
# 2. One CPU training step
# --------------------------------------------------------------------------------------------------


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def _changed(before: dict[str, torch.Tensor], model: torch.nn.Module) -> list[str]:
    return [name for name, p in model.named_parameters() if not torch.equal(before[name], p.detach())]


def _unused_when_grown(family: str, generator: torch.nn.Module) -> set[str]:
    """A fully grown PGGAN generator uses only its last toRGB; the lower ones get no gradient."""
    if family != "pggan":
        return set()
    last = len(generator.to_rgb) - 1
    return {name for name, _ in generator.named_parameters() if name.startswith("to_rgb.") and not name.startswith(f"to_rgb.{last}.")}


@pytest.mark.parametrize("family", FAMILIES)
def test_one_training_step(family):
    torch.manual_seed(0)
    resolution, channels, batch = 16, 3, 4
    spec = {"arch": family, "width": SMALL_WIDTH[family]}
    generator = build_generator(spec, resolution=resolution, channels=channels, z_dim=Z_DIM).train()
    discriminator = build_discriminator(spec, resolution=resolution, channels=channels).train()
    loss = LOSSES.get("hinge")
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.0, 0.9))
    real = torch.rand(batch, channels, resolution, resolution) * 2 - 1

    # Discriminator step (fake detached: the generator must not move).
    g_before, d_before = _snapshot(generator), _snapshot(discriminator)
    fake = generator(torch.randn(batch, Z_DIM)).detach()
    d_loss = loss.discriminator(discriminator(real), discriminator(fake))
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    assert torch.isfinite(d_loss)
    assert d_loss.ndim == 0
    assert _changed(d_before, discriminator), "discriminator step changed no discriminator parameter"
    assert not _changed(g_before, generator), "discriminator step moved the generator"

    # Generator step.
    d_before = _snapshot(discriminator)
    g_loss = loss.generator(discriminator(generator(torch.randn(batch, Z_DIM))))
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    assert torch.isfinite(g_loss)
    assert g_loss.ndim == 0
    unused = _unused_when_grown(family, generator)
    grads = {name: p.grad for name, p in generator.named_parameters()}
    assert all(grads[name] is None for name in unused)
    assert all(g is not None and torch.isfinite(g).all() for name, g in grads.items() if name not in unused)
    changed = _changed(g_before, generator)
    names = [name for name, _ in generator.named_parameters() if name not in unused]
    # Every weight tensor (and all but possibly a bias feeding straight into batch norm, whose
    # gradient is zero in exact arithmetic) must move after one Adam step.
    unchanged = sorted(set(names) - set(changed))
    assert all(name.endswith("bias") for name in unchanged), f"generator parameters did not change: {unchanged}"
    assert len(changed) >= len(names) - 1
    assert not set(changed) & unused
    # The discriminator's parameters are not stepped by the generator update.
    assert not _changed(d_before, discriminator)
    # Everything stays finite after the updates.
    assert all(torch.isfinite(p).all() for p in generator.parameters())
    assert all(torch.isfinite(p).all() for p in discriminator.parameters())


# --------------------------------------------------------------------------------------------------
# 3. Parameter counts equal the hand calculation
# --------------------------------------------------------------------------------------------------

PARAM_SETTINGS = [
    # (resolution, channels, z_dim, width)
    (16, 1, 8, 4),
    (16, 3, 32, 16),
    (32, 3, 128, 16),
    (32, 1, 64, 8),
    (64, 3, 16, 8),
    (64, 1, 100, 12),
]


@pytest.mark.parametrize("resolution,channels,z_dim,width", PARAM_SETTINGS)
@pytest.mark.parametrize("family", FAMILIES)
def test_generator_parameter_count(family, resolution, channels, z_dim, width):
    generator = build_generator({"arch": family, "width": width}, resolution=resolution, channels=channels, z_dim=z_dim)
    expected = EXPECTED_GENERATOR[family](resolution, channels, z_dim, width)
    assert _n_params(generator) == expected
    assert count_parameters(generator) == expected


@pytest.mark.parametrize("resolution,channels,z_dim,width", PARAM_SETTINGS)
@pytest.mark.parametrize("family", FAMILIES)
def test_discriminator_parameter_count(family, resolution, channels, z_dim, width):
    discriminator = build_discriminator({"arch": family, "width": width}, resolution=resolution, channels=channels)
    expected = EXPECTED_DISCRIMINATOR[family](resolution, channels, width)
    assert _n_params(discriminator) == expected


def test_sngan_teacher_matches_paper_size():
    """The paper's CIFAR-10 SNGAN teacher has ~4.1M parameters (width 256, z 128, 32px RGB)."""
    generator = build_generator({"arch": "sngan", "width": 256}, resolution=32, channels=3, z_dim=128)
    assert _n_params(generator) == 4_079_363
    assert math.isclose(_n_params(generator) / 1e6, 4.1, abs_tol=0.05)


# --------------------------------------------------------------------------------------------------
# 4. Weight-layer counts
# --------------------------------------------------------------------------------------------------

# Generators (the layers one image passes through):
#   sngan: 1 linear + 2 convs per up-block (stages = 2/3/4) + 1 final conv -> 6 / 8 / 10
#   dcgan: 1 linear + 1 transposed conv per stage + 1 final conv          -> 4 / 5 / 6
#   mlp:   4 linear layers at every resolution                            -> 4 / 4 / 4
#   pggan: dense + 4x4 conv + 2 convs per stage + the last toRGB only     -> 7 / 9 / 11
# Discriminators:
#   sngan: first block 3 convs (incl. 1x1 shortcut), each further downsampling block 3 convs,
#          2 plain blocks x 2 convs, 1 linear head; downsamplings = 1/2/3      -> 8 / 11 / 14
#   dcgan: 1 conv per stage (2/3/4) + 1 linear head                          -> 3 / 4 / 5
#   mlp:   3 linear layers                                                   -> 3 / 3 / 3
#   pggan: the last fromRGB + 2 convs per stage + 4x4 conv + 2 dense         -> 8 / 10 / 12
EXPECTED_GENERATOR_LAYERS = {
    "sngan": {16: 6, 32: 8, 64: 10},
    "dcgan": {16: 4, 32: 5, 64: 6},
    "mlp": {16: 4, 32: 4, 64: 4},
    "pggan": {16: 7, 32: 9, 64: 11},
}
EXPECTED_DISCRIMINATOR_LAYERS = {
    "sngan": {16: 8, 32: 11, 64: 14},
    "dcgan": {16: 3, 32: 4, 64: 5},
    "mlp": {16: 3, 32: 3, 64: 3},
    "pggan": {16: 8, 32: 10, 64: 12},
}


@pytest.mark.parametrize("resolution", RESOLUTIONS)
@pytest.mark.parametrize("family", FAMILIES)
def test_weight_layer_counts(family, resolution):
    spec = {"arch": family, "width": 8}
    generator = build_generator(spec, resolution=resolution, channels=3, z_dim=16)
    discriminator = build_discriminator(spec, resolution=resolution, channels=3)
    assert count_weight_layers(generator, torch.zeros(1, 16)) == EXPECTED_GENERATOR_LAYERS[family][resolution]
    # spectral-norm-parametrized layers are still Linear/Conv2d subclasses and must be counted
    image = torch.zeros(2, 3, resolution, resolution)
    assert count_weight_layers(discriminator, image) == EXPECTED_DISCRIMINATOR_LAYERS[family][resolution]


def test_paper_layer_counts_at_32px():
    """The paper's 'layers' column: SNGAN teacher 8, DCGAN student 5, MLP student 4."""
    layers = {
        family: count_weight_layers(build_generator({"arch": family, "width": 8}, resolution=32, channels=3, z_dim=16), torch.zeros(1, 16))
        for family in ("sngan", "dcgan", "mlp")
    }
    assert layers == {"sngan": 8, "dcgan": 5, "mlp": 4}


class _PartlyUsed(torch.nn.Module):
    """One layer used once, one used twice, one never used, plus a non-weight module."""

    def __init__(self) -> None:
        super().__init__()
        self.used = torch.nn.Linear(4, 4)
        self.twice = torch.nn.Linear(4, 4)
        self.unused = torch.nn.Conv2d(1, 1, 3)
        self.norm = torch.nn.BatchNorm1d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.twice(self.twice(self.norm(self.used(x))))


def test_count_weight_layers_counts_used_layers_once_and_cleans_up():
    model = _PartlyUsed().train()
    assert count_weight_layers(model, torch.zeros(1, 4)) == 2
    assert model.training, "the count must leave the model in the mode it found it"
    assert all(not module._forward_hooks for module in model.modules()), "hooks left behind"
    # parameters still count the unused layer: it is part of the saved model
    assert count_parameters(model) == 2 * (4 * 4 + 4) + (9 + 1) + 2 * 4


# --------------------------------------------------------------------------------------------------
# 5. Errors
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("builder", ("generator", "discriminator"))
def test_unknown_architecture_name(builder):
    spec = {"arch": "stylegan9000", "width": 16}
    with pytest.raises(AkdgError) as info:
        if builder == "generator":
            build_generator(spec, resolution=32, channels=3, z_dim=16)
        else:
            build_discriminator(spec, resolution=32, channels=3)
    message = str(info.value)
    assert "stylegan9000" in message
    for name in FAMILIES:
        assert name in message


@pytest.mark.parametrize("resolution", (24, 8, 48, 512))
@pytest.mark.parametrize("family", FAMILIES)
def test_unsupported_resolution(family, resolution):
    spec = {"arch": family, "width": 8}
    with pytest.raises(AkdgError, match=rf"\b{resolution}\b"):
        build_generator(spec, resolution=resolution, channels=3, z_dim=16)
    with pytest.raises(AkdgError, match=rf"\b{resolution}\b"):
        build_discriminator(spec, resolution=resolution, channels=3)


# --------------------------------------------------------------------------------------------------
# 6. Paper-sized configurations (Tables I and II) and docs/architectures.md
# --------------------------------------------------------------------------------------------------

# The paper-sized widths and their sizes on the meta device are scripts/gen_docs.py's, which renders
# docs/architectures.md from them; tests/test_docs.py fails when that page is stale.
_spec = importlib.util.spec_from_file_location("gen_docs", REPO / "scripts" / "gen_docs.py")
gen_docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen_docs)
PARAMS_TOLERANCE = 0.02  # the paper prints 2-3 significant digits (4.1M, 18.3M)
MULT_ADDS_TOLERANCE = 0.05  # the bound; only a documented counting convention (gen_docs.CONVENTIONS) may explain more


@pytest.fixture(scope="module")
def paper_rows() -> list[dict]:
    return gen_docs.paper_size_rows()


def test_paper_networks_match_layers_params_and_mult_adds(paper_rows):
    assert {(row["dataset"], row["arch"]) for row in paper_rows} == {
        ("cifar10", "sngan"),
        ("cifar10", "dcgan"),
        ("cifar10", "mlp"),
        ("lsun_bedroom", "pggan"),
        ("lsun_bedroom", "dcgan"),
    }
    for row in paper_rows:
        assert row["ours_layers"] == row["paper_layers"], row
        assert abs(row["ours_params"] / row["paper_params"] - 1) <= PARAMS_TOLERANCE, row
        counted = row["ours_mult_adds"] if row["convention"] is None else row["ours_convention_mult_adds"]
        assert abs(counted / row["paper_mult_adds"] - 1) <= MULT_ADDS_TOLERANCE, row


def test_sngan_mult_adds_follow_the_papers_convention(paper_rows):
    """Our full count is twice the paper's 793M; half of the six residual 3x3 convolutions alone gives it.

    By hand: three blocks of 256 channels at 8, 16 and 32 px, two 3x3 convs each at the output size:
    2 * 9 * 256 * 256 * (8**2 + 16**2 + 32**2) mult-adds, halved.
    """
    conventions = {(row["dataset"], row["arch"]) for row in paper_rows if row["convention"] is not None}
    assert conventions == {("cifar10", "sngan")}, "only SNGAN's figure needs a counting convention"
    sngan = next(row for row in paper_rows if row["arch"] == "sngan")
    assert sngan["ours_convention_mult_adds"] == 2 * 9 * 256 * 256 * (8**2 + 16**2 + 32**2) // 2
    assert abs(sngan["ours_convention_mult_adds"] / 793e6 - 1) <= 0.005
    assert 1.95 <= sngan["ours_mult_adds"] / sngan["paper_mult_adds"] <= 2.05  # the full count, pinned: a layout change shows up


@pytest.mark.parametrize("dataset", sorted(gen_docs.PAPER_CONFIGS))
def test_the_paper_grids_train_the_documented_networks(dataset):
    """docs/architectures.md sizes gen_docs.PAPER_CONFIGS; config/paper/<dataset>.yaml must train those very specs."""
    config = validate_config(yaml.safe_load((REPO / "config" / "paper" / f"{dataset}.yaml").read_text()))
    documented = gen_docs.PAPER_CONFIGS[dataset]
    assert (config["dataset"]["resolution"], config["z_dim"]) == (documented["resolution"], documented["z_dim"])
    generators = [config["teacher"]["generator"], *config["students"]]
    for spec in documented["models"].values():
        assert spec in generators, (dataset, spec, generators)


@pytest.mark.parametrize("arch,paper_layers", [("pggan", 15), ("dcgan", 8)])
def test_lsun_layer_counts_point_at_256px(arch, paper_layers):
    """Table II's 15 PGGAN and 8 DCGAN layers are each reached at 256 px and at no other resolution."""
    matching = [r for r in SUPPORTED_RESOLUTIONS if gen_docs.size_on_meta({"arch": arch, "width": 512}, r, 512)["layers"] == paper_layers]
    assert matching == [256]


def test_pggan_channel_rule_gives_the_paper_teacher():
    """Channels min(width, 16*width // r) with width 512 at 256 px: 18.3M parameters, 8.9B mult-adds."""
    size = gen_docs.size_on_meta({"arch": "pggan", "width": 512}, 256, 512)
    assert size["params"] == 18_350_965
    assert abs(size["mult_adds"] / 8.9e9 - 1) < 0.02


# --------------------------------------------------------------------------------------------------
# 6b. Family options: DCGAN stage_channels, PGGAN fmap_base / fmap_max
# --------------------------------------------------------------------------------------------------


def _mult_adds(model: torch.nn.Module, example: torch.Tensor) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.eval()(example)
    return counter.get_total_flops() // 2


def test_dcgan_stage_channels_build_forward_and_count():
    """[12, 8, 6] at 16 px: linear to 12x4x4, transposed convs 12->8 (to 8 px) and 8->6 (to 16 px), 3x3 conv to RGB."""
    spec = {"arch": "dcgan", "stage_channels": [12, 8, 6]}
    generator = build_generator(spec, resolution=16, channels=3, z_dim=8)
    discriminator = build_discriminator(spec, resolution=16, channels=3)
    images = generator(torch.randn(5, 8))
    assert images.shape == (5, 3, 16, 16) and discriminator(images).shape == (5,)
    assert _n_params(generator) == linear(8, 16 * 12) + bn(12) + conv_t(12, 8, 4) + bn(8) + conv_t(8, 6, 4) + bn(6) + conv(6, 3, 3)
    # the discriminator mirrors the stages: 3 -> 6 (to 8 px), 6 -> 8 (to 4 px), dense from 8x4x4
    assert _n_params(discriminator) == conv(3, 6, 4) + conv(6, 8, 4) + linear(16 * 8, 1)
    assert count_weight_layers(generator, torch.zeros(1, 8)) == 4
    # mult-adds: z*16*12, then C_in*C_out*16 per input pixel of each transposed conv, then 6*3*9 per output pixel
    assert _mult_adds(generator, torch.zeros(1, 8)) == 8 * 16 * 12 + 12 * 8 * 16 * 4 * 4 + 8 * 6 * 16 * 8 * 8 + 6 * 3 * 9 * 16 * 16


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_dcgan_default_schedule_is_width_doubled_back_to_the_seed(resolution):
    """stage_channels [w * 2**s, ..., 2w, w] builds, bit for bit, the model ``width: w`` builds (same init, same outputs)."""
    stages, width = _stages(resolution), 6
    explicit = {"arch": "dcgan", "stage_channels": [width * 2 ** (stages - k) for k in range(stages + 1)]}
    models = []
    for spec in ({"arch": "dcgan", "width": width}, explicit):
        torch.manual_seed(0)
        models.append(
            (
                build_generator(spec, resolution=resolution, channels=3, z_dim=8),
                build_discriminator(spec, resolution=resolution, channels=3),
            )
        )
    for by_width, by_list in zip(*models):
        width_state, list_state = by_width.state_dict(), by_list.state_dict()
        assert width_state.keys() == list_state.keys()
        assert all(torch.equal(width_state[name], list_state[name]) for name in width_state)


def test_the_paper_student_schedules_match_the_paper():
    """The issue's schedules: CIFAR-10 [244, 202, 202, 202] (paper 2.6M, 229M), LSUN [312, 156, 78, 44, 44, 44, 44] (3.7M, 785M)."""
    for channels, resolution, z_dim, params, mult_adds in (
        ([244, 202, 202, 202], 32, 128, 2.6e6, 229e6),
        ([312, 156, 78, 44, 44, 44, 44], 256, 512, 3.7e6, 785e6),
    ):
        size = gen_docs.size_on_meta({"arch": "dcgan", "stage_channels": channels}, resolution, z_dim)
        assert size["layers"] == len(channels) + 1
        assert abs(size["params"] / params - 1) <= MULT_ADDS_TOLERANCE and abs(size["mult_adds"] / mult_adds - 1) <= MULT_ADDS_TOLERANCE, (
            size
        )


def test_pggan_fmap_options_build_grow_and_count():
    """fmap_base 48, fmap_max 16 at 16 px: channels min(48 // (r / 2), 16) = 16, 12, 6 at 4, 8, 16 px; dense min(48, 16)."""
    from akdg.arch_pggan import feature_maps

    assert feature_maps(16, None, 48, 16) == [16, 12, 6, 16]
    assert feature_maps(16, None, 48, 64) == [24, 12, 6, 48]  # uncapped: the dense layer has nf(0) = fmap_base units
    spec = {"arch": "pggan", "fmap_base": 48, "fmap_max": 16}
    torch.manual_seed(0)
    generator = build_generator(spec, resolution=16, channels=3, z_dim=8)
    discriminator = build_discriminator(spec, resolution=16, channels=3)
    assert _n_params(generator) == pggan_generator_params([16, 12, 6], 3, 8)
    assert _n_params(discriminator) == pggan_discriminator_params([16, 12, 6], 16, 3)
    for progress in (0.0, 0.4, 0.7, 1.0):  # 4x4 stable, 8x8 fading in, 16x16 fading in, fully grown
        generator.set_progress(progress)
        discriminator.set_progress(progress)
        images = generator(torch.randn(4, 8))
        scores = discriminator(images)
        assert images.shape == (4, 3, 16, 16) and scores.shape == (4,) and torch.isfinite(scores).all()


def test_pggan_width_is_an_official_layout():
    """width w is fmap_base 8w, fmap_max w: the same modules, initialised the same."""
    models = []
    for spec in ({"arch": "pggan", "width": 16}, {"arch": "pggan", "fmap_base": 128, "fmap_max": 16}):
        torch.manual_seed(0)
        models.append((build_generator(spec, resolution=32, channels=3, z_dim=8), build_discriminator(spec, resolution=32, channels=3)))
    for by_width, by_fmap in zip(*models):
        width_state, fmap_state = by_width.state_dict(), by_fmap.state_dict()
        assert width_state.keys() == fmap_state.keys()
        assert all(torch.equal(width_state[name], fmap_state[name]) for name in width_state)


def test_official_lsun_pggan_layout():
    """The official LSUN network (fmap_base 8192, fmap_max 512): 512 channels up to 32 px, then 256, 128, 64; about 23M parameters."""
    from akdg.arch_pggan import feature_maps

    features = feature_maps(256, None, 8192, 512)
    assert features == [512, 512, 512, 512, 256, 128, 64, 512]
    size = gen_docs.size_on_meta({"arch": "pggan", "fmap_base": 8192, "fmap_max": 512}, 256, 512)
    assert size["params"] == pggan_generator_params(features[:-1], 3, 512)
    assert size["layers"] == 15 and abs(size["params"] / 23e6 - 1) < 0.01


def test_a_plugin_family_without_options_builds_from_width(monkeypatch):
    """A plug-in registered as docs/extending.md shows (factories taking width only) keeps working, and has no options."""
    from akdg.architectures import Architecture, check_model

    calls = []

    def generator(*, resolution, channels, z_dim, width):
        calls.append(width)
        return torch.nn.Linear(z_dim, channels * resolution * resolution)

    monkeypatch.setitem(ARCHITECTURES._entries, "test-plain", Architecture(generator=generator, discriminator=generator))
    monkeypatch.setitem(ARCHITECTURES._modules, "test-plain", __name__)
    build_generator({"arch": "test-plain", "width": 7}, resolution=16, channels=1, z_dim=4)
    assert calls == [7]
    with pytest.raises(AkdgError, match=r"^students\[0\]: test-plain has no option depth; it accepts width \(see"):
        check_model({"arch": "test-plain", "width": 7, "depth": 3}, 16, "students[0]")
    with pytest.raises(AkdgError, match=r"test-plain needs a width"):
        check_model({"arch": "test-plain"}, 16, "students[0]")


def test_model_labels_name_width_and_options():
    """Labels name paths and table rows: the width, or each option's initials and value; unique and filename-safe."""
    from akdg.architectures import model_label

    assert model_label({"arch": "dcgan", "width": 51}) == "dcgan-w51"
    assert model_label({"arch": "dcgan", "stage_channels": [244, 202, 202, 202]}) == "dcgan-sc244-202-202-202"
    assert model_label({"arch": "pggan", "fmap_max": 512, "fmap_base": 8192, "output": "clip"}) == "pggan-fb8192-fm512-oclip"


def _fused_kernel(weight: torch.Tensor) -> torch.Tensor:
    """The official fused ops' 4x4 kernel: the (3, 3, a, b) kernel zero-padded to 5x5, four shifted copies summed."""
    padded = F.pad(weight.permute(2, 3, 0, 1), (1, 1, 1, 1)).permute(2, 3, 0, 1)
    return padded[1:, 1:] + padded[:-1, 1:] + padded[1:, :-1] + padded[:-1, :-1]


def test_official_fused_kernels_map_to_our_convolutions():
    """docs/architectures.md's conversion rules for the official upscale2d_conv2d and conv2d_downscale2d, rebuilt from torch ops.

    TensorFlow's conv2d_transpose / conv2d with a (4, 4, a, b) filter, stride 2, 'SAME' pad one pixel per side at
    these sizes; its filter (h, w, a, b) is torch's weight permuted (3, 2, 0, 1).
    """
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 6)
    up_weight = torch.randn(3, 3, 5, 3)  # Conv0_up: (3, 3, out, in)
    fused_up = F.conv_transpose2d(x, _fused_kernel(up_weight).permute(3, 2, 0, 1), stride=2, padding=1)
    ours_up = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), up_weight.permute(2, 3, 0, 1).flip(2, 3), padding=1)
    torch.testing.assert_close(ours_up, fused_up)
    down_weight = torch.randn(3, 3, 3, 5)  # Conv1_down: (3, 3, in, out)
    big = torch.randn(2, 3, 12, 12)
    fused_down = F.conv2d(big, _fused_kernel(down_weight).permute(3, 2, 0, 1) * 0.25, stride=2, padding=1)
    ours_down = F.avg_pool2d(F.conv2d(big, down_weight.permute(3, 2, 0, 1), padding=1), 2)
    torch.testing.assert_close(ours_down, fused_down)


def test_pggan_clip_output_is_the_official_display():
    """output: clip returns the last toRGB clipped to -1..1; the default tanh squashes it."""
    spec = {"arch": "pggan", "fmap_base": 48, "fmap_max": 16}
    outputs = {}
    for output in ("tanh", "clip"):
        torch.manual_seed(0)
        generator = build_generator({**spec, "output": output}, resolution=16, channels=3, z_dim=8).eval()
        with torch.no_grad():
            generator.to_rgb[-1].bias.fill_(0.9)  # push some pixels past 1 so that the two differ
            outputs[output] = generator(torch.randn(4, 8))
    raw = torch.atanh(outputs["tanh"].clamp(-1 + 1e-6, 1 - 1e-6))
    assert outputs["clip"].abs().max() <= 1.0 and (outputs["clip"] == 1.0).any()
    torch.testing.assert_close(outputs["clip"], raw.clamp(-1.0, 1.0), atol=1e-4, rtol=1e-4)


# --------------------------------------------------------------------------------------------------
# 7. PGGAN progressive growing
# --------------------------------------------------------------------------------------------------


def _pggan(resolution: int = 16, channels: int = 3, width: int = 16, z_dim: int = Z_DIM):
    torch.manual_seed(0)
    spec = {"arch": "pggan", "width": width}
    return (
        build_generator(spec, resolution=resolution, channels=channels, z_dim=z_dim),
        build_discriminator(spec, resolution=resolution, channels=channels),
    )


def test_growth_schedule_equal_shares_with_half_share_fade():
    # 16 px: stages 4x4, 8x8, 16x16, a third of training each; fade over the first sixth of a stage.
    assert growth_state(0.0, 2) == (0, 1.0)
    assert growth_state(0.3, 2) == (0, 1.0)
    assert growth_state(1 / 3, 2) == (1, 0.0)
    stage, alpha = growth_state(0.4, 2)
    assert stage == 1 and alpha == pytest.approx(0.4)
    assert growth_state(0.5, 2) == (1, 1.0)
    stage, alpha = growth_state(0.75, 2)
    assert stage == 2 and alpha == pytest.approx(0.5)
    assert growth_state(1.0, 2) == (2, 1.0)
    with pytest.raises(AkdgError, match="1.5"):
        growth_state(1.5, 2)


@pytest.mark.parametrize("resolution", RESOLUTIONS)
@pytest.mark.parametrize("progress", (0.0, 0.3, 0.55, 0.8, 1.0))
def test_pggan_shapes_at_every_progress(resolution, progress):
    generator, discriminator = _pggan(resolution, channels=1)
    generator.set_progress(progress)
    discriminator.set_progress(progress)
    stage, _ = growth_state(progress, _stages(resolution))
    with torch.no_grad():
        images = generator(torch.randn(4, Z_DIM))
        assert images.shape == (4, 1, resolution, resolution)
        assert images.min() >= -1.0 and images.max() <= 1.0
        # made at the current stage's size (the fading-in one at most) and upsampled nearest to full size
        factor = resolution // (4 * 2**stage)
        assert torch.equal(images, F.interpolate(images[..., ::factor, ::factor], scale_factor=factor, mode="nearest"))
        scores = discriminator(images)
        assert scores.shape == (4,) and torch.isfinite(scores).all()


def test_pggan_fresh_models_are_fully_grown():
    generator, discriminator = _pggan(32)
    assert generator.progress == discriminator.progress == 1.0
    with torch.no_grad():
        images = generator(torch.randn(2, Z_DIM))
    # fully grown: real 32x32 detail, not a 16x16 image upsampled
    assert not torch.equal(images, F.interpolate(images[..., ::2, ::2], scale_factor=2, mode="nearest"))
    assert count_weight_layers(generator, torch.zeros(1, Z_DIM)) == 2 * 3 + 3


@pytest.mark.slow
@pytest.mark.parametrize("resolution", (16, 32))
def test_pggan_fade_in_is_continuous(resolution):
    """At the start of a fade the new stage has weight 0: the output is the previous stage's, upsampled."""
    generator, discriminator = _pggan(resolution)
    stages = _stages(resolution)
    z = torch.randn(3, Z_DIM)
    real = torch.rand(3, 3, resolution, resolution) * 2 - 1
    with torch.no_grad():
        for stage in range(1, stages + 1):
            start = stage / (stages + 1)
            assert growth_state(start, stages) == (stage, 0.0)
            before = start - 1e-6  # the end of the previous stage: stable
            assert growth_state(before, stages) == (stage - 1, 1.0)
            generator.set_progress(before)
            discriminator.set_progress(before)
            old_images, old_scores = generator(z), discriminator(real)
            generator.set_progress(start)
            discriminator.set_progress(start)
            assert torch.equal(generator(z), old_images)
            torch.testing.assert_close(discriminator(real), old_scores)
            # and halfway through the fade the new stage does change the output
            generator.set_progress(start + 0.25 / (stages + 1))
            assert not torch.equal(generator(z), old_images)


def test_pggan_layer_count_ignores_unused_to_rgb():
    generator, _ = _pggan(64)
    stages = _stages(64)
    held = sum(isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)) for m in generator.modules())
    assert held == 2 * stages + 3 + stages  # every toRGB is held...
    z = torch.zeros(1, Z_DIM)
    assert count_weight_layers(generator, z) == 2 * stages + 3  # ...but one image passes through only one
    generator.set_progress(0.0)
    assert count_weight_layers(generator, z) == 3  # dense, 4x4 conv, 4x4 toRGB


def test_pggan_checkpoint_loads_fully_grown(tmp_path):
    generator, _ = _pggan(16)
    z = torch.randn(2, Z_DIM)
    with torch.no_grad():
        grown = generator.eval()(z)
    generator.set_progress(0.2)  # as if saved mid-training: progress must not travel with the weights
    assert not any("progress" in key for key in generator.state_dict())
    meta = {"generator": {"arch": "pggan", "width": 16}, "resolution": 16, "channels": 3, "z_dim": Z_DIM, "training": {}}
    checkpoint.save_generator(tmp_path / "g.pt", generator, meta)
    loaded, _ = checkpoint.load_generator(tmp_path / "g.pt")
    assert loaded.progress == 1.0
    with torch.no_grad():
        assert torch.equal(loaded(z), grown)


def _pggan_context(*, images: int = 12, resolution: int = 16) -> TrainContext:
    generator, _ = _pggan(resolution, channels=1, width=8)
    return TrainContext(
        generator=generator,
        teacher=None,
        images=torch.randint(0, 256, (images, 1, resolution, resolution), dtype=torch.uint8),
        z_dim=Z_DIM,
        batch_size=4,
        loss=LOSSES.get("hinge"),
        discriminator_spec={"arch": "pggan", "width": 8},
        optimizer={"lr_g": 1e-3, "lr_d": 1e-3, "betas": [0.0, 0.99]},
        n_dis=1,
        device=torch.device("cpu"),
        rng=torch.Generator().manual_seed(0),
    )


@pytest.mark.slow
@pytest.mark.parametrize("ema_decay", (0.0, 0.5))
def test_training_loop_grows_generator_and_discriminators(ema_decay):
    ctx = _pggan_context()
    seen: dict[str, list[float]] = {"generator": [], "discriminator": []}
    ctx.generator.register_forward_pre_hook(lambda module, args: seen["generator"].append(module.progress))
    original = ctx.new_discriminator

    def watched_discriminator():
        discriminator = original()
        discriminator.register_forward_pre_hook(lambda module, args: seen["discriminator"].append(module.progress))
        return discriminator

    ctx.new_discriminator = watched_discriminator
    history = train("vanilla", {}, ctx, steps=4, log_every=1, ema_decay=ema_decay)
    assert len(ctx.discriminators) == 1
    assert sorted(set(seen["generator"])) == sorted(set(seen["discriminator"])) == [0.0, 0.25, 0.5, 0.75]
    assert ctx.generator.progress == 1.0 and not ctx.generator.training
    assert all(math.isfinite(value) for entry in history for value in entry.values())
    with torch.no_grad():
        assert torch.isfinite(ctx.generator(torch.randn(2, Z_DIM))).all()


def test_real_batch_converts_uint8_to_model_range():
    ctx = _pggan_context()
    ctx.images = torch.tensor([0, 255], dtype=torch.uint8).repeat_interleave(128).view(1, 1, 16, 16).repeat(12, 1, 1, 1)
    batch = ctx.real_batch()
    assert batch.dtype == torch.float32 and batch.shape == (4, 1, 16, 16)
    assert batch.min() == -1.0 and batch.max() == 1.0
    assert ctx.images.dtype == torch.uint8


class _CallRecorder:
    def __init__(self, module: torch.nn.Module) -> None:
        self.sizes: list[int] = []
        module.register_forward_pre_hook(lambda _, args: self.sizes.append(len(args[0])))


@pytest.mark.parametrize("arch,mixes", [("pggan", True), ("dcgan", False)])
def test_discriminator_update_separates_batches_for_batch_mixing_discriminators(arch, mixes):
    ctx = _pggan_context()
    ctx.discriminator_spec = {"arch": arch, "width": 8}
    method = METHODS.get("vanilla")(ctx)
    discriminator = method.discriminator.eval()  # eval: spectral norm's power iteration must not move between passes
    assert getattr(discriminator, "mixes_batch", False) is mixes
    positive = ctx.real_batch()
    with torch.no_grad():
        negative = ctx.generator(ctx.noise())
        separate = ctx.loss.discriminator(discriminator(positive), discriminator(negative))
        joint_scores = discriminator(torch.cat([positive, negative]))
        joint = ctx.loss.discriminator(joint_scores[:4], joint_scores[4:])
    # minibatch stddev makes a joint pass differ from two passes; without it they agree
    assert torch.allclose(separate, joint) is not mixes
    recorder = _CallRecorder(discriminator)
    loss = method.discriminator_update(discriminator, method.discriminator_optimizer, positive, negative)
    assert recorder.sizes == ([4, 4] if mixes else [8])
    torch.testing.assert_close(loss, separate if mixes else joint)


# --------------------------------------------------------------------------------------------------
# 8. Cost: size and speed per round
# --------------------------------------------------------------------------------------------------


def test_generator_size_and_per_round_speed_samples():
    generator = build_generator({"arch": "dcgan", "width": 4}, resolution=16, channels=1, z_dim=Z_DIM)
    size = generator_size(generator, Z_DIM)
    assert size["layers"] == 4 and size["params"] == expected_dcgan_generator(16, 1, Z_DIM, 4)
    speeds, _ = measure_speeds({"g": generator}, Z_DIM, batch_size=8, min_run_time=0.002, threads=1, rounds=3)
    rounds = speeds["g"]["images_per_s_rounds"]
    assert isinstance(rounds, list) and len(rounds) == 3
    assert all(isinstance(value, float) and value > 0 for value in rounds)
    assert min(rounds) <= speeds["g"]["images_per_s"] <= max(rounds)
