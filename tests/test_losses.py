"""Losses that regularise the discriminator (WGAN-GP with drift, R1), per-model losses, the loop's
learning-rate schedules and generated batch, and the teachers' recipes in miniature."""

from __future__ import annotations

import copy
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import yaml

from akdg import checkpoint, steps
from akdg.arch_pggan import growth_state
from akdg.architectures import build_generator
from akdg.config import load_config, student_training_spec, teacher_training_spec, validate_config
from akdg.losses import GanLoss, GradientPenalty, R1Penalty, Regulariser, build_loss, describe_loss
from akdg.registry import LOSSES, AkdgError
from akdg.training import TrainContext, lr_factor, train
from baselines.vanilla import Vanilla
from conftest import REPO, copy_project

DEFAULT = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
RES = 16


class Quadratic(nn.Module):
    """D(x) = ½‖x‖² per image, so ∇D(x) = x: the penalties have closed forms in the images."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x.flatten(1).square().sum(1, keepdim=True)


def linear_discriminator(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 1))


def batches(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(5, 3, 4, 4, generator=generator), torch.randn(5, 3, 4, 4, generator=generator)


def test_gradient_penalty_of_a_linear_discriminator_is_its_weights_distance_from_unit_norm():
    discriminator, (real, fake) = linear_discriminator(), batches()
    w, b = discriminator[1].weight, discriminator[1].bias
    scores = discriminator(real)
    penalty = GradientPenalty(gp_weight=10.0, drift=0.001)(discriminator, real, fake, scores, torch.Generator().manual_seed(0))
    norm = w.detach().norm()
    by_hand = 10.0 * (norm - 1.0) ** 2 + 0.001 * (real.flatten(1) @ w.detach().T + b.detach()).square().mean()
    torch.testing.assert_close(penalty, by_hand)
    # create_graph: the penalty is differentiable in D's weights; d/dw λ(‖w‖ − 1)² = 2λ(‖w‖ − 1)·w/‖w‖ (plus the drift's share)
    gp_only = GradientPenalty(gp_weight=10.0, drift=0.0)(discriminator, real, fake, scores, torch.Generator().manual_seed(0))
    (gradient,) = torch.autograd.grad(gp_only, w)
    torch.testing.assert_close(gradient, 2 * 10.0 * (norm - 1.0) * w.detach() / norm)


def test_gradient_penalty_is_taken_on_interpolates_drawn_from_the_training_rng():
    real, fake = batches()
    rng = torch.Generator().manual_seed(7)
    mixing = torch.rand(5, 1, 1, 1, generator=torch.Generator().manual_seed(7))
    interpolates = real + mixing * (fake - real)
    penalty = GradientPenalty(gp_weight=3.0, drift=0.0)(Quadratic(), real, fake, Quadratic()(real), rng)
    by_hand = 3.0 * (interpolates.flatten(1).norm(dim=1) - 1.0).square().mean()  # ∇D(x̂) = x̂
    torch.testing.assert_close(penalty, by_hand)
    assert not torch.equal(rng.get_state(), torch.Generator().manual_seed(7).get_state()), "the draw must come from the training RNG"


def test_drift_term_is_epsilon_times_the_mean_squared_real_score():
    real, fake = batches()
    scores = torch.tensor([[1.0], [-2.0], [3.0], [0.5], [0.0]])
    drift_only = GradientPenalty(gp_weight=0.0, drift=0.001)(Quadratic(), real, fake, scores, torch.Generator())
    torch.testing.assert_close(drift_only, torch.tensor(0.001 * (1 + 4 + 9 + 0.25 + 0) / 5))


def test_r1_is_half_gamma_times_the_mean_squared_gradient_norm_on_real_images():
    real, fake = batches()
    penalty = R1Penalty(gamma=4.0)(Quadratic(), real, fake, Quadratic()(real), torch.Generator())
    torch.testing.assert_close(penalty, 0.5 * 4.0 * real.flatten(1).square().sum(1).mean())
    discriminator = linear_discriminator()
    penalty = R1Penalty(gamma=10.0)(discriminator, real, fake, discriminator(real), torch.Generator())
    torch.testing.assert_close(penalty, 5.0 * discriminator[1].weight.detach().square().sum())


def test_the_registered_losses_and_their_parameters():
    assert LOSSES.get("wgan-gp").regulariser == GradientPenalty(gp_weight=10.0, drift=0.001)
    assert LOSSES.get("r1").regulariser == R1Penalty(gamma=10.0)
    assert LOSSES.get("hinge").regulariser is None and LOSSES.get("hinge").parameters == {}
    loss = build_loss({"name": "wgan-gp", "gp_weight": 5})
    assert loss.regulariser == GradientPenalty(gp_weight=5, drift=0.001)
    assert describe_loss("r1") == {"name": "r1", "gamma": 10.0} and describe_loss("hinge") == {"name": "hinge"}
    real, fake = torch.tensor([2.0, 4.0]), torch.tensor([1.0, -1.0])
    assert float(loss.discriminator(real, fake)) == pytest.approx(0.0 - 3.0)  # E[D(fake)] − E[D(real)]
    assert float(loss.generator(fake)) == pytest.approx(0.0)
    with pytest.raises(AkdgError, match=r"unknown option\(s\) \['lambda'\]"):
        build_loss({"name": "wgan-gp", "lambda": 10})


def context(
    discriminator: dict, loss: GanLoss, *, generator: dict | None = None, amp: bool = False, batch_size: int = 4, **extra
) -> TrainContext:
    torch.manual_seed(0)
    generator = generator or {"arch": "dcgan", "width": 4}
    images = torch.randint(0, 256, (24, 3, RES, RES), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    return TrainContext(
        generator=build_generator(generator, resolution=RES, channels=3, z_dim=8),
        teacher=None,
        images=images,
        z_dim=8,
        batch_size=batch_size,
        loss=loss,
        discriminator_spec=discriminator,
        optimizer={"lr_g": 1e-3, "lr_d": 1e-3, "betas": [0.0, 0.99]},
        n_dis=1,
        device=torch.device("cpu"),
        rng=torch.Generator().manual_seed(0),
        amp=amp,
        **extra,
    )


@pytest.mark.parametrize("discriminator", [{"arch": "dcgan", "width": 4}, {"arch": "pggan", "width": 8}, {"arch": "sngan", "width": 4}])
@pytest.mark.parametrize("name", ["wgan-gp", "r1"])
def test_the_penalty_moves_spectral_norm_and_batch_mixing_discriminators_through_the_update(discriminator: dict, name: str):
    """Double backward through spectral norm (dcgan, sngan) and minibatch stddev (pggan, which mixes the batch)."""
    updated = {}
    for weight in (0.0, 10.0):
        parameter = "gp_weight" if name == "wgan-gp" else "gamma"
        ctx = context(discriminator, build_loss({"name": name, parameter: weight}))
        method = Vanilla(ctx)
        assert getattr(method.discriminator, "mixes_batch", False) == (discriminator["arch"] == "pggan")
        losses = method.train_step()
        assert all(torch.isfinite(torch.tensor(value)) for value in losses.values())
        updated[weight] = [p.detach().clone() for p in method.discriminator.parameters()]
        assert all(p.isfinite().all() for p in updated[weight])
    assert any(not torch.equal(a, b) for a, b in zip(updated[0.0], updated[10.0])), "the penalty did not reach D's weights"


def test_the_penalty_runs_in_float32_outside_autocast():
    seen = []

    class Recording(Regulariser):
        def __call__(self, discriminator, positive, negative, positive_scores, rng):
            seen.append((torch.is_autocast_enabled("cpu"), positive.dtype, negative.dtype, positive_scores.dtype))
            return GradientPenalty()(discriminator, positive, negative, positive_scores, rng)

    wgan = LOSSES.get("wgan-gp")
    ctx = context({"arch": "dcgan", "width": 4}, GanLoss(wgan.discriminator, wgan.generator, Recording()), amp=True)
    method = Vanilla(ctx)
    with ctx.autocast():  # as the loop runs train_step
        result = method.train_step()
    assert seen == [(False, torch.float32, torch.float32, torch.float32)]
    assert all(torch.isfinite(torch.tensor(value)) for value in result.values())


def test_wgan_gp_trains_a_tiny_growing_pggan_with_finite_losses():
    ctx = context({"arch": "pggan", "width": 8}, build_loss("wgan-gp"), generator={"arch": "pggan", "width": 8}, batch_size=4)
    stages = []
    history = train(
        "vanilla", {}, ctx, 6, log_every=1, on_step=lambda step, losses: stages.append(growth_state(ctx.discriminators[0].progress, 2)[0])
    )
    assert stages == [0, 0, 1, 1, 2, 2], "the PGGAN did not grow 4 -> 8 -> 16 px"
    assert len(history) == 6 and all(torch.isfinite(torch.tensor([row["d"], row["g"]])).all() for row in history)
    assert ctx.generator.progress == 1.0


def test_linear_lr_schedule_follows_sngans_linear_shift():
    assert [lr_factor({"kind": "linear", "start": 0}, step, 4) for step in (1, 2, 3, 4)] == [1.0, 0.75, 0.5, 0.25]
    assert [lr_factor({"kind": "linear", "start": 2}, step, 6) for step in (1, 2, 3, 4, 5, 6)] == [1.0, 1.0, 1.0, 0.75, 0.5, 0.25]
    assert lr_factor({"kind": "constant"}, 5, 6) == lr_factor(None, 5, 6) == 1.0


def test_every_optimiser_follows_the_schedule_and_the_generator_step_draws_its_own_batch(monkeypatch: pytest.MonkeyPatch):
    seen, original = [], Vanilla.train_step

    def recording(self: Vanilla) -> dict[str, float]:
        rates = {"g": self.generator_optimizer.param_groups[0]["lr"], "d": self.discriminator_optimizer.param_groups[0]["lr"]}
        sizes = []
        hook = self.ctx.generator.register_forward_hook(lambda module, args, output: sizes.append(len(args[0])))
        losses = original(self)
        hook.remove()
        seen.append({**rates, "generator_batches": sizes})
        return losses

    monkeypatch.setattr(Vanilla, "train_step", recording)
    ctx = context({"arch": "dcgan", "width": 4}, build_loss("hinge"), batch_size=4, generator_batch_size=7)
    ctx.n_dis = 2
    train("vanilla", {}, ctx, 5, lr_schedule={"kind": "linear", "start": 0})
    assert len(seen) == 5
    for step, rates in enumerate(seen, start=1):
        assert rates["g"] == pytest.approx(1e-3 * (1 - (step - 1) / 5)) and rates["d"] == pytest.approx(1e-3 * (1 - (step - 1) / 5))
        assert rates["generator_batches"] == [4, 4, 7], "D's fakes at batch_size, the generator update at generator_batch_size"


def paper_teacher_spec(name: str, **changes) -> dict:
    """The paper config's teacher spec (its loss, optimiser, schedule, batches), at tiny width and a few steps."""
    config = load_config(REPO / "config" / "paper" / f"{name}.yaml")
    spec = teacher_training_spec(config)
    arch = spec["generator"]["arch"]
    return {
        **spec,
        "generator": {"arch": arch, "width": 8},
        "discriminator": {"arch": spec["discriminator"]["arch"], "width": 8},
        "z_dim": 8,
        "log_every": 1,
        "device": "cpu",
        **changes,
    }


