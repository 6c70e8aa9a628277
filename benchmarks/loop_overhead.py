"""Training throughput of akdg's loop against a bare PyTorch loop that makes the same updates.

For each method (vanilla, mse, akdg) at the default config's sizes (every student, digits) and at the
CIFAR-10 paper sizes (DCGAN w51 student, SNGAN w256 teacher, batch 64; synthetic uint8 images of
CIFAR-10's shape, since CIFAR-10 cannot be downloaded everywhere), ``akdg.training.train`` and the
hand-written loop below run from the same seed, interleaved in one process (ours, bare, bare, ours,
...). Reported: the median steps/s of each, and ours/bare as the median of the per-repeat ratios
(each pair ran back to back, so a change in the machine's load cancels; target: at least 0.95), and
the same ratio from the process's CPU time, which a busy machine disturbs much less than wall time.

The bare loop builds the same models and optimisers, draws the same batches and noise from the same
generator in the same order and applies the same loss, so both end with the same weights: every pair
of runs is compared (torch.equal on the CPU; on CUDA, where kernels may sum in another order, the
largest difference is reported). A pair that differs is a bug in this benchmark and fails it (exit 1).
Timed: building the method's discriminators and optimisers and ``steps`` updates; not timed: copying
the initial models and placing the data. Both loops log the losses every ``log_every`` steps; akdg's
also reads every loss each step (its NaN check), which on CUDA is a synchronisation per step.

    python benchmarks/loop_overhead.py                        # both configs, on CUDA where there is one
    python benchmarks/loop_overhead.py --device cpu --configs default --steps 100 --repeats 7
"""

from __future__ import annotations

import argparse
import copy
import logging
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from akdg.architectures import build_discriminator, build_generator
from akdg.config import load_config, method_variants, student_key
from akdg.datasets import DATASETS
from akdg.losses import build_loss
from akdg.method_api import TrainContext, place_images
from akdg.registry import AkdgError
from akdg.training import EMA_BN_BATCHES, EMA_BN_SEED, train
from benchlib import CONFIGS, RESULTS, choose_device, interleave, machine, ratio_figures, run, setup_logging, table, write_result

log = logging.getLogger("loop_overhead")
TARGET = 0.95  # ours / bare steps per second, at least
DISCRIMINATORS = {"vanilla": 1, "mse": 0, "akdg": 2}  # what each method builds, in the order it builds them
PAPER_STUDENTS = {"cifar10": ["dcgan-sc244-202-202-202"]}  # the paper configs' student measured; the default config: all
SYNTHETIC_IMAGES = 10_000  # synthetic train split size (drawing a batch costs the same at 50k)


@dataclass
class Setup:
    """One contender pair: a method, its models' initial weights, the data and the training settings."""

    label: str
    method: str
    options: dict[str, Any]
    generator: nn.Module  # the student's initial weights, copied for every run
    teacher: nn.Module | None  # frozen, shared by every run
    discriminator: dict[str, Any]
    images: torch.Tensor  # uint8 NCHW, the train split
    data: str
    z_dim: int
    batch_size: int
    n_dis: int
    optimizer: dict[str, Any]
    loss: str
    ema_decay: float
    log_every: int

    def describe(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "method": self.method,
            "options": self.options,
            "student_params": sum(p.numel() for p in self.generator.parameters()),
            "teacher_params": sum(p.numel() for p in self.teacher.parameters()) if self.teacher is not None else None,
            "discriminator": self.discriminator,
            "data": self.data,
            "image_shape": list(self.images.shape[1:]),
            "z_dim": self.z_dim,
            "batch_size": self.batch_size,
            "n_dis": self.n_dis,
            "optimizer": self.optimizer,
            "loss": self.loss,
            "ema_decay": self.ema_decay,
            "log_every": self.log_every,
        }


