"""The one adversarial training loop every method (teacher, baselines, AKDG) runs on.

A method is a small class registered in :data:`METHODS`: it owns its discriminators and optimisers
and implements one ``train_step``. The loop owns everything else: seeding, batches, noise, progress,
NaN checks, the device and mixed precision, and the final checkpoint, so methods differ only where
the paper says they do.
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any, Callable

import torch
import torch.nn as nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from akdg.method_api import Method, TrainContext
from akdg.progress import LoggedProgress
from akdg.registry import METHODS, AkdgError
from akdg.resume import Resumable

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")  # training.device in the config schema


def resolve_device(requested: str) -> torch.device:
    """The device ``training.device`` names: ``auto`` is CUDA where there is one, else the CPU."""
    if requested not in DEVICES:
        raise AkdgError(f"training.device is {requested!r}; set it to one of {', '.join(DEVICES)}")
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise AkdgError(
            "training.device is 'cuda' but torch sees no CUDA device here (no GPU, a CPU-only torch build, or "
            "CUDA_VISIBLE_DEVICES hides it); set training.device: auto (CUDA where there is one) or cpu"
        )
    return torch.device("cuda", torch.cuda.current_device())


DIVERGENCE_CAUSES = (
    "learning rates too high for this model ('training.optimizer'), a method option that pushes the wrong way "
    "(e.g. a negative weight in 'methods'), or a loss unsuited to it ('loss')"
)
MAX_ABS_LOSS = 1e4  # training.max_abs_loss's default in the config schema
PROBE_SAMPLES = 64  # images the trained generator makes from a fixed z before it is saved; all must be finite
PROBE_SEED = 0  # the probe's own torch.Generator: the training RNG streams are untouched
EMA_BN_BATCHES = 100  # training.ema_bn_batches's default in the config schema
EMA_BN_SEED = 1  # the standing statistics' own torch.Generator: the training RNG streams are untouched


def check_finite(losses: dict[str, float], step: int, max_abs_loss: float) -> None:
    """Stop at the first NaN/Inf loss, or one beyond ``max_abs_loss``, naming it, instead of training on garbage.

    One comparison per loss (``not abs(value) <= bound`` is also true for NaN): it runs every step.
    """
    for name, value in losses.items():
        if not abs(value) <= max_abs_loss:
            if math.isfinite(value):
                what, causes = (
                    f"reached {value:.3g}, beyond training.max_abs_loss={max_abs_loss:g},",
                    f"{DIVERGENCE_CAUSES}, or a bound too low for this loss",
                )
            else:
                what, causes = f"became {value}", DIVERGENCE_CAUSES
            raise AkdgError(
                f"loss {name!r} {what} at step {step}: training diverged; likely causes are {causes}; fix the one that applies and rerun"
            )


def trained_modules(ctx: TrainContext, method: Method, average: AveragedModel | None) -> dict[str, nn.Module]:
    """Every module whose weights training changes and saves: the generator, its EMA and the method's own."""
    modules = {"generator": ctx.generator}
    if average is not None:
        modules["generator EMA"] = average.module
    modules.update((name, value) for name, value in sorted(vars(method).items()) if isinstance(value, nn.Module))
    return modules


def check_finite_weights(modules: dict[str, nn.Module], step: int) -> None:
    """Stop if any floating-point parameter or buffer holds NaN or Inf, naming the first one.

    One ``isfinite().all()`` per tensor, stacked and read once: a single synchronisation on CUDA,
    so it runs every ``log_every`` steps and before each saved state, not every step.
    """
    names, flags = [], []
    for module_name, module in modules.items():
        for name, tensor in (*module.named_parameters(), *module.named_buffers()):
            if tensor.is_floating_point():
                names.append(f"weight {name!r} of the {module_name}")
                flags.append(tensor.detach().isfinite().all())
    if not flags:
        return
    bad = (~torch.stack(flags)).nonzero()
    if len(bad):
        raise AkdgError(
            f"{names[int(bad[0])]} holds NaN or Inf at step {step} ({len(bad)} of {len(names)} weight tensors do): training diverged; "
            f"likely causes are {DIVERGENCE_CAUSES}; fix the one that applies and rerun"
        )


