"""Claims table: each verdict from known per-seed values, p-values, intervals and g against scipy or by hand."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ttest_1samp, ttest_ind

from akdg.claims import (
    ALPHA,
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NOT_TESTED,
    evaluate_claims,
    holm,
    holm_verdicts,
    load_warning,
    summary_verdict,
    welch,
    write_claims,
)  # fmt: skip

TEACHER = {"params": 1000.0, "mult_adds": 5000.0, "images_per_s": 100.0}
LOADED = {
    "loaded": True, "load_average_1min_before": 3.5, "load_average_1min_after": 3.9, "cpu_count": 2, "threads": 2,
    "other_runnable_median": 2.0, "cpu_per_wall": 0.8,
}  # fmt: skip


def frame(
    groups: dict[tuple[str, str, str], list[tuple[float, float]]],
    *,
    teacher_rounds: list[float] | None = None,
    student_rounds: list[float] | None = None,
    student_cost: dict[str, float] | None = None,
    measurement: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Runs as load_runs gives them: {(student, label, base method): [(fid, is), one per seed]} plus a teacher.

    With both ``*_rounds`` (per-round images/s), the student's cost has the per-round ratios the cost step records.
    """
    ratios = [mine / theirs for mine, theirs in zip(student_rounds, teacher_rounds)] if student_rounds and teacher_rounds else None
    speed = {"speed_measurement": measurement}
    rows = [
        {"role": "teacher", "kind": "trained", "student": "teacher", "arch": "sngan", "method": "vanilla", "base_method": "vanilla", "seed": 0, "fid": 5.0, "is_mean": 9.0,
         **TEACHER, "images_per_s_rounds": teacher_rounds, "throughput_ratio_rounds": None, **speed}
    ]  # fmt: skip
    for (student, label, base), values in groups.items():
        for seed, (fid, inception) in enumerate(values):
            cost = {
                "params": 400.0,
                "mult_adds": 6000.0,
                "images_per_s": 300.0,
                **(student_cost or {}),
                "images_per_s_rounds": student_rounds,
                "throughput_ratio_rounds": ratios,
            }
            rows.append(
                {
                    "role": "student",
                    "kind": "trained",
                    "student": student,
                    "arch": student.split("-w")[0],
                    "method": label,
                    "base_method": base,
                    "seed": seed,
                    "fid": fid,
                    "is_mean": inception,
                    **cost,
                    **speed,
                }
            )
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
    assert row["p_holm"] == pytest.approx(expected.pvalue)  # one tested row in claim 1: Holm leaves it
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
    assert reversed_row["p_opposite_holm"] == pytest.approx(opposite.pvalue) and opposite.pvalue < ALPHA
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


def test_no_pair_gives_the_method_a_claim_favours_more_images_seen() -> None:
    groups = {
        ("dcgan-w16", label, label.split("-")[0]): [(20.0 + index, 6.0), (21.0 + index, 6.1)]
        for index, label in enumerate(["akdg", "akdg-b2048", "mse", "mse-b2048", "vanilla-b64", "vanilla-b2048"])
    }
    runs = frame(groups)
    runs["images_seen"] = runs["method"].map(lambda label: 2048 * 100 if label.endswith("b2048") else 64 * 100)
    report = evaluate_claims(runs, "lsun_bedroom")
    assert list(rows_of(report, 2)["comparison"]) == ["akdg vs vanilla-b64", "akdg vs vanilla-b2048", "akdg-b2048 vs vanilla-b2048"]
    assert list(rows_of(report, 1)["comparison"]) == ["akdg vs mse", "akdg vs mse-b2048", "akdg-b2048 vs mse-b2048"]
    # claim 3 favours vanilla (B): vanilla at 2048 is not tested against MSE at 64
    assert list(rows_of(report, 3)["comparison"]) == ["mse vs vanilla-b64", "mse-b2048 vs vanilla-b64", "mse-b2048 vs vanilla-b2048"]
    runs["images_seen"] = None  # runs scored before images were recorded: every pair, as before
    assert len(rows_of(evaluate_claims(runs, "lsun_bedroom"), 2)) == 4


