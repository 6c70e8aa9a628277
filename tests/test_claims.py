"""Claims table: each verdict from known per-seed values, p-values against scipy called directly."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import ttest_ind

from akdg.claims import ALPHA, FAILS, HOLDS, INCONCLUSIVE, NOT_TESTED, evaluate_claims, summary_verdict, welch, write_claims

TEACHER = {"params": 1000.0, "mult_adds": 5000.0, "images_per_s": 100.0}


def frame(groups: dict[tuple[str, str, str], list[tuple[float, float]]], *, teacher_blocks: list[float] | None = None, student_blocks: list[float] | None = None) -> pd.DataFrame:
    """Runs as load_runs gives them: {(student, label, base method): [(fid, is), one per seed]} plus a teacher."""
    rows = [{"role": "teacher", "kind": "trained", "student": "teacher", "method": "vanilla", "base_method": "vanilla", "seed": 0, "fid": 5.0, "is_mean": 9.0, **TEACHER, "images_per_s_blocks": teacher_blocks}]
    for (student, label, base), values in groups.items():
        for seed, (fid, inception) in enumerate(values):
            cost = {"params": 400.0, "mult_adds": 6000.0, "images_per_s": 300.0, "images_per_s_blocks": student_blocks}
            rows.append({"role": "student", "kind": "trained", "student": student, "method": label, "base_method": base, "seed": seed, "fid": fid, "is_mean": inception, **cost})
    return pd.DataFrame(rows)


def rows_of(report, claim: int, **where: str) -> pd.DataFrame:
    rows = report.rows[report.rows["claim"] == claim]
    for column, value in where.items():
        rows = rows[rows[column] == value]
    return rows


SEPARATED = {
    ("dcgan-w8", "akdg", "akdg"): [(10.0, 7.0), (11.0, 7.2), (12.0, 6.9)],
    ("dcgan-w8", "mse", "mse"): [(50.0, 4.0), (52.0, 4.1), (51.0, 3.9)],
    ("dcgan-w8", "vanilla", "vanilla"): [(30.0, 6.0), (31.5, 5.9), (29.0, 6.1)],
}


def test_clear_separation_holds_with_scipy_p_values() -> None:
    report = evaluate_claims(frame(SEPARATED), "cifar10")
    row = rows_of(report, 1).iloc[0]
    assert (row["verdict"], row["comparison"], row["n_a"], row["n_b"]) == (HOLDS, "akdg vs mse", 3, 3)
    expected = ttest_ind([10.0, 11.0, 12.0], [50.0, 52.0, 51.0], equal_var=False, alternative="less")
    assert row["p_value"] == pytest.approx(expected.pvalue) and row["statistic"] == pytest.approx(expected.statistic)
    assert row["mean_a"] == pytest.approx(11.0) and row["std_a"] == pytest.approx(1.0)
    assert rows_of(report, 2).iloc[0]["verdict"] == HOLDS
    assert rows_of(report, 3).iloc[0]["verdict"] == HOLDS  # mse 51 > vanilla 30
    is_rows = rows_of(report, 4)
    assert list(is_rows["comparison"]) == ["akdg vs mse", "akdg vs vanilla"] and set(is_rows["verdict"]) == {HOLDS}
    is_expected = ttest_ind([7.0, 7.2, 6.9], [6.0, 5.9, 6.1], equal_var=False, alternative="greater")
    assert is_rows.iloc[1]["p_value"] == pytest.approx(is_expected.pvalue)
    assert report.summary.set_index("claim").loc[[1, 2, 3, 4], "verdict"].tolist() == [HOLDS] * 4


def test_reversed_direction_does_not_hold_and_overlap_is_inconclusive() -> None:
    groups = {
        ("mlp-w64", "akdg", "akdg"): [(80.0, 3.0), (82.0, 3.1), (81.0, 2.9)],
        ("mlp-w64", "mse", "mse"): [(70.0, 3.5), (95.0, 2.0), (78.0, 4.0)],  # overlaps akdg
        ("mlp-w64", "vanilla", "vanilla"): [(40.0, 5.0), (41.0, 5.1), (42.0, 5.2)],  # clearly better than akdg
    }
    report = evaluate_claims(frame(groups), "cifar10")
    reversed_row = rows_of(report, 2).iloc[0]
    opposite = ttest_ind([80.0, 82.0, 81.0], [40.0, 41.0, 42.0], equal_var=False, alternative="greater")
    assert reversed_row["verdict"] == FAILS and reversed_row["p_opposite"] == pytest.approx(opposite.pvalue)
    assert opposite.pvalue < ALPHA
    assert reversed_row["p_value"] > 1 - ALPHA
    overlap = rows_of(report, 1).iloc[0]
    assert overlap["verdict"] == INCONCLUSIVE and ALPHA <= overlap["p_value"] and ALPHA <= overlap["p_opposite"]
    assert report.summary.set_index("claim").loc[2, "verdict"] == FAILS
    assert report.summary.set_index("claim").loc[1, "verdict"] == INCONCLUSIVE


def test_one_seed_is_inconclusive_with_the_reason() -> None:
    groups = {**SEPARATED, ("dcgan-w8", "akdg", "akdg"): [(10.0, 7.0)]}
    row = rows_of(evaluate_claims(frame(groups), "cifar10"), 1).iloc[0]
    assert row["verdict"] == INCONCLUSIVE and "fewer than 2 seeds" in row["reason"] and row["n_a"] == 1
    assert pd.isna(row["p_value"])


def test_every_vanilla_label_is_compared_and_a_missing_method_is_not_tested() -> None:
    groups = {
        ("dcgan-w16", "akdg", "akdg"): [(20.0, 6.0), (21.0, 6.1)],
        ("dcgan-w16", "vanilla-b64", "vanilla"): [(45.0, 5.0), (44.0, 5.2)],
        ("dcgan-w16", "vanilla-b2048", "vanilla"): [(38.0, 5.5), (37.5, 5.4)],
    }
    report = evaluate_claims(frame(groups), "lsun_bedroom")
    assert list(rows_of(report, 2)["comparison"]) == ["akdg vs vanilla-b64", "akdg vs vanilla-b2048"]
    for claim in (1, 3):
        row = rows_of(report, claim).iloc[0]
        assert row["verdict"] == NOT_TESTED and "mse" in row["reason"] and "vanilla-b64" in row["reason"]
    assert report.summary.set_index("claim").loc[1, "verdict"] == NOT_TESTED
    assert list(rows_of(report, 4)["verdict"]) == [NOT_TESTED, HOLDS, HOLDS]
    assert report.summary.set_index("claim").loc[4, "verdict"] == INCONCLUSIVE


def test_cost_claim_exact_ratios_and_throughput() -> None:
    blocks = {"student_blocks": [290.0, 300.0, 310.0, 305.0], "teacher_blocks": [100.0, 98.0, 103.0, 99.0]}
    report = evaluate_claims(frame(SEPARATED, **blocks), "cifar10")
    cost = rows_of(report, 5).set_index("metric")
    assert cost.loc["params", "verdict"] == HOLDS and cost.loc["params", "ratio"] == pytest.approx(0.4)
    assert cost.loc["mult-adds", "verdict"] == FAILS and cost.loc["mult-adds", "ratio"] == pytest.approx(1.2)
    expected = ttest_ind(blocks["student_blocks"], blocks["teacher_blocks"], equal_var=False, alternative="greater")
    assert cost.loc["images/s", "verdict"] == HOLDS and cost.loc["images/s", "p_value"] == pytest.approx(expected.pvalue)
    assert report.summary.set_index("claim").loc[5, "verdict"] == FAILS

    without = rows_of(evaluate_claims(frame(SEPARATED, student_blocks=blocks["student_blocks"]), "cifar10"), 5).set_index("metric")
    assert without.loc["images/s", "verdict"] == INCONCLUSIVE and "teacher" in without.loc["images/s", "reason"]
    assert without.loc["images/s", "ratio"] == pytest.approx(301.25 / 100.0)  # mean of the blocks / the one figure


def test_cost_claim_without_teacher_is_not_tested() -> None:
    runs = frame(SEPARATED)
    report = evaluate_claims(runs[runs["role"] != "teacher"], "cifar10")
    row = rows_of(report, 5).iloc[0]
    assert row["verdict"] == NOT_TESTED and "teacher" in row["reason"]


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ([HOLDS, HOLDS], HOLDS),
        ([HOLDS, INCONCLUSIVE], INCONCLUSIVE),
        ([HOLDS, FAILS, INCONCLUSIVE], FAILS),
        ([NOT_TESTED, NOT_TESTED], NOT_TESTED),
        ([HOLDS, NOT_TESTED], INCONCLUSIVE),
    ],
)
def test_summary_rule(verdicts: list[str], expected: str) -> None:
    assert summary_verdict(verdicts) == expected


@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")
def test_welch_constant_equal_groups_are_inconclusive() -> None:
    assert welch([1.0, 1.0], [1.0, 1.0], "less")["verdict"] == INCONCLUSIVE


def test_write_claims_files(tmp_path: Path) -> None:
    report = evaluate_claims(frame(SEPARATED), "cifar10")
    paths = write_claims(report, tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cifar10_claims.csv", "cifar10_claims.md"] == sorted(p.name for p in paths)
    written = pd.read_csv(tmp_path / "cifar10_claims.csv")
    assert written["p_value"].iloc[0] == pytest.approx(report.rows["p_value"].iloc[0])
    markdown = (tmp_path / "cifar10_claims.md").read_text()
    assert f"alpha = {ALPHA}" in markdown and "akdg: 11.00 ± 1.00 (n=3)" in markdown
