"""Training throughput of each speed option of the loop against the loop's defaults, side by side.

The options are the config's ``training`` switches: ``amp`` (bfloat16 autocast), ``channels_last``
(NHWC conv weights and batches), ``compile: default`` (torch.compile) and, on CUDA,
``compile: reduce-overhead`` (torch.compile with CUDA graphs) and the train split kept in host
memory with each batch copied over (``host_data``: what a split too big for the GPU gets; by default
the split sits on the GPU and batches are drawn there by index). ``all`` switches amp,
channels_last and compile on together. Each variant runs ``akdg.training.train`` exactly as a
training job does, from the same seed and models, interleaved with the defaults in one process
(baseline, variant, variant, baseline, ...); reported is its steps/s over the defaults' as the median
of the per-pair ratios (and the same from CPU time), per setup. A variant is worth turning on by
default where it is clearly above 1 on the GPUs the suite targets.

Each run trains fresh models for ``warm_up + steps`` steps; timed (from ``train``'s per-step
callback) are the last ``steps``, so the figure is the steady state a long job sees. What the first
``warm_up`` steps (and building the run) cost beyond the defaults' is reported separately
(``extra_first_steps_seconds``): for the compiled variants, compilation, paid once per job. The
variants do the same updates in another layout, precision or kernel fusion, so their weights are not
expected to be bit-identical to the defaults'; how far they end from them after the same steps
(largest absolute difference over G's and every D's weights) is reported as a check that the
variant trains the same thing.

    python benchmarks/train_options.py                   # default and CIFAR-10 sizes, CUDA where there is one
    python benchmarks/train_options.py --device cpu --variants amp channels_last --configs default
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn as nn
from loop_overhead import SYNTHETIC_IMAGES, Setup, add_step_arguments, config_setups, largest_difference, prepare_ours, steps_per_config

from akdg import method_api
from akdg.registry import AkdgError
from benchlib import RESULTS, choose_device, interleave, machine, ratio_figures, run, setup_logging, table, write_result

log = logging.getLogger("train_options")
VARIANTS: dict[str, dict[str, Any]] = {
    "amp": {"amp": True},
    "channels_last": {"channels_last": True},
    "compile": {"compile": "default"},
    "cuda_graphs": {"compile": "reduce-overhead"},
    "all": {"amp": True, "channels_last": True, "compile": "default"},
    "host_data": {},  # training's defaults, with the train split kept in host memory (see keep_data_on_host)
}
CUDA_ONLY = {"cuda_graphs": "CUDA graphs exist on CUDA only", "host_data": "on the CPU the data is always in host memory"}
BASELINE = "defaults"


@contextlib.contextmanager
def keep_data_on_host(enabled: bool) -> Iterator[None]:
    """Make ``place_images`` keep the split in host memory, as it does for a split too big for the GPU."""
    fraction = method_api.DATA_ON_DEVICE_FRACTION
    method_api.DATA_ON_DEVICE_FRACTION = 0.0 if enabled else fraction
    try:
        yield
    finally:
        method_api.DATA_ON_DEVICE_FRACTION = fraction


@dataclass
class Run:
    """One training run's final models and the (wall, CPU) clock after each of its steps."""

    models: list[nn.Module]
    stamps: list[tuple[float, float]]

    def steady(self, warm_up: int) -> tuple[float, float]:
        """Wall and CPU seconds of the steps after the first ``warm_up`` (compilation happens in those)."""
        (wall_0, cpu_0), (wall_1, cpu_1) = self.stamps[warm_up - 1], self.stamps[-1]
        return wall_1 - wall_0, cpu_1 - cpu_0


def prepare(setup: Setup, variant: str, steps: int, device: torch.device, seed: int) -> Callable[[], Callable[[], Run]]:
    """What :func:`benchlib.interleave` times for one variant: a fresh training run of ``steps`` steps.

    A run that compiles starts from empty compile caches (untimed): spectrally normalised layers get
    a class of their own per instance, so every new discriminator is compiled again, and the caches
    of earlier runs would otherwise fill torch's recompile limit and silently fall back to eager.
    Each run thus compiles as a training job does, once, in its first steps.
    """
    options = VARIANTS.get(variant, {})

    def build() -> Callable[[], Run]:
        if "compile" in options:
            torch.compiler.reset()
        stamps: list[tuple[float, float]] = []
        with keep_data_on_host(variant == "host_data"):
            train_run = prepare_ours(
                setup, steps, device, seed, on_step=lambda *_: stamps.append((time.perf_counter(), time.process_time())), **options
            )
        return lambda: Run(train_run(), stamps)

    return build