def test_the_paper_teachers_use_their_own_papers_recipes():
    sngan = teacher_training_spec(load_config(REPO / "config" / "paper" / "cifar10.yaml"))
    assert (sngan["loss"], sngan["n_dis"], sngan["batch_size"], sngan["generator_batch_size"]) == ("hinge", 5, 64, 128)
    assert sngan["optimizer"] == {"lr_g": 0.0002, "lr_d": 0.0002, "betas": [0.0, 0.9]} and sngan["steps"] == 50000
    assert sngan["lr_schedule"] == {"kind": "linear", "start": 0}
    pggan = teacher_training_spec(load_config(REPO / "config" / "paper" / "lsun_bedroom.yaml"))
    assert describe_loss(pggan["loss"]) == {"name": "wgan-gp", "gp_weight": 10, "drift": 0.001}
    assert pggan["optimizer"] == {"lr_g": 0.001, "lr_d": 0.001, "betas": [0.0, 0.99]} and pggan["n_dis"] == 1
    assert pggan["generator"]["arch"] == "pggan" and "lr_schedule" not in pggan


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cifar10", "lsun_bedroom"])
def test_each_teacher_recipe_trains_a_few_steps_at_tiny_width(name: str, digits_npz: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import akdg.training

    groups = []
    original = akdg.training.scheduled_groups

    def keeping(method, schedule):
        groups.extend(original(method, schedule))
        return groups

    monkeypatch.setattr(akdg.training, "scheduled_groups", keeping)
    steps_ = 6
    spec = paper_teacher_spec(name, steps=steps_, batch_size=8, **({"generator_batch_size": 16} if name == "cifar10" else {}))
    out = tmp_path / "teacher.pt"
    steps.train_generator(spec, digits_npz, out)
    _, meta = checkpoint.load_generator(out)
    losses = meta["training"]["final_losses"]
    assert losses["step"] == steps_ and all(torch.isfinite(torch.tensor(value)) for value in losses.values())
    assert meta["training"]["loss"] == describe_loss(spec["loss"])
    if name == "cifar10":  # linear decay from step 0: the last of T updates ran at lr0 / T
        assert len(groups) == 2 and all(group["lr"] == pytest.approx(group["initial_lr"] / steps_) for group in groups)
    else:
        assert groups == [] and meta["training"]["loss"]["name"] == "wgan-gp"


def test_a_method_long_form_and_the_teacher_may_each_set_their_own_loss():
    config = copy.deepcopy(DEFAULT)
    config["teacher"]["loss"] = {"name": "wgan-gp", "drift": "0.01"}  # --config gives strings
    config["methods"]["vanilla-r1"] = {"method": "vanilla", "loss": "r1", "training": {"lr_schedule": {"kind": "linear", "start": 10}}}
    config = validate_config(config)
    assert teacher_training_spec(config)["loss"] == {"name": "wgan-gp", "drift": 0.01}
    student = config["students"][0]
    assert student_training_spec(config, student, "vanilla-r1", 0)["loss"] == "r1"
    assert student_training_spec(config, student, "vanilla-r1", 0)["lr_schedule"] == {"kind": "linear", "start": 10}
    plain = student_training_spec(config, student, "vanilla", 0)
    assert plain["loss"] == "hinge" and "lr_schedule" not in plain and "generator_batch_size" not in plain


def with_change(path: list[str], value) -> dict:
    config = copy.deepcopy(DEFAULT)
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return config


@pytest.mark.parametrize(
    "path, value, message",
    [
        (["teacher", "loss"], "wasserstein", "unknown GAN loss 'wasserstein'"),
        (["methods", "vanilla"], {"method": "vanilla", "loss": "wgan"}, "unknown GAN loss 'wgan'"),
        (["loss"], {"name": "wgan-gp", "gp_weight": -1}, r"loss wgan-gp: option gp_weight: -1 is less than the minimum of 0"),
        (["loss"], {"name": "r1", "lambda": 1}, r"unknown option\(s\) \['lambda'\]; accepted: \['gamma'\]"),
        (["loss"], {"name": "hinge", "gamma": 1}, r"unknown option\(s\) \['gamma'\]; accepted: none"),
        (["loss"], {"gp_weight": 1}, "'name' is a required property"),
        (["training", "lr_schedule"], {"kind": "cosine"}, "'cosine' is not one of \\['constant', 'linear'\\]"),
        (["training", "lr_schedule"], {"kind": "constant", "start": 3}, "lr_schedule.start applies to kind linear only"),
        (["training", "lr_schedule"], {"kind": "linear", "start": 250}, "lr_schedule.start is 250, but the model trains for 250 steps"),
        (["teacher", "training"], {"generator_batch_size": 0}, "0 is less than the minimum of 1"),
    ],
)
def test_a_bad_loss_or_schedule_is_refused_at_validation(path, value, message):
    with pytest.raises(AkdgError, match=message):
        validate_config(with_change(path, value))


def test_the_cli_refuses_a_bad_loss_parameter_with_exit_status_2(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(with_change(["teacher", "loss"], {"name": "wgan-gp", "drift": "much"})))
    result = subprocess.run([sys.executable, "-m", "akdg", "validate-config", str(bad)], capture_output=True, text=True)
    assert result.returncode == 2 and "teacher.loss wgan-gp: option drift: 'much' is not of type 'number'" in result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads(json.dumps(describe_loss("wgan-gp")))  # what the protocol records is JSON


def test_the_table_says_which_loss_each_model_used(tmp_path: Path):
    """Committed digits runs, the teacher's as if trained with PGGAN's loss and one method with R1."""
    from akdg.tables import aggregate

    committed = REPO / "results" / "cpu_repro" / "runs" / "digits"
    paths = []
    for source in sorted(committed.rglob("*.json")):
        result = json.loads(source.read_text())
        if result["run"]["role"] == "teacher":
            result["protocol"]["training"]["loss"] = {"name": "wgan-gp", "gp_weight": 10.0, "drift": 0.001}
        elif result["run"].get("method") == "vanilla":
            result["protocol"]["training"]["loss"] = {"name": "r1", "gamma": 5}
        path = tmp_path / "runs" / source.relative_to(committed)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result))
        paths.append(path)
    aggregate(paths, ["vanilla", "mse", "akdg"], tmp_path / "tables", tmp_path / "metrics", "digits")
    lines = [line for line in (tmp_path / "tables" / "digits.md").read_text().splitlines() if "GAN loss per model" in line]
    assert len(lines) == 1
    for part in ("teacher wgan-gp (gp_weight 10, drift 0.001)", "vanilla r1 (gamma 5)", "akdg hinge", "mse hinge"):
        assert part in lines[0]


