"""The per-size comparison and the trade-off (akdg.sizes), on a small synthetic grid of run JSONs with costs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.stats import t as t_distribution
from scipy.stats import ttest_ind
from test_tables import write_run

from akdg.claims import welch_interval
from akdg.sizes import pareto_front, size_comparisons, tradeoff_points, write_sizes
from akdg.tables import load_runs

# family -> width -> (params, mult-adds, images/s); the teacher is larger and slower than every student.
SIZES = {
    "dcgan": {4: (11_113, 82_944, 9_000.0), 8: (27_345, 296_960, 6_000.0), 16: (75_169, 1_118_208, 3_000.0)},
    "mlp": {32: (11_808, 11_264, 40_000.0), 128: (71_040, 69_632, 20_000.0)},
}
TEACHER_COST = {"layers": 6, "params": 109_393, "mult_adds": 13_406_208, "images_per_s": 800.0}
METHODS = ("vanilla", "mse", "akdg")


def fid_of(family: str, width: int, method: str, seed: int) -> float:
    """Smaller students are worse; AKDG's advantage over vanilla shrinks with size, MSE is worst; the seeds spread."""
    base = 60.0 + 400.0 / width + (10.0 if family == "mlp" else 0.0)
    shift = {"vanilla": 0.0, "mse": 6.0, "akdg": -20.0 / np.sqrt(width)}[method]
    return base + shift + (seed - 1) * (1.0 + width / 16)


def size_grid(directory: Path) -> list[Path]:
    paths = [
        write_run(directory, "digits", "teacher", "teacher", "sngan", "vanilla", "vanilla", 0, 40.0, 8.0, TEACHER_COST),
        write_run(directory, "digits", "reference", "", None, "", None, 0, 2.0, 9.5, None),
    ]
    for family, widths in SIZES.items():
        for width, (params, mult_adds, speed) in widths.items():
            label = f"{family}-w{width}"
            cost = {"layers": 4, "params": params, "mult_adds": mult_adds, "images_per_s": speed}
            paths.append(write_run(directory, "digits", "student", label, family, "untrained", None, 0, 400.0, 1.0, cost))
            for method in METHODS:
                for seed in range(3):
                    fid = fid_of(family, width, method, seed)
                    paths.append(write_run(directory, "digits", "student", label, family, method, method, seed, fid, 10 - fid / 20, cost))
    return paths


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return load_runs(size_grid(tmp_path_factory.mktemp("runs")))