def check_probe(generator: nn.Module, z_dim: int, device: torch.device) -> None:
    """Stop unless the generator to be saved, in eval mode, makes finite images from a fixed z.

    Finite weights can still make NaN images (weights near float32's limit overflow in the forward
    pass); evaluation would turn those into black images and score them. ``forward`` is called, not
    the module: a compiled generator would otherwise recompile for eval mode.
    """
    z = torch.randn(PROBE_SAMPLES, z_dim, generator=torch.Generator().manual_seed(PROBE_SEED)).to(device)
    with torch.no_grad():
        images = generator.forward(z)
    nonfinite = int((~images.isfinite()).sum())
    if nonfinite:
        raise AkdgError(
            f"the trained generator's {PROBE_SAMPLES} probe images hold {nonfinite} NaN or Inf values of {images.numel()}: "
            f"training diverged; likely causes are {DIVERGENCE_CAUSES}; fix the one that applies and rerun"
        )


def batch_norms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers of ``model`` that keep running statistics."""
    return [module for module in model.modules() if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats]


def standing_statistics(generator: nn.Module, z_dim: int, batch_size: int, batches: int, device: torch.device) -> None:
    """Recompute the BatchNorm running statistics of ``generator`` from its own activations (standing statistics).

    An EMA generator's averaged buffers are averages of the raw weights' statistics, not those of
    the averaged weights, so in eval mode it normalises with statistics that are not its own. Here
    they are reset and re-estimated with ``batches`` train-mode forward passes of ``batch_size`` fresh
    z each, with a cumulative average (momentum None: every batch weighs the same), as BigGAN does
    (Brock et al., 2019). The noise comes from its own torch.Generator, so training's RNG streams,
    and so resumed runs, are untouched. A generator without BatchNorm is left as it is.
    """
    norms = batch_norms(generator)
    if not norms or batches == 0:
        return
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    training = generator.training
    generator.train()
    rng = torch.Generator().manual_seed(EMA_BN_SEED)
    with torch.no_grad():
        for _ in range(batches):
            generator.forward(torch.randn(batch_size, z_dim, generator=rng).to(device))  # forward: no recompile of a compiled one
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    generator.train(training)


def ema_bn_statistics(generator: nn.Module, ema_decay: float, batch_size: int, batches: int) -> str | None:
    """Where the saved generator's BatchNorm statistics come from, for the protocol; None without an EMA."""
    if not ema_decay:
        return None
    if not batch_norms(generator):
        return "no BatchNorm layers"
    if batches == 0:
        return "averaged from the raw weights' running statistics (training.ema_bn_batches 0)"
    return (
        f"recomputed for the EMA weights (standing statistics): {batches} train-mode batches of {batch_size} fresh z "
        f"(seed {EMA_BN_SEED}), cumulative average"
    )


def curve_steps(fractions: list[float], steps: int) -> list[int]:
    """The steps at which a run keeps its generator for the training curves: round(f · steps) for each
    fraction, at least 1, sorted with duplicates merged (fractions closer than a step apart share one)."""
    return sorted({max(1, round(fraction * steps)) for fraction in fractions})


def curve_snapshot(ctx: TrainContext, average: AveragedModel | None, step: int, steps: int, ema_bn_batches: int) -> dict[str, torch.Tensor]:
    """The weights the run would save if it ended after ``step``, as CPU tensors, for a training-curve point.

    With an EMA, a copy of the averaged generator gets standing statistics (:func:`standing_statistics`)
    just as the final one does; without, the raw generator's own weights and statistics. Only a copy is
    run (on its own noise generator), so training's models and RNG streams, and a resumed run, are untouched.
    """
    if average is None:
        source = ctx.generator
    else:
        source = copy.deepcopy(average.module)
        if hasattr(source, "set_progress"):
            source.set_progress(step / steps)
        standing_statistics(source, ctx.z_dim, ctx.batch_size, ema_bn_batches, ctx.device)
    return {
        name: tensor.detach().to("cpu", memory_format=torch.contiguous_format, copy=True) for name, tensor in source.state_dict().items()
    }


def checks_made(log_every: int, max_abs_loss: float) -> dict[str, Any]:
    """What :func:`train` checked, for the checkpoint's meta (and so every run's protocol)."""
    return {
        "finite_losses": "every step",
        "max_abs_loss": max_abs_loss,
        "finite_weights": f"every {log_every} steps, before each saved state and at the end",
        "probe_samples_finite": PROBE_SAMPLES,
    }


