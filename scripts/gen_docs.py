"""Fill the generated blocks of the docs from results/, configs and code, so that no number in them is pasted by hand.

A block is the text between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` in a Markdown file
(README.md, docs/*.md, config/README.md); each NAME has a function here that renders it from the
committed results, the benchmark JSONs, the configs and schema, the paper's numbers
(akdg/data/akdg_icpr2020.csv) or the model code. Run it after the DAG or a benchmark has
regenerated results; ``--check`` only reports stale blocks and exits 1 if there is one
(tests/test_docs.py runs it).

    .venv/bin/python scripts/gen_docs.py            # rewrite the blocks
    .venv/bin/python scripts/gen_docs.py --check    # exit 1 if a block is stale
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import re
import statistics
import sys
from pathlib import Path
from typing import Any, Callable

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # describe this checkout's akdg, not whichever one is installed
BENCHMARKS = ROOT / "results" / "benchmarks"
log = logging.getLogger("gen_docs")


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def first_table(markdown: str) -> str:
    """The first Markdown table of a file (its header, rule and rows)."""
    lines = markdown.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("|"))
    end = next((index for index in range(start, len(lines)) if not lines[index].startswith("|")), len(lines))
    return "\n".join(lines[start:end])


def table_and_notes(markdown: str) -> str:
    """A table file without its heading: the table and the protocol lines under it."""
    return markdown.split("\n", 2)[2].strip() if markdown.startswith("# ") else markdown.strip()


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """A pipe table; cells are rendered with ``str``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def benchmark(name: str) -> dict:
    return json.loads((BENCHMARKS / f"{name}.json").read_text())


def provenance(measured: dict, name: str) -> str:
    """Where a benchmark's figures come from: file, date, commit, machine, threads and load."""
    machine = measured["machine"]
    start, end = machine["load_average_1_5_15_start"][0], machine["load_average_1_5_15_end"][0]
    return (
        f"`{name}.json`: {measured['created_utc'][:10]}, git {machine['git_commit'][:7]}, {machine['cpu_model']} "
        f"({machine['cpu_count']} CPUs, {machine['torch_threads']} torch thread{'s' * (machine['torch_threads'] != 1)}, "
        f"{machine['device']}), torch {machine['torch']}, 1-min load {start:.1f} at start, {end:.1f} at end"
    )


def median(values: list[float]) -> float:
    return statistics.median(values)


def figure(value: float) -> str:
    """Three significant digits, with thousands separators above 1,000: 0.868, 48.0, 16.5, 8,512."""
    return f"{value:,.0f}" if value >= 1000 else f"{value:#.3g}".rstrip(".")


# --------------------------------------------------------------------------------------------------
# Result tables
# --------------------------------------------------------------------------------------------------


def headline() -> str:
    """The default DAG's table alone, for the README."""
    return (
        "The embedded default (handwritten digits, 16x16; [`results/tables/digits.md`](results/tables/digits.md), "
        "its protocol and the claims in [docs/results.md](docs/results.md)):\n\n"
        + first_table((ROOT / "results" / "tables" / "digits.md").read_text())
    )


def default_table() -> str:
    tables = ROOT / "results" / "tables"
    return (
        "`results/tables/digits.md` as the default DAG made it (`dvc repro`; the commit is in its last line),\n"
        "then the summary of `results/tables/digits_claims.md`:\n\n"
        f"{table_and_notes((tables / 'digits.md').read_text())}\n\n{first_table((tables / 'digits_claims.md').read_text())}"
    )


def cpu_repro_table() -> str:
    tables = ROOT / "results" / "cpu_repro" / "tables"
    return "[`results/cpu_repro/tables/digits.md`](../results/cpu_repro/tables/digits.md):\n\n" + table_and_notes(
        (tables / "digits.md").read_text()
    )


def cpu_repro_claims() -> str:
    tables = ROOT / "results" / "cpu_repro" / "tables"
    return (
        "The summary of [`results/cpu_repro/tables/digits_claims.md`](../results/cpu_repro/tables/digits_claims.md)\n"
        "(every comparison, with its interval and effect size, is in that file):\n\n"
        f"{first_table((tables / 'digits_claims.md').read_text())}"
    )


CPU_REPRO = ROOT / "results" / "cpu_repro"


def cpu_repro_tuning() -> str:
    return (
        "[`results/cpu_repro/tables/digits_tuning.md`](../results/cpu_repro/tables/digits_tuning.md): every candidate's "
        "scores on the validation split, the chosen one marked:\n\n" + first_table((CPU_REPRO / "tables" / "digits_tuning.md").read_text())
    )


