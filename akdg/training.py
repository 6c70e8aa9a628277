"""The one adversarial training loop every method (teacher, baselines, AKDG) runs on.

A method is a small class registered in :data:`METHODS`: it owns its discriminators and optimisers
and implements one ``train_step``. The loop owns everything else: seeding, batches, noise, progress,
NaN checks, the device and mixed precision, and the final checkpoint, so methods differ only where
the paper says they do.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import torch
import torch.nn as nn
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from akdg.architectures import build_discriminator
from akdg.datasets import to_model_range
from akdg.losses import GanLoss
from akdg.progress import LoggedProgress
from akdg.registry import AkdgError, Registry
from akdg.resume import Resumable

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")  # training.device in the config schema
COMPILE_MODES = ("off", "default", "reduce-overhead")  # training.compile; reduce-overhead adds CUDA graphs on a GPU
DATA_ON_DEVICE_FRACTION = 0.25  # of the GPU's free memory; the rest is left to models, activations and optimiser state


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


def place_images(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The train split where batches are drawn from: on the GPU when it fits, else in host memory.

    On the GPU, drawing a batch is an index on the device: no host-to-device copy per step. A split
    above :data:`DATA_ON_DEVICE_FRACTION` of the free GPU memory (LSUN at 256 px: ~20 GB of uint8)
    stays in host memory and each batch is copied over (see :meth:`TrainContext.real_batch`). The
    split itself is not pinned: page-locking that much host memory starves the machine, and indexing
    a pinned tensor gives unpinned memory anyway; each gathered uint8 batch is pinned instead.
    """
    if device.type != "cuda" or images.device == device:
        return images
    free, _ = torch.cuda.mem_get_info(device)
    size = images.numel() * images.element_size()
    if size < DATA_ON_DEVICE_FRACTION * free:
        log.info("train split (%.1f MiB of uint8) moved to %s once; batches are drawn there", size / 2**20, device)
        return images.to(device)
    log.info(
        "train split (%.1f MiB of uint8) exceeds %d%% of %s's free memory (%.1f MiB): kept in host memory, each batch copied over",
        size / 2**20, round(100 * DATA_ON_DEVICE_FRACTION), device, free / 2**20,
    )
    return images


@dataclass
class TrainContext:
    """What a method may use: the generator it trains, an optional frozen teacher, data and settings.

    Building one puts the generator, the teacher and (where it fits) the train split on ``device``.
    ``amp`` runs every method's forward passes under bfloat16 autocast (see :meth:`autocast`).
    ``channels_last`` stores every model's conv weights and the real batches NHWC, the layout GPU
    tensor cores and oneDNN prefer; ``compile`` is the ``torch.compile`` mode :func:`train` applies.
    """

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
    amp: bool = False
    channels_last: bool = False
    compile: str = "off"

    def __post_init__(self) -> None:
        if self.compile not in COMPILE_MODES:
            raise AkdgError(f"training.compile is {self.compile!r}; set it to one of {', '.join(COMPILE_MODES)}")
        if self.amp and self.device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
            raise AkdgError(
                f"training.amp autocasts to bfloat16, which {torch.cuda.get_device_name(self.device)} does not support "
                "natively (it needs an Ampere or newer GPU); set training.amp: false"
            )
        if self.amp and self.device.type == "cpu":
            log.info("training.amp on the CPU: bfloat16 autocast, as on a GPU (usually slower than float32 without AVX-512 BF16/AMX)")
        self.generator.to(self.device, memory_format=self.memory_format)
        if self.teacher is not None:
            self.teacher.to(self.device, memory_format=self.memory_format)
        self.images = place_images(self.images, self.device)

    @property
    def memory_format(self) -> torch.memory_format:
        """What ``channels_last`` asks for; ``Module.to`` applies it to 4-d weights only, so MLPs are unchanged."""
        return torch.channels_last if self.channels_last else torch.contiguous_format

    @property
    def resolution(self) -> int:
        return int(self.images.shape[-1])

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    def real_batch(self) -> torch.Tensor:
        """A batch of real images, drawn with replacement from the train split, as float -1..1 on ``device``.

        The index comes from ``rng`` on the CPU wherever the data is, so a run draws the same
        images on every device. A split kept in host memory sends its uint8 batch (4x smaller
        than float) through pinned memory, so that the copy overlaps the GPU's work.
        """
        index = torch.randint(len(self.images), (self.batch_size,), generator=self.rng, device="cpu")
        batch = self.images[index.to(self.images.device)]
        if batch.device.type == "cpu" and self.device.type != "cpu":
            batch = batch.pin_memory().to(self.device, non_blocking=True)
        return to_model_range(batch).contiguous(memory_format=self.memory_format)

    def noise(self, count: int | None = None) -> torch.Tensor:
        """A fresh N(0, I) draw; every call is independent of the previous ones."""
        z = torch.randn(count or self.batch_size, self.z_dim, generator=self.rng, device="cpu")
        return z.to(self.device)

    def new_discriminator(self) -> nn.Module:
        """A fresh discriminator, remembered so that the loop can grow it along with the generator."""
        discriminator = build_discriminator(self.discriminator_spec, resolution=self.resolution, channels=self.channels)
        self.discriminators.append(discriminator.to(self.device, memory_format=self.memory_format))
        return discriminator

    def adam(self, parameters: Any, lr_key: str) -> torch.optim.Optimizer:
        return torch.optim.Adam(parameters, lr=self.optimizer[lr_key], betas=tuple(self.optimizer["betas"]))

    def autocast(self, enabled: bool = True) -> torch.autocast:
        """bfloat16 autocast on ``device`` where ``amp`` is on; ``enabled=False`` suspends it (for backward passes).

        bfloat16 keeps float32's exponent range, so GAN losses need no loss scaling (fp16's
        GradScaler, one per optimiser); weights, optimiser state and the EMA stay float32. The cast
        cache is off: a train_step updates D in place and then uses it for G's loss, and cached
        bfloat16 copies would still hold D's weights from before that update.
        """
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp and enabled, cache_enabled=False)


