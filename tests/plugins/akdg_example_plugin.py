"""A user's plug-in, as docs/extending.md describes one: a module listed under `plugins:` that registers a method.

The end-to-end test puts this folder on PYTHONPATH; every job of the DAG must then know the method.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from akdg.method_api import Method
from akdg.registry import METHODS


@METHODS.register("example-l1")
class L1Distillation(Method):
    """Like the MSE baseline with an L1 pixel loss: the smallest distillation method a user might add."""

    requires_teacher = True

    def train_step(self) -> dict[str, float]:
        z = self.ctx.noise()
        with torch.no_grad():
            target = self.ctx.teacher(z)
        loss = F.l1_loss(self.ctx.generator(z), target)
        self.generator_update(loss)
        return {"l1": loss.item()}