def config_setups(name: str, methods: list[str], synthetic_images: int) -> list[Setup]:
    """The setups of one config: its students (the default: all; a paper config: PAPER_STUDENTS) x ``methods``."""
    config = load_config(CONFIGS[name])
    resolution, dataset = config["dataset"]["resolution"], config["dataset"]["name"]
    if dataset == "digits":
        images, data = torch.from_numpy(DATASETS.get("digits")(config["dataset"]).x_train), "digits train split"
    else:
        shape = (synthetic_images, 3, resolution, resolution)  # the paper's datasets are RGB
        images = torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
        data = f"synthetic: uniform random uint8 of {dataset}'s shape, {synthetic_images} images (the real data is not needed for speed)"
    channels = int(images.shape[1])
    torch.manual_seed(0)
    teacher = build_generator(config["teacher"]["generator"], resolution=resolution, channels=channels, z_dim=config["z_dim"])
    teacher.eval().requires_grad_(False)  # as train_generator loads it: eval mode, frozen
    variants = method_variants(config)
    wanted = PAPER_STUDENTS.get(name)
    setups = []
    for student in config["students"]:
        if wanted is not None and student_key(student) not in wanted:
            continue
        torch.manual_seed(1)
        generator = build_generator(student, resolution=resolution, channels=channels, z_dim=config["z_dim"])
        for method in methods:
            variant = variants.get(method) or {"method": method, "options": {}, "training": {}}
            training = {**config["training"], **variant["training"]}
            setups.append(
                Setup(
                    label=f"{name} {student_key(student)} {method}",
                    method=variant["method"],
                    options=variant["options"],
                    generator=generator,
                    teacher=teacher if variant["method"] != "vanilla" else None,
                    discriminator=config["student_discriminator"],
                    images=images,
                    data=data,
                    z_dim=config["z_dim"],
                    batch_size=training["batch_size"],
                    n_dis=training["n_dis"],
                    optimizer=training["optimizer"],
                    loss=config["loss"],
                    ema_decay=training["ema_decay"],
                    log_every=training["log_every"],
                )
            )
    return setups


def prepare_ours(
    setup: Setup,
    steps: int,
    device: torch.device,
    seed: int,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    **training: Any,
) -> Callable[[], list[nn.Module]]:
    """akdg's loop, exactly as ``train_generator`` calls it (without writing resume states).

    ``training`` holds TrainContext's switches (``amp``, ``channels_last``, ``compile``) as the config's
    ``training`` block sets them; ``on_step`` goes to ``train``.
    """
    ctx = TrainContext(
        generator=copy.deepcopy(setup.generator),
        teacher=setup.teacher,
        images=setup.images,
        z_dim=setup.z_dim,
        batch_size=setup.batch_size,
        loss=build_loss(setup.loss),
        discriminator_spec=setup.discriminator,
        optimizer=setup.optimizer,
        n_dis=setup.n_dis,
        device=device,
        rng=torch.Generator().manual_seed(seed),
        **training,
    )

    def run() -> list[nn.Module]:
        torch.manual_seed(seed)  # the discriminators' initial weights
        train(setup.method, setup.options, ctx, steps, log_every=setup.log_every, ema_decay=setup.ema_decay, on_step=on_step)
        return [ctx.generator, *ctx.discriminators]

    return run


def prepare_bare(setup: Setup, steps: int, device: torch.device, amp: bool, seed: int) -> Callable[[], list[nn.Module]]:
    """The same run written as a minimal PyTorch loop."""
    generator = copy.deepcopy(setup.generator).to(device)
    teacher = setup.teacher.to(device) if setup.teacher is not None else None
    images = place_images(setup.images, device)

    def run() -> list[nn.Module]:
        torch.manual_seed(seed)
        return bare_loop(setup, generator, teacher, images, torch.Generator().manual_seed(seed), steps, device, amp)

    return run