@pytest.mark.parametrize("seed", range(6))
def test_the_welch_interval_matches_scipy(seed: int) -> None:
    """Unequal sizes and spreads: the Welch–Satterthwaite df and interval are scipy's."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(30, 1 + seed, 3 + seed % 3), rng.normal(33, 0.3, 5)
    expected = ttest_ind(a, b, equal_var=False)
    interval = expected.confidence_interval(0.95)
    ours = welch_interval(a, b)
    assert ours["diff"] == pytest.approx(a.mean() - b.mean())
    assert ours["df"] == pytest.approx(expected.df)
    assert (ours["ci_low"], ours["ci_high"]) == pytest.approx((interval.low, interval.high))
    # and by hand: se² = s_A²/n_A + s_B²/n_B, Welch–Satterthwaite df, t quantile at 97.5%
    var_a, var_b = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (var_a + var_b) ** 2 / (var_a**2 / (len(a) - 1) + var_b**2 / (len(b) - 1))
    half = t_distribution.ppf(0.975, df) * np.sqrt(var_a + var_b)
    assert ours["df"] == pytest.approx(df)
    assert (ours["ci_low"], ours["ci_high"]) == pytest.approx((ours["diff"] - half, ours["diff"] + half))


def test_the_welch_interval_is_absent_without_two_seeds_or_any_spread() -> None:
    assert np.isnan(welch_interval(np.array([1.0]), np.array([2.0, 3.0]))["ci_low"])
    constant = welch_interval(np.array([2.0, 2.0]), np.array([1.0, 1.0]))
    assert constant["diff"] == 1.0 and np.isnan(constant["ci_high"]) and np.isnan(constant["df"])


def test_the_comparison_has_a_row_per_size_comparison_and_metric_by_family_then_params(runs: pd.DataFrame) -> None:
    table = size_comparisons(runs)
    assert len(table) == 5 * 2 * 2  # sizes x (akdg − vanilla, akdg − mse) x (FID, IS)
    assert list(dict.fromkeys(table["student"])) == ["dcgan-w4", "dcgan-w8", "dcgan-w16", "mlp-w32", "mlp-w128"]
    row = table[(table["student"] == "dcgan-w8") & (table["label_b"] == "vanilla") & (table["metric"] == "FID")].iloc[0]
    akdg = [fid_of("dcgan", 8, "akdg", seed) for seed in range(3)]
    vanilla = [fid_of("dcgan", 8, "vanilla", seed) for seed in range(3)]
    interval = ttest_ind(akdg, vanilla, equal_var=False).confidence_interval(0.95)
    assert row["diff"] == pytest.approx(np.mean(akdg) - np.mean(vanilla))
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((interval.low, interval.high))
    assert row["params"] == 27_345 and row["n_a"] == row["n_b"] == 3


def test_the_pareto_front_keeps_only_undominated_points() -> None:
    fid = np.array([50.0, 40.0, 45.0, 30.0, np.nan])
    params = np.array([10.0, 20.0, 30.0, 40.0, 5.0])
    assert pareto_front(fid, params, higher_better=False).tolist() == [True, True, False, True, False]
    speed = np.array([100.0, 200.0, 50.0, 10.0, 1.0])
    assert pareto_front(fid, speed, higher_better=True).tolist() == [False, True, False, True, False]


def test_the_tradeoff_has_a_point_per_generator_and_method_with_the_seeds_spread(runs: pd.DataFrame) -> None:
    points = tradeoff_points(runs)
    assert len(points) == 5 * 3 + 1  # every student and method, and the teacher; no untrained or real-data row
    teacher = points[points["method"] == "teacher"].iloc[0]
    assert teacher["params"] == 109_393 and teacher["seeds"] == 1
    w4 = points[(points["student"] == "dcgan-w4") & (points["method"] == "akdg")].iloc[0]
    fids = [fid_of("dcgan", 4, "akdg", seed) for seed in range(3)]
    assert (w4["fid_mean"], w4["fid_min"], w4["fid_max"]) == pytest.approx((np.mean(fids), min(fids), max(fids)))
    # The teacher has the lowest FID, so it is on every front; the fastest generator (mlp-w32) is on the speed front.
    assert points.loc[points["method"] == "teacher", ["pareto_params", "pareto_mult_adds", "pareto_images_per_s"]].all(axis=None)
    fastest = points[(points["student"] == "mlp-w32")]
    assert fastest.loc[fastest["fid_mean"].idxmin(), "pareto_images_per_s"]
    assert not points.loc[points["method"] == "mse", "pareto_params"].any()  # MSE is worse than vanilla at every size here


def test_the_size_table_and_both_figures_are_written(runs: pd.DataFrame, tmp_path: Path) -> None:
    paths = write_sizes(runs, tmp_path / "tables", tmp_path / "plots", "digits")
    assert [path.name for path in paths] == [
        "digits_sizes.md",
        "digits_sizes.csv",
        "digits_sizes.png",
        "digits_tradeoff.png",
        "digits_tradeoff.csv",
    ]
    markdown = paths[0].read_text()
    assert markdown.startswith("# digits: methods compared at each student size") and "Welch–Satterthwaite" in markdown
    assert pd.read_csv(paths[1])["student"].iloc[0] == "dcgan-w4"
    for png in (paths[2], paths[3]):
        with Image.open(png) as image:
            assert image.format == "PNG" and image.width > 600 and image.height > 300
            assert len(np.unique(np.asarray(image.convert("RGB")).reshape(-1, 3), axis=0)) > 20  # drawn, not blank


def test_precision_and_recall_are_compared_where_the_runs_have_them(runs: pd.DataFrame, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    scored = runs.assign(precision=rng.uniform(0.5, 0.9, len(runs)), recall=rng.uniform(0.2, 0.6, len(runs)))
    table = size_comparisons(scored)
    assert list(dict.fromkeys(table["metric"])) == ["FID", "IS", "precision", "recall"] and len(table) == 5 * 2 * 4
    row = table[(table["metric"] == "recall") & (table["student"] == "mlp-w32") & (table["label_b"] == "mse")].iloc[0]
    own = scored[(scored["student"] == "mlp-w32") & (scored["kind"] == "trained")]
    akdg, mse = (own.loc[own["method"] == method, "recall"] for method in ("akdg", "mse"))
    assert row["diff"] == pytest.approx(akdg.mean() - mse.mean())
    assert "precision" in write_sizes(scored, tmp_path, tmp_path, "digits")[0].read_text()


def test_a_grid_without_akdg_still_gets_its_tradeoff_and_an_explained_empty_comparison(runs: pd.DataFrame, tmp_path: Path) -> None:
    paths = write_sizes(runs[runs["method"] != "akdg"], tmp_path, tmp_path, "digits")
    assert pd.read_csv(paths[1]).empty and "akdg" not in set(pd.read_csv(paths[4])["method"])
    assert all(path.stat().st_size > 0 for path in paths)
