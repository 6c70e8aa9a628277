"""What moves when the same DAG runs on another CPU: the default table under other SIMD kernels.

A CPU with other vector units (AVX2 rather than AVX-512, say) runs other kernels for the same
convolutions and matrix products, so generator training differs in the last bits and every trained
generator ends a little elsewhere. torch's CPU kernels come from three libraries, each choosing
its instruction set once per process: ATen's own (``ATEN_CPU_CAPABILITY``), oneDNN's convolutions
(``ONEDNN_MAX_CPU_ISA``) and MKL's matrix products (``MKL_ENABLE_INSTRUCTIONS``); capping all three
(:data:`CAPS`) makes this machine compute as an older CPU would. ATen's alone changes nothing here:
convolutions and matrix products run in the other two. This script runs the default DAG in a fresh
copy of the project under those caps, then compares every metric cell with the committed table,
made on this machine with its native kernels. The feature extractor is the pinned
one either way, so only the generators can move. Reported per row and metric: both values, the
difference, the seed standard deviation, and the difference in units of it.

    python benchmarks/cross_cpu.py --capability avx2     # writes results/benchmarks/cross_cpu.{json,md}
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from akdg.registry import AkdgError
from benchlib import REPO, RESULTS, copy_workflow, machine, run, setup_logging, write_result

log = logging.getLogger("cross_cpu")
METRICS = {"is_mean": "IS", "fid": "FID", "kid_mean": "KID"}
CAPS = {  # the environment that caps each library at an instruction set
    "default": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "avx512": {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "MKL_ENABLE_INSTRUCTIONS": "AVX512"},
}


def compare(reference: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """Every (row, metric) cell of both tables, their difference and that difference over the seed std."""
    merged = reference.merge(other, on="row", suffixes=("", "_other"), validate="one_to_one")
    cells = []
    for _, row in merged.iterrows():
        for column, name in METRICS.items():
            spread = row[f"{column}_seed_std"]
            difference = row[f"{column}_other"] - row[column]
            cells.append(
                {
                    "row": row["row"],
                    "metric": name,
                    "seeds": int(row["seeds"]),
                    "native": row[column],
                    "other": row[f"{column}_other"],
                    "difference": difference,
                    "identical": bool(row[column] == row[f"{column}_other"]),
                    "seed_std": spread,
                    "difference_over_seed_std": abs(difference) / spread if pd.notna(spread) and spread > 0 else None,
                }
            )
    return pd.DataFrame(cells)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capability", default="avx2", choices=list(CAPS), help="instruction set the other run is capped at")
    parser.add_argument(
        "--reference", type=Path, default=REPO / "results" / "tables" / "digits.csv", help="the native run's table (the committed one)"
    )
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "cross_cpu.json", help="JSON; a Markdown table goes beside it")
    args = parser.parse_args()
    setup_logging()
    if not args.reference.is_file():
        raise AkdgError(f"reference table {args.reference} does not exist; run the default DAG first (dvc repro)")
    info = machine(torch.device("cpu"))
    native = torch.backends.cpu.get_cpu_capability()
    workdir = Path(tempfile.mkdtemp(prefix="akdg-cross-cpu-"))
    copy_workflow(workdir)
    command = [sys.executable, "-m", "snakemake", "--cores", str(args.cores), "all_tables"]
    environment = {**os.environ, **CAPS[args.capability]}
    log.info("running %s in %s with %s (native: %s)", " ".join(command), workdir, CAPS[args.capability], native)
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=workdir, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if completed.returncode:
        log.error("snakemake failed (exit %d):\n%s", completed.returncode, completed.stderr[-4000:])
        return 1
    other_table = pd.read_csv(workdir / "results" / "tables" / "digits.csv")
    cells = compare(pd.read_csv(args.reference), other_table)
    shutil.rmtree(workdir)
    trained = cells[cells["seeds"] > 1]
    result = {
        "native_capability": native,
        "other_capability": args.capability,
        "other_environment": CAPS[args.capability],
        "wall_seconds": time.perf_counter() - start,
        "cells": cells.to_dict(orient="records"),
        "identical_cells": int(cells["identical"].sum()),
        "cells_total": len(cells),
        "max_difference_over_seed_std": float(trained["difference_over_seed_std"].max()),
        "median_difference_over_seed_std": float(trained["difference_over_seed_std"].median()),
    }
    write_result(args.out, "cross_cpu", info, {"capability": args.capability, "reference": str(args.reference.relative_to(REPO))}, result)
    shown = cells.assign(
        **{
            name: cells[name].map(lambda v: "–" if pd.isna(v) else f"{v:.4g}")
            for name in ("native", "other", "difference", "seed_std", "difference_over_seed_std")
        }
    )
    args.out.with_suffix(".md").write_text(
        f"# The default table with {native} kernels (committed) and capped at {args.capability}\n\n"
        f"The other run's environment: {', '.join(f'{key}={value}' for key, value in CAPS[args.capability].items())}.\n"
        f"Made by `python benchmarks/cross_cpu.py --capability {args.capability}` on {info['cpu_model']} "
        f"(git {info['git_commit']}); every figure is in `{args.out.name}`.\n\n"
        + shown.to_markdown(index=False)
        + f"\n\n- identical cells: {result['identical_cells']} of {result['cells_total']}\n"
        f"- trained rows (several seeds): |difference| / seed std at most {result['max_difference_over_seed_std']:.3g}, "
        f"median {result['median_difference_over_seed_std']:.3g}\n"
    )
    log.info(
        "identical cells %d of %d; |difference| / seed std: max %.3g, median %.3g",
        result["identical_cells"],
        len(cells),
        result["max_difference_over_seed_std"],
        result["median_difference_over_seed_std"],
    )
    return 0


if __name__ == "__main__":
    run(main)
