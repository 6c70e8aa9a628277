"""Joint distillation (Aguinaldo et al. 2019, arXiv 1902.00159, the "joint" loss).

The student minimises ``(1 - a) * adversarial + a * MSE(G_S(z), G_T(z))``: the MSE method's paired
pixel loss (the same z to teacher and student) mixed with an ordinary GAN loss against a student
discriminator that tells real images from the student's, as in vanilla. ``a = 0`` is vanilla and
``a = 1`` is the MSE method, so the option interpolates between the two baselines the paper reports.
The default ``a = 0.3`` is the value of the public reimplementation the reference notes mention
(which uses a WGAN-GP critic; here the adversarial term uses the configured ``loss``, as every method).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from akdg.method_api import Method, TrainContext
from akdg.registry import METHODS


@METHODS.register("joint")
class Joint(Method):
    requires_teacher = True
    default_options = {"a": 0.3}  # weight of the MSE term; 1 - a weighs the adversarial term
    option_schemas = {"a": {"type": "number", "minimum": 0, "maximum": 1}}  # 0 is vanilla, 1 is the MSE method

    def __init__(self, ctx: TrainContext, **options: Any) -> None:
        super().__init__(ctx, **options)
        self.discriminator = ctx.new_discriminator()
        self.discriminator_optimizer = ctx.adam(self.discriminator.parameters(), "lr_d")

    def train_step(self) -> dict[str, float]:
        ctx, a = self.ctx, float(self.options["a"])
        for _ in range(ctx.n_dis):
            fake = ctx.generator(ctx.noise()).detach()
            d_loss = self.discriminator_update(self.discriminator, self.discriminator_optimizer, ctx.real_batch(), fake)
        z = ctx.generator_noise()
        with torch.no_grad():
            target = ctx.teacher(z)
        fake = ctx.generator(z)  # one z for both terms: the MSE pairs it with the teacher's image of the same z
        adversarial = ctx.loss.generator(self.discriminator(fake))
        mse = F.mse_loss(fake, target)
        self.generator_update((1.0 - a) * adversarial + a * mse)
        return {"d": d_loss.item(), "g_adversarial": adversarial.item(), "g_mse": mse.item()}
