"""The suite's figures: the FID axis fits the trained runs, methods keep one colour, sample grids say what they show."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from akdg import checkpoint, steps
from akdg.architectures import build_generator
from akdg.plots import METHOD_COLOURS, fid_vs_params, fid_vs_params_figure, method_colours, sample_grid_figure, sample_grids

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_rows() -> pd.DataFrame:
    """Runs as akdg.tables.load_runs gives them: a teacher, two students x two methods x three seeds, untrained and real rows."""
    rng = np.random.default_rng(0)
    rows = [
        {
            "kind": "trained",
            "role": "teacher",
            "student": "teacher",
            "method": "vanilla",
            "seed": 0,
            "params": 1e5,
            "fid": 12.0,
            "is_mean": 6.0,
        }
    ]
    for student, params, base in (("dcgan-w8", 2.7e4, 40.0), ("mlp-w128", 7.1e4, 90.0)):
        for method, shift in (("vanilla", 20.0), ("akdg", 0.0)):
            for seed in range(3):
                rows.append(
                    {
                        "kind": "trained",
                        "role": "student",
                        "student": student,
                        "method": method,
                        "seed": seed,
                        "params": params,
                        "fid": base + shift + rng.uniform(-10, 10),
                        "is_mean": 5.0,
                    }
                )
        rows.append(
            {
                "kind": "untrained",
                "role": "student",
                "student": student,
                "method": "untrained",
                "seed": 0,
                "params": params,
                "fid": 4400.0 + params / 1e3,
                "is_mean": 1.0,
            }
        )
    rows.append(
        {"kind": "real", "role": "reference", "student": "", "method": "", "seed": np.nan, "params": np.nan, "fid": 6.5, "is_mean": 7.0}
    )
    return pd.DataFrame(rows)


def test_fid_vs_params_writes_the_figure_and_every_trained_run(tmp_path: Path):
    runs = run_rows()
    fid_vs_params(runs, tmp_path / "fid.png", tmp_path / "fid.csv", "digits")
    assert (tmp_path / "fid.png").read_bytes()[:8] == PNG_MAGIC
    data = pd.read_csv(tmp_path / "fid.csv")
    assert len(data) == (runs["kind"] == "trained").sum()
    assert set(data["method"]) == {"teacher", "vanilla", "akdg"}


def test_the_fid_axis_fits_the_trained_runs_and_notes_the_untrained_ones():
    runs = run_rows()
    figure = fid_vs_params_figure(runs, "digits")
    axis = figure.axes[0]
    trained, untrained = runs[runs["kind"] == "trained"]["fid"], runs[runs["kind"] == "untrained"]["fid"]
    bottom, top = axis.get_ylim()
    assert bottom == 0 and trained.max() <= top < 2 * trained.max() < untrained.min()
    note = [text.get_text() for text in axis.texts if "untrained" in text.get_text()]
    assert note == [f"untrained generators (not drawn): FID {untrained.min():,.0f} to {untrained.max():,.0f}"]
    plt.close(figure)


def test_the_fid_figure_draws_one_mean_per_student_and_method_in_the_method_colour():
    figure = fid_vs_params_figure(run_rows(), "digits")
    axis = figure.axes[0]
    means = {text: handle for handle, text in zip(*axis.get_legend_handles_labels())}
    assert set(means) == {"teacher", "vanilla (mean of 3 seeds)", "akdg (mean of 3 seeds)", "real test images vs train: 6.5"}
    for method in ("teacher", "vanilla", "akdg"):
        label = method if method == "teacher" else f"{method} (mean of 3 seeds)"
        marker = means[label][0]  # an errorbar container: its markers' line first
        assert to_hex(marker.get_color()) == METHOD_COLOURS[method].lower()
        assert len(marker.get_xdata()) == (1 if method == "teacher" else 2)
    plt.close(figure)


def test_a_method_keeps_its_colour_whatever_else_is_plotted():
    shipped = method_colours(["teacher", "vanilla", "mse", "akdg"])
    with_plugins = method_colours(["zeta", "akdg", "alpha", "vanilla"])
    assert with_plugins["akdg"] == shipped["akdg"] and with_plugins["vanilla"] == shipped["vanilla"]
    assert len(set(with_plugins.values())) == 4, "a plugin's method takes a colour no other method has"
    assert method_colours(["alpha", "zeta"]) == {"alpha": with_plugins["alpha"], "zeta": with_plugins["zeta"]}


def checkpoints(folder: Path, seeds: dict[str, int]) -> dict[str, Path]:
    paths = {}
    for label, seed in seeds.items():
        spec = {"arch": "dcgan", "width": 4}
        path = folder / f"{label.replace('/', '_')}.pt"
        meta = {"generator": spec, "resolution": 16, "channels": 1, "z_dim": 8, "training": {"seed": seed}}
        checkpoint.save_generator(path, build_generator(spec, resolution=16, channels=1, z_dim=8), meta)
        paths[label] = path
    return paths


def test_sample_grids_label_each_row_and_caption_what_they_show(tmp_path: Path):
    paths = checkpoints(tmp_path, {"teacher": 0, "dcgan-w4/vanilla": 0, "dcgan-w4/akdg": 0})
    images, training_seeds = steps.sample_grid_images(paths, z_dim=8, count=12, seed=3)
    assert training_seeds == {"teacher": 0, "dcgan-w4/vanilla": 0, "dcgan-w4/akdg": 0}
    caption = sample_grids(images, tmp_path / "samples.png", noise_seed=3, training_seeds=training_seeds)
    assert (tmp_path / "samples.png").read_bytes()[:8] == PNG_MAGIC
    assert "Rows, top to bottom: teacher, dcgan-w4/vanilla, dcgan-w4/akdg." in caption
    assert "the same 12 noise vectors z (seed 3)" in caption and "training seed 0 of its method" in caption

    figure = sample_grid_figure(images, caption)
    assert [axis.get_ylabel() for axis in figure.axes] == list(paths)
    assert [" ".join(text.get_text().split()) for text in figure.texts] == [caption]
    plt.close(figure)


def test_the_caption_lists_training_seeds_that_differ(tmp_path: Path):
    images, training_seeds = steps.sample_grid_images(checkpoints(tmp_path, {"a/vanilla": 0, "a/akdg": 2}), z_dim=8, count=4, seed=0)
    caption = sample_grids(images, tmp_path / "samples.png", noise_seed=0, training_seeds=training_seeds)
    assert "training seeds: a/vanilla 0, a/akdg 2." in caption


@pytest.mark.parametrize("count", [1, 32, 40])
def test_every_image_is_in_the_grid(count: int):
    images = {"g": np.arange(count * 4 * 4, dtype=np.uint8).reshape(count, 1, 4, 4)}
    figure = sample_grid_figure(images, "caption")
    shown = figure.axes[0].get_images()[0].get_array()
    cells = [shown[row * 6 + 1 : row * 6 + 5, column * 6 + 1 : column * 6 + 5] for row in range(-(-count // 32)) for column in range(32)]
    assert [cell.tolist() for cell in cells[:count]] == [image[0].tolist() for image in images["g"]]
    plt.close(figure)


def test_akdg_plot_samples_writes_the_grid_and_logs_its_caption(tmp_path: Path, caplog):
    from akdg.cli import main

    paths = checkpoints(tmp_path, {"teacher": 0, "s/akdg": 1})
    with caplog.at_level("INFO", logger="akdg"):
        assert (
            main(
                [
                    "plot-samples",
                    "--checkpoint",
                    *(f"{label}={path}" for label, path in paths.items()),
                    "--z-dim",
                    "8",
                    "--out",
                    str(tmp_path / "grid.png"),
                ]
            )
            == 0
        )
    assert (tmp_path / "grid.png").read_bytes()[:8] == PNG_MAGIC
    assert "Rows, top to bottom: teacher, s/akdg." in caplog.text and "training seed 1 of its method" in caplog.text