def test_cost_claim_exact_ratios_and_throughput_from_per_round_ratios() -> None:
    teacher = [100.0, 20.0, 300.0, 50.0, 150.0]  # absolute images/s swing tenfold from round to round, as under load
    factors = [3.0, 2.9, 3.1, 3.05, 2.95]
    student = [t * f for t, f in zip(teacher, factors)]
    report = evaluate_claims(frame(SEPARATED, teacher_rounds=teacher, student_rounds=student), "cifar10")
    cost = rows_of(report, 5).set_index("metric")
    assert cost.loc["params", "verdict"] == HOLDS and cost.loc["params", "ratio"] == pytest.approx(0.4)
    assert cost.loc["mult-adds", "verdict"] == FAILS and cost.loc["mult-adds", "ratio"] == pytest.approx(1.2)
    throughput = cost.loc["images/s"]
    expected = ttest_1samp(np.log(factors), 0.0, alternative="greater")
    assert throughput["verdict"] == HOLDS and throughput["p_value"] == pytest.approx(expected.pvalue) and throughput["df"] == 4
    interval = ttest_1samp(np.log(factors), 0.0).confidence_interval(0.95)
    assert (throughput["diff"], throughput["ci_low"], throughput["ci_high"]) == pytest.approx(
        (np.log(factors).mean(), interval.low, interval.high)
    )
    assert throughput["ratio"] == pytest.approx(math.exp(np.log(factors).mean()))
    assert ttest_ind(student, teacher, equal_var=False, alternative="greater").pvalue > ALPHA  # the absolute figures would not show it
    assert report.summary.set_index("claim").loc[5, "verdict"] == FAILS  # mult-adds

    slower = [t * f / 6 for t, f in zip(teacher, factors)]  # ratios about 0.5 in every round
    row = (
        rows_of(evaluate_claims(frame(SEPARATED, teacher_rounds=teacher, student_rounds=slower), "cifar10"), 5)
        .set_index("metric")
        .loc["images/s"]
    )
    assert row["verdict"] == FAILS and row["p_opposite"] == pytest.approx(
        ttest_1samp(np.log(factors) - np.log(6), 0.0, alternative="less").pvalue
    )


def test_cost_claim_without_ratios_is_inconclusive_and_says_to_rerun() -> None:
    row = rows_of(evaluate_claims(frame(SEPARATED, student_rounds=[290.0, 300.0, 310.0]), "cifar10"), 5).set_index("metric").loc["images/s"]
    assert row["verdict"] == INCONCLUSIVE and "rerun measure-cost" in row["reason"] and pd.isna(row["p_value"])
    assert row["ratio"] == pytest.approx(300.0 / 100.0)  # the student's median over rounds / the teacher's one figure


def test_capacity_and_load_remarks_in_the_markdown() -> None:
    report = evaluate_claims(frame(SEPARATED, measurement=LOADED), "cifar10")
    markdown = report.markdown()
    assert "student dcgan-w8 is not smaller than the teacher (params A/B = 0.4, mult-adds A/B = 1.2)" in markdown
    assert (
        load_warning(LOADED)[0] in markdown
        and "load average 3.50 before" in markdown
        and "rerun measure-cost on an idle machine" in markdown
    )
    calm = evaluate_claims(frame(SEPARATED, student_cost={"mult_adds": 4000.0}, measurement={**LOADED, "loaded": False}), "cifar10")
    assert calm.remarks == () and "warning" not in calm.markdown() and "not smaller" not in calm.markdown()


def test_effect_interval_and_hedges_g_against_scipy_and_by_hand() -> None:
    a, b = [10.0, 11.0, 12.0], [50.0, 52.0, 51.0]
    row = rows_of(evaluate_claims(frame(SEPARATED), "cifar10"), 1).iloc[0]
    interval = ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (row["diff"], row["ci_low"], row["ci_high"]) == pytest.approx((-40.0, interval.low, interval.high))
    assert row["ci_low"] < -40.0 < row["ci_high"] < 0
    # s_pooled = 1 (both standard deviations are 1), J = 1 - 3 / (4 * 6 - 9) = 0.8
    assert row["hedges_g"] == pytest.approx(0.8 * -40.0 / 1.0)
    unequal = welch([1.0, 2.0, 4.0, 7.0], [0.0, 1.0], "greater")
    pooled = math.sqrt((3 * np.var([1.0, 2.0, 4.0, 7.0], ddof=1) + 1 * np.var([0.0, 1.0], ddof=1)) / 4)
    assert unequal["hedges_g"] == pytest.approx((1 - 3 / (4 * 6 - 9)) * (3.5 - 0.5) / pooled)
    markdown = evaluate_claims(frame(SEPARATED), "cifar10").markdown()
    assert f"-40.00 [{interval.low:+.2f}, {interval.high:+.2f}]" in markdown


