"""Fill the generated blocks of the docs from results/, so that no number in them is pasted by hand.

A block is the text between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` in a Markdown file;
each NAME has a function here that renders it from the committed results. Run it after the DAG
has regenerated results (``dvc repro``, the CPU reproduction); ``--check`` only reports stale
blocks and exits 1 if there is one (tests/test_docs.py runs it).

    .venv/bin/python scripts/gen_docs.py            # rewrite the blocks
    .venv/bin/python scripts/gen_docs.py --check    # exit 1 if a block is stale
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("gen_docs")


def first_table(markdown: str) -> str:
    """The first Markdown table of a file (its header, rule and rows)."""
    lines = markdown.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("|"))
    end = next((index for index in range(start, len(lines)) if not lines[index].startswith("|")), len(lines))
    return "\n".join(lines[start:end])


def table_and_notes(markdown: str) -> str:
    """A table file without its heading: the table and the protocol lines under it."""
    return markdown.split("\n", 2)[2].strip() if markdown.startswith("# ") else markdown.strip()


def default_table() -> str:
    tables = ROOT / "results" / "tables"
    return (
        "`results/tables/digits.md` as the default DAG made it (`dvc repro`; the commit is in its last line),\n"
        "then the summary of `results/tables/digits_claims.md`:\n\n"
        f"{table_and_notes((tables / 'digits.md').read_text())}\n\n{first_table((tables / 'digits_claims.md').read_text())}"
    )


def cpu_repro_claims() -> str:
    tables = ROOT / "results" / "cpu_repro" / "tables"
    return (
        "The summary of [`results/cpu_repro/tables/digits_claims.md`](results/cpu_repro/tables/digits_claims.md)\n"
        "(every comparison, with its interval and effect size, is in that file; the table it tests is\n"
        "[`results/cpu_repro/tables/digits.md`](results/cpu_repro/tables/digits.md)):\n\n"
        f"{first_table((tables / 'digits_claims.md').read_text())}"
    )


def budget() -> str:
    """The default DAG's and the CPU reproduction's wall time and peak memory against their budgets."""
    rows = []
    for name, budget_seconds in (("dag_budget", 300), ("cpu_repro", 3600)):
        measured = json.loads((ROOT / "results" / "benchmarks" / f"{name}.json").read_text())
        machine, result = measured["machine"], measured["results"]
        load = "/".join(f"{value:.1f}" for value in (machine["load_average_1_5_15_start"][0], machine["load_average_1_5_15_end"][0]))
        rows.append(
            f"| `{measured['settings']['configfile']}` (`{name}.json`) | {result['wall_seconds']:,.0f} s "
            f"({result['wall_seconds'] / budget_seconds:.2f} of {budget_seconds:,} s) | {result['peak_pss_bytes'] / 2**30:.2f} GiB "
            f"({result['memory_ratio_to_budget']:.2f} of 4 GiB) | {result['learning_ratio']:.3f} | {measured['created_utc'][:10]}, "
            f"git {machine['git_commit'][:7]}, {machine['cpu_model']}, {machine['cpu_count']} CPUs, load {load} |"
        )
    return (
        "Latest figures (`results/benchmarks/`, `--cores 2`; learning = worst trained FID / best untrained FID):\n\n"
        "| DAG | wall time (of budget) | peak PSS (of budget) | learning | when, code, machine, 1-min load start/end |\n"
        "|---|---|---|---|---|\n" + "\n".join(rows)
    )


def dag_schedule() -> str:
    """The default DAG before and after a scheduling change: wall time, efficiency, jobs started before the teacher."""
    measured = json.loads((ROOT / "results" / "benchmarks" / "dag_budget.json").read_text())
    compared = measured["results"].get("comparison")
    if compared is None:
        return "`results/benchmarks/dag_budget.json` holds no before/after comparison (run `dag_budget.py` with `--baseline`)."
    rows = [
        f"| {label} {index} | {compared[label]['checkout_git_commit'][:7]} | {run['load_average_1_5_15_before'][0]:.1f} | "
        f"{run['wall_seconds']:.0f} | {run['efficiency']:.2f} | {run['cpu_efficiency']:.2f} | {run['jobs_started_before_teacher']} | "
        f"{run['teacher_start_seconds']:.0f} |"
        for label in ("before", "after")
        for index, run in enumerate(compared[label]["runs"], start=1)
    ]
    paired = ", ".join(f"{ratio:.2f}" for ratio in compared["paired_wall_ratios_after_to_before"])
    return (
        f"`results/benchmarks/dag_budget.json` ({measured['created_utc'][:10]}, {measured['machine']['cpu_model']}, "
        f"{measured['machine']['cpu_count']} CPUs, `--cores {measured['settings']['cores']}`), in the order the runs were taken:\n\n"
        "| run | code | 1-min load before | wall s | efficiency | CPU efficiency | jobs started before train_teacher | train_teacher starts at s |\n"
        "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        f"After / before (medians): wall time {compared['wall_ratio_after_to_before']:.2f} (per pair: {paired}), "
        f"efficiency {compared['efficiency_ratio_after_to_before']:.2f}, CPU efficiency {compared['cpu_efficiency_ratio_after_to_before']:.2f}."
    )


BLOCKS: dict[str, Callable[[], str]] = {"table": default_table, "claims": cpu_repro_claims, "budget": budget, "dag_schedule": dag_schedule}
FILES = [ROOT / "README.md", ROOT / "docs" / "benchmarks.md"]


def render(text: str) -> str:
    """``text`` with every block it contains rendered afresh."""
    for name, make in BLOCKS.items():
        pattern = re.compile(rf"(<!-- {name}:begin -->\n).*?(\n<!-- {name}:end -->)", re.DOTALL)
        text = pattern.sub(lambda match: match.group(1) + make() + match.group(2), text)
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale blocks, change nothing")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    stale = []
    for path in FILES:
        text = path.read_text()
        fresh = render(text)
        if fresh != text:
            stale.append(path)
            if not args.check:
                path.write_text(fresh)
    for path in stale:
        log.info("%s: %s", "stale" if args.check else "rewrote", path.relative_to(ROOT))
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
