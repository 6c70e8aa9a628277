"""AKDG: adversarial knowledge distillation for a compact generator (Tsunashima et al., ICPR 2020).

Two discriminators: D_S tells real images from the student's, D_KD tells the teacher's images from
the student's. The teacher's noise is drawn independently of the student's (unpaired distillation),
D_KD never sees real images, and there is no pixel loss: the student fools both discriminators.
"""

from __future__ import annotations

from typing import Any

import torch

from akdg.method_api import Method, TrainContext
from akdg.method_options import WEIGHT
from akdg.registry import METHODS


@METHODS.register("akdg")
class AKDG(Method):
    requires_teacher = True
    default_options = {"kd_weight": 1.0}  # weight of the D_KD term in the student's loss; the paper's is unstated
    option_schemas = {"kd_weight": WEIGHT}

    def __init__(self, ctx: TrainContext, **options: Any) -> None:
        super().__init__(ctx, **options)
        self.d_student = ctx.new_discriminator()
        self.d_kd = ctx.new_discriminator()
        self.d_student_optimizer = ctx.adam(self.d_student.parameters(), "lr_d")
        self.d_kd_optimizer = ctx.adam(self.d_kd.parameters(), "lr_d")

    def teacher_images(self) -> torch.Tensor:
        with torch.no_grad():
            return self.ctx.teacher(self.ctx.noise())  # its own z', independent of the student's z

    def train_step(self) -> dict[str, float]:
        ctx = self.ctx
        for _ in range(ctx.n_dis):
            fake = ctx.generator(ctx.noise()).detach()
            d_student_loss = self.discriminator_update(self.d_student, self.d_student_optimizer, ctx.real_batch(), fake)
            d_kd_loss = self.discriminator_update(self.d_kd, self.d_kd_optimizer, self.teacher_images(), fake)
        fake = ctx.generator(ctx.generator_noise())
        adversarial = ctx.loss.generator(self.d_student(fake))
        distillation = ctx.loss.generator(self.d_kd(fake))
        self.generator_update(adversarial + self.options["kd_weight"] * distillation)
        return {
            "d_student": float(d_student_loss),
            "d_kd": float(d_kd_loss),
            "g_adversarial": adversarial.item(),
            "g_distillation": distillation.item(),
        }