def measure(setup: Setup, variants: list[str], steps: int, warm_up: int, repeats: int, device: torch.device, seed: int) -> dict[str, Any]:
    """Each variant against the defaults, interleaved pair by pair, on one setup; timed: the steps after ``warm_up``."""
    results: dict[str, Any] = {}
    baseline = prepare(setup, BASELINE, warm_up + steps, device, seed)
    interleave({BASELINE: baseline}, 1, device)  # first-call allocations and lazy initialisation, not kept
    for variant in variants:
        runs: dict[str, list[Run]] = {BASELINE: [], variant: []}

        def keep(_: int, values: dict[str, Run]) -> None:
            for label, value in values.items():
                runs[label].append(value)

        whole, _ = interleave(
            {BASELINE: baseline, variant: prepare(setup, variant, warm_up + steps, device, seed)}, repeats, device, on_result=keep
        )
        seconds = {label: [run.steady(warm_up)[0] for run in kept] for label, kept in runs.items()}
        cpu_seconds = {label: [run.steady(warm_up)[1] for run in kept] for label, kept in runs.items()}
        first_steps = {label: [total - steady for total, steady in zip(whole[label], seconds[label])] for label in runs}
        ratios = ratio_figures(seconds[BASELINE], seconds[variant])  # defaults' seconds / variant's = variant's steps/s over the defaults'
        results[variant] = {
            "training": VARIANTS[variant],
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "first_steps_seconds": first_steps,
            "steps_per_s": steps / statistics.median(seconds[variant]),
            "defaults_steps_per_s": steps / statistics.median(seconds[BASELINE]),
            "speedup": ratios["median_paired_ratio"],
            "speedup_of_medians": ratios["ratio_of_medians"],
            "paired_ratios": ratios["paired_ratios"],
            "speedup_cpu_time": ratio_figures(cpu_seconds[BASELINE], cpu_seconds[variant])["median_paired_ratio"],
            "extra_first_steps_seconds": statistics.median(first_steps[variant]) - statistics.median(first_steps[BASELINE]),
            "max_abs_weight_difference": max(largest_difference(a.models, b.models) for a, b in zip(runs[BASELINE], runs[variant])),
        }
    return {**setup.describe(), "steps": steps, "warm_up_steps": warm_up, "repeats": repeats, "variants": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1: what the DAG gives a student job)")
    parser.add_argument("--configs", nargs="+", default=["default", "cifar10"], choices=["default", "cifar10"])
    parser.add_argument("--method", default="akdg", choices=["vanilla", "mse", "akdg"])
    parser.add_argument(
        "--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), help="those that need CUDA are skipped on the CPU"
    )
    add_step_arguments(parser)
    parser.add_argument("--warm-up", type=int, default=5, help="first steps of each run left out of the timing (compilation happens there)")
    parser.add_argument("--repeats", type=int, default=5, help="timed pairs per variant and setup")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "train_options.json")
    args = parser.parse_args(argv)
    setup_logging()
    device = choose_device(args.device, args.threads)
    info = machine(device)
    cuda = device.type == "cuda"
    skipped = {variant: CUDA_ONLY[variant] for variant in args.variants if variant in CUDA_ONLY and not cuda}
    variants = [variant for variant in args.variants if variant not in skipped]
    if not variants:
        raise AkdgError(
            f"every variant asked for needs CUDA ({', '.join(skipped)}); run on a GPU or pick others from {', '.join(VARIANTS)}"
        )
    steps = steps_per_config(args, cuda)
    results = []
    for name in args.configs:
        for setup in config_setups(name, [args.method], SYNTHETIC_IMAGES):
            log.info(
                "%s: %s against the defaults, %d steps x %d pairs on %s",
                setup.label,
                ", ".join(variants),
                steps[name],
                args.repeats,
                info["device"],
            )
            results.append(measure(setup, variants, steps[name], args.warm_up, args.repeats, device, args.seed))
    rows = [
        (
            r["label"],
            variant,
            f"{v['defaults_steps_per_s']:.2f}",
            f"{v['steps_per_s']:.2f}",
            f"{v['speedup']:.3f}",
            f"{v['speedup_cpu_time']:.3f}",
            f"{v['extra_first_steps_seconds']:.1f}",
            f"{v['max_abs_weight_difference']:.1e}",
        )
        for r in results
        for variant, v in r["variants"].items()
    ]
    log.info(
        "\n%s",
        table(
            [
                "setup",
                "variant",
                "defaults steps/s",
                "variant steps/s",
                "speed-up (paired)",
                "by CPU time",
                "extra s in first steps",
                "max weight diff",
            ],
            rows,
        ),
    )
    for variant, reason in skipped.items():
        log.info("skipped %s: %s", variant, reason)
    settings = {
        "configs": args.configs,
        "method": args.method,
        "steps": steps,
        "warm_up_steps": args.warm_up,
        "repeats": args.repeats,
        "seed": args.seed,
        "threads": args.threads,
        "variants": {variant: VARIANTS[variant] for variant in variants},
        "defaults": {"amp": False, "channels_last": False, "compile": "off"},
    }
    write_result(args.out, "train_options", info, settings, results, skipped=skipped)
    return 0


if __name__ == "__main__":
    run(main)
