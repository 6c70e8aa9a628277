"""Generation throughput and batch-1 latency of every student against its teacher: the paper's speed-up, measured.

For each config (the default; the paper's CIFAR-10 and LSUN bedroom), the teacher and every student are
built at the config's resolution and channels (random weights: speed does not depend on them), put on
the device, and timed with ``akdg.cost.measure_speeds``, what the DAG's ``measure_cost`` runs (after a
warm-up, one timed block of every generator per round, at the config's speed batch and at batch 1).
Rounds interleave the generators, the order rotated each round, so that a change in the machine's load
hits all of them. Reported per student: its images/s over the teacher's, and the teacher's latency over its
own (both above 1 where the student is faster), from the medians over rounds and paired by round.

    python benchmarks/student_speed.py                                    # default and CIFAR-10, CUDA where there is one
    python benchmarks/student_speed.py --configs lsun_bedroom --batch-size 8 --rounds 3 \\
        --out results/benchmarks/student_speed_lsun.json                  # PGGAN at 256 px on a CPU: a smaller batch
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import torch

from akdg import cost
from akdg.architectures import build_generator
from akdg.config import load_config, student_key
from benchlib import CONFIGS, RESULTS, choose_device, machine, ratio_figures, run, setup_logging, table, write_result

log = logging.getLogger("student_speed")
CHANNELS = {"digits": 1}  # the paper's datasets are RGB


def config_speeds(
    name: str, device: torch.device, rounds: int | None, batch_size: int | None, min_run_time: float | None, threads: int
) -> dict[str, Any]:
    """Every generator of one config, measured in interleaved rounds; the ratios of each student to the teacher."""
    config = load_config(CONFIGS[name])
    resolution, channels = config["dataset"]["resolution"], CHANNELS.get(config["dataset"]["name"], 3)
    batch = batch_size or config["speed"]["batch_size"]
    run_time = min_run_time if min_run_time is not None else config["speed"]["min_run_time"]
    rounds = rounds or config["speed"]["rounds"]
    specs = {"teacher": config["teacher"]["generator"], **{student_key(s): s for s in config["students"]}}
    generators, sizes = {}, {}
    for label, spec in specs.items():
        torch.manual_seed(0)
        generator = build_generator(spec, resolution=resolution, channels=channels, z_dim=config["z_dim"]).eval()
        sizes[label] = {
            "generator": spec,
            "params": cost.count_parameters(generator),
            "mult_adds": cost.count_mult_adds(generator, config["z_dim"]),
        }
        generators[label] = generator.to(device)
    labels = list(generators)
    speeds, measurement = cost.measure_speeds(
        generators, config["z_dim"], batch_size=batch, min_run_time=run_time, threads=threads, rounds=rounds
    )
    for label in labels:
        log.info(
            "%s %s: %.1f images/s, %.2f ms at batch 1 (medians over %d rounds)",
            name,
            label,
            speeds[label]["images_per_s"],
            speeds[label]["latency_ms"],
            rounds,
        )
    per_generator = {label: {**sizes[label], **speeds[label]} for label in labels}
    teacher = speeds["teacher"]
    speedups = {}
    for label in labels[1:]:
        throughput = ratio_figures(speeds[label]["images_per_s_rounds"], teacher["images_per_s_rounds"])
        latency = ratio_figures(teacher["latency_ms_rounds"], speeds[label]["latency_ms_rounds"])
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
        "measurement": measurement,
        "generators": per_generator,
        "speedups": speedups,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads (default 1: on a busy machine more threads wait for each other; measure_cost uses every core)",
    )
    parser.add_argument("--configs", nargs="+", default=["default", "cifar10"], choices=sorted(CONFIGS))
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="interleaved rounds, each one timed block of every generator (default: each config's speed.rounds)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="throughput batch for every config (default: each config's speed.batch_size)"
    )
    parser.add_argument(
        "--min-run-time", type=float, default=None, help="seconds per timed block (default: each config's speed.min_run_time)"
    )
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
            rows.append(
                (
                    result["config"],
                    label,
                    result["batch_size"],
                    f"{student['images_per_s']:,.0f}",
                    f"{teacher['images_per_s']:,.0f}",
                    f"{speedup['throughput_student_over_teacher']:.2f}",
                    f"{student['latency_ms']:.2f}",
                    f"{teacher['latency_ms']:.2f}",
                    f"{speedup['latency_teacher_over_student']:.2f}",
                    f"{speedup['mult_adds_teacher_over_student']:.1f}",
                )
            )
    log.info(
        "\n%s",
        table(
            [
                "config",
                "student",
                "batch",
                "student img/s",
                "teacher img/s",
                "speed-up",
                "student ms@1",
                "teacher ms@1",
                "latency speed-up",
                "mult-add ratio",
            ],
            rows,
        ),
    )
    settings = {
        "configs": args.configs,
        "rounds": args.rounds,
        "batch_size": args.batch_size,
        "min_run_time": args.min_run_time,
        "threads": args.threads,
        "weights": "random initialisation, seed 0 (speed does not depend on the weights)",
    }
    write_result(args.out, "student_speed", info, settings, results)
    return 0


if __name__ == "__main__":
    run(main)