def cpu_repro_ablations() -> str:
    import pandas as pd

    table = pd.read_csv(CPU_REPRO / "tables" / "digits_ablations.csv")
    rows = [
        [
            row.student,
            f"{row.label_a} − {row.label_b}",
            row.metric,
            *(f"{mean:.{digits}f} ± {std:.{digits}f}" for mean, std in ((row.mean_a, row.std_a), (row.mean_b, row.std_b))),
            f"{row.diff:+.{digits}f} [{row.ci_low:+.{digits}f}, {row.ci_high:+.{digits}f}]",
        ]
        for row in table.itertuples()
        for digits in [3 if row.metric in ("precision", "recall") else 2]
        if row.metric in ("FID", "precision", "recall")
    ]
    return (
        "FID, precision and recall rows of [`results/cpu_repro/tables/digits_ablations.md`]"
        "(../results/cpu_repro/tables/digits_ablations.md) (IS is in the file):\n\n"
        + markdown_table(["student", "A − B", "metric", "A: mean ± std", "B: mean ± std", "A − B [95% CI]"], rows)
    )


def cpu_repro_findings() -> str:
    """What the CPU reproduction shows, in sentences computed from its tables (no number typed by hand)."""
    import pandas as pd

    from akdg.claims import trained_students

    tables, plots = CPU_REPRO / "tables", CPU_REPRO / "plots"
    summary = pd.read_csv(tables / "digits.csv")
    teacher = summary[summary["role"] == "teacher"].iloc[0]
    students = trained_students(summary)
    best = students.loc[students["fid"].idxmin()]
    lines = [
        f"- **Teacher against students.** The teachers score FID {teacher['fid']:.2f} ± {teacher['fid_seed_std']:.2f} "
        f"(n = {teacher['seeds']:.0f}); the best student row, {best['student']} {best['method']}, scores "
        f"{best['fid']:.2f} ± {best['fid_seed_std']:.2f}: the teacher is "
        + ("better than every student row." if teacher["fid"] < students["fid"].min() else "not better than every student row.")
    ]
    for student, rows in students.groupby("student", sort=False):
        ranked = rows.sort_values("fid")
        lines.append(
            f"- **{student}, by mean FID** (precision / recall): "
            + "; ".join(
                f"{row.method} {row.fid:.2f} ± {row.fid_seed_std:.2f} ({row.precision:.3f} / {row.recall:.3f})"
                for row in ranked.itertuples()
            )
            + "."
        )
    with_last = students.dropna(subset=["fid_last"])
    if len(with_last):
        gain = with_last["fid_last"] - with_last["fid"]
        lines.append(
            f"- **EMA against the last weights.** The EMA's FID is lower than the last weights' in {int((gain > 0).sum())} "
            f"of {len(gain)} student rows (mean over seeds; last − EMA from {gain.min():+.2f} to {gain.max():+.2f}); "
            "the CSV's `fid_last` has each row's last-weights figure."
        )
    curves = pd.read_csv(plots / "digits_curves.csv")
    curves = curves[curves["method"] != "teacher"]
    ends = curves.groupby(["student", "method", "fraction"])["fid"].mean().unstack("fraction")
    half, last = ends[min(ends.columns, key=lambda f: abs(f - 0.5))], ends[ends.columns.max()]
    falling = (last - half) / half
    still = falling[falling < -0.1]
    lines.append(
        f"- **Convergence.** Between half and all of training (curve points, {curves['samples'].iloc[0]} samples), mean FID "
        f"changed by {falling.min():+.0%} to {falling.max():+.0%} across the {len(falling)} student/method lines; "
        + (
            f"{len(still)} still fell by more than 10% ({', '.join(f'{s} {m}' for s, m in still.index)})."
            if len(still)
            else "none still fell by more than 10%."
        )
    )
    claims = pd.read_csv(tables / "digits_claims.csv")
    split = claims[claims["teachers"].fillna(0) > 1]
    agree = split[split["teachers_same_sign"] == split["teachers"]]
    lines.append(
        f"- **Teachers.** In {len(agree)} of {len(split)} comparisons of claims 1-4 the difference has the same sign "
        "within each teacher's runs; the others: "
        + (
            "; ".join(
                f"claim {r.claim} {r.student} {r.comparison} {r.metric} ({r.teacher_diffs})" for r in split.drop(agree.index).itertuples()
            )
            or "none"
        )
        + "."
    )
    tuning = pd.read_csv(tables / "digits_tuning.csv")
    chosen = tuning[tuning["chosen"]]
    edges = []
    for row in chosen.itertuples():
        grid = tuning[(tuning["student"] == row.student) & (tuning["method"] == row.method)]
        knobs = [column for column in grid if column.startswith("setting.") and grid[column].notna().any()]
        edges += [
            f"{row.student} {row.method} {knob.removeprefix('setting.')}={grid.loc[row.Index, knob]:g}"
            for knob in knobs
            if grid[knob].nunique() > 1 and grid.loc[row.Index, knob] in (grid[knob].min(), grid[knob].max())
        ]
    lines.append(
        f"- **Tuning.** {len(chosen)} selections; chosen at an end of its grid: "
        + (", ".join(edges) if edges else "none")
        + " (an end means a wider grid might have chosen further out)."
    )
    return "\n".join(lines)


SIZE_SWEEP = ROOT / "results" / "size_sweep"


