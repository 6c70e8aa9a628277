"""LIT: Learned Intermediate representation Training (Koratana et al., ICML 2019), adapted to GANs.

Where this follows LIT (the paper and its code, github.com/stanford-futuredata/lit-code):
  * intermediate-representation (IR) loss: each student block's output is regressed onto the
    teacher's corresponding block output with MSE;
  * teacher forcing: student block i is fed the *teacher's* block i-1 output (block 1 gets the
    teacher's stem output), not the student's own, so an early block's error does not derail the
    later blocks' targets;
  * a KD term on the whole student's output is added to the summed IR losses. For a generator the
    output is pixels, so KD is the MSE between G_S(z) and G_T(z) on the same z (as in the MSE method);
    LIT's code weighs KD and IR as beta and 1 - beta with beta = 0.5, i.e. equally, hence the
    defaults ``ir_weight = pixel_weight = 1``.
Where this GAN adaptation departs from it:
  * one phase: LIT first trains the blocks on IR (+KD) and then fine-tunes the whole student on
    its task loss (its StarGAN code: IR only, then StarGAN's own losses). Here every step of the
    shared loop sums the adversarial loss (a student discriminator on real vs student images, as in
    vanilla), ``ir_weight`` times the summed IR losses and ``pixel_weight`` times KD, so LIT gets the
    same step budget as the other methods;
  * LIT keeps the teacher's width and cuts depth (one student block stands for several teacher
    blocks). The paper's students are narrower, not shallower, so blocks are matched one to one
    (same number of blocks) and, where widths differ, 1x1-conv adapters map the teacher's width to
    the student's at each block's input and the student's back to the teacher's at its output
    (FitNets-style regressors). The adapters train with the student but are not part of it, so the
    saved generator is the plain student;
  * the student's batch-norm layers see the teacher-forced batches too, so their running
    statistics average over both kinds of input (LIT's code does the same).
LIT needs residual generators exposing ``stem(z)``, ``blocks`` and ``head(h)`` (``forward`` =
``head(blocks(stem(z)))``, as ``sngan``'s); ``residual_generators`` makes config validation reject other pairs first.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from akdg.method_api import Method, TrainContext
from akdg.method_options import WEIGHT
from akdg.registry import METHODS, AkdgError


def stage_outputs(generator: nn.Module, z: torch.Tensor) -> list[torch.Tensor]:
    """The stem's output followed by every residual block's output, for noise ``z``."""
    features = [generator.stem(z)]
    for block in generator.blocks:
        features.append(block(features[-1]))
    return features


def adapter(in_channels: int, out_channels: int) -> nn.Module:
    """A 1x1 convolution between two widths, or nothing where they are equal."""
    return nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)


@METHODS.register("lit")
class LIT(Method):
    requires_teacher = True
    residual_generators = True
    default_options = {
        "ir_weight": 1.0,  # weight of the summed per-block IR losses
        "pixel_weight": 1.0,  # weight of the pixel MSE (LIT's KD term) between the whole student's and teacher's outputs
    }
    option_schemas = {"ir_weight": WEIGHT, "pixel_weight": WEIGHT}

    def __init__(self, ctx: TrainContext, **options: Any) -> None:
        super().__init__(ctx, **options)
        for role, generator in (("student", ctx.generator), ("teacher", ctx.teacher)):
            if not all(hasattr(generator, name) for name in ("stem", "blocks", "head")):
                raise AkdgError(f"lit distils between residual blocks; the {role} ({type(generator).__name__}) has no stem/blocks/head")
        if len(ctx.generator.blocks) != len(ctx.teacher.blocks):
            raise AkdgError(
                f"lit matches residual blocks one to one, but the student has {len(ctx.generator.blocks)} blocks and the "
                f"teacher {len(ctx.teacher.blocks)}; use generators with the same number of blocks at this resolution"
            )
        self.discriminator = ctx.new_discriminator()
        self.discriminator_optimizer = ctx.adam(self.discriminator.parameters(), "lr_d")
        student_shapes, teacher_shapes = self._stage_shapes(ctx.generator), self._stage_shapes(ctx.teacher)
        if [shape[1:] for shape in student_shapes] != [shape[1:] for shape in teacher_shapes]:
            raise AkdgError(
                f"lit needs the teacher's and student's blocks at the same spatial sizes; got student {student_shapes} "
                f"and teacher {teacher_shapes} (channels, height, width) per stage"
            )
        student_widths, teacher_widths = [s[0] for s in student_shapes], [s[0] for s in teacher_shapes]
        # Block i (0-based) reads stage i and writes stage i + 1 (stage 0 is the stem's output).
        self.adapters_in = nn.ModuleList(adapter(t, s) for t, s in zip(teacher_widths[:-1], student_widths[:-1])).to(ctx.device)
        self.adapters_out = nn.ModuleList(adapter(s, t) for s, t in zip(student_widths[1:], teacher_widths[1:])).to(ctx.device)
        adapter_parameters = [*self.adapters_in.parameters(), *self.adapters_out.parameters()]
        if adapter_parameters:
            self.generator_optimizer.add_param_group({"params": adapter_parameters})

    def _stage_shapes(self, generator: nn.Module) -> list[tuple[int, ...]]:
        """(channels, height, width) of the stem's and each block's output, from one eval-mode pass.

        Eval mode, so that measuring leaves the batch-norm running statistics untouched.
        """
        was_training = generator.training
        generator.eval()
        with torch.no_grad():
            shapes = [tuple(h.shape[1:]) for h in stage_outputs(generator, torch.zeros(1, self.ctx.z_dim, device=self.ctx.device))]
        generator.train(was_training)
        return shapes

    def intermediate_losses(self, teacher_stages: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per block, teacher-forced: MSE(out_i(S_i(in_i(teacher stage i))), teacher stage i + 1)."""
        blocks = zip(self.ctx.generator.blocks, self.adapters_in, self.adapters_out)
        return [
            F.mse_loss(to_teacher(block(to_student(teacher_stages[i]))), teacher_stages[i + 1])
            for i, (block, to_student, to_teacher) in enumerate(blocks)
        ]

    def train_step(self) -> dict[str, float]:
        ctx = self.ctx
        for _ in range(ctx.n_dis):
            fake = ctx.generator(ctx.noise()).detach()
            d_loss = self.discriminator_update(self.discriminator, self.discriminator_optimizer, ctx.real_batch(), fake)
        z = ctx.generator_noise()
        with torch.no_grad():
            teacher_stages = stage_outputs(ctx.teacher, z)
            target = ctx.teacher.head(teacher_stages[-1])  # = ctx.teacher(z), without a second pass
        fake = ctx.generator(z)
        adversarial = ctx.loss.generator(self.discriminator(fake))
        kd = F.mse_loss(fake, target)
        ir = torch.stack(self.intermediate_losses(teacher_stages)).sum()
        self.generator_update(adversarial + self.options["ir_weight"] * ir + self.options["pixel_weight"] * kd)
        return {"d": d_loss.item(), "g_adversarial": adversarial.item(), "g_ir": ir.item(), "g_kd": kd.item()}
