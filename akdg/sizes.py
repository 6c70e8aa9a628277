"""Student sizes: how the methods compare as a family shrinks, and what quality each size buys.

Two views of one dataset's runs (rows of :func:`akdg.tables.load_runs`), written where a grid trains
two or more sizes of a family:

- the per-size comparison: for each family and size, AKDG − vanilla and AKDG − MSE in every metric
  the runs have (FID, IS; precision and recall where present), each difference of means over seeds
  with its Welch 95% interval (Welch–Satterthwaite degrees of freedom), as a table and as one panel
  per metric and comparison against params, so that a reader sees whether AKDG's advantage grows,
  shrinks or flips as the student shrinks;
- the trade-off: FID against params, mult-adds and measured images/s, one line per (family, method),
  the teacher as a marked point and the Pareto front over every generator and method highlighted.

The claims table (akdg.claims) tests the same comparisons per student, that is per size, with Holm's
correction; the intervals here are per size on their own, uncorrected, for reading the trend.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from akdg.claims import group_spread, student_sizes, trained_students, welch_interval
from akdg.io import atomic_write
from akdg.plots import METHOD_COLOURS, _save, method_colours
from akdg.tables import _count

log = logging.getLogger(__name__)

COMPARISONS = (("akdg", "vanilla"), ("akdg", "mse"))  # base methods (protocol.training.method): A − B
METRICS = {"fid": "FID", "is_mean": "IS", "precision": "precision", "recall": "recall"}  # run column -> name; a missing one is left out
FAMILY_STYLES = (("o", "-"), ("s", "--"), ("^", ":"), ("D", "-."))  # marker and line per family, in sorted name order
SIZE_COLUMNS = (
    "family", "student", "params", "mult_adds", "comparison", "label_a", "label_b", "metric",
    "mean_a", "std_a", "n_a", "mean_b", "std_b", "n_b", "diff", "ci_low", "ci_high", "df",
)  # fmt: skip
TRADEOFF_AXES = (("params", "parameters", False), ("mult_adds", "mult-adds per image", False), ("images_per_s", "measured images/s", True))


def size_comparisons(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (family, size, label pair of each comparison, metric): means, spreads and A − B with its Welch 95% interval.

    Rows by family, then params, then comparison and metric; a label pair lacking a group has no row.
    Labels are grouped by their base method, as the claims do, so every label of a base is compared.
    """
    return method_comparisons(runs, COMPARISONS)


