"""What a method is given and what it implements: :class:`TrainContext` and :class:`Method`.

A plug-in defines a method against this module alone; the loop that runs it (:mod:`akdg.training`)
owns seeding, batches, progress, checks and checkpoints, so methods differ only where the paper
says they do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn as nn

from akdg.architectures import build_discriminator
from akdg.images import to_model_range
from akdg.losses import GanLoss
from akdg.method_options import check_options, check_residual_generators, options_schema
from akdg.registry import ARCHITECTURES, AkdgError

log = logging.getLogger(__name__)

COMPILE_MODES = ("off", "default", "reduce-overhead")  # training.compile; reduce-overhead adds CUDA graphs on a GPU
DATA_ON_DEVICE_FRACTION = 0.25  # of the GPU's free memory; the rest is left to models, activations and optimiser state


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
        size / 2**20,
        round(100 * DATA_ON_DEVICE_FRACTION),
        device,
        free / 2**20,
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
    real_images_seen: int = 0  # real images drawn so far (every real_batch call): the discriminators' share of the data
    generator_batch_size: int | None = None  # noise draws per generator update (SNGAN's n_gen_samples); None: batch_size
    last_weights: dict[str, torch.Tensor] | None = None  # the raw generator's state at the last step, where train() swapped in its EMA
    curve: list[dict[str, Any]] = field(default_factory=list)  # the training-curve snapshots train() kept (its curve_at)

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
        self.real_images_seen += self.batch_size
        batch = self.images[index.to(self.images.device)]
        if batch.device.type == "cpu" and self.device.type != "cpu":
            batch = batch.pin_memory().to(self.device, non_blocking=True)
        return to_model_range(batch).contiguous(memory_format=self.memory_format)

    def noise(self, count: int | None = None) -> torch.Tensor:
        """A fresh N(0, I) draw; every call is independent of the previous ones."""
        z = torch.randn(count or self.batch_size, self.z_dim, generator=self.rng, device="cpu")
        return z.to(self.device)

    def generator_noise(self) -> torch.Tensor:
        """The noise of a generator update: ``generator_batch_size`` draws (SNGAN scores 128 generated images per G step against 64 real)."""
        return self.noise(self.generator_batch_size)

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


class Method:
    """Base class for a training method; subclasses set ``name``-level options and ``train_step``.

    ``default_options`` names the options; ``option_schemas`` gives each one's JSON schema (type and
    range, e.g. :data:`WEIGHT`), or it must have its default's type. ``residual_generators``: the
    method matches residual blocks, so student and teacher must be residual families. Config
    validation checks these (through the registry index, :mod:`akdg.method_options`) before any job
    runs, and so does ``__init__``.
    """

    requires_teacher: ClassVar[bool] = False
    residual_generators: ClassVar[bool] = False
    ablation_of: ClassVar[str | None] = None  # the method this one removes one piece of; aggregate tables the two side by side
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
        return options_schema(cls.default_options, cls.option_schemas)

    @classmethod
    def check_options(cls, options: dict[str, Any], where: str) -> None:
        """Raise AkdgError naming the first unknown option, or one of the wrong type or out of range (``where``: its place)."""
        check_options(cls.options_schema(), options, where)

    @classmethod
    def check_generators(cls, student_spec: dict[str, Any], teacher_spec: dict[str, Any] | None) -> None:
        """Raise AkdgError for a student/teacher pair ({arch, width} specs) this method cannot train.

        Config validation calls it for every student of the grid, so that a method that needs, e.g.,
        residual generators fails before any job runs, not after the teacher's hours of training.
        A plug-in may override it; the built-ins declare ``residual_generators`` instead.
        """
        if cls.residual_generators:
            check_residual_generators(
                cls.__name__.lower(), student_spec, teacher_spec, lambda arch: ARCHITECTURES.metadata(arch)["residual"]
            )

    def state_dict(self) -> dict[str, Any]:
        """Every module and optimiser the method holds (discriminators, adapters, optimisers), for resuming."""
        return {
            name: value.state_dict() for name, value in sorted(vars(self).items()) if isinstance(value, (nn.Module, torch.optim.Optimizer))
        }

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
        that real and generated images never share a statistic. A loss's regulariser (a gradient
        penalty) is added here, so every adversarial method's discriminators get it, AKDG's D_KD too;
        its own pass over the images is a second forward pass (and power iteration) of D.
        """
        if getattr(discriminator, "mixes_batch", False):
            positive_scores, negative_scores = discriminator(positive), discriminator(negative)
        else:
            scores = discriminator(torch.cat([positive, negative]))
            positive_scores, negative_scores = scores[: len(positive)], scores[len(positive) :]
        loss = self.ctx.loss.discriminator(positive_scores, negative_scores)
        regulariser = self.ctx.loss.regulariser
        if regulariser is not None:
            with self.ctx.autocast(enabled=False):  # a gradient norm in bfloat16 keeps 8 bits: the penalty's pass runs in float32
                loss = loss + regulariser(discriminator, positive.float(), negative.float(), positive_scores.float(), self.ctx.rng)
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
