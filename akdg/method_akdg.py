"""AKDG: adversarial knowledge distillation for a compact generator (Tsunashima et al., ICPR 2020).

Two discriminators: D_S tells real images from the student's, D_KD tells the teacher's images from
the student's. The teacher's noise is drawn independently of the student's (unpaired distillation),
D_KD never sees real images, and there is no pixel loss: the student fools both discriminators.
Two registered ablations change one of these at a time: ``akdg-kd-only`` drops D_S (no real data),
``akdg-paired`` gives the teacher the student's z.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from akdg.method_api import Method, TrainContext
from akdg.method_options import WEIGHT
from akdg.registry import METHODS


@METHODS.register("akdg")
class AKDG(Method):
    requires_teacher = True
    default_options = {"kd_weight": 1.0}  # weight of the D_KD term in the student's loss; the paper's is unstated
    option_schemas = {"kd_weight": WEIGHT}
    uses_real_data: ClassVar[bool] = True  # D_S and its adversarial term
    paired_noise: ClassVar[bool] = False  # the teacher draws its own z'

    def __init__(self, ctx: TrainContext, **options: Any) -> None:
        super().__init__(ctx, **options)
        if self.uses_real_data:
            self.d_student = ctx.new_discriminator()
            self.d_student_optimizer = ctx.adam(self.d_student.parameters(), "lr_d")
        self.d_kd = ctx.new_discriminator()
        self.d_kd_optimizer = ctx.adam(self.d_kd.parameters(), "lr_d")

    def teacher_images(self, student_z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.ctx.teacher(student_z if self.paired_noise else self.ctx.noise())

    def train_step(self) -> dict[str, float]:
        ctx, losses = self.ctx, {}
        for _ in range(ctx.n_dis):
            z = ctx.noise()
            fake = ctx.generator(z).detach()
            if self.uses_real_data:
                losses["d_student"] = self.discriminator_update(self.d_student, self.d_student_optimizer, ctx.real_batch(), fake)
            losses["d_kd"] = self.discriminator_update(self.d_kd, self.d_kd_optimizer, self.teacher_images(z), fake)
        fake = ctx.generator(ctx.generator_noise())
        if self.uses_real_data:
            losses["g_adversarial"] = ctx.loss.generator(self.d_student(fake))
        distillation = ctx.loss.generator(self.d_kd(fake))
        weighted = self.options["kd_weight"] * distillation
        self.generator_update(losses["g_adversarial"] + weighted if self.uses_real_data else weighted)
        return {**{name: float(value) for name, value in losses.items()}, "g_distillation": distillation.item()}


@METHODS.register("akdg-kd-only")
class AKDGDistillationOnly(AKDG):
    """Ablation: no D_S and no real images; the student learns from D_KD (the teacher's images) alone."""

    uses_real_data = False
    ablation_of = "akdg"


@METHODS.register("akdg-paired")
class AKDGPairedNoise(AKDG):
    """Ablation: D_KD's teacher images come from the student's own z (paired, as MSE pairs them)."""

    paired_noise = True
    ablation_of = "akdg"
