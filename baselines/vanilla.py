"""Vanilla: the student trained from scratch on real data, no teacher (also how teachers are trained)."""

from __future__ import annotations

from typing import Any

from akdg.method_api import Method, TrainContext
from akdg.registry import METHODS


@METHODS.register("vanilla")
class Vanilla(Method):
    def __init__(self, ctx: TrainContext, **options: Any) -> None:
        super().__init__(ctx, **options)
        self.discriminator = ctx.new_discriminator()
        self.discriminator_optimizer = ctx.adam(self.discriminator.parameters(), "lr_d")

    def train_step(self) -> dict[str, float]:
        ctx = self.ctx
        for _ in range(ctx.n_dis):
            fake = ctx.generator(ctx.noise()).detach()
            d_loss = self.discriminator_update(self.discriminator, self.discriminator_optimizer, ctx.real_batch(), fake)
        g_loss = ctx.loss.generator(self.discriminator(ctx.generator(ctx.generator_noise())))
        self.generator_update(g_loss)
        return {"d": d_loss.item(), "g": g_loss.item()}