def method_comparisons(runs: pd.DataFrame, comparisons: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> pd.DataFrame:
    """:func:`size_comparisons` for any pairs of base methods (A, B), e.g. a method and its ablations."""
    students = trained_students(runs)
    metrics = [column for column in METRICS if column in students and students[column].notna().any()]
    sizes = student_sizes(students, ("arch", "params", "mult_adds"))
    rows = []
    for _, size in sizes.iterrows():
        own = students[students["student"] == size["student"]]
        for base_a, base_b in comparisons:
            labels_a = list(dict.fromkeys(own.loc[own["base_method"] == base_a, "method"]))
            labels_b = list(dict.fromkeys(own.loc[own["base_method"] == base_b, "method"]))
            for label_a in labels_a:
                for label_b in labels_b:
                    for metric in metrics:
                        a = own.loc[own["method"] == label_a, metric].dropna().to_numpy(dtype=float)
                        b = own.loc[own["method"] == label_b, metric].dropna().to_numpy(dtype=float)
                        rows.append(
                            {
                                "family": size["arch"], "student": size["student"], "params": size["params"],
                                "mult_adds": size["mult_adds"], "comparison": f"{base_a} − {base_b}", "label_a": label_a,
                                "label_b": label_b, "metric": METRICS[metric], **group_spread(a, "a"), **group_spread(b, "b"),
                                **welch_interval(a, b),
                            }
                        )  # fmt: skip
    return pd.DataFrame(rows, columns=list(SIZE_COLUMNS))


def size_markdown(comparisons: pd.DataFrame, dataset: str) -> str:
    """The per-size table as Markdown, with what its cells mean underneath."""
    notes = [
        "A − B: difference of the means over seeds; 95% interval: Welch's (t quantile at the Welch–Satterthwaite degrees of "
        "freedom df), per row on its own, without a correction for the number of rows (the claims table tests each size with Holm's)",
        "better for AKDG: a negative FID difference, a positive IS (precision, recall) difference; an interval across 0 leaves the sign open",
        "groups: methods by their registered base method (protocol.training.method); rows name the config labels",
    ]
    return comparison_markdown(comparisons, f"{dataset}: methods compared at each student size", notes)


def comparison_markdown(comparisons: pd.DataFrame, title: str, notes: list[str]) -> str:
    """Rows of :func:`method_comparisons` as a Markdown table under ``title``, with ``notes`` underneath."""
    table = pd.DataFrame(
        {
            "family": comparisons["family"],
            "student": comparisons["student"],
            "params": comparisons["params"].map(lambda v: "–" if pd.isna(v) else f"{v:,.0f}"),
            "comparison": [f"{a} − {b}" for a, b in zip(comparisons["label_a"], comparisons["label_b"])],
            "metric": comparisons["metric"],
            "A: mean ± std (n)": [_cell(row, "a") for _, row in comparisons.iterrows()],
            "B: mean ± std (n)": [_cell(row, "b") for _, row in comparisons.iterrows()],
            "A − B [95% CI]": [_interval_cell(row) for _, row in comparisons.iterrows()],
            "df": comparisons["df"].map(lambda v: "–" if pd.isna(v) else f"{v:.1f}"),
        }
    )
    return f"# {title}\n\n{table.to_markdown(index=False)}\n\n" + "".join(f"- {line}\n" for line in notes)


def _digits(row: pd.Series) -> int:
    """Decimals of a metric's cells: precision and recall are fractions, FID and IS are not."""
    return 3 if row["metric"] in ("precision", "recall") else 2


def _cell(row: pd.Series, side: str) -> str:
    mean, std, count, digits = row[f"mean_{side}"], row[f"std_{side}"], row[f"n_{side}"], _digits(row)
    if pd.isna(mean):
        return "–"
    return f"{mean:.{digits}f}" + ("" if pd.isna(std) else f" ± {std:.{digits}f}") + f" (n={count:.0f})"


def _interval_cell(row: pd.Series) -> str:
    digits = _digits(row)
    if pd.isna(row["diff"]):
        return "–"
    if pd.isna(row["ci_low"]):
        return f"{row['diff']:+.{digits}f} [no interval: fewer than 2 seeds or no spread]"
    return f"{row['diff']:+.{digits}f} [{row['ci_low']:+.{digits}f}, {row['ci_high']:+.{digits}f}]"


def family_styles(families: list[str]) -> dict[str, tuple[str, str]]:
    """Marker and line style per family (sorted names), so that colour stays the method's in every figure."""
    return {family: FAMILY_STYLES[index % len(FAMILY_STYLES)] for index, family in enumerate(sorted(set(families)))}


def _leading_digit(value: float) -> int:
    return int(f"{value:e}"[0]) if value > 0 else 0


def size_figure(comparisons: pd.DataFrame, title: str) -> Figure:
    """One panel per metric (rows) and comparison (columns): A − B against params (log x), its 95% interval as band and bars, a zero line.

    A line is one family and label pair, coloured as the compared-against method B is in every figure.
    """
    metrics = list(dict.fromkeys(comparisons["metric"]))
    panels = list(dict.fromkeys(comparisons["comparison"]))
    styles = family_styles(comparisons["family"].tolist())
    colours = method_colours(comparisons["label_b"])
    if comparisons.empty:
        figure = Figure(figsize=(6, 2.5))
        figure.text(0.5, 0.5, f"{title}: no AKDG run beside a vanilla or MSE run of the same student", ha="center", va="center")
        return figure
    figure = Figure(figsize=(5.2 * len(panels), 3.2 * len(metrics)))
    axes = figure.subplots(len(metrics), len(panels), squeeze=False)
    for row_index, metric in enumerate(metrics):
        for column_index, comparison in enumerate(panels):
            axis = axes[row_index][column_index]
            axis.axhline(0, color="grey", linewidth=1, zorder=1)
            rows = comparisons[(comparisons["metric"] == metric) & (comparisons["comparison"] == comparison)]
            for (family, label_a, label_b), line in rows.groupby(["family", "label_a", "label_b"], sort=True):
                line = line.sort_values("params")
                marker, style = styles[family]
                colour = colours[label_b]
                axis.fill_between(line["params"], line["ci_low"], line["ci_high"], color=colour, alpha=0.18, linewidth=0, zorder=2)
                axis.errorbar(  # the bars show the interval where a family has a single size, which no band can
                    line["params"],
                    line["diff"],
                    yerr=[line["diff"] - line["ci_low"], line["ci_high"] - line["diff"]],
                    marker=marker,
                    linestyle=style,
                    color=colour,
                    capsize=3,
                    zorder=3,
                    label=f"{family}: {label_a} − {label_b}",
                )
            axis.set_xscale("log")
            # parameter counts as 5K, 10K, 20K, 50K: every 1-2-5 tick labelled, no others (they would collide)
            axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: _count(value, "g")))
            axis.xaxis.set_minor_formatter(FuncFormatter(lambda value, _: _count(value, "g") if _leading_digit(value) in (2, 5) else ""))
            axis.grid(True, which="major", color="#e5e5e5", linewidth=0.8)
            better = "below 0: AKDG better" if metric == "FID" else "above 0: AKDG better"
            axis.set(title=f"{comparison} in {metric}", xlabel="student parameters (log scale)", ylabel=f"Δ {metric} ({better})")
            axis.legend(fontsize=7)
    figure.suptitle(f"{title}: method differences at each student size (band and bars: Welch 95% interval over seeds)", fontsize=10)
    figure.tight_layout(rect=(0, 0, 1, 0.985))  # room for the title above the top row's
    return figure


