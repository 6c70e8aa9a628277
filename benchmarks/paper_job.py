"""One paper-config training job for a fixed number of steps: its wall time, speed and peak memory.

The CIFAR-10 config's AKDG student (DCGAN w51 distilled from the SNGAN w256 teacher, batch 64, EMA
0.999) runs as the DAG's ``train_student`` rule runs it (``akdg train --spec ... --teacher ...
--threads ... --checkpoint-every ...``, in a process of its own) for ``--steps`` steps instead of
50,000, on SYNTHETIC data: uniform random uint8 images of CIFAR-10's shape and size (50,000 train and
10,000 test, 32x32 RGB) and a randomly initialised teacher, since CIFAR-10 cannot be downloaded
everywhere and neither the time per step nor the memory depends on pixel values or weights.

Reported: the process's wall time; the training loop's steps/s (from the job's own log: step 1 to the
last step); peak memory as the summed PSS and RSS of the job's processes sampled every 0.25 s
(psutil), the exact peak RSS (getrusage), and on CUDA ``torch.cuda.max_memory_allocated``. Ratios: peak
memory to the config's ``resources.student.mem_mb``, and the 50,000-step job projected from the measured
steps/s to its ``resources.student.runtime``.

    python benchmarks/paper_job.py                      # 20 steps, CUDA where there is one
    python benchmarks/paper_job.py --device cpu --steps 10 --threads 2
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from dag_budget import PeakTreeMemory

from akdg import checkpoint, datasets
from akdg.architectures import build_generator
from akdg.config import load_config, student_training_spec
from benchlib import CONFIGS, RESULTS, choose_device, machine, run, setup_logging, table, write_result

log = logging.getLogger("paper_job")
# The job's process: `akdg train` itself, then what only that process knows (import time, CUDA peak memory).
# Inline, so that the job imports nothing akdg's command would not.
JOB = """
import json, sys, time
start = time.perf_counter()
import torch
from akdg.cli import main
imported = time.perf_counter()
status = main(sys.argv[2:])
cuda = torch.cuda.is_available()
with open(sys.argv[1], "w") as report:
    json.dump({
        "import_s": imported - start,
        "akdg_main_s": time.perf_counter() - imported,
        "cuda_max_memory_allocated_bytes": torch.cuda.max_memory_allocated() if cuda else None,
        "cuda_max_memory_reserved_bytes": torch.cuda.max_memory_reserved() if cuda else None,
        "cuda_total_memory_bytes": torch.cuda.get_device_properties(0).total_memory if cuda else None,
    }, report)
sys.exit(status)
"""
STEP_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO akdg\.training: step (\d+)/(\d+):")


def synthetic_cifar10(out: Path, train_images: int, test_images: int) -> dict[str, Any]:
    """A prepared-data .npz in akdg's format with random pixels of CIFAR-10's shape; its protocol says so."""
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (train_images, 3, 32, 32), dtype=np.uint8)
    x_test = rng.integers(0, 256, (test_images, 3, 32, 32), dtype=np.uint8)
    protocol = {
        "name": "cifar10",
        "source": "SYNTHETIC: uniform random uint8 of CIFAR-10's shape (benchmarks/paper_job.py), not CIFAR-10",
        "resolution": 32,
        "channels": 3,
        "train_samples": train_images,
        "test_samples": test_images,
        "content_sha256": datasets.content_hash(x_train, x_test),
    }
    labels = {"y_train": rng.integers(0, 10, train_images), "y_test": rng.integers(0, 10, test_images)}
    np.savez(out, x_train=x_train, x_test=x_test, **labels, protocol=np.array(json.dumps(protocol)))
    return protocol


def random_teacher(config: dict[str, Any], out: Path) -> None:
    """The config's teacher architecture with its initial weights, as a checkpoint ``akdg train --teacher`` accepts."""
    spec = config["teacher"]["generator"]
    torch.manual_seed(0)
    teacher = build_generator(spec, resolution=32, channels=3, z_dim=config["z_dim"])
    meta = {
        "generator": spec,
        "resolution": 32,
        "channels": 3,
        "z_dim": config["z_dim"],
        "training": {"method": "random initialisation (benchmark)"},
    }
    checkpoint.save_generator(out, teacher, meta)


def student_spec(config: dict[str, Any], method: str, steps: int, device: str) -> dict[str, Any]:
    """The spec the DAG gives ``akdg train`` for the first student, ``method`` and seed 0, with ``steps`` and ``device``."""
    return {**student_training_spec(config, config["students"][0], method, seed=0), "steps": steps, "device": device}


