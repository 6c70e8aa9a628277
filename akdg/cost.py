"""What a generator costs: parameters, weight layers, mult-adds and measured generation speed.

Mult-adds come from torch's own FLOP counter on one input (FLOPs / 2); speed from
``torch.utils.benchmark``, every generator timed in interleaved rounds in one process (see
:func:`measure_speeds`), with device, threads and how busy the machine was. Layers are the
weight layers one image actually passes through, found by running a forward, so a progressively
grown generator's unused lower-resolution toRGB layers are not counted (their parameters still
are: they are part of the saved model).
"""

from __future__ import annotations

import math
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.utils.benchmark import Timer
from torch.utils.flop_counter import FlopCounterMode

from akdg.protocol import cpu_model, describe_device

WEIGHT_LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
LOADED_RULE = (
    "loaded if the median over rounds of the other runnable tasks (/proc/loadavg's running count, sampled "
    "before every round, minus this process's own running threads) exceeds cpu_count - threads, i.e. the "
    "machine had more runnable tasks than cores; where /proc is unreadable, if the 1-minute load average "
    "before the measurement exceeds cpu_count - threads"
)


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


def measure_speeds(
    generators: dict[str, nn.Module], z_dim: int, *, batch_size: int, min_run_time: float, threads: int, rounds: int
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Images/s at ``batch_size`` and batch-1 latency of every generator, timed in interleaved rounds.

    Timing one generator after the other lets a change of the machine's load hit one of them only;
    here every round times one block of each generator (at ``batch_size``, then at batch 1), the
    order rotated each round (A B, B A, ... for two), so drift hits all alike and student/teacher
    ratios can be paired by round. A block is ``Timer.timeit(number)`` with ``number`` calibrated
    after a warm-up so that one block takes about ``min_run_time`` seconds (``timeit`` first runs
    a few untimed calls: a warm-up after the other generators ran). Reported: the medians over
    rounds and every round's figure; and the measurement block (:func:`_measurement`) that says
    how busy the machine was.
    """
    timers: dict[tuple[str, str], tuple[Timer, int]] = {}
    for label, generator in generators.items():
        generator.eval()
        device = next(generator.parameters()).device  # z is drawn where the generator is; Timer syncs CUDA itself
        for size_name, size in (("batch", batch_size), ("single", 1)):
            timer = Timer(
                stmt="with torch.no_grad(): generator(z)",
                globals={"generator": generator, "z": torch.randn(size, z_dim, device=device), "torch": torch},
                num_threads=threads,
            )
            seconds = timer.timeit(3).median  # warm-up and a first estimate of one call
            timers[label, size_name] = timer, max(1, math.ceil(min_run_time / seconds))
    labels = list(generators)
    seconds_per_call: dict[tuple[str, str], list[float]] = {key: [] for key in timers}
    others: list[int | None] = []
    load_before, cpu_start, wall_start = os.getloadavg()[0], time.process_time(), time.perf_counter()
    for round_index in range(rounds):
        others.append(other_runnable_tasks())
        shift = round_index % len(labels)
        for label in labels[shift:] + labels[:shift]:
            for size_name in ("batch", "single"):
                timer, number = timers[label, size_name]
                seconds_per_call[label, size_name].append(timer.timeit(number).median)
    cpu_seconds, wall_seconds = time.process_time() - cpu_start, time.perf_counter() - wall_start
    measurement = _measurement(rounds, min_run_time, threads, load_before, os.getloadavg()[0], others, cpu_seconds, wall_seconds)
    figures = {}
    for label, generator in generators.items():
        images_per_s = [batch_size / seconds for seconds in seconds_per_call[label, "batch"]]
        latency_ms = [seconds * 1000.0 for seconds in seconds_per_call[label, "single"]]
        figures[label] = {
            "images_per_s": statistics.median(images_per_s),
            "latency_ms": statistics.median(latency_ms),
            "images_per_s_rounds": images_per_s,
            "latency_ms_rounds": latency_ms,
            "speed_batch_size": batch_size,
            "speed_rounds": rounds,
            "speed_min_run_time": min_run_time,
            "speed_device": describe_device(next(generator.parameters()).device),
            "speed_threads": threads,
            "speed_processor": cpu_model(),
        }
    return figures, measurement


def throughput_ratios(speeds: dict[str, dict[str, Any]], reference: str) -> dict[str, dict[str, Any]]:
    """Per generator but ``reference``: its images/s over the reference's, paired by round, and their median.

    Both ran back to back in every round, so a ratio cancels most of what the machine's load did to
    that round; claim 5 tests these ratios, not the absolute images/s.
    """
    theirs = speeds[reference]["images_per_s_rounds"]
    ratios = {}
    for label, figures in speeds.items():
        if label != reference:
            paired = [mine / other for mine, other in zip(figures["images_per_s_rounds"], theirs)]
            ratios[label] = {
                "throughput_ratio_rounds": paired,
                "throughput_ratio": statistics.median(paired),
                "throughput_reference": reference,
            }
    return ratios


def other_runnable_tasks() -> int | None:
    """Runnable tasks on the machine now, this process's own running threads left out; None where /proc is unreadable.

    /proc/loadavg's 4th field is "running/total" over the whole machine; this process's threads that
    are running (its reading thread, torch workers still spinning) are counted from /proc/self/task.
    """
    try:
        running = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
        tasks = list(Path("/proc/self/task").iterdir())
    except (OSError, IndexError, ValueError):
        return None
    own = 0
    for task in tasks:
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        own += stat[stat.rindex(")") + 1 :].split()[0] == "R"  # the state follows the command name, which may hold spaces
    return max(running - own, 0)


def machine_loaded(other_runnable_median: float | None, load_average_before: float, cpu_count: int, threads: int) -> bool:
    """Whether the machine was busy while speed was measured: the rule is :data:`LOADED_RULE`."""
    spare = cpu_count - threads
    return (other_runnable_median if other_runnable_median is not None else load_average_before) > spare


def _measurement(
    rounds: int,
    min_run_time: float,
    threads: int,
    load_before: float,
    load_after: float,
    others: list[int | None],
    cpu_seconds: float,
    wall_seconds: float,
) -> dict[str, Any]:
    """How the speed measurement ran and how busy the machine was (the inputs of :func:`machine_loaded` and its verdict)."""
    sampled = [count for count in others if count is not None]
    other_median = statistics.median(sampled) if sampled else None
    cpu_count = os.cpu_count() or 1
    return {
        "rounds": rounds,
        "order": "one block per generator per round, the order rotated each round",
        "min_run_time_per_block": min_run_time,
        "threads": threads,
        "cpu_count": cpu_count,
        "load_average_1min_before": load_before,
        "load_average_1min_after": load_after,
        "other_runnable_rounds": others if sampled else None,
        "other_runnable_median": other_median,
        "cpu_seconds": cpu_seconds,
        "wall_seconds": wall_seconds,
        "cpu_per_wall": cpu_seconds / wall_seconds,
        "loaded": machine_loaded(other_median, load_before, cpu_count, threads),
        "loaded_rule": LOADED_RULE,
    }


def generator_size(generator: nn.Module, z_dim: int) -> dict[str, int]:
    """Size figures of one generator: params, weight layers an image passes through, mult-adds per image."""
    return {
        "params": count_parameters(generator),
        "layers": count_weight_layers(generator, example_noise(generator, z_dim)),
        "mult_adds": count_mult_adds(generator, z_dim),
    }
