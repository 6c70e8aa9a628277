"""The methods do what the paper says: who sees what, which noise, which weights move."""

from __future__ import annotations

import copy

import pytest
import torch

from akdg.architectures import build_generator
from akdg.losses import LOSSES
from akdg.registry import AkdgError
from akdg.training import METHODS, Method, TrainContext, train

Z_DIM, RES = 8, 16
REAL_MARKER = 5.0  # generators end in tanh, so no generated pixel can equal this


def make_context(student_arch: str = "dcgan", *, with_teacher: bool = True, seed: int = 0) -> TrainContext:
    torch.manual_seed(seed)
    student = build_generator({"arch": student_arch, "width": 8 if student_arch != "mlp" else 32}, resolution=RES, channels=1, z_dim=Z_DIM)
    teacher = build_generator({"arch": "sngan", "width": 8}, resolution=RES, channels=1, z_dim=Z_DIM).eval() if with_teacher else None
    if teacher is not None:
        teacher.requires_grad_(False)
    return TrainContext(
        generator=student,
        teacher=teacher,
        images=torch.full((20, 1, RES, RES), REAL_MARKER),
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


def test_akdg_distillation_discriminator_sees_only_teacher_and_student_images():
    ctx = make_context()
    method = METHODS.get("akdg")(ctx)
    d_kd, d_student = Recorder(method.d_kd), Recorder(method.d_student)
    teacher_out, student_out = Recorder(ctx.teacher), Recorder(ctx.generator)
    for _ in range(3):
        method.train_step()
    assert d_kd.inputs, "D_KD was never called"
    for batch in d_kd.inputs:
        assert batch.max() <= 1.0, "a real image (marker value) reached D_KD"
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


def test_mse_feeds_the_same_z_to_teacher_and_student():
    ctx = make_context()
    method = METHODS.get("mse")(ctx)
    teacher_in, student_in = Recorder(ctx.teacher), Recorder(ctx.generator)
    method.train_step()
    assert len(teacher_in.inputs) == len(student_in.inputs) == 1
    assert torch.equal(teacher_in.inputs[0], student_in.inputs[0])


@pytest.mark.parametrize("method_name", ["akdg", "mse"])
def test_teacher_weights_never_change_during_distillation(method_name: str):
    ctx = make_context()
    before = copy.deepcopy(ctx.teacher.state_dict())
    train(method_name, {}, ctx, steps=3, log_every=1)
    after = ctx.teacher.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[key], after[key]) for key in before)


@pytest.mark.parametrize("method_name", sorted(METHODS.names()))
@pytest.mark.parametrize("student_arch", ["dcgan", "mlp", "sngan"])
def test_one_step_of_every_method_moves_the_student(method_name: str, student_arch: str):
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