def bare_loop(
    setup: Setup,
    generator: nn.Module,
    teacher: nn.Module | None,
    images: torch.Tensor,
    rng: torch.Generator,
    steps: int,
    device: torch.device,
    amp: bool,
) -> list[nn.Module]:
    """``steps`` updates of vanilla, MSE or AKDG with nothing but torch; returns [generator, *discriminators]."""
    if setup.method not in DISCRIMINATORS or setup.loss not in ("hinge", "nonsaturating"):
        raise AkdgError(
            f"the bare loop knows methods {sorted(DISCRIMINATORS)} and losses hinge/nonsaturating, not {setup.method}/{setup.loss}; pick one of those"
        )
    batch, hinge, lr_g, lr_d, betas = (
        setup.batch_size,
        setup.loss == "hinge",
        setup.optimizer["lr_g"],
        setup.optimizer["lr_d"],
        tuple(setup.optimizer["betas"]),
    )

    def d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean() if hinge else F.softplus(-real).mean() + F.softplus(fake).mean()

    def g_loss(fake: torch.Tensor) -> torch.Tensor:
        return -fake.mean() if hinge else F.softplus(-fake).mean()

    def noise() -> torch.Tensor:
        return torch.randn(batch, setup.z_dim, generator=rng).to(device)

    def real() -> torch.Tensor:
        index = torch.randint(len(images), (batch,), generator=rng)
        images_batch = images[index.to(images.device)]
        if images_batch.device != device:
            images_batch = images_batch.pin_memory().to(device, non_blocking=True)
        return images_batch.float().div(127.5).sub(1.0)

    def update(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def autocast() -> torch.autocast:
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)

    resolution, channels = int(images.shape[-1]), int(images.shape[1])
    optimizer_g = torch.optim.Adam(generator.parameters(), lr=lr_g, betas=betas)
    discriminators = [
        build_discriminator(setup.discriminator, resolution=resolution, channels=channels).to(device)
        for _ in range(DISCRIMINATORS[setup.method])
    ]
    optimizers_d = [torch.optim.Adam(d.parameters(), lr=lr_d, betas=betas) for d in discriminators]
    generator.train()
    average = AveragedModel(generator, multi_avg_fn=get_ema_multi_avg_fn(setup.ema_decay), use_buffers=True) if setup.ema_decay else None
    history = []
    for step in range(1, steps + 1):
        if setup.method == "vanilla":
            (d,), (optimizer_d,) = discriminators, optimizers_d
            for _ in range(setup.n_dis):
                with autocast():
                    fake = generator(noise()).detach()
                    scores = d(torch.cat([real(), fake]))
                    loss_d = d_loss(scores[:batch], scores[batch:])
                update(optimizer_d, loss_d)
            with autocast():
                loss_g = g_loss(d(generator(noise())))
            update(optimizer_g, loss_g)
            losses = {"d": loss_d, "g": loss_g}
        elif setup.method == "akdg":
            (d_s, d_kd), (optimizer_s, optimizer_kd) = discriminators, optimizers_d
            for _ in range(setup.n_dis):
                with autocast():
                    fake = generator(noise()).detach()
                    scores = d_s(torch.cat([real(), fake]))
                    loss_s = d_loss(scores[:batch], scores[batch:])
                update(optimizer_s, loss_s)
                with autocast():
                    with torch.no_grad():
                        teacher_fake = teacher(noise())
                    scores = d_kd(torch.cat([teacher_fake, fake]))
                    loss_kd = d_loss(scores[:batch], scores[batch:])
                update(optimizer_kd, loss_kd)
            with autocast():
                fake = generator(noise())
                adversarial, distillation = g_loss(d_s(fake)), g_loss(d_kd(fake))
                loss_g = adversarial + setup.options.get("kd_weight", 1.0) * distillation
            update(optimizer_g, loss_g)
            losses = {"d_student": loss_s, "d_kd": loss_kd, "g_adversarial": adversarial, "g_distillation": distillation}
        else:  # mse
            with autocast():
                z = noise()
                with torch.no_grad():
                    target = teacher(z)
                loss_g = F.mse_loss(generator(z), target)
            update(optimizer_g, loss_g)
            losses = {"mse": loss_g}
        if average is not None:
            average.update_parameters(generator)
        if step % setup.log_every == 0 or step == steps or step == 1:  # as often as akdg's loop logs
            history.append({"step": step, **{name: value.item() for name, value in losses.items()}})
            log.info("bare step %d/%d: %s", step, steps, ", ".join(f"{k} {v:.4f}" for k, v in history[-1].items() if k != "step"))
    if average is not None:
        generator.load_state_dict(average.module.state_dict())
        norms = [module for module in generator.modules() if isinstance(module, nn.BatchNorm2d)]
        for norm in norms:  # standing statistics: the averaged weights' own BN statistics, a cumulative mean over batches
            norm.reset_running_stats()
            norm.momentum = None
        rng = torch.Generator().manual_seed(EMA_BN_SEED)
        with torch.no_grad():
            for _ in range(EMA_BN_BATCHES):
                generator(torch.randn(batch, setup.z_dim, generator=rng).to(device))
        for norm in norms:
            norm.momentum = 0.1
    return [generator, *discriminators]


def largest_difference(ours: list[nn.Module], bare: list[nn.Module]) -> float:
    """The largest absolute difference over every parameter and buffer of the models; 0.0 when all are equal."""
    if len(ours) != len(bare):
        return float("inf")
    largest = 0.0
    for a, b in zip(ours, bare):
        state_a, state_b = a.state_dict(), b.state_dict()
        if state_a.keys() != state_b.keys():
            return float("inf")
        for key, tensor in state_a.items():
            if not torch.equal(tensor, state_b[key]):
                largest = max(largest, (tensor.double() - state_b[key].double()).abs().max().item())
    return largest


