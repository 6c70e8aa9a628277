"""Seaborn plots: FID against parameters per method, and sample grids on a shared z."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: clusters and CI have no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from akdg.io import atomic_write  # noqa: E402


def fid_vs_params(runs: pd.DataFrame, out_png: Path, out_csv: Path, title: str) -> None:
    """One point per run (every seed), coloured by method, styled by student family; log-x params."""
    trained = runs[runs["kind"] == "trained"].copy()
    trained["method"] = np.where(trained["role"] == "teacher", "teacher", trained["method"])
    with atomic_write(out_csv) as tmp:
        trained[["student", "method", "seed", "params", "fid", "is_mean"]].to_csv(tmp, index=False)
    sns.set_theme(style="whitegrid")
    figure, axis = plt.subplots(figsize=(6, 4))
    sns.scatterplot(data=trained, x="params", y="fid", hue="method", style="student", s=60, ax=axis)
    untrained = runs[runs["kind"] == "untrained"]["fid"]
    if len(untrained):
        axis.axhline(untrained.min(), color="grey", linestyle="--", linewidth=1, label="untrained (best)")
    axis.set(xscale="log", xlabel="generator parameters", ylabel="FID (lower is better)", title=title)
    axis.legend(fontsize=7, loc="best")
    figure.tight_layout()
    with atomic_write(out_png) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    plt.close(figure)


def sample_grids(images: dict[str, np.ndarray], out_png: Path, columns: int = 8) -> None:
    """One panel per generator, the same z in the same cell of every panel."""
    panels = len(images)
    figure, axes = plt.subplots(1, panels, figsize=(2.2 * panels, 2.6), squeeze=False)
    for axis, (label, batch) in zip(axes[0], images.items()):
        batch = np.pad(batch, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=128)  # grey lines between cells
        count, channels, height, width = batch.shape
        rows = count // columns
        grid = batch[: rows * columns].reshape(rows, columns, channels, height, width)
        grid = grid.transpose(0, 3, 1, 4, 2).reshape(rows * height, columns * width, channels)
        axis.imshow(grid.squeeze(-1) if channels == 1 else grid, cmap="gray" if channels == 1 else None, vmin=0, vmax=255)
        axis.set_title(label, fontsize=8)
        axis.axis("off")
    figure.tight_layout()
    with atomic_write(out_png) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    plt.close(figure)
