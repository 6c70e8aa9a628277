"""The suite's figures: FID against generator parameters per method, FID during training, and sample grids on a shared z.

Every figure colours a method with :func:`method_colours`, so a method looks the same in all of them.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Iterable

import matplotlib

matplotlib.use("Agg")  # headless: clusters and CI have no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from akdg.io import atomic_write, read_json  # noqa: E402
from akdg.registry import AkdgError  # noqa: E402

# Okabe-Ito colours (told apart with colour-blindness too): the teacher and the shipped methods keep theirs.
METHOD_COLOURS = {"teacher": "#000000", "vanilla": "#0072B2", "mse": "#009E73", "akdg": "#D55E00", "lit": "#CC79A7", "joint": "#56B4E9"}
SPARE_COLOURS = ("#E69F00", "#999999", "#F0E442", "#8C564B", "#17BECF", "#BCBD22")


def method_colours(methods: Iterable[str]) -> dict[str, str]:
    """Each method's colour: fixed for the teacher and the shipped methods; a plugin's method takes the
    spare colours in sorted name order, so the same grid colours it the same way in every figure."""
    methods = list(dict.fromkeys(methods))
    extra = sorted(method for method in methods if method not in METHOD_COLOURS)
    spare = {method: SPARE_COLOURS[index % len(SPARE_COLOURS)] for index, method in enumerate(extra)}
    return {method: METHOD_COLOURS.get(method) or spare[method] for method in methods}


def _save(figure: Figure, out_png: Path) -> None:
    with atomic_write(out_png) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    plt.close(figure)


def fid_vs_params_figure(runs: pd.DataFrame, title: str) -> Figure:
    """Mean FID over seeds (open circles: each seed; bar: their range) per method, against log-x parameters.

    The y axis fits the trained generators and the real-data row; the untrained generators' FID (tens of
    times larger) is given as a note rather than drawn, since it would squeeze every trained point flat.
    """
    trained = runs[runs["kind"] == "trained"].copy()
    trained["method"] = np.where(trained["role"] == "teacher", "teacher", trained["method"])
    methods = list(dict.fromkeys(["teacher", *trained["method"]]))
    colours = method_colours(methods)
    groups = trained.groupby(["student", "method"], sort=False)
    summary = groups["fid"].agg(["mean", "min", "max", "count"]).join(groups["params"].first()).reset_index()
    summary["size"] = summary["params"].map(lambda params: float(f"{params:.2g}"))  # students this close share one place on the axis
    log_sizes = np.log10(summary["size"])
    dodge = 0.04 * max(log_sizes.max() - log_sizes.min(), 0.3)  # in decades: each (student, method) of one size side by side
    offsets = {}
    for _, group in summary[summary["method"] != "teacher"].groupby("size", sort=True):
        pairs = sorted(zip(group["student"], group["method"]), key=lambda pair: (pair[0], methods.index(pair[1])))
        offsets.update({pair: (index - (len(pairs) - 1) / 2) * dodge for index, pair in enumerate(pairs)})

    figure, axis = plt.subplots(figsize=(8.5, 4.5))
    axis.grid(True, axis="y", color="#dddddd", linewidth=0.8)
    for method in methods:
        rows = summary[summary["method"] == method]
        if rows.empty:
            continue
        x = rows["size"] * 10 ** np.array([offsets.get((student, method), 0.0) for student in rows["student"]])
        seeds = rows["count"].max()
        axis.errorbar(
            x,
            rows["mean"],
            yerr=[rows["mean"] - rows["min"], rows["max"] - rows["mean"]],
            fmt="o",
            color=colours[method],
            markersize=7,
            capsize=3,
            zorder=4,
            label=f"{method} (mean of {seeds} seeds)" if seeds > 1 else method,
        )
        for (_, row), position in zip(rows.iterrows(), x):
            seed_fids = trained[(trained["student"] == row["student"]) & (trained["method"] == method)]["fid"]
            axis.scatter(
                [position] * len(seed_fids), seed_fids, s=22, facecolors="white", edgecolors=colours[method], linewidths=1, zorder=3
            )
    real = runs[runs["kind"] == "real"]["fid"]
    if len(real):
        axis.axhline(real.min(), color="grey", linestyle=":", linewidth=1.2, label=f"real test images vs train: {real.min():.1f}")
    top = max(summary["max"].max(), real.max() if len(real) else 0.0)
    axis.set_ylim(0, top * 1.12)
    untrained = runs[runs["kind"] == "untrained"]["fid"]
    if len(untrained):
        axis.text(
            0.99,
            0.97,
            f"untrained generators (not drawn): FID {untrained.min():,.0f} to {untrained.max():,.0f}",
            transform=axis.transAxes,
            ha="right",
            va="top",
            fontsize=8,
            color="dimgrey",
        )
    for (student, size), group in summary[summary["method"] != "teacher"].groupby(["student", "size"], sort=False):
        if summary[(summary["size"] == size) & (summary["method"] != "teacher")]["student"].nunique() > 1:  # name each student's cluster
            centre = size * 10 ** np.mean([offsets[(student, method)] for method in group["method"]])
            axis.text(centre, 0.02, student, transform=axis.get_xaxis_transform(), ha="center", va="bottom", fontsize=7, color="dimgrey")
    ticks = summary.groupby("size", sort=True)["student"].agg(lambda names: "\n".join(dict.fromkeys(names)))
    axis.set_xscale("log")
    axis.set_xticks(ticks.index, [f"{names}\n{size / 1e3:,.3g}K" for size, names in ticks.items()], fontsize=8)
    axis.minorticks_off()
    low, high = np.log10(ticks.index.min()), np.log10(ticks.index.max())
    margin = max(high - low, 0.3) * 0.12
    axis.set_xlim(10 ** (low - margin), 10 ** (high + margin))
    axis.set(xlabel="generator (parameters, log scale)", ylabel="FID (lower is better)", title=f"{title}: FID against generator size")
    axis.legend(
        fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="filled: mean\nopen: each seed\nbar: their range", title_fontsize=7
    )
    figure.tight_layout()
    return figure


def fid_vs_params(runs: pd.DataFrame, out_png: Path, out_csv: Path, title: str) -> None:
    """Write the FID-against-parameters figure and its data (every trained run, one row per seed)."""
    trained = runs[runs["kind"] == "trained"].copy()
    trained["method"] = np.where(trained["role"] == "teacher", "teacher", trained["method"])
    with atomic_write(out_csv) as tmp:
        trained[["student", "method", "seed", "params", "fid", "is_mean"]].to_csv(tmp, index=False)
    _save(fid_vs_params_figure(runs, title), out_png)


def sample_caption(labels: list[str], noise_seed: int, count: int, training_seeds: dict[str, int | None]) -> str:
    """What a sample grid shows: which row is which generator, the shared z, which training seed."""
    students = {label: seed for label, seed in training_seeds.items() if label != "teacher"}
    seeds = set(students.values())
    if len(seeds) == 1:
        trained = f"each student is the run of training seed {seeds.pop()} of its method."
    else:
        trained = "training seeds: " + ", ".join(f"{label} {seed}" for label, seed in students.items()) + "."
    return (
        f"Rows, top to bottom: {', '.join(labels)}. Every row draws from the same {count} noise vectors z (seed {noise_seed}), "
        f"so the image in the same place of every row comes from the same z; {trained}"
    )


def sample_grid_figure(images: dict[str, np.ndarray], caption: str, columns: int = 32) -> Figure:
    """One row per generator (its images in lines of ``columns``), labelled on the left, captioned below."""
    rows = []
    for batch in images.values():
        batch = np.pad(batch, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=128)  # grey lines between cells
        count, channels, height, width = batch.shape
        lines = -(-count // columns)
        batch = np.concatenate([batch, np.full((lines * columns - count, channels, height, width), 255, batch.dtype)])
        grid = (
            batch.reshape(lines, columns, channels, height, width)
            .transpose(0, 3, 1, 4, 2)
            .reshape(lines * height, columns * width, channels)
        )
        rows.append(grid)
    cell = 0.22  # inches per image
    row_heights = [grid.shape[0] / rows[0].shape[1] * columns * cell for grid in rows]
    label_width = 0.075 * max(len(label) for label in images) + 0.2  # inches of 9-point row labels, so none is cut
    figure_width = columns * cell + label_width + 0.1
    wrapped = textwrap.fill(caption, width=int(figure_width * 15))  # characters of 8-point text per line
    caption_height = 0.16 * (wrapped.count("\n") + 1) + 0.1
    figure, axes = plt.subplots(
        len(rows),
        1,
        figsize=(figure_width, sum(row_heights) * 1.08 + caption_height + 0.2),
        gridspec_kw={"height_ratios": row_heights},
        squeeze=False,
    )
    for axis, label, grid in zip(axes[:, 0], images, rows):
        axis.imshow(grid.squeeze(-1) if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        axis.set_xticks([])
        axis.set_yticks([])
        axis.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    figure.text(0.01, 0.01, wrapped, ha="left", va="bottom", fontsize=8)
    figure.subplots_adjust(
        left=label_width / figure.get_figwidth(), right=0.99, top=0.99, bottom=caption_height / figure.get_figheight(), hspace=0.08
    )
    return figure


def sample_grids(images: dict[str, np.ndarray], out_png: Path, *, noise_seed: int, training_seeds: dict[str, int | None]) -> str:
    """Write the sample grid of ``images`` (label -> uint8 NCHW, same z in the same position); return its caption."""
    caption = sample_caption(list(images), noise_seed, len(next(iter(images.values()))), training_seeds)
    _save(sample_grid_figure(images, caption), out_png)
    return caption


CURVE_ERRORBAR = ("sd", 1)  # the band of a curve: mean ± one standard deviation over seeds (seaborn's errorbar)


def curve_points(run_jsons: Iterable[Path]) -> pd.DataFrame:
    """The training-curve points of every run JSON that has them (``evaluation.curve_fractions``), long form:
    one row per run and step, with the run's student, method (``teacher`` for the teacher) and seed."""
    rows = []
    for path in run_jsons:
        result = read_json(path)
        run = result["run"]
        for point in result.get("curve", []):
            rows.append(
                {
                    "student": run["generator_label"],
                    "method": "teacher" if run["role"] == "teacher" else run["method"],
                    "seed": run["seed"],
                    "step": point["step"],
                    "fraction": point["fraction"],
                    "fid": point["fid"],
                    "precision": point.get("precision"),
                    "recall": point.get("recall"),
                    "samples": result["protocol"]["curve"]["samples"],
                }
            )
    columns = ["student", "method", "seed", "step", "fraction", "fid", "precision", "recall", "samples"]
    return pd.DataFrame(rows, columns=columns)