def tradeoff_points(runs: pd.DataFrame) -> pd.DataFrame:
    """FID mean, sample std, min and max over seeds per (generator, method), with its cost and whether it is on each Pareto front.

    The teacher is one point (method "teacher"); the fronts are over every trained generator and method:
    no other has a lower or equal mean FID and an equal or better cost (fewer params or mult-adds, more images/s), one strictly.
    """
    trained = runs[runs["kind"] == "trained"].copy()
    trained["method"] = np.where(trained["role"] == "teacher", "teacher", trained["method"])
    trained["student"] = np.where(trained["role"] == "teacher", "teacher", trained["student"])
    groups = trained.groupby(["student", "method"], sort=False)
    points = groups["fid"].agg(fid_mean="mean", fid_std=lambda values: values.std(ddof=1), fid_min="min", fid_max="max", seeds="count")
    points = points.join(groups[["arch", "params", "mult_adds", "images_per_s"]].first()).reset_index()
    for column, _, higher_better in TRADEOFF_AXES:
        points[f"pareto_{column}"] = pareto_front(points["fid_mean"].to_numpy(float), points[column].to_numpy(float), higher_better)
    return points.sort_values(["arch", "params", "method"], kind="stable").reset_index(drop=True)


def pareto_front(fid: np.ndarray, cost: np.ndarray, higher_better: bool) -> np.ndarray:
    """Which points no other point dominates (FID lower or equal and cost better or equal, one of them strictly); NaN cost: never on it."""
    cost = -cost if higher_better else cost
    on_front = np.zeros(len(fid), dtype=bool)
    for index in range(len(fid)):
        if np.isnan(cost[index]) or np.isnan(fid[index]):
            continue
        dominated = (fid <= fid[index]) & (cost <= cost[index]) & ((fid < fid[index]) | (cost < cost[index]))
        on_front[index] = not dominated.any()
    return on_front


