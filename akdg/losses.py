"""GAN losses by name. Each gives the discriminator's and the generator's loss from raw scores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from akdg.registry import LOSSES


@dataclass(frozen=True)
class GanLoss:
    discriminator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (scores on real, scores on fake)
    generator: Callable[[torch.Tensor], torch.Tensor]  # (scores on fake)


LOSSES.register("hinge")(
    GanLoss(
        discriminator=lambda real, fake: F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean(),
        generator=lambda fake: -fake.mean(),
    )
)

LOSSES.register("nonsaturating")(
    GanLoss(
        discriminator=lambda real, fake: F.softplus(-real).mean() + F.softplus(fake).mean(),
        generator=lambda fake: F.softplus(-fake).mean(),
    )
)