def measure(setup: Setup, steps: int, repeats: int, device: torch.device, amp: bool, seed: int) -> dict[str, Any]:
    """Interleaved timings of one setup, its ratio to the target and the weight comparison of every pair."""
    differences: list[float] = []
    runs = {
        "ours": lambda: prepare_ours(setup, steps, device, seed, amp=amp),
        "bare": lambda: prepare_bare(setup, steps, device, amp, seed),
    }
    interleave(runs, 1, device)  # warm-up (first-call allocations, lazy initialisation), not kept
    seconds, cpu_seconds = interleave(
        runs, repeats, device, on_result=lambda _, models: differences.append(largest_difference(models["ours"], models["bare"]))
    )
    ratios = ratio_figures(seconds["bare"], seconds["ours"])  # bare seconds / ours seconds = ours steps/s / bare steps/s
    cpu_ratios = ratio_figures(cpu_seconds["bare"], cpu_seconds["ours"])
    return {
        **setup.describe(),
        "steps": steps,
        "repeats": repeats,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "ours_steps_per_s": steps / statistics.median(seconds["ours"]),
        "bare_steps_per_s": steps / statistics.median(seconds["bare"]),
        "ours_over_bare": ratios["median_paired_ratio"],  # the headline: each pair ran back to back, so load drift cancels
        "ours_over_bare_of_medians": ratios["ratio_of_medians"],
        "paired_ratios": ratios["paired_ratios"],
        "ours_over_bare_cpu_time": cpu_ratios["median_paired_ratio"],  # on a busy CPU the steadier figure
        "target": TARGET,
        "meets_target": ratios["median_paired_ratio"] >= TARGET,
        "weights_equal": all(d == 0.0 for d in differences),
        "max_abs_weight_difference": max(differences),
    }


def add_step_arguments(parser: argparse.ArgumentParser) -> None:
    """``--steps`` and ``--paper-steps``: run lengths at the default config's and at paper sizes."""
    parser.add_argument("--steps", type=int, default=None, help="per run at the default config's sizes (default: 50 on CPU, 500 on CUDA)")
    parser.add_argument("--paper-steps", type=int, default=None, help="per run at paper sizes (default: 3 on CPU, 200 on CUDA)")


def steps_per_config(args: argparse.Namespace, cuda: bool) -> dict[str, int]:
    """The run lengths :func:`add_step_arguments` asked for, with the device's defaults (a CPU step at paper sizes takes seconds)."""
    return {"default": args.steps or (500 if cuda else 50), "cifar10": args.paper_steps or (200 if cuda else 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1: what the DAG gives a student job)")
    parser.add_argument("--configs", nargs="+", default=["default", "cifar10"], choices=["default", "cifar10"])
    parser.add_argument("--methods", nargs="+", default=["vanilla", "mse", "akdg"], choices=sorted(DISCRIMINATORS))
    add_step_arguments(parser)
    parser.add_argument(
        "--repeats", type=int, default=11, help="timed runs of each loop per setup at the default config's sizes, interleaved"
    )
    parser.add_argument("--paper-repeats", type=int, default=None, help="the same at paper sizes (default: 3 on CPU, 5 on CUDA)")
    parser.add_argument("--amp", action="store_true", help="both loops under bfloat16 autocast (training.amp)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "loop_overhead.json")
    args = parser.parse_args(argv)
    setup_logging()
    device = choose_device(args.device, args.threads)
    info = machine(device)
    cuda = device.type == "cuda"
    steps = steps_per_config(args, cuda)
    repeats = {"default": args.repeats, "cifar10": args.paper_repeats or (5 if cuda else 3)}
    results = []
    for name in args.configs:
        for setup in config_setups(name, args.methods, SYNTHETIC_IMAGES):
            log.info("%s: %d steps x %d repeats per loop on %s", setup.label, steps[name], repeats[name], info["device"])
            results.append(measure(setup, steps[name], repeats[name], device, args.amp, args.seed))
    rows = [
        (
            r["label"],
            f"{r['ours_steps_per_s']:.2f}",
            f"{r['bare_steps_per_s']:.2f}",
            f"{r['ours_over_bare']:.3f}",
            f"{r['ours_over_bare_of_medians']:.3f}",
            f"{r['ours_over_bare_cpu_time']:.3f}",
            "yes" if r["meets_target"] else "NO",
            "yes" if r["weights_equal"] else f"NO ({r['max_abs_weight_difference']:.2e})",
        )
        for r in results
    ]
    log.info(
        "\n%s",
        table(
            ["setup", "ours steps/s", "bare steps/s", "ours/bare (paired)", "of medians", "by CPU time", f">= {TARGET}", "same weights"],
            rows,
        ),
    )
    settings = {
        "steps": steps,
        "repeats": repeats,
        "amp": args.amp,
        "seed": args.seed,
        "threads": args.threads,
        "resume_states": "off (train() without resume)",
    }
    write_result(args.out, "loop_overhead", info, settings, results, target=f"ours/bare steps per second >= {TARGET}")
    if not all(r["weights_equal"] for r in results) and not cuda:
        log.error("the bare loop did not end with akdg's weights: the comparison is not between equal work (a bug here)")
        return 1
    return 0


if __name__ == "__main__":
    run(main)
