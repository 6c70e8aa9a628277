"""How long `snakemake -n all_tables` takes on each grid, this tree against an earlier commit, side by side.

Every Snakemake start (each `snakemake -n`, and twice per job on SLURM: sbatch's, then srun's)
parses the Snakefile, which validates the config. The runs alternate between the two trees, so
load and caches hit both alike; each is a fresh interpreter, timed from outside, and also reports
whether it imported torch.

    python benchmarks/dry_run.py --before 21733eb --repeats 5
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch

from benchlib import REPO, RESULTS, machine, run, setup_logging, table, write_result

log = logging.getLogger("dry_run")
GRIDS = ("config/config.yaml", "config/paper/cifar10.yaml", "config/paper/lsun_bedroom.yaml")
# A fresh interpreter plans a grid as `snakemake -n` does and prints whether torch was imported.
PLAN = """
import sys
from snakemake.cli import main
try:
    main(["-n", "all_tables", "--configfile", sys.argv[1], "--directory", sys.argv[2]])
except SystemExit as exit:
    assert not exit.code, f"snakemake -n exited with {exit.code}"
print("torch" in sys.modules)
"""


def export_tree(ref: str, destination: Path) -> Path:
    """The files of commit ``ref`` (git archive), to plan with that commit's Snakefile and akdg."""
    archive = subprocess.run(["git", "archive", ref], cwd=REPO, capture_output=True, check=True).stdout
    tree = destination / ref
    tree.mkdir(parents=True)
    archive_path = destination / f"{ref}.tar"
    archive_path.write_bytes(archive)
    with tarfile.open(archive_path) as bundle:
        bundle.extractall(tree, filter="data")
    return tree


def plan_once(tree: Path, grid: str, workdir: Path) -> tuple[float, bool]:
    """Seconds for one `snakemake -n` of ``grid`` with ``tree``'s code, and whether it imported torch."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", PLAN, str(tree / grid), str(workdir)],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if result.returncode:
        raise SystemExit(f"snakemake -n of {grid} in {tree} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return seconds, result.stdout.strip().splitlines()[-1] == "True"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--before", default="21733eb", help="the commit to compare with (default: the last one whose registries imported torch)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="alternating runs per tree and grid (default 5)")
    parser.add_argument("--out", type=Path, default=RESULTS / "dry_run.json", help="where the JSON goes")
    args = parser.parse_args()
    info = machine(torch.device("cpu"))
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        trees = {"before": export_tree(args.before, Path(scratch)), "after": REPO}
        for grid in GRIDS:
            seconds: dict[str, list[float]] = {name: [] for name in trees}
            torch_imported: dict[str, bool] = {}
            for _ in range(args.repeats):
                for name, tree in trees.items():
                    elapsed, imported = plan_once(tree, grid, Path(scratch) / "work")
                    seconds[name].append(elapsed)
                    torch_imported[name] = imported
            medians = {name: statistics.median(values) for name, values in seconds.items()}
            results.append(
                {
                    "grid": grid,
                    "seconds": seconds,
                    "median_s": medians,
                    "torch_imported": torch_imported,
                    "after_over_before": medians["after"] / medians["before"],
                }
            )
    log.info(
        "\n%s",
        table(
            ["grid", "before s", "after s", "after/before", "torch before", "torch after"],
            [
                [
                    row["grid"],
                    f"{row['median_s']['before']:.2f}",
                    f"{row['median_s']['after']:.2f}",
                    f"{row['after_over_before']:.2f}",
                    row["torch_imported"]["before"],
                    row["torch_imported"]["after"],
                ]
                for row in results
            ],
        ),
    )
    write_result(args.out, "dry_run", info, {"before": args.before, "repeats": args.repeats, "grids": list(GRIDS)}, results)
    return 0


if __name__ == "__main__":
    setup_logging()
    run(main)