def curves_figure(points: pd.DataFrame, method_order: list[str], title: str) -> Figure:
    """FID against training step, one panel per student generator and one line per method (mean over seeds,
    band: :data:`CURVE_ERRORBAR`); the teacher's curve, where it has one, dashed in every panel."""
    students = [student for student in dict.fromkeys(points["student"]) if student != "teacher"] or ["teacher"]
    teacher = points[points["method"] == "teacher"]
    methods = [method for method in dict.fromkeys([*method_order, *points["method"]]) if method in set(points["method"])]
    colours = method_colours(methods)
    figure, axes = plt.subplots(1, len(students), figsize=(4.2 * len(students) + 1.6, 3.8), squeeze=False, sharey=True)
    for axis, student in zip(axes[0], students):
        own = points[(points["student"] == student) & (points["method"] != "teacher")]
        panel = pd.concat([own, teacher])
        seeds = own.groupby("method")["seed"].nunique()
        labels = {method: f"{method} ({seeds[method]} seeds)" if seeds.get(method, 1) > 1 else method for method in methods}
        panel = panel.assign(method=panel["method"].map(labels))
        sns.lineplot(
            data=panel,
            x="step",
            y="fid",
            hue="method",
            hue_order=[labels[method] for method in methods if labels[method] in set(panel["method"])],
            palette={labels[method]: colours[method] for method in methods},
            style="method",
            dashes={labels[method]: (4, 2) if method == "teacher" else "" for method in methods},
            errorbar=CURVE_ERRORBAR,
            marker="o",
            markersize=4,
            ax=axis,
        )
        axis.set_yscale("log")  # early points are an order of magnitude above the end, where convergence is read
        axis.set(title=student, xlabel="training step", ylabel=f"FID ({int(points['samples'].max())} samples, log scale; lower is better)")
        axis.grid(True, color="#dddddd", linewidth=0.8)
        axis.legend(fontsize=7, title="band: mean ± 1 sd over seeds", title_fontsize=7)
    figure.suptitle(f"{title}: FID during training")
    figure.tight_layout()
    return figure


def curve_outputs(plots_dir: Path, dataset: str) -> tuple[Path, Path]:
    """The training-curve figure and its data: ``DATASET_curves.png`` and ``.csv``."""
    return plots_dir / f"{dataset}_curves.png", plots_dir / f"{dataset}_curves.csv"


def training_curves(run_jsons: Iterable[Path], method_order: list[str], out_png: Path, out_csv: Path, title: str) -> None:
    """Write the training-curve figure and the long-form table it is drawn from (:func:`curve_points`)."""
    points = curve_points(run_jsons)
    if points.empty:
        raise AkdgError("no run JSON has a training curve; set evaluation.curve_fractions and rerun the training and evaluation")
    with atomic_write(out_csv) as tmp:
        points.to_csv(tmp, index=False)
    _save(curves_figure(points, method_order, title), out_png)
