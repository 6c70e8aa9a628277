"""Generation throughput and batch-1 latency of every student against its teacher: the paper's speed-up, measured.

For each config (the default; the paper's CIFAR-10 and LSUN bedroom), the teacher and every student are
built at the config's resolution and channels (random weights: speed does not depend on them), put on
the device, and timed with ``akdg.cost.measure_speed``, what the DAG's ``measure_cost`` runs (warm-up,
then the median of at least 5 timed blocks), at the config's speed batch and at batch 1. Rounds
interleave the generators, the order rotated each round, so that a change in the machine's load hits
all of them. Reported per student: its images/s over the teacher's, and the teacher's latency over its
own (both above 1 where the student is faster), from the medians over rounds and paired by round.

    python benchmarks/student_speed.py                                    # default and CIFAR-10, CUDA where there is one
    python benchmarks/student_speed.py --configs lsun_bedroom --batch-size 8 --rounds 1 \\
        --out results/benchmarks/student_speed_lsun.json                  # PGGAN at 256 px on a CPU: a smaller batch
"""

from __future__ import annotations

import argparse
import logging
import statistics
from pathlib import Path
from typing import Any

import torch

from benchlib import run, CONFIGS, RESULTS, choose_device, machine, ratio_figures, setup_logging, table, write_result

from akdg import cost
from akdg.architectures import build_generator
from akdg.config import load_config, student_key

log = logging.getLogger("student_speed")
CHANNELS = {"digits": 1}  # the paper's datasets are RGB


def config_speeds(name: str, device: torch.device, rounds: int, batch_size: int | None, min_run_time: float | None, threads: int) -> dict[str, Any]:
    """Every generator of one config, measured in ``rounds`` interleaved rounds; the ratios of each student to the teacher."""
    config = load_config(CONFIGS[name])
    resolution, channels = config["dataset"]["resolution"], CHANNELS.get(config["dataset"]["name"], 3)
    batch = batch_size or config["speed"]["batch_size"]
    run_time = min_run_time if min_run_time is not None else config["speed"]["min_run_time"]
    specs = {"teacher": config["teacher"]["generator"], **{student_key(s): s for s in config["students"]}}
    generators, sizes = {}, {}
    for label, spec in specs.items():
        torch.manual_seed(0)
        generator = build_generator(spec, resolution=resolution, channels=channels, z_dim=config["z_dim"]).eval()
        sizes[label] = {"generator": spec, "params": cost.count_parameters(generator), "mult_adds": cost.count_mult_adds(generator, config["z_dim"])}
        generators[label] = generator.to(device)
    labels = list(generators)
    figures: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
    for round_index in range(rounds):
        shift = round_index % len(labels)
        for label in labels[shift:] + labels[:shift]:
            figures[label].append(cost.measure_speed(generators[label], config["z_dim"], batch, run_time, threads))
            log.info("%s round %d %s: %.1f images/s, %.2f ms at batch 1", name, round_index + 1, label, figures[label][-1]["images_per_s"], figures[label][-1]["latency_ms"])
    per_generator = {
        label: {
            **sizes[label],
            "images_per_s": statistics.median(f["images_per_s"] for f in figures[label]),
            "latency_ms": statistics.median(f["latency_ms"] for f in figures[label]),
            "rounds": figures[label],
        }
        for label in labels
    }
    teacher = figures["teacher"]
    speedups = {}
    for label in labels[1:]:
        throughput = ratio_figures([f["images_per_s"] for f in figures[label]], [f["images_per_s"] for f in teacher])
        latency = ratio_figures([f["latency_ms"] for f in teacher], [f["latency_ms"] for f in figures[label]])
        speedups[label] = {
            "throughput_student_over_teacher": throughput["ratio_of_medians"],
            "throughput_paired": throughput["median_paired_ratio"],
            "latency_teacher_over_student": latency["ratio_of_medians"],
            "latency_paired": latency["median_paired_ratio"],
            "params_teacher_over_student": sizes["teacher"]["params"] / sizes[label]["params"],
            "mult_adds_teacher_over_student": sizes["teacher"]["mult_adds"] / sizes[label]["mult_adds"],
        }
    return {
        "config": name,
        "resolution": resolution,
        "channels": channels,
        "z_dim": config["z_dim"],
        "batch_size": batch,
        "config_batch_size": config["speed"]["batch_size"],
        "min_run_time": run_time,
        "rounds": rounds,
        "generators": per_generator,
        "speedups": speedups,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument(
        "--threads", type=int, default=1, help="CPU threads (default 1: on a busy machine more threads wait for each other; measure_cost uses every core)"
    )
    parser.add_argument("--configs", nargs="+", default=["default", "cifar10"], choices=sorted(CONFIGS))
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each is a full measure_speed of every generator")
    parser.add_argument("--batch-size", type=int, default=None, help="throughput batch for every config (default: each config's speed.batch_size)")
    parser.add_argument("--min-run-time", type=float, default=None, help="seconds per timing (default: each config's speed.min_run_time)")
    parser.add_argument("--out", type=Path, default=RESULTS / "student_speed.json")
    args = parser.parse_args(argv)
    setup_logging()
    device = choose_device(args.device, args.threads)
    info = machine(device)
    results = [config_speeds(name, device, args.rounds, args.batch_size, args.min_run_time, args.threads) for name in args.configs]
    rows = []
    for result in results:
        teacher = result["generators"]["teacher"]
        for label, speedup in result["speedups"].items():
            student = result["generators"][label]
            rows.append((
                result["config"], label, result["batch_size"], f"{student['images_per_s']:,.0f}", f"{teacher['images_per_s']:,.0f}", f"{speedup['throughput_student_over_teacher']:.2f}",
                f"{student['latency_ms']:.2f}", f"{teacher['latency_ms']:.2f}", f"{speedup['latency_teacher_over_student']:.2f}", f"{speedup['mult_adds_teacher_over_student']:.1f}",
            ))
    log.info("\n%s", table(["config", "student", "batch", "student img/s", "teacher img/s", "speed-up", "student ms@1", "teacher ms@1", "latency speed-up", "mult-add ratio"], rows))
    settings = {"configs": args.configs, "rounds": args.rounds, "batch_size": args.batch_size, "min_run_time": args.min_run_time, "threads": args.threads,
                "weights": "random initialisation, seed 0 (speed does not depend on the weights)"}
    write_result(args.out, "student_speed", info, settings, results)
    return 0


if __name__ == "__main__":
    run(main)