def planned_spec(dry_run_output: str, job_message: str) -> dict:
    """The --spec of the first planned job whose message starts with ``job_message`` (a dry run with -p prints its command)."""
    lines = dry_run_output.splitlines()
    job = next(index for index, line in enumerate(lines) if re.match(rf"Job \d+: {job_message}", line))
    command = next(line for line in lines[job:] if line.startswith("Shell command: akdg train --spec "))
    return json.loads(shlex.split(command.removeprefix("Shell command: akdg train --spec "))[0])


@pytest.mark.slow
@pytest.mark.workflow
@pytest.mark.parametrize("dataset", ["cifar10", "lsun_bedroom"])
def test_snakemake_plans_each_paper_teacher_with_its_recipe(tmp_path: Path, dataset: str):
    """`snakemake -n -p` on the paper grid: the teacher's planned command carries its own loss, schedule and batches."""
    workdir = copy_project(tmp_path)
    command = [sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "2", "all_tables", "--configfile", f"config/paper/{dataset}.yaml"]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    spec, student = (planned_spec(result.stdout, job) for job in ("train the teacher", "train student"))
    if dataset == "cifar10":
        assert (spec["loss"], spec["n_dis"], spec["batch_size"], spec["generator_batch_size"]) == ("hinge", 5, 64, 128)
        assert spec["lr_schedule"] == {"kind": "linear", "start": 0}
    else:
        assert spec["loss"] == {"name": "wgan-gp", "gp_weight": 10, "drift": 0.001} and "lr_schedule" not in spec
    assert student["loss"] == "hinge" and "lr_schedule" not in student