WEIGHT = {"type": "number", "minimum": 0}  # a loss term's weight: a negative one rewards moving away from the term's target
OPTION_TYPES = {bool: "boolean", int: "number", float: "number", str: "string"}  # JSON types of options declared by their default only


class Method:
    """Base class for a training method; subclasses set ``name``-level options and ``train_step``.

    ``default_options`` names the options; ``option_schemas`` gives each one's JSON schema (type and
    range, e.g. :data:`WEIGHT`), or it must have its default's type. Config validation checks the
    config's options against them (:meth:`check_options`) before any job runs, and so does ``__init__``.
    """

    requires_teacher: ClassVar[bool] = False
    default_options: ClassVar[dict[str, Any]] = {}
    option_schemas: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, ctx: TrainContext, **options: Any) -> None:
        self.check_options(options, type(self).__name__)
        if self.requires_teacher and ctx.teacher is None:
            raise AkdgError(f"{type(self).__name__} distils from a teacher, but none was given")
        if ctx.generator_spec is not None and (ctx.teacher_spec is not None or not self.requires_teacher):
            self.check_generators(ctx.generator_spec, ctx.teacher_spec)
        self.ctx = ctx
        self.options = {**self.default_options, **options}
        self.generator_optimizer = ctx.adam(ctx.generator.parameters(), "lr_g")

    @classmethod
    def options_schema(cls) -> dict[str, Any]:
        """The JSON schema of the options: config validation also uses it to read ``--config`` strings as numbers."""
        properties = {
            key: cls.option_schemas.get(key, {"type": OPTION_TYPES[type(default)]} if type(default) in OPTION_TYPES else {})
            for key, default in cls.default_options.items()
        }
        return {"type": "object", "additionalProperties": False, "properties": properties}

    @classmethod
    def check_options(cls, options: dict[str, Any], where: str) -> None:
        """Raise AkdgError naming the first unknown option, or one of the wrong type or out of range (``where``: its place)."""
        unknown = sorted(set(options) - set(cls.default_options))
        if unknown:
            raise AkdgError(f"{where}: unknown option(s) {unknown}; accepted: {sorted(cls.default_options) or 'none'}")
        schemas = cls.options_schema()["properties"]
        for key, value in options.items():
            error = best_match(Draft202012Validator(schemas[key]).iter_errors(value))
            if error is not None:
                raise AkdgError(f"{where}: option {key}: {error.message}")

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
        self._step(optimizer, loss)
        return loss.detach()

    def generator_update(self, loss: torch.Tensor) -> None:
        self._step(self.generator_optimizer, loss)

    def _step(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        # The loop runs train_step under autocast; the backward pass and the update run outside it, as torch advises.
        with self.ctx.autocast(enabled=False):
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


METHODS: Registry[type[Method]] = Registry("method")


DIVERGENCE_CAUSES = (
    "learning rates too high for this model ('training.optimizer'), a method option that pushes the wrong way "
    "(e.g. a negative weight in 'methods'), or a loss unsuited to it ('loss')"
)
MAX_ABS_LOSS = 1e4  # training.max_abs_loss's default in the config schema
PROBE_SAMPLES = 64  # images the trained generator makes from a fixed z before it is saved; all must be finite
PROBE_SEED = 0  # the probe's own torch.Generator: the training RNG streams are untouched


def check_finite(losses: dict[str, float], step: int, max_abs_loss: float) -> None:
    """Stop at the first NaN/Inf loss, or one beyond ``max_abs_loss``, naming it, instead of training on garbage.

    One comparison per loss (``not abs(value) <= bound`` is also true for NaN): it runs every step.
    """
    for name, value in losses.items():
        if not abs(value) <= max_abs_loss:
            if math.isfinite(value):
                what, causes = f"reached {value:.3g}, beyond training.max_abs_loss={max_abs_loss:g},", f"{DIVERGENCE_CAUSES}, or a bound too low for this loss"
            else:
                what, causes = f"became {value}", DIVERGENCE_CAUSES
            raise AkdgError(f"loss {name!r} {what} at step {step}: training diverged; likely causes are {causes}; fix the one that applies and rerun")


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
) -> list[dict[str, float]]:
    """Run ``steps`` updates of a registered method; returns the loss history sampled every ``log_every``.

    With ``ema_decay`` > 0 the generator left in ``ctx`` is the exponential moving average of its
    weights (and BN statistics) over training: GAN end points are noisy, the average much less so.
    Models that grow (``set_progress``: the generator and every discriminator the context built)
    are set to (step - 1) / steps before each step and the generator to 1.0 at the end; progress is
    a plain attribute, not state, so the EMA copy and the checkpoint never carry a stale one.
    With ``resume``, the full training state is written every ``resume.every`` steps and a run
    that finds one continues after its step (a NaN stop leaves the last good one in place).
    Each ``train_step`` runs under ``ctx.autocast()`` (a no-op unless ``ctx.amp``). With
    ``ctx.compile`` the models are compiled (see :func:`compile_models`) once the method has built
    its discriminators; the weights saved and averaged are the same tensors either way.
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
            restore_global_rng(state, ctx.device)
        except (RuntimeError, KeyError, ValueError, AttributeError, TypeError) as error:
            raise AkdgError(
                f"training state {resume.path} was written for this run but does not fit its models ({type(error).__name__}: "
                f"{str(error).splitlines()[0]}); the code changed since it was saved? Delete it to train from step 1"
            ) from error
        history, first = state["history"], state["step"] + 1
        log.info("resuming from %s at step %d of %d", resume.path, first, steps)
    progress = LoggedProgress(
        range(first, steps + 1), total=steps, initial=first - 1, desc=f"train {method_name}", unit="steps", logger=log,
        per_unit=(ctx.batch_size, "images"),
    )
    growing = [model for model in (ctx.generator, *ctx.discriminators) if hasattr(model, "set_progress")]
    for step in progress:
        if ctx.compile == "reduce-overhead" and ctx.device.type == "cuda":
            torch.compiler.cudagraph_mark_step_begin()  # a step's graph outputs may be overwritten by the next step's replay
        for model in growing:
            model.set_progress((step - 1) / steps)
        with ctx.autocast():
            losses = method.train_step()
        check_finite(losses, step, max_abs_loss)
        if average is not None:
            average.update_parameters(ctx.generator)
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
                    **global_rng(ctx.device),
                    "history": history,
                },
            )
    if average is not None:
        ctx.generator.load_state_dict(average.module.state_dict())
    ctx.generator.to(memory_format=torch.contiguous_format)  # the checkpoint holds plain NCHW weights whatever the layout trained in
    if hasattr(ctx.generator, "set_progress"):
        ctx.generator.set_progress(1.0)
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


def _register_builtin_methods() -> None:
    # AKDG lives beside the loop; the baselines live in their own package. Both register on import.
    import baselines  # noqa: F401
    from akdg import method_akdg  # noqa: F401


_register_builtin_methods()