def size_sweep() -> str:
    """The CPU size sweep's per-size comparison, trade-off, claims and wall time, or a sentence saying it has not run."""
    tables, plots = SIZE_SWEEP / "tables", SIZE_SWEEP / "plots"
    files = [
        tables / "digits_sizes.md",
        tables / "digits_claims.md",
        tables / "digits.md",
        plots / "digits_tradeoff.png",
        plots / "digits_sizes.png",
    ]
    missing = [str(path.relative_to(ROOT)) for path in files if not path.exists()]
    if missing:
        return (
            f"Not run yet: {', '.join(f'`{name}`' for name in missing)} missing. `dvc repro size_sweep` (or the snakemake "
            "command above) writes them; then `python scripts/gen_docs.py` fills this section."
        )
    timing = BENCHMARKS / "size_sweep.json"
    if timing.exists():
        measured = json.loads(timing.read_text())
        result, start = measured["results"], measured["machine"]["load_average_1_5_15_start"][0]
        took = (
            f"The run took {result['wall_seconds'] / 60:,.0f} min on {result['cores']} cores, peak memory "
            f"{result['peak_pss_bytes'] / 2**30:.2f} GiB (PSS; `results/benchmarks/size_sweep.json`, 1-min load {start:.1f} at start)."
        )
    else:
        took = "Its wall time has not been measured: `results/benchmarks/size_sweep.json` is missing."
    return (
        f"{took}\n\n![FID against params, mult-adds and images/s](../results/size_sweep/plots/digits_tradeoff.png)\n\n"
        "![AKDG − vanilla and AKDG − MSE at each size](../results/size_sweep/plots/digits_sizes.png)\n\n"
        "[`results/size_sweep/tables/digits_sizes.md`](../results/size_sweep/tables/digits_sizes.md):\n\n"
        f"{table_and_notes(files[0].read_text())}\n\n"
        "The summary of [`results/size_sweep/tables/digits_claims.md`](../results/size_sweep/tables/digits_claims.md) "
        "(every size's rows are in that file; the full table is [`digits.md`](../results/size_sweep/tables/digits.md)):\n\n"
        f"{first_table(files[1].read_text())}"
    )


def _difference(row: Any) -> str:
    return f"{row['diff']:+.1f} [{row['ci_low']:+.1f}, {row['ci_high']:+.1f}] at {row['params'] / 1e3:.1f}K params"


