"""The methods do what the paper says: who sees what, which noise, which weights move."""

from __future__ import annotations

import copy

import pytest
import torch

from akdg.architectures import build_generator
from akdg.images import to_model_range
from akdg.losses import LOSSES
from akdg.registry import AkdgError
from akdg.training import EMA_BN_SEED, METHODS, Method, TrainContext, batch_norms, standing_statistics, train

Z_DIM, RES = 8, 16
REAL_PIXEL = 200  # the uint8 value of every real pixel; the loop hands it over as REAL_MARKER
REAL_MARKER = float(to_model_range(torch.tensor(REAL_PIXEL, dtype=torch.uint8)))  # no tanh output hits it exactly


def make_context(
    student_arch: str = "dcgan", *, with_teacher: bool = True, seed: int = 0, student_width: int | None = None
) -> TrainContext:
    torch.manual_seed(seed)
    width = student_width or (8 if student_arch != "mlp" else 32)
    student = build_generator({"arch": student_arch, "width": width}, resolution=RES, channels=1, z_dim=Z_DIM)
    teacher = build_generator({"arch": "sngan", "width": 8}, resolution=RES, channels=1, z_dim=Z_DIM).eval() if with_teacher else None
    if teacher is not None:
        teacher.requires_grad_(False)
    return TrainContext(
        generator=student,
        teacher=teacher,
        generator_spec={"arch": student_arch, "width": width},
        teacher_spec={"arch": "sngan", "width": 8} if with_teacher else None,
        images=torch.full((20, 1, RES, RES), REAL_PIXEL, dtype=torch.uint8),
        z_dim=Z_DIM,
        batch_size=6,
        loss=LOSSES.get("hinge"),
        discriminator_spec={"arch": "dcgan", "width": 8},
        optimizer={"lr_g": 1e-3, "lr_d": 1e-3, "betas": [0.5, 0.999]},
        n_dis=1,
        device=torch.device("cpu"),
        rng=torch.Generator().manual_seed(seed),
    )