def test_holm_adjusts_within_a_claim() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])  # 0.01*3, then max(0.03*2, 0.03), then max(0.04*1, 0.06)
    assert holm([0.5]) == pytest.approx([0.5]) and holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])
    vanilla = [0.0, 1.0, 2.0]
    groups = {}
    for student, gap in (("s1", 4.0), ("s2", 2.7), ("s3", 2.5)):  # AKDG's FID below vanilla's by 4, 2.7 and 2.5 (sd 1)
        groups[(student, "akdg", "akdg")] = [(v - gap, 5.0 + v) for v in vanilla]
        groups[(student, "vanilla", "vanilla")] = [(v, 5.0 + v) for v in vanilla]
    rows = rows_of(evaluate_claims(frame(groups), "cifar10"), 2).set_index("student")
    raw = [ttest_ind([v - gap for v in vanilla], vanilla, equal_var=False, alternative="less").pvalue for gap in (4.0, 2.7, 2.5)]
    assert all(p < ALPHA for p in raw) and rows["p_value"].tolist() == pytest.approx(raw)
    assert rows["p_holm"].tolist() == pytest.approx([3 * raw[0], max(3 * raw[0], 2 * raw[1]), max(3 * raw[0], 2 * raw[1], raw[2])])
    assert rows["verdict"].tolist() == [HOLDS, INCONCLUSIVE, INCONCLUSIVE]
    assert "not after Holm over the claim's 3 tested rows" in rows.loc["s2", "reason"]


@pytest.mark.parametrize("n", [3, 5])
def test_error_rate_under_no_effect_and_power_under_a_large_one(n: int) -> None:
    """Verdicts of one comparison over many synthetic draws (normal data, sd 1), from scipy's p-values, vectorised.

    At 20000 draws the binomial standard error of a rate near 5% is 0.15 points. The true rates
    (Welch at alpha 0.025 per side, from 400000 draws) are about 3.5% (n=3) and 4.5% (n=5): below
    the 5% bound by 10 and 3.6 standard errors, and above 2.5% by 6 and 13; alpha 0.0125 per side
    would give 1.5% and 2.1%, alpha 0.05 per side 7.9% and 9.3%, so either mistake fails here.
    """
    draws = 20000
    rng = np.random.default_rng(12)
    a, b = rng.standard_normal((draws, n)), rng.standard_normal((draws, n))

    def verdicts(shift: float) -> pd.Series:
        less = ttest_ind(a - shift, b, axis=1, equal_var=False, alternative="less").pvalue
        greater = ttest_ind(a - shift, b, axis=1, equal_var=False, alternative="greater").pvalue
        tests = [{"p_value": p, "p_opposite": q} for p, q in zip(less, greater)]
        return pd.Series([holm_verdicts([test])[0]["verdict"] for test in tests])

    null = verdicts(0.0)
    decided = (null != INCONCLUSIVE).mean()
    assert 0.025 < decided <= 0.05
    large = verdicts(4.0).value_counts(normalize=True)  # 4 sd: with n = 3, Welch's df is about 2-4, so ~88% only
    assert large.get(FAILS, 0.0) == 0.0 and large[HOLDS] >= (0.85 if n == 3 else 0.99)


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
    assert f"alpha = {ALPHA} per direction" in markdown and "Holm" in markdown and "akdg: 11.00 ± 1.00 (n=3)" in markdown


def test_each_claim_is_tested_at_each_student_size_by_family_then_params(tmp_path: Path) -> None:
    """A sweep's sizes are students of their own: one row per size, scipy's Welch p, Holm over all sizes of the claim."""
    from test_sizes import fid_of, size_grid

    from akdg.tables import load_runs

    report = evaluate_claims(load_runs(size_grid(tmp_path)), "digits")
    order = ["dcgan-w4", "dcgan-w8", "dcgan-w16", "mlp-w32", "mlp-w128"]
    for claim in (1, 2, 3, 4, 5):
        assert list(dict.fromkeys(rows_of(report, claim)["student"])) == order, claim
    rows = rows_of(report, 2)
    expected = []
    for student in order:
        family, width = student.split("-w")
        akdg, vanilla = ([fid_of(family, int(width), method, seed) for seed in range(3)] for method in ("akdg", "vanilla"))
        expected.append(ttest_ind(akdg, vanilla, equal_var=False, alternative="less").pvalue)
    assert rows["p_value"].tolist() == pytest.approx(expected)
    assert rows["p_holm"].tolist() == pytest.approx(holm(expected).tolist())  # one family: every size of the claim