def size_sweep_findings() -> str:
    """What the CPU sweep's per-size comparison says, in sentences computed from its CSV (no number typed by hand)."""
    import pandas as pd

    path = SIZE_SWEEP / "tables" / "digits_sizes.csv"
    if not path.exists():
        return f"Not run yet: `{path.relative_to(ROOT)}` is missing."
    sizes = pd.read_csv(path)
    lines = []
    for comparison, rows in sizes[sizes["metric"] == "FID"].groupby("comparison", sort=False):
        ends = "; ".join(
            f"{family}: {_difference(group.iloc[0])}, {_difference(group.iloc[-1])}"
            for family, group in rows.sort_values("params").groupby("family", sort=True)
        )
        below, above = rows[rows["ci_high"] < 0], rows[rows["ci_low"] > 0]
        named = lambda part: ", ".join(part["student"]) or "none"  # noqa: E731
        lines.append(
            f"- **{comparison}, FID** (below 0: AKDG better), smallest and largest size of each family: {ends}. "
            f"The 95% interval lies below zero at {len(below)} of {len(rows)} sizes ({named(below)}), above zero at "
            f"{len(above)} ({named(above)}), and covers zero at the rest."
        )
    recall = sizes[(sizes["metric"] == "recall") & (sizes["comparison"] == "akdg − mse")].sort_values(["family", "params"])
    if len(recall):
        lines.append(
            "- **akdg − mse, recall**: "
            + "; ".join(
                f"{row['student']} {row['diff']:+.3f} [{row['ci_low']:+.3f}, {row['ci_high']:+.3f}]" for _, row in recall.iterrows()
            )
            + "."
        )
    trade = pd.read_csv(SIZE_SWEEP / "plots" / "digits_tradeoff.csv")
    front = trade[trade["pareto_params"] & (trade["student"] != "teacher")].sort_values("params")
    lines.append(
        "- **Pareto front over parameters** (students only, means over seeds): "
        + ", ".join(f"{row.student} {row.method} (FID {row.fid_mean:.1f})" for row in front.itertuples())
        + "."
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# The paper and its grids
# --------------------------------------------------------------------------------------------------


def count(value: float) -> str:
    """4100000 -> 4.1M, 8900000000 -> 8.9B (the paper's own rounding survives)."""
    for divisor, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if value >= divisor:
            return f"{value / divisor:g}{suffix}"
    return f"{value:g}"


def paper_tables() -> str:
    """Tables I and II as akdg/data/akdg_icpr2020.csv holds them."""
    import pandas as pd

    paper = pd.read_csv(ROOT / "akdg" / "data" / "akdg_icpr2020.csv")
    parts = []
    for source, rows in paper.groupby("source", sort=True):
        has_is = rows["is_mean"].notna().any()
        header = ["row", "layers", "params", "mult-adds", *(["IS"] if has_is else []), "FID"]
        body = [
            [
                row.paper_row,
                row.layers,
                count(row.params),
                count(row.mult_adds),
                *([f"{row.is_mean:.2f} ± {row.is_std:.2f}"] if has_is else []),
                f"{row.fid:.2f}",
            ]
            for row in rows.itertuples()
        ]
        parts.append(f"{source} ({rows['dataset'].iloc[0]}):\n\n{markdown_table(header, body)}")
    return "From [`akdg/data/akdg_icpr2020.csv`](../akdg/data/akdg_icpr2020.csv):\n\n" + "\n\n".join(parts)


def model_name(spec: dict) -> str:
    """A model as the docs name it: its label with a space after the family (``dcgan w51``, ``dcgan sc244-202-202-202``);
    a sweep entry as its widths (``mlp w155/290/518``)."""
    from akdg.architectures import model_label

    if "widths" in spec:
        return f"{spec['arch']} w{'/'.join(map(str, spec['widths']))}"
    return model_label(spec).replace("-", " ", 1)


def student_count(students: list[dict]) -> int:
    """Students a config's entries train: a sweep entry is one per width."""
    return sum(len(student.get("widths", [None])) for student in students)


def paper_grids() -> str:
    """What each config/paper/*.yaml runs, read from the files."""
    rows = []
    for path in sorted((ROOT / "config" / "paper").glob("*.yaml")):
        config = yaml.safe_load(path.read_text())
        dataset, teacher = config["dataset"], config["teacher"]
        runs = student_count(config["students"]) * len(config["methods"]) * len(config["seeds"])
        rows.append(
            [
                f"`config/paper/{path.name}`",
                f"{dataset['name']}, {dataset['resolution']} px",
                f"{model_name(teacher['generator'])}, {teacher['steps']:,} steps",
                ", ".join(model_name(student) for student in config["students"]),
                ", ".join(config["methods"]),
                f"{len(config['seeds'])} seeds, {config['training']['steps']:,} steps",
                runs,
                f"{config['evaluation']['num_samples']:,}",
                config["evaluation"].get("feature_extractor", "akdg-classifier"),
            ]
        )
    header = ["config", "dataset", "teacher", "students", "methods", "per student", "student runs", "samples", "extractor"]
    return markdown_table(header, rows)


# --------------------------------------------------------------------------------------------------
# Architectures against the paper (docs/architectures.md)
# --------------------------------------------------------------------------------------------------

# Per dataset: the resolution and z size of its paper grid (shared by teacher and students) and each
# family's generator spec there (config/paper/*.yaml, which test_architectures checks against these;
# docs/architectures.md says how each was chosen).
PAPER_CONFIGS = {
    "cifar10": {
        "resolution": 32,
        "z_dim": 128,
        "models": {
            "sngan": {"arch": "sngan", "width": 256},
            "dcgan": {"arch": "dcgan", "stage_channels": [244, 202, 202, 202]},
            "mlp": {"arch": "mlp", "width": 518},
        },
    },
    "lsun_bedroom": {
        "resolution": 256,
        "z_dim": 512,
        "models": {
            "pggan": {"arch": "pggan", "width": 512},
            "dcgan": {"arch": "dcgan", "stage_channels": [312, 156, 78, 44, 44, 44, 44]},
        },
    },
}
# Layouts documented beside the paper's networks: (dataset, what it is, spec).
OTHER_LAYOUTS = [("lsun_bedroom", "official PGGAN LSUN network", {"arch": "pggan", "fmap_base": 8192, "fmap_max": 512, "output": "clip"})]


def residual_convs_halved(generator: Any, z_dim: int) -> int:
    """Half the mult-adds of the residual blocks' 3x3 convolutions: how the paper's SNGAN figure (793M) comes out.

    Per-module FLOPs from torch's counter: every ``blocks.<i>`` module's convolutions, FLOPs / 2, halved.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from akdg.cost import example_noise

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        generator.eval()(example_noise(generator, z_dim))
    flops = sum(sum(counts.values()) for name, counts in counter.get_flop_counts().items() if re.search(r"\.blocks\.\d+$", name))
    return flops // 2 // 2


# The counting conventions that explain a figure of the paper's which our full count does not reach:
# (dataset, family) -> (what the paper seems to count, how to count it). Only these may differ by more than 5%.
CONVENTIONS: dict[tuple[str, str], tuple[str, Callable[[Any, int], int]]] = {
    ("cifar10", "sngan"): ("half the mult-adds of the six residual 3x3 convolutions", residual_convs_halved),
}


def size_on_meta(spec: dict, resolution: int, z_dim: int, convention: Callable[[Any, int], int] | None = None) -> dict[str, int]:
    """Layers, params and mult-adds of an RGB generator, built on the meta device: no memory, no compute.

    With ``convention``, also its mult-adds counted that way (``convention_mult_adds``).
    """
    import torch

    from akdg.architectures import build_generator
    from akdg.cost import count_mult_adds, count_parameters, count_weight_layers, example_noise

    with torch.device("meta"):
        generator = build_generator(spec, resolution=resolution, channels=3, z_dim=z_dim)
    size = {
        "layers": count_weight_layers(generator, example_noise(generator, z_dim)),
        "params": count_parameters(generator),
        "mult_adds": count_mult_adds(generator, z_dim),
    }
    return size if convention is None else {**size, "convention_mult_adds": convention(generator, z_dim)}


def paper_size_rows() -> list[dict]:
    """Ours vs the paper for every generator of Tables I and II (one row per dataset and family)."""
    from akdg.paper import load_paper

    paper = load_paper().drop_duplicates(["dataset", "arch"])
    rows = []
    for dataset, config in PAPER_CONFIGS.items():
        for arch, spec in config["models"].items():
            printed = paper[(paper["dataset"] == dataset) & (paper["arch"] == arch)].iloc[0]
            convention, count_as_paper = CONVENTIONS.get((dataset, arch), (None, None))
            ours = size_on_meta(spec, config["resolution"], config["z_dim"], count_as_paper)
            rows.append(
                {
                    "dataset": dataset,
                    "role": printed["role"],
                    "arch": arch,
                    "spec": spec,
                    "resolution": config["resolution"],
                    "z_dim": config["z_dim"],
                    "convention": convention,
                    **{f"ours_{key}": value for key, value in ours.items()},
                    **{f"paper_{key}": int(printed[key]) for key in ("layers", "params", "mult_adds")},
                }
            )
    return rows


def millions(value: int, digits: str = ".2f") -> str:
    return f"{value / 1e9:{digits}}B" if value >= 1e9 else f"{value / 1e6:{digits}}M"


def architectures() -> str:
    """The tables of docs/architectures.md: our generators' sizes next to the paper's, then other layouts."""

    def against(ours: int, paper: int) -> str:
        return f"{millions(ours)} / {millions(paper, 'g')} ({ours / paper:.2f})"

    header = [
        "dataset",
        "model",
        "spec",
        "z_dim",
        "px",
        "layers ours / paper",
        "params ours / paper (ratio)",
        "mult-adds ours / paper (ratio)",
    ]
    rows = paper_size_rows()
    body = [
        [
            row["dataset"],
            f"{row['role']} {row['arch']}",
            f"`{model_name(row['spec'])}`",
            row["z_dim"],
            row["resolution"],
            f"{row['ours_layers']} / {row['paper_layers']}",
            against(row["ours_params"], row["paper_params"]),
            against(row["ours_mult_adds"], row["paper_mult_adds"]),
        ]
        for row in rows
    ]
    conventions = [
        f"- {row['dataset']} {row['arch']}: {row['convention']}: {against(row['ours_convention_mult_adds'], row['paper_mult_adds'])}"
        for row in rows
        if row["convention"]
    ]
    others = []
    for dataset, what, spec in OTHER_LAYOUTS:
        config = PAPER_CONFIGS[dataset]
        size = size_on_meta(spec, config["resolution"], config["z_dim"])
        others.append(
            [
                dataset,
                what,
                f"`{model_name(spec)}`",
                config["z_dim"],
                config["resolution"],
                size["layers"],
                millions(size["params"]),
                millions(size["mult_adds"]),
            ]
        )
    other_header = ["dataset", "layout", "spec", "z_dim", "px", "layers", "params", "mult-adds"]
    return (
        f"{markdown_table(header, body)}\n\nMult-adds counted as the paper seems to have counted them (ours / paper, ratio):\n\n"
        + "\n".join(conventions)
        + f"\n\nOther layouts, for comparison:\n\n{markdown_table(other_header, others)}"
    )


# --------------------------------------------------------------------------------------------------
# Configuration (config/README.md)
# --------------------------------------------------------------------------------------------------

CONFIG_FILES = (
    "config/config.yaml",
    "config/cpu_repro.yaml",
    "config/size_sweep.yaml",
    "config/test.yaml",
    "config/paper/cifar10.yaml",
    "config/paper/lsun_bedroom.yaml",
)


def config_value(value: Any) -> str:
    """A config value in one short cell."""
    if isinstance(value, dict) and "arch" in value:
        return model_name(value)
    if isinstance(value, list) and value and all(isinstance(item, dict) and "arch" in item for item in value):
        return ", ".join(model_name(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(value) if value else "{}"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) if value else "[]"
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    return f"{value:,}" if isinstance(value, int) and value >= 10_000 else str(value)  # 50,000 steps; seed 2020


def leaves(tree: dict, prefix: str = "") -> dict[str, Any]:
    """Dotted keys of every scalar, list, model spec and method map in a config."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and "arch" not in value and name not in ("methods", "resources"):
            flat.update(leaves(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def schema_defaults(schema: dict, prefix: str = "") -> dict[str, Any]:
    """Dotted keys of the config schema that declare a default."""
    defaults = {}
    for key, node in schema.get("properties", {}).items():
        name = f"{prefix}{key}"
        if "properties" in node and name not in ("methods", "resources"):
            defaults.update(schema_defaults(node, f"{name}."))
        if "default" in node and not isinstance(node["default"], dict):
            defaults[name] = node["default"]
    return defaults


def config_keys() -> str:
    """Every key the shipped configs set, with the schema's default, file by file."""
    schema = yaml.safe_load((ROOT / "akdg" / "schemas" / "config.schema.yaml").read_text())
    defaults = schema_defaults(schema)
    configs = {path: leaves(yaml.safe_load((ROOT / path).read_text())) for path in CONFIG_FILES}
    keys = sorted(set(defaults).union(*configs.values()))
    rows = [
        [
            f"`{key}`",
            config_value(defaults[key]) if key in defaults else "–",
            *(config_value(configs[path][key]) if key in configs[path] else "" for path in CONFIG_FILES),
        ]
        for key in keys
    ]
    header = ["key", "schema default", *(f"`{Path(path).name}`" for path in CONFIG_FILES)]
    return (
        "Every key the shipped configs set (an empty cell: the file leaves it to the schema's default; "
        "`–`: no default, so a config that needs it must set it):\n\n" + markdown_table(header, rows)
    )


RESOURCE_GROUPS = {
    "data": "download_data, prepare_data, train/fetch_extractor, reference_stats",
    "teacher": "train_teacher, import_teacher",
    "student": "train_student",
    "cost": "measure_cost",
    "evaluate": "evaluate_*",
    "report": "aggregate, plot_samples",
}


def resources() -> str:
    """The job groups' default cluster resources, read from workflow/rules/common.smk."""
    source = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    defaults = ast.literal_eval(re.search(r"^DEFAULT_RESOURCES = (\{.*?^\})", source, re.DOTALL | re.MULTILINE).group(1))
    rows = [
        [
            group,
            RESOURCE_GROUPS.get(group, "–"),
            values["gpu"],
            f"{values['mem_mb']:,}",
            f"{values['runtime']:,}",
            values.get("threads", ""),
        ]
        for group, values in defaults.items()
    ]
    return markdown_table(["group", "rules", "gpu", "mem_mb", "runtime (min)", "threads (cluster)"], rows)


# --------------------------------------------------------------------------------------------------
# Benchmarks (docs/benchmarks.md)
# --------------------------------------------------------------------------------------------------


def budget() -> str:
    """The default DAG's, the CPU reproduction's and the CPU size sweep's wall time and peak memory against their budgets."""
    rows = []
    for name in ("dag_budget", "cpu_repro", "size_sweep"):
        measured = benchmark(name)
        machine, result = measured["machine"], measured["results"]
        budget_seconds = result["budget_seconds"]
        load = "/".join(f"{value:.1f}" for value in (machine["load_average_1_5_15_start"][0], machine["load_average_1_5_15_end"][0]))
        rows.append(
            [
                f"`{measured['settings']['configfile']}` (`{name}.json`)",
                f"{result['wall_seconds']:,.0f} s ({result['wall_seconds'] / budget_seconds:.2f} of {budget_seconds:,.0f} s)",
                f"{result['peak_pss_bytes'] / 2**30:.2f} GiB ({result['memory_ratio_to_budget']:.2f} of 4 GiB)",
                f"{result['learning_ratio']:.3f}",
                f"{measured['created_utc'][:10]}, git {machine['git_commit'][:7]}, {machine['cpu_model']}, {machine['cpu_count']} CPUs, load {load}",
            ]
        )
    header = ["DAG", "wall time (of budget)", "peak PSS (of budget)", "learning", "when, code, machine, 1-min load start/end"]
    return "Latest figures (`results/benchmarks/`, `--cores 2`; learning = worst trained FID / best untrained FID):\n\n" + markdown_table(
        header, rows
    )


def dry_run() -> str:
    """snakemake -n per grid, before and after the registries stopped importing torch, side by side."""
    measured = benchmark("dry_run")
    rows = [
        [
            row["grid"],
            f"{row['median_s']['before']:.2f}",
            f"{row['median_s']['after']:.2f}",
            f"{row['after_over_before']:.2f}",
            "yes" if row["torch_imported"]["before"] else "no",
            "yes" if row["torch_imported"]["after"] else "no",
        ]
        for row in measured["results"]
    ]
    header = ["grid", "before: median s", "after: median s", "after / before", "before imports torch", "after imports torch"]
    settings = measured["settings"]
    return (
        f"{provenance(measured, 'dry_run')}; before = {settings['before']}, {settings['repeats']} alternating runs per tree and grid.\n\n"
        + markdown_table(header, rows)
    )


def slurm_overhead() -> str:
    """What each SLURM job costs beyond its step, before and after the torch-free Snakemake start (not side by side)."""
    rows = []
    for label in ("before", "after"):
        measured = benchmark(f"slurm_overhead_{label}")
        summary, machine = measured["summary"], measured["machine"]
        load = machine.get("load_average_1_5_15_end") or machine.get("load_average_1_5_15")
        rows.append(
            [
                label,
                measured["settings"]["code_commit"][:7],
                measured["created_utc"][:16].replace("T", " "),
                summary["jobs"],
                f"{summary['in_job_s']['median']:.1f}",
                f"{summary['seen_overhead_s']['median']:.1f}",
                f"{load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}" if load else "?",
            ]
        )
    header = ["run", "code", "UTC", "jobs", "in the job, median s", "submission to seen finished, median s", "load 1/5/15 min"]
    return markdown_table(header, rows)


def dag_schedule() -> str:
    """The default DAG before and after a scheduling change: wall time, efficiency, jobs started before the teacher."""
    measured = benchmark("dag_budget")
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


def quickstart_time() -> str:
    """One line for the README: how long the default DAG took when last measured."""
    measured = benchmark("dag_budget")
    machine, result = measured["machine"], measured["results"]
    return (
        f"The default DAG last took {result['wall_seconds']:,.0f} s on {result['cores']} cores "
        f"({machine['cpu_model']}, load {machine['load_average_1_5_15_start'][0]:.1f}; "
        f"[`dag_budget.json`](results/benchmarks/dag_budget.json), see [docs/benchmarks.md](docs/benchmarks.md))."
    )


def loop_overhead() -> str:
    """akdg's loop against a bare loop: both runs, every setup."""
    parts = []
    for name in ("loop_overhead", "loop_overhead_run1"):
        measured = benchmark(name)
        rows = [
            [
                setup["label"],
                f"{setup['steps']} x {setup['repeats']}",
                figure(setup["ours_steps_per_s"]),
                figure(setup["bare_steps_per_s"]),
                f"{setup['ours_over_bare']:.3f}",
                f"{setup['ours_over_bare_cpu_time']:.3f}",
                "yes" if setup["weights_equal"] else "**no**",
            ]
            for setup in measured["results"]
        ]
        header = ["setup", "steps x pairs", "ours steps/s", "bare steps/s", "ours/bare (wall)", "ours/bare (CPU time)", "same weights"]
        parts.append(f"{provenance(measured, name)}; target: {measured['target']}.\n\n{markdown_table(header, rows)}")
    return "\n\n".join(parts)


def eval_paths() -> str:
    measured = benchmark("eval_paths")
    rows = [
        [
            result["extractor"],
            f"{result['samples']:,}",
            result["repeats"],
            f"{result['ours_median_s']:.2f} s",
            f"{result['png_median_s']:.2f} s",
            f"{median(result['png_write_seconds']):.2f} s",
            f"{result['png_over_ours']:.2f}",
            f"{result['png_over_ours_cpu_time']:.2f}",
            "yes" if result["metrics_ours"] == result["metrics_png"] else "**no**",
        ]
        for result in measured["results"]
    ]
    header = [
        "extractor",
        "samples",
        "repeats",
        "ours (median)",
        "PNG path (median)",
        "of which PNG writing",
        "PNG / ours (wall)",
        "PNG / ours (CPU time)",
        "identical metrics",
    ]
    skipped = f" Skipped: {measured['skipped']}." if measured.get("skipped") else ""
    return f"{provenance(measured, 'eval_paths')}.{skipped}\n\n{markdown_table(header, rows)}"


def paper_mult_add_ratios() -> dict[tuple[str, str], float]:
    """The paper's teacher/student mult-add ratio per (dataset, student arch)."""
    import pandas as pd

    paper = pd.read_csv(ROOT / "akdg" / "data" / "akdg_icpr2020.csv").drop_duplicates(["dataset", "arch"])
    teachers = paper[paper["role"] == "teacher"].set_index("dataset")["mult_adds"]
    return {(row.dataset, row.arch): teachers[row.dataset] / row.mult_adds for row in paper[paper["role"] == "student"].itertuples()}


def student_speed() -> str:
    """Every student against its teacher, per config, from both student-speed runs."""
    paper_ratios = paper_mult_add_ratios()
    parts = []
    for name in ("student_speed", "student_speed_lsun"):
        measured = benchmark(name)
        rows = []
        for config in measured["results"]:
            teacher = config["generators"]["teacher"]
            for student, ratios in config["speedups"].items():
                generator = config["generators"][student]
                paper = paper_ratios.get((config["config"], generator["generator"]["arch"]))
                rows.append(
                    [
                        config["config"],
                        f"{model_name(teacher['generator'])} / {student}",
                        f"{config['batch_size']}, {config['rounds']}",
                        f"{figure(teacher['images_per_s'])} / {figure(generator['images_per_s'])}",
                        f"{ratios['throughput_student_over_teacher']:.1f}x",
                        f"{figure(teacher['latency_ms'])} / {figure(generator['latency_ms'])}",
                        f"{ratios['latency_teacher_over_student']:.1f}x",
                        f"{ratios['mult_adds_teacher_over_student']:.0f}x",
                        f"{paper:.1f}x" if paper else "–",
                    ]
                )
        header = [
            "config",
            "teacher / student",
            "batch, rounds",
            "images/s teacher / student",
            "student/teacher images/s",
            "batch-1 latency ms teacher / student",
            "teacher/student latency",
            "mult-add ratio (ours)",
            "mult-add ratio (paper)",
        ]
        parts.append(f"{provenance(measured, name)}.\n\n{markdown_table(header, rows)}")
    return "\n\n".join(parts)


def paper_job() -> str:
    measured = benchmark("paper_job")
    result, settings = measured["results"], measured["settings"]
    resources = result["resources_student"]
    rows = [
        ["wall time (of which importing)", f"{result['wall_s']:.0f} s ({result['import_s']:.1f} s)"],
        ["training loop", f"{result['steps_per_s']:.3f} steps/s over {result['loop_steps_timed']} steps"],
        [
            f"full job projected ({'{:,}'.format(yaml.safe_load((ROOT / settings['config']).read_text())['training']['steps'])} steps)",
            f"{result['projected_full_job_minutes'] / 60:.0f} h: {result['projected_full_job_over_runtime']:.1f} x `resources.student.runtime` ({resources['runtime']:,} min)",
        ],
        [
            "peak PSS (of `mem_mb`)",
            f"{result['peak_pss_bytes'] / 2**30:.2f} GiB ({result['peak_pss_over_mem_mb']:.2f} of {resources['mem_mb']:,} MB)",
        ],
        ["peak RSS", f"{result['peak_rss_exact_bytes'] / 2**30:.2f} GiB"],
        [
            "CUDA peak (of the GPU)",
            f"{result['cuda_max_memory_allocated_bytes'] / 2**30:.2f} GiB ({result['cuda_peak_over_total']:.2f})"
            if result["cuda_max_memory_allocated_bytes"]
            else "no GPU",
        ],
    ]
    return (
        f"{provenance(measured, 'paper_job')}; `{settings['config']}`, method {settings['method']}, {settings['steps']} steps, "
        f"{settings['train_images']:,} synthetic train images ({measured['note']}).\n\n" + markdown_table(["figure", "value"], rows)
    )


def train_options() -> str:
    """Each speed switch against the defaults, every setup of both runs."""
    variants = ("amp", "channels_last", "compile", "all")
    rows, files = [], []
    for name in ("train_options", "train_options_cifar10"):
        measured = benchmark(name)
        files.append(provenance(measured, name))
        for setup in measured["results"]:
            measured_variants = setup["variants"]
            rows.append(
                [
                    setup["label"],
                    f"{setup['steps']} x {setup['repeats']}",
                    *(
                        f"{measured_variants[variant]['speedup']:.3f}" if variant in measured_variants else "not run"
                        for variant in variants
                    ),
                    f"+{measured_variants['compile']['extra_first_steps_seconds']:.1f} s" if "compile" in measured_variants else "–",
                    f"{max(value['max_abs_weight_difference'] for value in measured_variants.values()):.1g}",
                ]
            )
    header = [
        "setup",
        "steps x pairs",
        "`amp`",
        "`channels_last`",
        "`compile: default`",
        "all three",
        "first steps, compile",
        "largest weight difference",
    ]
    return "- " + "\n- ".join(files) + "\n\n" + markdown_table(header, rows)


BLOCKS: dict[str, Callable[[], str]] = {
    "headline": headline,
    "quickstart-time": quickstart_time,
    "table": default_table,
    "cpu-repro-table": cpu_repro_table,
    "claims": cpu_repro_claims,
    "cpu-repro-tuning": cpu_repro_tuning,
    "cpu-repro-ablations": cpu_repro_ablations,
    "cpu-repro-findings": cpu_repro_findings,
    "size-sweep": size_sweep,
    "size-sweep-findings": size_sweep_findings,
    "paper-tables": paper_tables,
    "paper-grids": paper_grids,
    "architectures": architectures,
    "config-keys": config_keys,
    "resources": resources,
    "budget": budget,
    "dag-schedule": dag_schedule,
    "dry-run": dry_run,
    "slurm-overhead": slurm_overhead,
    "loop-overhead": loop_overhead,
    "eval-paths": eval_paths,
    "student-speed": student_speed,
    "paper-job": paper_job,
    "train-options": train_options,
}


def doc_files() -> list[Path]:
    """Every Markdown page that may hold a block."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "config" / "README.md"]


def render(text: str) -> str:
    """``text`` with every block it contains rendered afresh (a block's function runs only if the text has it)."""
    for name, make in BLOCKS.items():
        pattern = re.compile(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", re.DOTALL)
        if pattern.search(text):
            fresh = make()
            text = pattern.sub(lambda match: match.group(1) + fresh + "\n" + match.group(2), text)
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale blocks, change nothing")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    stale = []
    for path in doc_files():
        if not path.exists():
            continue
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
