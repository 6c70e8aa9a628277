"""The one adversarial training loop every method (teacher, baselines, AKDG) runs on.

A method is a small class registered in :data:`METHODS`: it owns its discriminators and optimisers
and implements one ``train_step``. The loop owns everything else: seeding, batches, noise, progress,
NaN checks and the final checkpoint, so methods differ only where the paper says they do.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn as nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from akdg.architectures import build_discriminator
from akdg.datasets import to_model_range
from akdg.losses import GanLoss
from akdg.registry import AkdgError, Registry
from akdg.resume import Resumable

log = logging.getLogger(__name__)


@dataclass
class TrainContext:
    """What a method may use: the generator it trains, an optional frozen teacher, data and settings."""

    generator: nn.Module
    teacher: nn.Module | None
    images: torch.Tensor  # the train split, uint8 0..255 (a float copy of LSUN at 256 px would not fit in memory)
    z_dim: int
    batch_size: int
    loss: GanLoss
    discriminator_spec: dict[str, Any]
    optimizer: dict[str, Any]
    n_dis: int
    device: torch.device
    rng: torch.Generator
    generator_spec: dict[str, Any] | None = None  # the {arch, width} specs, for methods' compatibility checks
    teacher_spec: dict[str, Any] | None = None
    discriminators: list[nn.Module] = field(default_factory=list)  # every one new_discriminator built

    @property
    def resolution(self) -> int:
        return int(self.images.shape[-1])

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    def real_batch(self) -> torch.Tensor:
        """A batch of real images, drawn with replacement from the train split, as float -1..1 on ``device``."""
        index = torch.randint(len(self.images), (self.batch_size,), generator=self.rng, device="cpu")
        return to_model_range(self.images[index.to(self.images.device)]).to(self.device)

    def noise(self, count: int | None = None) -> torch.Tensor:
        """A fresh N(0, I) draw; every call is independent of the previous ones."""
        z = torch.randn(count or self.batch_size, self.z_dim, generator=self.rng, device="cpu")
        return z.to(self.device)

    def new_discriminator(self) -> nn.Module:
        """A fresh discriminator, remembered so that the loop can grow it along with the generator."""
        discriminator = build_discriminator(self.discriminator_spec, resolution=self.resolution, channels=self.channels)
        self.discriminators.append(discriminator.to(self.device))
        return discriminator

    def adam(self, parameters: Any, lr_key: str) -> torch.optim.Optimizer:
        return torch.optim.Adam(parameters, lr=self.optimizer[lr_key], betas=tuple(self.optimizer["betas"]))


class Method:
    """Base class for a training method; subclasses set ``name``-level options and ``train_step``."""

    requires_teacher: ClassVar[bool] = False
    default_options: ClassVar[dict[str, Any]] = {}

    def __init__(self, ctx: TrainContext, **options: Any) -> None:
        unknown = set(options) - set(self.default_options)
        if unknown:
            raise AkdgError(
                f"{type(self).__name__} got unknown option(s) {sorted(unknown)}; "
                f"it accepts {sorted(self.default_options) or 'none'}"
            )
        if self.requires_teacher and ctx.teacher is None:
            raise AkdgError(f"{type(self).__name__} distils from a teacher, but none was given")
        if ctx.generator_spec is not None and (ctx.teacher_spec is not None or not self.requires_teacher):
            self.check_generators(ctx.generator_spec, ctx.teacher_spec)
        self.ctx = ctx
        self.options = {**self.default_options, **options}
        self.generator_optimizer = ctx.adam(ctx.generator.parameters(), "lr_g")

    @classmethod
    def check_generators(cls, student_spec: dict[str, Any], teacher_spec: dict[str, Any] | None) -> None:
        """Raise AkdgError for a student/teacher pair ({arch, width} specs) this method cannot train.

        Config validation calls it for every student of the grid, so that a method that needs, e.g.,
        residual generators fails before any job runs, not after the teacher's hours of training.
        """

    def state_dict(self) -> dict[str, Any]:
        """Every module and optimiser the method holds (discriminators, adapters, optimisers), for resuming."""
        return {name: value.state_dict() for name, value in sorted(vars(self).items()) if isinstance(value, (nn.Module, torch.optim.Optimizer))}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            getattr(self, name).load_state_dict(value)

    def train_step(self) -> dict[str, float]:
        """One update of the generator (and the method's discriminators); returns named losses."""
        raise NotImplementedError

    # Helpers shared by the adversarial methods.
    def discriminator_update(
        self, discriminator: nn.Module, optimizer: torch.optim.Optimizer, positive: torch.Tensor, negative: torch.Tensor
    ) -> torch.Tensor:
        """One step teaching ``discriminator`` to score ``positive`` above ``negative``.

        Both batches go through in one forward pass (half the spectral-norm power iterations),
        which equals two passes for discriminators without batch statistics. One that mixes the
        batch (``mixes_batch = True``, e.g. PGGAN's minibatch stddev) gets two separate passes, so
        that real and generated images never share a statistic.
        """
        if getattr(discriminator, "mixes_batch", False):
            loss = self.ctx.loss.discriminator(discriminator(positive), discriminator(negative))
        else:
            scores = discriminator(torch.cat([positive, negative]))
            loss = self.ctx.loss.discriminator(scores[: len(positive)], scores[len(positive) :])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    def generator_update(self, loss: torch.Tensor) -> None:
        self.generator_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.generator_optimizer.step()


METHODS: Registry[type[Method]] = Registry("method")


def check_finite(losses: dict[str, float], step: int) -> None:
    """Stop at the first NaN/Inf loss, naming it, instead of training on garbage."""
    for name, value in losses.items():
        if not math.isfinite(value):
            raise AkdgError(
                f"loss {name!r} became {value} at step {step}; lower the learning rates in "
                "'training.optimizer' or change 'loss', then rerun"
            )


def train(
    method_name: str,
    method_options: dict[str, Any],
    ctx: TrainContext,
    steps: int,
    *,
    log_every: int = 50,
    ema_decay: float = 0.0,
    resume: Resumable | None = None,
) -> list[dict[str, float]]:
    """Run ``steps`` updates of a registered method; returns the loss history sampled every ``log_every``.

    With ``ema_decay`` > 0 the generator left in ``ctx`` is the exponential moving average of its
    weights (and BN statistics) over training: GAN end points are noisy, the average much less so.
    Models that grow (``set_progress``: the generator and every discriminator the context built)
    are set to (step - 1) / steps before each step and the generator to 1.0 at the end; progress is
    a plain attribute, not state, so the EMA copy and the checkpoint never carry a stale one.
    With ``resume``, the full training state is written every ``resume.every`` steps and a run
    that finds one continues after its step (a NaN stop leaves the last good one in place).
    """
    method = METHODS.get(method_name)(ctx, **method_options)
    ctx.generator.train()
    average = AveragedModel(ctx.generator, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True) if ema_decay else None
    history: list[dict[str, float]] = []
    first = 1
    state = resume.load() if resume is not None else None
    if state is not None:
        ctx.generator.load_state_dict(state["generator"])
        method.load_state_dict(state["method"])
        if average is not None:
            average.load_state_dict(state["average"])
        ctx.rng.set_state(state["rng"])
        history, first = state["history"], state["step"] + 1
        log.info("resuming from %s at step %d of %d", resume.path, first, steps)
    progress = tqdm(range(first, steps + 1), desc=method_name, unit="step", mininterval=2.0, disable=None)
    growing = [model for model in (ctx.generator, *ctx.discriminators) if hasattr(model, "set_progress")]
    for step in progress:
        for model in growing:
            model.set_progress((step - 1) / steps)
        losses = method.train_step()
        check_finite(losses, step)
        if average is not None:
            average.update_parameters(ctx.generator)
        if step % log_every == 0 or step == steps or step == 1:
            history.append({"step": step, **losses})
            progress.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})
            log.info("step %d/%d: %s", step, steps, ", ".join(f"{k} {v:.4f}" for k, v in losses.items()))
        if resume is not None and resume.due(step, steps):
            resume.save(
                step,
                {
                    "generator": ctx.generator.state_dict(),
                    "method": method.state_dict(),
                    "average": average.state_dict() if average is not None else None,
                    "rng": ctx.rng.get_state(),
                    "history": history,
                },
            )
    if average is not None:
        ctx.generator.load_state_dict(average.module.state_dict())
    if hasattr(ctx.generator, "set_progress"):
        ctx.generator.set_progress(1.0)
    ctx.generator.eval()
    return history


def _register_builtin_methods() -> None:
    # AKDG lives beside the loop; the baselines live in their own package. Both register on import.
    import baselines  # noqa: F401
    from akdg import method_akdg  # noqa: F401


_register_builtin_methods()
