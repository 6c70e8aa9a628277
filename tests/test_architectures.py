"""Tests for the generator/discriminator families in ``akdg.architectures`` (CPU only, small widths).

Covers, for every built-in family (sngan, dcgan, mlp):
  * output shapes / value range at 16, 32 and 64 px, for 1- and 3-channel images;
  * one hinge-loss discriminator step and one generator step with Adam;
  * parameter counts against a closed-form hand calculation written out layer by layer;
  * weight-layer counts (``akdg.cost.count_weight_layers``) against the paper's "layers" column;
  * errors for an unknown family name and an unsupported resolution.

The hand calculations below deliberately do NOT import or inspect the model code: they are the
arithmetic a reader would do from the layer lists in the modules' docstrings.
Conventions: Linear(i, o) = i*o + o; Conv2d(i, o, k) = i*o*k*k + o;
ConvTranspose2d(i, o, k) = i*o*k*k + o; BatchNorm(C) = 2*C (weight and bias; running stats are
buffers); spectral norm adds no parameters (its u/v vectors are buffers, the weight is just moved
to ``parametrizations.weight.original``).
"""

from __future__ import annotations

import math

import pytest
import torch

from akdg.architectures import ARCHITECTURES, build_discriminator, build_generator
from akdg.cost import count_parameters, count_weight_layers
from akdg.losses import LOSSES
from akdg.registry import AkdgError

FAMILIES = ("sngan", "dcgan", "mlp")
RESOLUTIONS = (16, 32, 64)
# Small widths keep the whole file fast on CPU (mimicry's ngf=16 style for the conv families).
SMALL_WIDTH = {"sngan": 16, "dcgan": 16, "mlp": 32}
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
    return (
        linear(z_dim, w) + bn(w)
        + linear(w, w) + bn(w)
        + linear(w, w) + bn(w)
        + linear(w, pixels)
    )


def expected_mlp_discriminator(resolution: int, channels: int, width: int) -> int:
    w, pixels = width, channels * resolution * resolution
    # Linear(CRR -> w) = CRR*w + w; Linear(w -> w) = w^2 + w; Linear(w -> 1) = w + 1
    return linear(pixels, w) + linear(w, w) + linear(w, 1)


EXPECTED_GENERATOR = {
    "sngan": expected_sngan_generator,
    "dcgan": expected_dcgan_generator,
    "mlp": expected_mlp_generator,
}
EXPECTED_DISCRIMINATOR = {
    "sngan": expected_sngan_discriminator,
    "dcgan": expected_dcgan_discriminator,
    "mlp": expected_mlp_discriminator,
}


def test_builtin_families_are_registered():
    # The parametrized tests below cover exactly these; a missing built-in family would fail here.
    assert set(FAMILIES) <= set(ARCHITECTURES.names())
    assert ARCHITECTURES.get("sngan").residual is True
    assert ARCHITECTURES.get("dcgan").residual is False
    assert ARCHITECTURES.get("mlp").residual is False


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
    grads = {name: p.grad for name, p in generator.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    changed = _changed(g_before, generator)
    names = [name for name, _ in generator.named_parameters()]
    # Every weight tensor (and all but possibly a bias feeding straight into batch norm, whose
    # gradient is zero in exact arithmetic) must move after one Adam step.
    unchanged = sorted(set(names) - set(changed))
    assert all(name.endswith("bias") for name in unchanged), f"generator parameters did not change: {unchanged}"
    assert len(changed) >= len(names) - 1
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

# Generators:
#   sngan: 1 linear + 2 convs per up-block (stages = 2/3/4) + 1 final conv -> 6 / 8 / 10
#   dcgan: 1 linear + 1 transposed conv per stage + 1 final conv          -> 4 / 5 / 6
#   mlp:   4 linear layers at every resolution                            -> 4 / 4 / 4
# Discriminators:
#   sngan: first block 3 convs (incl. 1x1 shortcut), each further downsampling block 3 convs,
#          2 plain blocks x 2 convs, 1 linear head; downsamplings = 1/2/3      -> 8 / 11 / 14
#   dcgan: 1 conv per stage (2/3/4) + 1 linear head                          -> 3 / 4 / 5
#   mlp:   3 linear layers                                                   -> 3 / 3 / 3
EXPECTED_GENERATOR_LAYERS = {
    "sngan": {16: 6, 32: 8, 64: 10},
    "dcgan": {16: 4, 32: 5, 64: 6},
    "mlp": {16: 4, 32: 4, 64: 4},
}
EXPECTED_DISCRIMINATOR_LAYERS = {
    "sngan": {16: 8, 32: 11, 64: 14},
    "dcgan": {16: 3, 32: 4, 64: 5},
    "mlp": {16: 3, 32: 3, 64: 3},
}


@pytest.mark.parametrize("resolution", RESOLUTIONS)
@pytest.mark.parametrize("family", FAMILIES)
def test_weight_layer_counts(family, resolution):
    spec = {"arch": family, "width": 8}
    generator = build_generator(spec, resolution=resolution, channels=3, z_dim=16)
    discriminator = build_discriminator(spec, resolution=resolution, channels=3)
    assert count_weight_layers(generator) == EXPECTED_GENERATOR_LAYERS[family][resolution]
    # spectral-norm-parametrized layers are still Linear/Conv2d subclasses and must be counted
    assert count_weight_layers(discriminator) == EXPECTED_DISCRIMINATOR_LAYERS[family][resolution]


def test_paper_layer_counts_at_32px():
    """The paper's 'layers' column: SNGAN teacher 8, DCGAN student 5, MLP student 4."""
    layers = {
        family: count_weight_layers(build_generator({"arch": family, "width": 8}, resolution=32, channels=3, z_dim=16))
        for family in FAMILIES
    }
    assert layers == {"sngan": 8, "dcgan": 5, "mlp": 4}


def test_count_weight_layers_ignores_non_weight_modules():
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(),
        torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3), torch.nn.ConvTranspose2d(1, 1, 3), torch.nn.Tanh()),
    )
    assert count_weight_layers(model) == 3


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
