"""What a generator costs: parameters, weight layers, mult-adds and measured generation speed.

Mult-adds come from torch's own FLOP counter on one input (FLOPs / 2); speed from
``torch.utils.benchmark`` (warm-up, then the median of repeated blocks), with device and threads.
Layers are the weight layers one image actually passes through, found by running a forward, so a
progressively grown generator's unused lower-resolution toRGB layers are not counted (their
parameters still are: they are part of the saved model).
"""

from __future__ import annotations

import statistics

import torch
import torch.nn as nn
from torch.utils.benchmark import Timer
from torch.utils.flop_counter import FlopCounterMode

from akdg.protocol import cpu_model, describe_device

WEIGHT_LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
MIN_SPEED_BLOCKS = 5  # timed blocks kept at least, so that speeds can be compared by a statistical test


def count_parameters(model: nn.Module) -> int:
    """Every parameter, used in a forward or not: all of them are in the checkpoint."""
    return sum(parameter.numel() for parameter in model.parameters())


def count_weight_layers(model: nn.Module, example: torch.Tensor) -> int:
    """Linear and (transposed) convolution layers that ``example`` passes through, each counted once.

    The paper's 'layers' column counts the layers of the network an image goes through; a forward
    with hooks (in eval mode, no gradients) finds them, skipping modules a model holds but doesn't use.
    """
    used: set[int] = set()
    handles = [
        module.register_forward_hook(lambda module, args, output: used.add(id(module)))
        for module in model.modules()
        if isinstance(module, WEIGHT_LAYERS)
    ]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(example)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return len(used)


def example_noise(generator: nn.Module, z_dim: int) -> torch.Tensor:
    """One z on the generator's device; on the meta device, sizes are counted without computing."""
    return torch.zeros(1, z_dim, device=next(generator.parameters()).device)


def count_mult_adds(generator: nn.Module, z_dim: int) -> int:
    """Multiply-accumulates to generate one image (matmuls and convolutions)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        generator.eval()(example_noise(generator, z_dim))
    return counter.get_total_flops() // 2


def measure_speed(
    generator: nn.Module, z_dim: int, batch_size: int, min_run_time: float, threads: int
) -> dict[str, float | int | str | list[float]]:
    """Images/s at ``batch_size`` and batch-1 latency, each the median over timed blocks after warm-up.

    ``images_per_s_blocks`` keeps the images/s of every timed block (at least
    ``MIN_SPEED_BLOCKS``, more blocks of the same size being timed if ``min_run_time`` fitted fewer),
    so that student and teacher speeds can be compared with a statistical test, not by two medians.
    """
    generator = generator.eval()
    device = next(generator.parameters()).device  # z is drawn where the generator is; Timer syncs CUDA itself
    figures: dict[str, float | int | str | list[float]] = {}
    for label, size in (("batch", batch_size), ("single", 1)):
        timer = Timer(
            stmt="with torch.no_grad(): generator(z)",
            globals={"generator": generator, "z": torch.randn(size, z_dim, device=device), "torch": torch},
            num_threads=threads,
        )
        timer.timeit(3)  # warm-up
        measurement = timer.blocked_autorange(min_run_time=min_run_time)
        times = list(measurement.times)
        while len(times) < MIN_SPEED_BLOCKS:
            times.append(timer.timeit(measurement.number_per_run).median)
        if label == "batch":
            figures["images_per_s"] = size / statistics.median(times)
            figures["images_per_s_blocks"] = [size / seconds for seconds in times]
        else:
            figures["latency_ms"] = statistics.median(times) * 1000.0
    figures.update(
        speed_batch_size=batch_size,
        speed_device=describe_device(device),
        speed_threads=threads,
        speed_processor=cpu_model(),
    )
    return figures


def generator_cost(generator: nn.Module, z_dim: int, *, batch_size: int, min_run_time: float, threads: int) -> dict:
    """Every cost figure of one generator: size (params, layers, mult-adds) and measured speed."""
    return {
        "params": count_parameters(generator),
        "layers": count_weight_layers(generator, example_noise(generator, z_dim)),
        "mult_adds": count_mult_adds(generator, z_dim),
        **measure_speed(generator, z_dim, batch_size, min_run_time, threads),
    }