def teacher_pairs(akdg: dict[int, list[float]], vanilla: list[float]) -> pd.DataFrame:
    """Runs of one student where AKDG seed i distilled the teacher of seed i % 2, and vanilla used none.

    ``akdg``: {teacher seed: FIDs of the AKDG runs that distilled it}; precision and recall are set per run
    so that their means and spreads are known.
    """
    rows = [{"role": "teacher", "kind": "trained", "student": "teacher", "arch": "sngan", "method": "vanilla", "base_method": "vanilla",
             "seed": seed, "teacher_seed": seed, "fid": 5.0, "is_mean": 9.0, **TEACHER} for seed in (0, 1)]  # fmt: skip
    runs = [("akdg", seed, fid) for seed, fids in akdg.items() for fid in fids] + [("vanilla", None, fid) for fid in vanilla]
    for index, (label, teacher_seed, fid) in enumerate(runs):
        rows.append(
            {"role": "student", "kind": "trained", "student": "dcgan-w8", "arch": "dcgan", "method": label, "base_method": label,
             "seed": index, "teacher_seed": teacher_seed, "fid": fid, "is_mean": 5.0 + index / 10, "precision": 0.5 + index / 100,
             "recall": 0.3 + index / 100, "params": 400.0, "mult_adds": 600.0, "images_per_s": 300.0}
        )  # fmt: skip
    return pd.DataFrame(rows)


def test_per_teacher_signs_show_a_teacher_that_reverses_the_difference() -> None:
    """Teacher 0's students beat vanilla by far, teacher 1's lose to it: the pooled A − B is negative, but not for every teacher."""
    runs = teacher_pairs({0: [4.0, 5.0], 1: [13.0, 14.0]}, vanilla=[10.0, 11.0, 12.0])
    row = evaluate_claims(runs, "digits").rows.query("claim == 2").iloc[0]
    assert row["diff"] == pytest.approx(9.0 - 11.0)
    assert row["teachers"] == 2 and row["teachers_same_sign"] == 1
    assert row["teacher_diffs"] == f"0: {4.5 - 11.0:+.4g}; 1: {13.5 - 11.0:+.4g}"

    agreeing = evaluate_claims(teacher_pairs({0: [4.0, 5.0], 1: [8.0, 9.0]}, vanilla=[10.0, 11.0, 12.0]), "digits")
    assert agreeing.rows.query("claim == 2").iloc[0]["teachers_same_sign"] == 2
    markdown = agreeing.markdown()
    assert "same sign for every teacher" in markdown and "yes (2 of 2)" in markdown
    assert "no (1 of 2)" in evaluate_claims(runs, "digits").markdown()


def test_one_teacher_has_no_per_teacher_breakdown() -> None:
    runs = teacher_pairs({0: [4.0, 5.0, 6.0]}, vanilla=[10.0, 11.0, 12.0])
    row = evaluate_claims(runs[runs["seed"].ne(1) | runs["role"].ne("teacher")], "digits").rows.query("claim == 2").iloc[0]
    assert row["teachers"] == 1 and math.isnan(row["teachers_same_sign"]) and row["teacher_diffs"] == ""


def test_claims_files_show_precision_and_recall_beside_each_comparison(tmp_path: Path) -> None:
    runs = teacher_pairs({0: [4.0, 5.0], 1: [8.0, 9.0]}, vanilla=[10.0, 11.0, 12.0])
    report = evaluate_claims(runs, "digits")
    write_claims(report, tmp_path)
    written = pd.read_csv(tmp_path / "digits_claims.csv").query("claim == 2").iloc[0]
    akdg, vanilla = runs[runs["method"] == "akdg"], runs[runs["method"] == "vanilla"]
    assert written["precision_a"] == pytest.approx(akdg["precision"].mean())
    assert written["recall_std_b"] == pytest.approx(vanilla["recall"].std(ddof=1))
    markdown = (tmp_path / "digits_claims.md").read_text()
    cell = f"{akdg['precision'].mean():.3f} ± {akdg['precision'].std(ddof=1):.3f} / {akdg['recall'].mean():.3f} ± {akdg['recall'].std(ddof=1):.3f}"
    assert "A: precision / recall" in markdown and cell in markdown