class Recorder:
    """Forward hook that keeps every input and output of a module."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.inputs: list[torch.Tensor] = []
        self.outputs: list[torch.Tensor] = []
        module.register_forward_hook(self)

    def __call__(self, module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
        self.inputs.append(args[0].detach().clone())
        self.outputs.append(output.detach().clone())


def rows_in(rows: torch.Tensor, pool: list[torch.Tensor]) -> bool:
    """Every row of ``rows`` equals some row of some tensor in ``pool``."""
    candidates = torch.cat(pool).flatten(1)
    return all(bool((candidates == row.flatten()).all(dim=1).any()) for row in rows)


@pytest.mark.slow
def test_akdg_distillation_discriminator_sees_only_teacher_and_student_images():
    ctx = make_context()
    method = METHODS.get("akdg")(ctx)
    d_kd, d_student = Recorder(method.d_kd), Recorder(method.d_student)
    teacher_out, student_out = Recorder(ctx.teacher), Recorder(ctx.generator)
    for _ in range(3):
        method.train_step()
    assert d_kd.inputs, "D_KD was never called"
    for batch in d_kd.inputs:
        assert not (batch == REAL_MARKER).any(), "a real image (marker value) reached D_KD"
        assert rows_in(batch, teacher_out.outputs + student_out.outputs)
    # D_KD's positive half is the teacher's images; D_S does see the real ones.
    assert rows_in(d_kd.inputs[0][: ctx.batch_size], teacher_out.outputs)
    assert any((batch == REAL_MARKER).any() for batch in d_student.inputs)


def test_akdg_teacher_noise_is_independent_of_student_noise():
    ctx = make_context()
    method = METHODS.get("akdg")(ctx)
    teacher_in, student_in = Recorder(ctx.teacher), Recorder(ctx.generator)
    method.train_step()
    student_z = torch.cat(student_in.inputs)
    for z in teacher_in.inputs:
        assert not rows_in(z, [student_z]), "the teacher got one of the student's z (paired, not AKDG)"


def test_akdg_kd_only_ablation_has_no_real_discriminator_and_never_draws_real_images(monkeypatch):
    ctx = make_context()
    method = METHODS.get("akdg-kd-only")(ctx)
    monkeypatch.setattr(ctx, "real_batch", lambda: pytest.fail("the D_KD-only ablation drew a real batch"))
    losses = method.train_step()
    assert not hasattr(method, "d_student") and len(ctx.discriminators) == 1
    assert set(losses) == {"d_kd", "g_distillation"}


def test_akdg_paired_ablation_gives_the_teacher_the_students_z():
    ctx = make_context()
    method = METHODS.get("akdg-paired")(ctx)
    teacher_in, student_in = Recorder(ctx.teacher), Recorder(ctx.generator)
    method.train_step()
    assert len(teacher_in.inputs) == 1
    assert torch.equal(teacher_in.inputs[0], student_in.inputs[0])  # the z of the discriminator step's fakes


def test_akdg_ablations_differ_from_akdg_and_from_each_other_after_one_step():
    students = {}
    for name in ("akdg", "akdg-kd-only", "akdg-paired"):
        ctx = make_context()
        METHODS.get(name)(ctx).train_step()
        students[name] = torch.cat([parameter.flatten() for parameter in ctx.generator.parameters()])
    assert not torch.equal(students["akdg"], students["akdg-kd-only"])
    assert not torch.equal(students["akdg"], students["akdg-paired"])


def test_mse_feeds_the_same_z_to_teacher_and_student():
    ctx = make_context()
    method = METHODS.get("mse")(ctx)
    teacher_in, student_in = Recorder(ctx.teacher), Recorder(ctx.generator)
    method.train_step()
    assert len(teacher_in.inputs) == len(student_in.inputs) == 1
    assert torch.equal(teacher_in.inputs[0], student_in.inputs[0])


@pytest.mark.parametrize("method_name", ["akdg", "mse", "joint", "lit"])
def test_teacher_weights_never_change_during_distillation(method_name: str):
    ctx = make_context("sngan" if method_name == "lit" else "dcgan")
    before = copy.deepcopy(ctx.teacher.state_dict())
    train(method_name, {}, ctx, steps=3, log_every=1)
    after = ctx.teacher.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[key], after[key]) for key in before)


@pytest.mark.parametrize("method_name", sorted(METHODS.names()))
@pytest.mark.parametrize("student_arch", ["dcgan", "mlp", "sngan"])
def test_one_step_of_every_method_moves_the_student(method_name: str, student_arch: str):
    if method_name == "lit" and student_arch != "sngan":
        pytest.skip("lit needs a residual student; its refusal is tested below")
    ctx = make_context(student_arch)
    before = [parameter.detach().clone() for parameter in ctx.generator.parameters()]
    losses = METHODS.get(method_name)(ctx).train_step()
    assert losses and all(torch.isfinite(torch.tensor(value)) for value in losses.values())
    moved = [not torch.equal(old, new) for old, new in zip(before, ctx.generator.parameters())]
    assert any(moved)


def test_distillation_without_teacher_and_unknown_options_fail_clearly():
    with pytest.raises(AkdgError, match="teacher"):
        METHODS.get("akdg")(make_context(with_teacher=False))
    with pytest.raises(AkdgError, match="kd_wieght"):
        METHODS.get("akdg")(make_context(), kd_wieght=2.0)


def test_akdg_kd_weight_changes_the_student_update():
    """kd_weight is really applied: the same step with weight 0 and 1 gives different students."""
    grads = {}
    for weight in (0.0, 1.0):
        ctx = make_context(seed=3)
        method = METHODS.get("akdg")(ctx, kd_weight=weight)
        method.train_step()
        grads[weight] = torch.cat([p.detach().flatten() for p in ctx.generator.parameters()])
    assert not torch.equal(grads[0.0], grads[1.0])


class _NaNMethod(Method):
    def train_step(self) -> dict[str, float]:
        return {"exploding": float("nan")}


METHODS.register("test-nan")(_NaNMethod)


def test_nan_loss_stops_training_naming_the_loss_and_step():
    with pytest.raises(AkdgError, match=r"'exploding'.*step 1"):
        train("test-nan", {}, make_context(), steps=5, log_every=1)


def test_unknown_method_lists_the_available_ones():
    with pytest.raises(AkdgError, match=r"unknown method 'akgd'.*akdg.*mse.*vanilla"):
        METHODS.get("akgd")


def test_ema_decay_saves_the_moving_average_of_the_weights():
    averaged = make_context("mlp", seed=5)
    train("vanilla", {}, averaged, steps=2, log_every=1, ema_decay=0.5)
    manual = make_context("mlp", seed=5)
    method = METHODS.get("vanilla")(manual)
    snapshots = []
    for _ in range(2):
        method.train_step()
        snapshots.append([p.detach().clone() for p in manual.generator.parameters()])
    for got, first, second in zip(averaged.generator.parameters(), *snapshots):
        torch.testing.assert_close(got, 0.5 * first + 0.5 * second)
    assert any(not torch.equal(a, b) for a, b in zip(snapshots[0], snapshots[1]))


def test_an_ema_run_keeps_its_raw_last_weights_with_their_own_batchnorm_statistics():
    """ctx.last_weights are the weights (and running statistics) a run without an EMA ends with, bit for bit."""
    averaged = make_context("dcgan", seed=5)
    train("vanilla", {}, averaged, steps=3, log_every=1, ema_decay=0.5)
    raw = make_context("dcgan", seed=5)
    train("vanilla", {}, raw, steps=3, log_every=1)
    assert raw.last_weights is None  # nothing to keep without an EMA
    expected, ema = raw.generator.state_dict(), averaged.generator.state_dict()
    assert averaged.last_weights.keys() == expected.keys()
    for name, tensor in averaged.last_weights.items():
        assert tensor.device.type == "cpu" and torch.equal(tensor, expected[name]), name
    assert any(not torch.equal(averaged.last_weights[name], ema[name]) for name, _ in averaged.generator.named_parameters())
    assert any(not torch.equal(averaged.last_weights[name], ema[name]) for name in ema if name.endswith("running_mean"))


def test_an_ema_generator_gets_batchnorm_statistics_of_its_own_weights():
    """Standing statistics: running mean/var are the averages of the EMA weights' own per-batch pre-BN statistics."""
    batches = 3
    averaged_buffers = make_context("dcgan", seed=5)
    train("vanilla", {}, averaged_buffers, steps=3, log_every=1, ema_decay=0.5, ema_bn_batches=0)
    standing = make_context("dcgan", seed=5)
    train("vanilla", {}, standing, steps=3, log_every=1, ema_decay=0.5, ema_bn_batches=batches)
    for got, averaged in zip(standing.generator.parameters(), averaged_buffers.generator.parameters()):
        assert torch.equal(got, averaged)  # the same weights: only the statistics differ

    by_hand = copy.deepcopy(averaged_buffers.generator).train()
    norms = batch_norms(by_hand)
    recorders = [Recorder(norm) for norm in norms]
    rng = torch.Generator().manual_seed(EMA_BN_SEED)
    with torch.no_grad():
        for _ in range(batches):
            by_hand(torch.randn(standing.batch_size, Z_DIM, generator=rng))
    assert norms and not standing.generator.training
    for recorder, norm, averaged in zip(recorders, batch_norms(standing.generator), batch_norms(averaged_buffers.generator)):
        per_channel = [x.transpose(0, 1).flatten(1) for x in recorder.inputs]  # channels x (batch * height * width)
        mean = torch.stack([x.mean(1) for x in per_channel]).mean(0)
        var = torch.stack([x.var(1, unbiased=True) for x in per_channel]).mean(0)  # BN keeps the unbiased variance
        torch.testing.assert_close(norm.running_mean, mean)
        torch.testing.assert_close(norm.running_var, var)
        assert int(norm.num_batches_tracked) == batches and norm.momentum == 0.1  # its momentum is given back
        assert not torch.allclose(norm.running_mean, averaged.running_mean) and not torch.allclose(norm.running_var, averaged.running_var)