def tradeoff_figure(points: pd.DataFrame, real_fid: float | None, title: str) -> Figure:
    """FID against params, mult-adds and images/s (log x): a line per (family, method) through its sizes, a band for the
    seeds' range (min to max), the teacher as a star, the Pareto front as a grey step line through ringed points."""
    students = points[points["method"] != "teacher"]
    teacher = points[points["method"] == "teacher"]
    colours = method_colours(["teacher", *students["method"]])
    styles = family_styles(students["arch"].tolist())
    figure = Figure(figsize=(15, 4.6))
    axes = figure.subplots(1, len(TRADEOFF_AXES), sharey=True)
    for axis, (column, name, higher_better) in zip(axes, TRADEOFF_AXES):
        for (family, method), line in students.groupby(["arch", "method"], sort=True):
            line = line.sort_values(column)
            marker, style = styles[family]
            axis.fill_between(line[column], line["fid_min"], line["fid_max"], color=colours[method], alpha=0.15, linewidth=0)
            axis.plot(line[column], line["fid_mean"], marker=marker, linestyle=style, color=colours[method], label=f"{family} {method}")
        if len(teacher):
            axis.errorbar(
                teacher[column],
                teacher["fid_mean"],
                yerr=[teacher["fid_mean"] - teacher["fid_min"], teacher["fid_max"] - teacher["fid_mean"]],
                fmt="*",
                markersize=14,
                color=METHOD_COLOURS["teacher"],
                label=f"teacher ({teacher['arch'].iloc[0]})",
                zorder=5,
            )
        front = points[points[f"pareto_{column}"]].sort_values(column, ascending=not higher_better)
        axis.step(front[column], front["fid_mean"], where="post", color="#777777", linewidth=2.5, alpha=0.5, zorder=1, label="Pareto front")
        axis.scatter(front[column], front["fid_mean"], s=140, facecolors="none", edgecolors="#444444", linewidths=1.2, zorder=6)
        if real_fid is not None:
            axis.axhline(real_fid, color="grey", linestyle=":", linewidth=1.2, label=f"real test images: {real_fid:.1f}")
        axis.set_xscale("log")
        axis.grid(True, which="major", color="#e5e5e5", linewidth=0.8)
        direction = "more is better" if higher_better else "fewer is better"
        axis.set(xlabel=f"{name} (log scale; {direction})", title=f"FID against {name}")
    axes[0].set_ylabel("FID (lower is better)")
    axes[-1].legend(
        fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), title="line: mean over seeds\nband: seeds' range", title_fontsize=7
    )
    figure.suptitle(f"{title}: quality against size and speed", fontsize=11)
    figure.tight_layout()
    return figure


def size_outputs(tables_dir: Path, plots_dir: Path, dataset: str) -> list[Path]:
    """What :func:`write_sizes` writes, in its order: the table (Markdown, CSV), the per-size figure, the trade-off figure and its data."""
    tables_dir, plots_dir = Path(tables_dir), Path(plots_dir)
    return [tables_dir / f"{dataset}_sizes.md", tables_dir / f"{dataset}_sizes.csv", plots_dir / f"{dataset}_sizes.png"] + [
        plots_dir / f"{dataset}_tradeoff.{ext}" for ext in ("png", "csv")
    ]


def write_sizes(runs: pd.DataFrame, tables_dir: Path, plots_dir: Path, dataset: str) -> list[Path]:
    """Write ``<dataset>_sizes.md/.csv`` (tables_dir), ``<dataset>_sizes.png``, ``<dataset>_tradeoff.png`` and its
    data ``<dataset>_tradeoff.csv`` (plots_dir); return their paths."""
    comparisons = size_comparisons(runs)
    points = tradeoff_points(runs)
    real = runs.loc[runs["kind"] == "real", "fid"]
    paths = size_outputs(tables_dir, plots_dir, dataset)
    with atomic_write(paths[0]) as tmp:
        tmp.write_text(size_markdown(comparisons, dataset))
    with atomic_write(paths[1]) as tmp:
        comparisons.to_csv(tmp, index=False)
    _save(size_figure(comparisons, dataset), paths[2])
    _save(tradeoff_figure(points, float(real.min()) if len(real) else None, dataset), paths[3])
    with atomic_write(paths[4]) as tmp:
        points.to_csv(tmp, index=False)
    log.info("wrote %s size comparison (%d rows) and trade-off (%d generators x methods)", dataset, len(comparisons), len(points))
    return paths