def loop_seconds(log_text: str) -> tuple[int, float] | None:
    """(steps, seconds) from the job log's first to its last 'step i/N' line (the training loop alone), if both are there."""
    stamps = [
        (int(m[2]), datetime.datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f")) for m in map(STEP_LINE.match, log_text.splitlines()) if m
    ]
    if len(stamps) < 2:
        return None
    (first, start), (last, end) = stamps[0], stamps[-1]
    return last - first, (end - start).total_seconds()


def run_job(command: list[str], log_path: Path) -> dict[str, Any]:
    """Run the job, sampling its processes' memory every 0.25 s; wall time and peaks."""
    start = time.perf_counter()
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
        with PeakTreeMemory(process.pid, interval=0.25) as peak:
            status = process.wait()
            wall = time.perf_counter() - start
    return {
        "status": status,
        "wall_s": wall,
        "peak_pss_bytes": peak.pss,
        "peak_rss_sum_bytes": peak.rss,
        "peak_rss_exact_bytes": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="the spec's training.device")
    parser.add_argument("--threads", type=int, default=1, help="the job's --threads (default 1: what the DAG gives a student job)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--method", default="akdg", choices=["vanilla", "mse", "akdg"])
    parser.add_argument("--train-images", type=int, default=50_000, help="synthetic train split size (CIFAR-10's: 50,000)")
    parser.add_argument("--out", type=Path, default=RESULTS / "paper_job.json")
    args = parser.parse_args(argv)
    setup_logging()
    device = choose_device(args.device, args.threads)
    info = machine(device)
    config = load_config(CONFIGS["cifar10"])
    workdir = Path(tempfile.mkdtemp(prefix="akdg-paper-job-"))
    try:
        data, teacher, spec_path, report, job_log = (
            workdir / name for name in ("cifar10.npz", "teacher.pt", "spec.json", "report.json", "job.log")
        )
        protocol = synthetic_cifar10(data, args.train_images, 10_000)
        random_teacher(config, teacher)
        spec = student_spec(config, args.method, args.steps, args.device)
        spec_path.write_text(json.dumps(spec))
        command = [
            sys.executable,
            "-c",
            JOB,
            str(report),
            "train",
            "--spec",
            f"@{spec_path}",
            "--data",
            str(data),
            "--teacher",
            str(teacher),
            "--threads",
            str(args.threads),
            "--checkpoint-every",
            str(config["training"]["checkpoint_every"]),
            "--out",
            str(workdir / "student.pt"),
        ]
        log.info("running one %s student job for %d steps on %s (synthetic data, random teacher)", args.method, args.steps, info["device"])
        job = run_job(command, job_log)
        log_text = job_log.read_text()
        if job["status"]:
            log.error("the job failed (exit %d):\n%s", job["status"], log_text[-4000:])
            return 1
        job.update(json.loads(report.read_text()))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    loop = loop_seconds(log_text)
    steps_per_s = loop[0] / loop[1] if loop and loop[1] > 0 else None
    resources = config["resources"]["student"]
    full_steps = config["training"]["steps"]
    result = {
        **job,
        "spec": spec,
        "data": protocol,
        "teacher": "random initialisation of the config's teacher architecture (seed 0)",
        "loop_steps_timed": loop[0] if loop else None,
        "loop_s": loop[1] if loop else None,
        "steps_per_s": steps_per_s,
        "resources_student": resources,
        "peak_pss_over_mem_mb": job["peak_pss_bytes"] / (resources["mem_mb"] * 1e6),
        "projected_full_job_minutes": full_steps / steps_per_s / 60 if steps_per_s else None,
        "projected_full_job_over_runtime": full_steps / steps_per_s / 60 / resources["runtime"] if steps_per_s else None,
        "cuda_peak_over_total": job["cuda_max_memory_allocated_bytes"] / job["cuda_total_memory_bytes"]
        if job["cuda_max_memory_allocated_bytes"]
        else None,
    }
    rows = [
        ("wall time (process)", f"{job['wall_s']:.1f} s", ""),
        ("of which importing torch and akdg", f"{job['import_s']:.1f} s", ""),
        (
            f"training loop, steps 2..{args.steps} (after the first)",
            f"{loop[1]:.1f} s" if loop else "n/a",
            f"{steps_per_s:.3f} steps/s" if steps_per_s else "",
        ),
        (
            f"projected {full_steps:,} steps",
            f"{result['projected_full_job_minutes']:,.0f} min" if steps_per_s else "n/a",
            f"{result['projected_full_job_over_runtime']:.2f} of resources.student.runtime" if steps_per_s else "",
        ),
        (
            "peak memory, summed PSS",
            f"{job['peak_pss_bytes'] / 2**30:.2f} GiB",
            f"{result['peak_pss_over_mem_mb']:.3f} of resources.student.mem_mb",
        ),
        ("peak memory, exact RSS (getrusage)", f"{job['peak_rss_exact_bytes'] / 2**30:.2f} GiB", ""),
    ]
    if job["cuda_max_memory_allocated_bytes"]:
        rows.append(
            (
                "CUDA max_memory_allocated",
                f"{job['cuda_max_memory_allocated_bytes'] / 2**30:.2f} GiB",
                f"{result['cuda_peak_over_total']:.3f} of the GPU",
            )
        )
    log.info("\n%s", table(["what", "value", "ratio"], rows))
    settings = {
        "config": "config/paper/cifar10.yaml",
        "method": args.method,
        "steps": args.steps,
        "threads": args.threads,
        "device": args.device,
        "synthetic_data": True,
        "train_images": args.train_images,
    }
    write_result(
        args.out,
        "paper_job",
        info,
        settings,
        result,
        note="SYNTHETIC data and a randomly initialised teacher: speed and memory only, no metrics",
    )
    return 0


if __name__ == "__main__":
    run(main)