@pytest.mark.parametrize(("method_name", "n_dis", "real_per_step"), [("vanilla", 2, 2), ("akdg", 1, 1), ("mse", 1, 0)])
def test_the_loop_counts_the_real_images_the_discriminators_draw(method_name: str, n_dis: int, real_per_step: int):
    ctx = make_context("dcgan", seed=2)
    ctx.n_dis = n_dis
    train(method_name, {}, ctx, steps=3, log_every=1)
    assert ctx.real_images_seen == 3 * real_per_step * ctx.batch_size


def test_standing_statistics_leave_a_generator_without_batchnorm_and_the_global_rng_alone():
    generator = build_generator({"arch": "pggan", "width": 8}, resolution=RES, channels=1, z_dim=Z_DIM)
    before = copy.deepcopy(generator.state_dict())
    rng_state = torch.get_rng_state()
    standing_statistics(generator, Z_DIM, 4, 10, torch.device("cpu"))
    assert not batch_norms(generator) and torch.equal(torch.get_rng_state(), rng_state)
    assert all(torch.equal(value, before[key]) for key, value in generator.state_dict().items())
    dcgan = build_generator({"arch": "dcgan", "width": 8}, resolution=RES, channels=1, z_dim=Z_DIM)
    rng_state = torch.get_rng_state()
    standing_statistics(dcgan, Z_DIM, 4, 2, torch.device("cpu"))
    assert int(batch_norms(dcgan)[0].num_batches_tracked) == 2
    assert torch.equal(torch.get_rng_state(), rng_state)  # its noise comes from its own torch.Generator


