"""What a generator costs: parameters, weight layers, mult-adds and measured generation speed.

Mult-adds come from torch's own FLOP counter on one input (FLOPs / 2); speed from
``torch.utils.benchmark`` (warm-up, then the median of repeated blocks), with device and threads.
"""

from __future__ import annotations

import platform

import torch
import torch.nn as nn
from torch.utils.benchmark import Timer
from torch.utils.flop_counter import FlopCounterMode

WEIGHT_LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


def count_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def count_weight_layers(model: nn.Module) -> int:
    """Linear and (transposed) convolution layers, the convention of the paper's 'layers' column."""
    return sum(isinstance(module, WEIGHT_LAYERS) for module in model.modules())


def count_mult_adds(generator: nn.Module, z_dim: int) -> int:
    """Multiply-accumulates to generate one image (matmuls and convolutions)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        generator.eval()(torch.zeros(1, z_dim))
    return counter.get_total_flops() // 2


def measure_speed(generator: nn.Module, z_dim: int, batch_size: int, min_run_time: float, threads: int) -> dict[str, float | int | str]:
    """Images/s at ``batch_size`` and batch-1 latency, each the median over timed blocks after warm-up."""
    generator = generator.eval()
    figures: dict[str, float | int | str] = {}
    for label, size in (("batch", batch_size), ("single", 1)):
        timer = Timer(
            stmt="with torch.no_grad(): generator(z)",
            globals={"generator": generator, "z": torch.randn(size, z_dim), "torch": torch},
            num_threads=threads,
        )
        timer.timeit(3)  # warm-up
        median = timer.blocked_autorange(min_run_time=min_run_time).median
        if label == "batch":
            figures["images_per_s"] = size / median
        else:
            figures["latency_ms"] = median * 1000.0
    figures.update(
        speed_batch_size=batch_size,
        speed_device="cpu",
        speed_threads=threads,
        speed_processor=platform.processor() or platform.machine(),
    )
    return figures


def generator_cost(generator: nn.Module, z_dim: int, *, batch_size: int, min_run_time: float, threads: int) -> dict:
    return {
        "params": count_parameters(generator),
        "layers": count_weight_layers(generator),
        "mult_adds": count_mult_adds(generator, z_dim),
        **measure_speed(generator, z_dim, batch_size, min_run_time, threads),
    }
