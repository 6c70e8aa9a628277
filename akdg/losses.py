"""GAN losses by name. Each gives the discriminator's and the generator's loss from raw scores, and may
add a regulariser of the discriminator that sees the discriminator and the batches (a gradient penalty).

A loss's parameters (a penalty's weight) are its regulariser's fields: ``loss: {name: wgan-gp, gp_weight: 5}``
in a config. Config validation checks them against :meth:`GanLoss.parameters_schema` through the registry
index, without importing torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from akdg.method_options import WEIGHT, LossSpec, check_options, loss_name, loss_parameters, options_schema
from akdg.registry import LOSSES


@dataclass(frozen=True)
class Regulariser:
    """A term added to the discriminator's loss that needs more than its scores; its fields are its parameters.

    ``__call__(discriminator, positive, negative, positive_scores, rng)`` gets the batches D was taught to
    score apart (real vs generated, or the teacher's images vs the student's for AKDG's D_KD), D's scores on
    ``positive`` from that update and the training RNG (for any random draw, so resumed runs draw the same).
    :meth:`akdg.method_api.Method.discriminator_update` calls it in float32, outside autocast.
    """

    parameter_schemas: ClassVar[dict[str, dict[str, Any]]] = {}

    def __call__(
        self, discriminator: nn.Module, positive: torch.Tensor, negative: torch.Tensor, positive_scores: torch.Tensor, rng: torch.Generator
    ) -> torch.Tensor:
        raise NotImplementedError


@dataclass(frozen=True)
class GanLoss:
    """A registered loss: every adversarial method scores with ``discriminator`` and ``generator`` and adds
    ``regulariser`` (if any) to each of its discriminators' losses; ``with_parameters`` sets its parameters."""

    discriminator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (scores on real, scores on fake)
    generator: Callable[[torch.Tensor], torch.Tensor]  # (scores on fake)
    regulariser: Regulariser | None = None

    @property
    def parameters(self) -> dict[str, Any]:
        """The regulariser's parameters with their values: what a run's protocol records beside the name."""
        return dataclasses.asdict(self.regulariser) if self.regulariser is not None else {}

    def parameters_schema(self) -> dict[str, Any]:
        """The JSON schema of the parameters (types and ranges), for config validation."""
        schemas = type(self.regulariser).parameter_schemas if self.regulariser is not None else {}
        return options_schema(self.parameters, schemas)

    def with_parameters(self, parameters: dict[str, Any], where: str) -> GanLoss:
        """This loss with some parameters changed; an unknown or out-of-range one raises AkdgError naming ``where``."""
        check_options(self.parameters_schema(), parameters, where)
        if not parameters:
            return self
        return dataclasses.replace(self, regulariser=dataclasses.replace(self.regulariser, **parameters))


def build_loss(spec: LossSpec) -> GanLoss:
    """The registered loss a config's ``loss`` names, with the parameters it sets."""
    return LOSSES.get(loss_name(spec)).with_parameters(loss_parameters(spec), f"loss {loss_name(spec)}")


def describe_loss(spec: LossSpec) -> dict[str, Any]:
    """The loss as a run's protocol records it: its name and every parameter's value, defaults included."""
    return {"name": loss_name(spec), **build_loss(spec).parameters}


def _requiring_grad(images: torch.Tensor) -> torch.Tensor:
    return images.detach().requires_grad_(True)


def input_gradients(discriminator: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """D's scores on ``images`` and the gradient of their sum with respect to the images, kept in the graph.

    ``forward`` is called, not the module: a ``torch.compile``d discriminator cannot be differentiated
    twice, so the penalty's pass runs eagerly on the same weights. ``create_graph=True`` makes the
    penalty differentiable in D's weights (through spectral norm's parametrisation too). For a
    discriminator that mixes the batch (PGGAN's minibatch stddev) each gradient includes the other
    images' share, as in PGGAN's own code, which also differentiates the summed scores of one batch.
    """
    scores = discriminator.forward(images)
    (gradients,) = torch.autograd.grad(scores.sum(), images, create_graph=True)
    return scores, gradients


@dataclass(frozen=True)
class GradientPenalty(Regulariser):
    """WGAN-GP's penalty (Gulrajani et al. 2017) with PGGAN's drift term (Karras et al. 2018).

    ``gp_weight`` · E[(‖∇D(x̂)‖ − 1)²] on random interpolates x̂ = real + u·(fake − real), u ~ U(0, 1)
    per image (one-centred: the gradient norm is pulled to 1), plus ``drift`` · E[D(real)²], which keeps
    the critic's scores from drifting away from 0. PGGAN: λ = 10, ε = 0.001.
    """

    gp_weight: float = 10.0
    drift: float = 0.001
    parameter_schemas: ClassVar[dict[str, dict[str, Any]]] = {"gp_weight": WEIGHT, "drift": WEIGHT}

    def __call__(
        self, discriminator: nn.Module, positive: torch.Tensor, negative: torch.Tensor, positive_scores: torch.Tensor, rng: torch.Generator
    ) -> torch.Tensor:
        shape = (len(positive),) + (1,) * (positive.dim() - 1)
        mixing = torch.rand(shape, generator=rng, device="cpu").to(positive.device)
        _, gradients = input_gradients(discriminator, _requiring_grad(torch.lerp(positive.detach(), negative.detach(), mixing)))
        norms = torch.linalg.vector_norm(gradients.flatten(1), dim=1)
        return self.gp_weight * (norms - 1.0).square().mean() + self.drift * positive_scores.square().mean()


@dataclass(frozen=True)
class R1Penalty(Regulariser):
    """R1 (Mescheder et al. 2018): (γ/2) · E‖∇D(real)‖², zero-centred on the real images only.

    γ = 10 by default: the paper's value for its LSUN and CelebA-HQ runs and StyleGAN's for FFHQ
    (GAN_stability's code writes it as reg_param 10 times E‖∇D‖², without the 1/2).
    """

    gamma: float = 10.0
    parameter_schemas: ClassVar[dict[str, dict[str, Any]]] = {"gamma": WEIGHT}

    def __call__(
        self, discriminator: nn.Module, positive: torch.Tensor, negative: torch.Tensor, positive_scores: torch.Tensor, rng: torch.Generator
    ) -> torch.Tensor:
        _, gradients = input_gradients(discriminator, _requiring_grad(positive))
        return 0.5 * self.gamma * gradients.flatten(1).square().sum(1).mean()


def _nonsaturating_discriminator(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def _nonsaturating_generator(fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake).mean()


LOSSES.register("hinge")(
    GanLoss(
        discriminator=lambda real, fake: F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean(),
        generator=lambda fake: -fake.mean(),
    )
)

LOSSES.register("nonsaturating")(GanLoss(discriminator=_nonsaturating_discriminator, generator=_nonsaturating_generator))

LOSSES.register("wgan-gp")(
    GanLoss(discriminator=lambda real, fake: fake.mean() - real.mean(), generator=lambda fake: -fake.mean(), regulariser=GradientPenalty())
)

LOSSES.register("r1")(GanLoss(discriminator=_nonsaturating_discriminator, generator=_nonsaturating_generator, regulariser=R1Penalty()))