def global_rng(device: torch.device) -> dict[str, torch.Tensor | None]:
    """torch's global generators (the CPU's and, training on CUDA, the device's), for the resume state.

    The built-in methods draw only from ``ctx.rng``; these cover whatever else draws during training
    (dropout, a plugin method's own noise), so that a resumed run still continues the same streams.
    """
    return {"torch_rng": torch.get_rng_state(), "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def restore_global_rng(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] is not None:
        torch.cuda.set_rng_state(state["cuda_rng"], device)


def lr_factor(schedule: dict[str, Any] | None, step: int, steps: int) -> float:
    """The learning rate of step ``step`` (1-based) over the configured one, as ``training.lr_schedule`` says.

    Linear, as Chainer's LinearShift in SNGAN's code: ``lr0`` while at most ``start`` steps are done,
    then ``lr0 · (1 − (done − start) / (steps − start))`` with ``done = step − 1``, so the first update
    uses ``lr0`` and the rate reaches 0 after the last one. A function of the step alone, so that a
    resumed run continues the schedule exactly.
    """
    if schedule is None or schedule["kind"] == "constant":
        return 1.0
    done, start = step - 1, schedule.get("start", 0)
    return 1.0 if done <= start else 1.0 - (done - start) / (steps - start)


def scheduled_groups(method: Method, schedule: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The parameter groups of every optimiser the method holds, each with its configured rate as ``initial_lr``
    (as torch's schedulers keep it; the optimisers' state, and so the resume state, carries it); none when constant."""
    if schedule is None or schedule["kind"] == "constant":
        return []
    optimizers = [value for _, value in sorted(vars(method).items()) if isinstance(value, torch.optim.Optimizer)]
    groups = [group for optimizer in optimizers for group in optimizer.param_groups]
    for group in groups:
        group.setdefault("initial_lr", group["lr"])
    return groups


def train(
    method_name: str,
    method_options: dict[str, Any],
    ctx: TrainContext,
    steps: int,
    *,
    log_every: int = 50,
    ema_decay: float = 0.0,
    resume: Resumable | None = None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    max_abs_loss: float = MAX_ABS_LOSS,
    ema_bn_batches: int = EMA_BN_BATCHES,
    lr_schedule: dict[str, Any] | None = None,
    curve_at: list[int] | tuple[int, ...] = (),
) -> list[dict[str, float]]:
    """Run ``steps`` updates of a registered method; returns the loss history sampled every ``log_every``.

    With ``ema_decay`` > 0 the generator left in ``ctx`` is the exponential moving average of its
    weights over training (GAN end points are noisy, the average much less so), with BatchNorm
    statistics of its own from ``ema_bn_batches`` batches (:func:`standing_statistics`); the raw
    weights of the last step, with their own BatchNorm statistics, are kept in ``ctx.last_weights``
    (CPU tensors), so the checkpoint can hold both and the evaluation can show what the EMA changed.
    Models that grow (``set_progress``: the generator and every discriminator the context built)
    are set to (step - 1) / steps before each step and the generator to 1.0 at the end; progress is
    a plain attribute, not state, so the EMA copy and the checkpoint never carry a stale one.
    With ``resume``, the full training state is written every ``resume.every`` steps and a run
    that finds one continues after its step (a NaN stop leaves the last good one in place).
    Each ``train_step`` runs under ``ctx.autocast()`` (a no-op unless ``ctx.amp``). With
    ``ctx.compile`` the models are compiled (see :func:`compile_models`) once the method has built
    its discriminators; the weights saved and averaged are the same tensors either way.
    At each step of ``curve_at`` but the last, the weights the run would save if it ended there
    (:func:`curve_snapshot`) are appended to ``ctx.curve`` as ``{"step", "state_dict"}``; the last step's
    entry has no ``state_dict`` (they are the saved weights). The snapshots are part of the resume state.
    ``on_step(step, losses)`` is called after every step (its losses already read, so on CUDA the
    step has finished): per-step timing or logging without copying the loop.
    Training stops with an AkdgError (see :func:`checks_made`) at a NaN/Inf loss or one beyond
    ``max_abs_loss`` (every step), at NaN/Inf weights (every ``log_every`` steps and before each saved
    state, so a state on disk is never non-finite); the last step is always checked. Before saving the
    generator, the caller runs :func:`check_probe` on it (a one-off forward pass, outside the loop).
    """
    method = METHODS.get(method_name)(ctx, **method_options)
    ctx.generator.train()
    average = AveragedModel(ctx.generator, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True) if ema_decay else None
    compile_models(ctx)
    history: list[dict[str, float]] = []
    first = 1
    state = resume.load() if resume is not None else None
    if state is not None:
        try:
            ctx.generator.load_state_dict(state["generator"])
            method.load_state_dict(state["method"])
            if average is not None:
                average.load_state_dict(state["average"])
            ctx.rng.set_state(state["rng"])
            ctx.real_images_seen = state["real_images_seen"]
            ctx.curve = list(state.get("curve", []))  # states written without curves hold none
            restore_global_rng(state, ctx.device)
        except (RuntimeError, KeyError, ValueError, AttributeError, TypeError) as error:
            raise AkdgError(
                f"training state {resume.path} was written for this run but does not fit its models ({type(error).__name__}: "
                f"{str(error).splitlines()[0]}); the code changed since it was saved? Delete it to train from step 1"
            ) from error
        history, first = state["history"], state["step"] + 1
        log.info("resuming from %s at step %d of %d", resume.path, first, steps)
    progress = LoggedProgress(
        range(first, steps + 1),
        total=steps,
        initial=first - 1,
        desc=f"train {method_name}",
        unit="steps",
        logger=log,
        per_unit=(ctx.batch_size, "images"),
    )
    growing = [model for model in (ctx.generator, *ctx.discriminators) if hasattr(model, "set_progress")]
    scheduled = scheduled_groups(method, lr_schedule)
    for step in progress:
        if ctx.compile == "reduce-overhead" and ctx.device.type == "cuda":
            torch.compiler.cudagraph_mark_step_begin()  # a step's graph outputs may be overwritten by the next step's replay
        for model in growing:
            model.set_progress((step - 1) / steps)
        for group in scheduled:
            group["lr"] = group["initial_lr"] * lr_factor(lr_schedule, step, steps)
        with ctx.autocast():
            losses = method.train_step()
        check_finite(losses, step, max_abs_loss)
        if average is not None:
            average.update_parameters(ctx.generator)
        if step in curve_at:
            ctx.curve.append(
                {"step": step} if step == steps else {"step": step, "state_dict": curve_snapshot(ctx, average, step, steps, ema_bn_batches)}
            )
        if on_step is not None:
            on_step(step, losses)
        logged, saved = step % log_every == 0 or step == steps or step == 1, resume is not None and resume.due(step, steps)
        if logged:
            history.append({"step": step, **losses})
            log.info("step %d/%d: %s", step, steps, ", ".join(f"{k} {v:.4f}" for k, v in losses.items()))
        if logged or saved:  # the last step is always logged: the weights saved at the end are checked too
            check_finite_weights(trained_modules(ctx, method, average), step)
        if saved:
            resume.save(
                step,
                {
                    "generator": ctx.generator.state_dict(),
                    "method": method.state_dict(),
                    "average": average.state_dict() if average is not None else None,
                    "rng": ctx.rng.get_state(),
                    "real_images_seen": ctx.real_images_seen,
                    **global_rng(ctx.device),
                    "history": history,
                    "curve": ctx.curve,
                },
            )
    if average is not None:
        ctx.last_weights = {
            name: tensor.detach().to("cpu", memory_format=torch.contiguous_format, copy=True)
            for name, tensor in ctx.generator.state_dict().items()
        }
        ctx.generator.load_state_dict(average.module.state_dict())
    ctx.generator.to(memory_format=torch.contiguous_format)  # the checkpoint holds plain NCHW weights whatever the layout trained in
    if hasattr(ctx.generator, "set_progress"):
        ctx.generator.set_progress(1.0)
    if average is not None:
        standing_statistics(ctx.generator, ctx.z_dim, ctx.batch_size, ema_bn_batches, ctx.device)
    ctx.generator.eval()
    return history


def compile_models(ctx: TrainContext) -> None:
    """``torch.compile`` the generator, teacher and discriminators in place, as ``ctx.compile`` asks.

    ``Module.compile`` keeps each module's parameters and state-dict keys, so optimisers, the EMA,
    resume states and checkpoints see the same tensors as without it. Models that grow
    (``set_progress``, PGGAN's fade-in) are left eager: their progress is a Python float that
    torch.compile would specialise on, recompiling every step. Compiling costs seconds to minutes
    once per job; spectrally normalised layers get a class of their own per instance, so each
    discriminator is compiled separately.
    """
    if ctx.compile == "off":
        return
    for model in (ctx.generator, ctx.teacher, *ctx.discriminators):
        if model is None:
            continue
        if hasattr(model, "set_progress"):
            log.info("training.compile: %s grows during training and stays eager", type(model).__name__)
            continue
        model.compile(mode=ctx.compile)
    log.info("training.compile: models compiled with mode %r (first steps include compilation)", ctx.compile)