# --------------------------------------------------------------------------------------------------
# joint (Aguinaldo et al. 2019) and lit (Koratana et al. 2019), and the sngan stem/blocks/head split
# --------------------------------------------------------------------------------------------------


def _parameters(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


@pytest.mark.parametrize(
    ("method_name", "student_arch", "student_width"),
    [("joint", "dcgan", 8), ("joint", "mlp", 32), ("lit", "sngan", 8), ("lit", "sngan", 16)],
)
@pytest.mark.slow
def test_joint_and_lit_train_through_the_loop(method_name: str, student_arch: str, student_width: int):
    ctx = make_context(student_arch, student_width=student_width, seed=1)
    before = _parameters(ctx.generator)
    history = train(method_name, {}, ctx, steps=3, log_every=1)
    assert len(history) == 3
    assert all(torch.isfinite(torch.tensor(value)) for row in history for value in row.values())
    assert any(not torch.equal(old, new) for old, new in zip(before, ctx.generator.parameters()))


def _fixed_noise(ctx: TrainContext, z: torch.Tensor) -> None:
    ctx.noise = lambda count=None: z.clone()  # type: ignore[method-assign]


def test_joint_with_a_one_is_exactly_the_mse_method_update():
    z = torch.randn(6, Z_DIM, generator=torch.Generator().manual_seed(11))
    students = {}
    for name, options in (("mse", {}), ("joint-1", {"a": 1.0}), ("joint-half", {"a": 0.5})):
        ctx = make_context(seed=4)
        _fixed_noise(ctx, z)
        METHODS.get(name.split("-")[0])(ctx, **options).train_step()
        students[name] = _parameters(ctx.generator)
    assert all(torch.equal(a, b) for a, b in zip(students["mse"], students["joint-1"]))
    assert any(not torch.equal(a, b) for a, b in zip(students["mse"], students["joint-half"]))


def test_joint_with_a_zero_is_exactly_vanilla():
    runs = {}
    for name, options in (("vanilla", {}), ("joint", {"a": 0.0})):
        ctx = make_context(seed=5)
        method = METHODS.get(name)(ctx, **options)
        losses = [method.train_step() for _ in range(2)]
        runs[name] = (losses, _parameters(ctx.generator))
    (vanilla_losses, vanilla_weights), (joint_losses, joint_weights) = runs["vanilla"], runs["joint"]
    assert [row["g"] for row in vanilla_losses] == [row["g_adversarial"] for row in joint_losses]
    assert all(torch.equal(a, b) for a, b in zip(vanilla_weights, joint_weights))
    assert all(row["g_mse"] > 0 for row in joint_losses)  # the MSE is computed, just weighted 0


@pytest.mark.parametrize(
    "a, problem",
    [
        (-0.1, "less than the minimum of 0"),
        (1.5, "greater than the maximum of 1"),
        ("0.3", "not of type 'number'"),
        (True, "not of type"),
        (None, "not of type"),
    ],
)
def test_joint_rejects_a_outside_zero_one(a: object, problem: str):
    with pytest.raises(AkdgError, match=rf"Joint: option a: .*{problem}"):
        METHODS.get("joint")(make_context(), a=a)


@pytest.mark.parametrize("student_arch", ["dcgan", "mlp"])
def test_lit_rejects_a_non_residual_student_before_training(student_arch: str):
    ctx = make_context(student_arch)
    before = copy.deepcopy(ctx.generator.state_dict())
    expected = rf"lit distils between residual blocks; student '{student_arch}' is not residual \(use a residual family such as sngan"
    with pytest.raises(AkdgError, match=expected) as error:
        train("lit", {}, ctx, steps=2, log_every=1)
    assert "teacher 'sngan'" in str(error.value)
    assert all(torch.equal(before[key], value) for key, value in ctx.generator.state_dict().items())


def test_lit_rejects_a_non_residual_teacher_and_unequal_block_counts():
    ctx = make_context("sngan")
    ctx.teacher = build_generator({"arch": "dcgan", "width": 8}, resolution=RES, channels=1, z_dim=Z_DIM)
    ctx.teacher_spec = {"arch": "dcgan", "width": 8}
    with pytest.raises(AkdgError, match=r"teacher 'dcgan' is not residual"):
        METHODS.get("lit")(ctx)
    ctx.teacher_spec = None  # without specs, the runtime check still refuses it
    with pytest.raises(AkdgError, match=r"the teacher \(Generator\) has no stem/blocks/head"):
        METHODS.get("lit")(ctx)
    ctx.teacher = build_generator({"arch": "sngan", "width": 8}, resolution=2 * RES, channels=1, z_dim=Z_DIM)
    with pytest.raises(AkdgError, match=r"student has 2 blocks and the teacher 3"):
        METHODS.get("lit")(ctx)


def test_lit_adapters_bridge_different_widths_train_and_stay_out_of_the_student():
    ctx = make_context("sngan", student_width=16)
    keys_before = set(ctx.generator.state_dict())
    method = METHODS.get("lit")(ctx)
    assert all(isinstance(a, torch.nn.Conv2d) for a in [*method.adapters_in, *method.adapters_out])
    assert [(a.in_channels, a.out_channels) for a in method.adapters_in] == [(8, 16), (8, 16)]
    assert [(a.in_channels, a.out_channels) for a in method.adapters_out] == [(16, 8), (16, 8)]
    adapters_before = _parameters(method.adapters_in) + _parameters(method.adapters_out)
    for _ in range(2):
        method.train_step()
    adapters_after = [*method.adapters_in.parameters(), *method.adapters_out.parameters()]
    assert all(not torch.equal(a, b) for a, b in zip(adapters_before, adapters_after))
    assert set(ctx.generator.state_dict()) == keys_before


def test_lit_needs_no_adapters_between_equal_widths():
    ctx = make_context("sngan", student_width=8)
    method = METHODS.get("lit")(ctx)
    assert all(isinstance(a, torch.nn.Identity) for a in [*method.adapters_in, *method.adapters_out])
    assert len(method.generator_optimizer.param_groups) == 1


def test_lit_ir_loss_is_teacher_forced_and_zero_for_a_copy_of_the_teacher():
    from baselines.lit import stage_outputs

    ctx = make_context("sngan", student_width=8, seed=2)
    method = METHODS.get("lit")(ctx)
    z = torch.randn(6, Z_DIM, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        teacher_stages = stage_outputs(ctx.teacher, z)
    second_block = Recorder(ctx.generator.blocks[1])
    fresh = method.intermediate_losses(teacher_stages)
    assert len(fresh) == 2 and all(loss.item() > 0 for loss in fresh)
    assert torch.equal(second_block.inputs[0], teacher_stages[1]), "block 2 was not fed the teacher's block-1 output"
    ctx.generator.load_state_dict(ctx.teacher.state_dict())
    ctx.generator.eval()  # same mode as the teacher, so its batch norm uses the same statistics
    assert [loss.item() for loss in method.intermediate_losses(teacher_stages)] == [0.0, 0.0]


def test_lit_without_ir_and_kd_is_exactly_vanilla_and_with_them_is_not():
    runs = {}
    for name, options in (("vanilla", {}), ("lit-off", {"ir_weight": 0.0, "pixel_weight": 0.0}), ("lit", {})):
        ctx = make_context("sngan", seed=6)
        METHODS.get(name.split("-")[0])(ctx, **options).train_step()
        runs[name] = _parameters(ctx.generator)
    assert all(torch.equal(a, b) for a, b in zip(runs["vanilla"], runs["lit-off"]))
    assert any(not torch.equal(a, b) for a, b in zip(runs["vanilla"], runs["lit"]))


@pytest.mark.parametrize("key", ["ir_weight", "pixel_weight"])
def test_lit_rejects_negative_weights(key: str):
    with pytest.raises(AkdgError, match=rf"LIT: option {key}: -1.0 is less than the minimum of 0"):
        METHODS.get("lit")(make_context("sngan"), **{key: -1.0})


def test_config_validation_rejects_lit_with_a_non_residual_student():
    """Before any job: a grid pairing lit with a dcgan student fails at config validation."""
    import yaml

    from akdg.config import validate_config
    from conftest import REPO

    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    config["methods"] = {"lit": {}}
    with pytest.raises(AkdgError, match=r"invalid config: .*lit distils between residual blocks; student 'dcgan' is not residual"):
        validate_config(config)
    config["students"] = [{"arch": "sngan", "width": 4}]
    validate_config(config)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_sngan_stem_blocks_head_split_keeps_outputs_and_weight_names(mode: str):
    """The pre-split forward, written out here, gives bit-identical images; checkpoints keep loading."""
    torch.manual_seed(0)
    generator = build_generator({"arch": "sngan", "width": 8}, resolution=RES, channels=3, z_dim=Z_DIM)
    generator.train(mode == "train")
    z = torch.randn(5, Z_DIM)

    def old_forward(z: torch.Tensor) -> torch.Tensor:
        h = generator.project(z).view(-1, 8, 4, 4)
        for block in generator.blocks:
            h = block(h)
        return torch.tanh(generator.to_image(torch.relu(generator.norm(h))))

    with torch.no_grad():
        expected = old_forward(z)
        assert torch.equal(generator(z), expected)
        h = generator.stem(z)
        for block in generator.blocks:
            h = block(h)
        assert torch.equal(generator.head(h), expected)
    block_keys = {
        f"blocks.{i}.{layer}.{name}"
        for i in range(2)
        for layer, names in (("norm1", "bn"), ("conv1", "conv"), ("norm2", "bn"), ("conv2", "conv"))
        for name in (("weight", "bias", "running_mean", "running_var", "num_batches_tracked") if names == "bn" else ("weight", "bias"))
    }
    other_keys = {"project.weight", "project.bias", "to_image.weight", "to_image.bias"}
    other_keys |= {f"norm.{name}" for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
    assert set(generator.state_dict()) == block_keys | other_keys
