"""A method beside its ablations (akdg.ablations), on a small synthetic grid of run JSONs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ttest_ind
from test_tables import write_run

from akdg.ablations import ablation_pairs, write_ablations
from akdg.registry import METHODS
from akdg.tables import load_runs

COST = {"layers": 4, "params": 27_345, "mult_adds": 296_960, "images_per_s": 6_000.0}
TEACHER_COST = {"layers": 6, "params": 109_393, "mult_adds": 13_406_208, "images_per_s": 800.0}
FID = {"vanilla": 80.0, "akdg": 50.0, "akdg-kd-only": 70.0, "akdg-paired": 49.0}  # D_S helps; pairing the noise does not matter


def ablation_grid(directory: Path, methods: tuple[str, ...]) -> list[Path]:
    paths = [write_run(directory, "digits", "teacher", "teacher", "sngan", "vanilla", "vanilla", 0, 40.0, 8.0, TEACHER_COST)]
    for method in methods:
        for seed in range(4):
            fid = FID[method] + (seed - 1.5) * 2.0
            paths.append(write_run(directory, "digits", "student", "dcgan-w8", "dcgan", method, method, seed, fid, 10 - fid / 20, COST))
    return paths


def test_the_registered_ablations_name_akdg() -> None:
    assert METHODS.metadata("akdg-kd-only")["ablation_of"] == "akdg"
    assert METHODS.metadata("akdg-paired")["ablation_of"] == "akdg"
    assert METHODS.metadata("akdg")["ablation_of"] is None
    assert ablation_pairs(["vanilla", "akdg", "akdg-paired", "akdg-kd-only"]) == [("akdg", "akdg-kd-only"), ("akdg", "akdg-paired")]
    assert ablation_pairs(["vanilla", "akdg-paired"]) == []  # an ablation without its full method has nothing to be beside


def test_the_table_has_each_ablation_with_welchs_interval(tmp_path: Path) -> None:
    runs = load_runs(ablation_grid(tmp_path / "runs", ("vanilla", "akdg", "akdg-kd-only", "akdg-paired")))
    markdown, csv = write_ablations(runs, tmp_path / "tables", "digits")
    table = pd.read_csv(csv)
    fid = table[table["metric"] == "FID"].set_index("label_b")
    assert sorted(fid.index) == ["akdg-kd-only", "akdg-paired"]  # vanilla is no ablation
    spread = (np.arange(4) - 1.5) * 2.0
    expected = ttest_ind(FID["akdg"] + spread, FID["akdg-kd-only"] + spread, equal_var=False).confidence_interval(0.95)
    assert fid.loc["akdg-kd-only", "diff"] == pytest.approx(-20.0)
    assert fid.loc["akdg-kd-only", ["ci_low", "ci_high"]].tolist() == pytest.approx([expected.low, expected.high])
    assert fid.loc["akdg-kd-only", "ci_high"] < 0 < fid.loc["akdg-paired", "ci_high"]  # D_S clearly helps; pairing does not
    text = markdown.read_text()
    assert "akdg − akdg-kd-only" in text and "akdg − akdg-paired" in text
