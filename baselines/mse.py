"""MSE distillation (Aguinaldo et al. 2019): the same z to teacher and student, minimise the pixel MSE.

No discriminator and no real data: the student regresses the teacher's output for each z.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from akdg.method_api import Method
from akdg.registry import METHODS


@METHODS.register("mse")
class MSE(Method):
    requires_teacher = True

    def train_step(self) -> dict[str, float]:
        z = self.ctx.generator_noise()
        with torch.no_grad():
            target = self.ctx.teacher(z)
        loss = F.mse_loss(self.ctx.generator(z), target)
        self.generator_update(loss)
        return {"mse": loss.item()}
