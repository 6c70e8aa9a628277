"""The paper's five claims, tested on one dataset's runs with Welch's t-test over seeds.

A table of means says which number is smaller; it does not say whether the gap is larger than the
seed-to-seed spread. Each claim is therefore tested per student (family and size) and label pair with
Welch's t-test (unequal variances: methods differ in stability), one-sided in each direction at
:data:`ALPHA`, so that a null effect gets a verdict other than "inconclusive" at most about 5% of
the time; Holm's step-down correction over a claim's rows keeps that bound for the claim's whole
family of comparisons. The verdict says "holds", "does not hold" (the opposite direction is
significant) or "inconclusive"; every row also shows the difference of means with its 95% interval
and Hedges' g, so that a reader sees how large an effect is, not only whether it is there.
Claim 5's throughput is tested on per-round student/teacher images/s ratios (see :func:`ratio_test`).
Methods are grouped by their registered base method (``protocol.training.method``), so that e.g.
both LSUN vanilla batch sizes count as "vanilla"; the rows name the config labels.
With several teachers (``teacher.seeds``) a replicate is a teacher/student pair, so the teachers' spread
is part of the tested spread; each row shows whether every teacher alone gives the difference the same
sign (:func:`per_teacher_signs`), and precision and recall beside the tested metric.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import pandas as pd
from scipy.stats import ttest_1samp, ttest_ind

from akdg.io import atomic_write

log = logging.getLogger(__name__)

ALPHA = 0.025  # per one-sided direction: with both directions tested, a null effect is decided in at most ~5% of cases
CONFIDENCE = 0.95  # of the two-sided interval of every tested effect
HOLDS, FAILS, INCONCLUSIVE, NOT_TESTED = "holds", "does not hold", "inconclusive", "not tested"
CLAIMS = {
    1: "AKDG student FID < MSE student FID (same student architecture)",
    2: "AKDG student FID < vanilla student FID",
    3: "MSE student FID > vanilla student FID (MSE is worse than vanilla)",
    4: "AKDG student IS > MSE and vanilla student IS",
    5: "student cheaper than the teacher: fewer params and mult-adds, higher measured throughput",
}
Alternative = Literal["less", "greater"]
_OPPOSITE: dict[str, Alternative] = {"less": "greater", "greater": "less"}
_SYMBOL = {"less": "<", "greater": ">"}
ROW_COLUMNS = (
    "claim", "claim_text", "dataset", "student", "comparison", "metric", "label_a", "label_b",
    "mean_a", "std_a", "n_a", "mean_b", "std_b", "n_b", "ratio", "test", "statistic", "df",
    "p_value", "p_holm", "p_opposite", "p_opposite_holm", "diff", "ci_low", "ci_high", "hedges_g", "verdict", "reason",
    "teachers", "teachers_same_sign", "teacher_diffs",
    "precision_a", "precision_std_a", "recall_a", "recall_std_a", "precision_b", "precision_std_b", "recall_b", "recall_std_b",
)  # fmt: skip
FIDELITY_DIVERSITY = ("precision", "recall")  # shown beside each method comparison: fidelity and diversity (Kynkäänniemi et al. 2019)
SUMMARY_RULE = (
    f"summary per claim: '{FAILS}' if any row does not hold, '{HOLDS}' if every row holds, "
    f"'{NOT_TESTED}' if no row could be tested, else '{INCONCLUSIVE}'"
)


@dataclass(frozen=True)
class ClaimsReport:
    """Per-comparison rows and per-claim verdicts for one dataset."""

    dataset: str
    rows: pd.DataFrame
    summary: pd.DataFrame
    remarks: tuple[str, ...] = ()  # warnings about these runs (a loaded machine, a student no smaller than its teacher)

    def markdown(self) -> str:
        """The report as Markdown: verdicts per claim, remarks, every comparison, then how they were decided."""
        rows = pd.DataFrame(
            {
                "claim": [f"{number}: {text}" for number, text in zip(self.rows["claim"], self.rows["claim_text"])],
                "student": self.rows["student"],
                "comparison": self.rows["comparison"],
                "metric": self.rows["metric"],
                "A: mean ± std (n)": [_cell(row, "a") for _, row in self.rows.iterrows()],
                "B: mean ± std (n)": [_cell(row, "b") for _, row in self.rows.iterrows()],
                "test": self.rows["test"],
                "t": self.rows["statistic"].map(lambda v: _number(v, ".2f")),
                "df": self.rows["df"].map(lambda v: _number(v, ".1f")),
                "p": self.rows["p_value"].map(lambda v: _number(v, ".3g")),
                "p Holm": self.rows["p_holm"].map(lambda v: _number(v, ".3g")),
                "effect [95% CI]": [_effect_cell(row) for _, row in self.rows.iterrows()],
                "g": self.rows["hedges_g"].map(lambda v: _number(v, ".2f")),
                "A/B": self.rows["ratio"].map(lambda v: _number(v, ".3g")),
                "same sign for every teacher": [_teacher_cell(row) for _, row in self.rows.iterrows()],
                "A: precision / recall": [_prc_cell(row, "a") for _, row in self.rows.iterrows()],
                "B: precision / recall": [_prc_cell(row, "b") for _, row in self.rows.iterrows()],
                "verdict": self.rows["verdict"],
                "reason": self.rows["reason"],
            }
        )
        summary = self.summary.assign(claim=[f"{n}: {t}" for n, t in zip(self.summary["claim"], self.summary["claim_text"])])
        return (
            f"# {self.dataset}: the paper's claims\n\n"
            f"{summary[['claim', 'dataset', 'verdict', 'rows']].rename(columns={'rows': 'row verdicts'}).to_markdown(index=False)}\n\n"
            + "".join(f"- {line}\n" for line in self.remarks)
            + ("\n" if self.remarks else "")
            + f"{rows.to_markdown(index=False)}\n\n"
            + "".join(f"- {line}\n" for line in notes())
        )


def notes() -> list[str]:
    """How every verdict in the report was reached (printed under the tables)."""
    return [
        "test (claims 1-4): Welch's t-test (scipy.stats.ttest_ind, equal_var=False) over seeds (one value per run), "
        f"one-sided in each direction at alpha = {ALPHA} per direction, so that where there is no effect a verdict "
        f"other than '{INCONCLUSIVE}' comes at most about {2 * ALPHA:.0%} of the time; p is the claimed direction's "
        "p-value, p Holm the same after Holm's step-down correction over every tested row of that claim (all students "
        "and label pairs), applied separately to the claimed and to the opposite direction's p-values (p_opposite_holm "
        "in the CSV)",
        f"verdict: '{HOLDS}' if the claimed direction's Holm-adjusted p < {ALPHA}; '{FAILS}' if the opposite "
        f"direction's Holm-adjusted p < {ALPHA}; '{INCONCLUSIVE}' otherwise, or when a group has fewer than 2 seeds "
        f"or t is undefined; '{NOT_TESTED}' when the runs lack a group the claim needs",
        f"effect: A − B, the difference of the means, with Welch's two-sided {CONFIDENCE:.0%} confidence interval "
        f"(ttest_ind(...).confidence_interval({CONFIDENCE})); g: Hedges' g = J·(mean_A − mean_B)/s_pooled with "
        "s_pooled² = ((n_A−1)s_A² + (n_B−1)s_B²)/(n_A+n_B−2) and J = 1 − 3/(4(n_A+n_B)−9), – where both groups are constant",
        "teachers: with several teacher seeds each distilled student seed distils its own paired teacher (student "
        "seed i of the config's seeds distils teacher.seeds[i % n]), so a replicate of claims 1-4 is a teacher/student "
        "pair and Welch's test over these pairs counts the teacher-to-teacher spread in the seed spread, which one "
        "teacher shared by every seed would hide; 'same sign for every teacher' repeats mean(A) − mean(B) within each "
        "teacher's runs (a method that distils no teacher, such as vanilla, contributes all its runs to every "
        "teacher's difference) and counts the teachers whose difference has the overall difference's sign (k of n; "
        "the CSV's teacher_diffs lists them), so that a verdict carried by one teacher shows; with one teacher it is –",
        "precision and recall (A and B: mean ± sample std over the same runs as the tested metric): fidelity (the "
        "share of generated images inside the real images' manifold) and diversity (the share of real images inside "
        "the generated ones'), for reading a FID or IS difference as one of fidelity or of diversity; not tested",
        "groups: methods by their registered base method (protocol.training.method); akdg/mse/vanilla rows name "
        "the config labels; every label of a base method is compared separately, except that no pair gives the "
        "method the claim favours more images seen (steps x batch) than the other: at several batch sizes, "
        "AKDG at 2048 is not tested against vanilla at 64, while AKDG at 64 is against vanilla at 2048",
        "claim 5: cost is a property of the architecture, and every teacher seed has the teacher's architecture and "
        "the one cost measurement, so claim 5 compares each student with that architecture, not with a teacher seed; "
        "params and mult-adds compared exactly (A/B = student/teacher); throughput: the cost step times "
        "every generator in interleaved rounds in one process (one block each per round, the order rotated each "
        "round) and records every round's student images/s ÷ teacher images/s; these ratios, not absolute images/s, "
        f"are tested: a one-sample t-test (scipy.stats.ttest_1samp) of log(ratio) over rounds, > 0 for '{HOLDS}', "
        f"< 0 for '{FAILS}', at alpha = {ALPHA} per direction with Holm over the claim's throughput rows; its effect "
        f"is the geometric-mean ratio A/B with the {CONFIDENCE:.0%} interval of the mean log ratio, exponentiated, and "
        "g = J·mean/sd of the log ratios with J = 1 − 3/(4(n−1)−1); the rounds ran on one machine at one time, so "
        "the verdict is about that machine then; inconclusive where the runs have no per-round ratios (rerun "
        "measure-cost)",
        SUMMARY_RULE,
    ]


def welch(a: np.ndarray, b: np.ndarray, alternative: Alternative) -> dict[str, Any]:
    """Welch's t-test of A against B for one comparison on its own: :func:`welch_test`, then its verdict.

    Holm's correction over a single p-value leaves it as it is, so the verdict is that of the two
    one-sided tests at :data:`ALPHA`.
    """
    return holm_verdicts([welch_test(a, b, alternative)])[0]


def welch_test(a: np.ndarray, b: np.ndarray, alternative: Alternative) -> dict[str, Any]:
    """Welch's t-test of A against B, one-sided both ways; A − B with its Welch 95% interval; Hedges' g.

    ``statistic`` and ``p_value`` are the claimed direction's (``alternative``), ``p_opposite`` the
    other one's; no verdict unless the test cannot be done (then "inconclusive" with the reason):
    verdicts come from :func:`holm_verdicts` over a claim's rows.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return {"verdict": INCONCLUSIVE, "reason": f"fewer than 2 seeds in a group (A n={len(a)}, B n={len(b)})"}
    claimed = ttest_ind(a, b, equal_var=False, alternative=alternative)
    opposite = ttest_ind(a, b, equal_var=False, alternative=_OPPOSITE[alternative])
    interval = ttest_ind(a, b, equal_var=False).confidence_interval(CONFIDENCE)
    result = {
        "statistic": float(claimed.statistic), "df": float(claimed.df), "p_value": float(claimed.pvalue), "p_opposite": float(opposite.pvalue),
        "diff": float(a.mean() - b.mean()), "ci_low": float(interval.low), "ci_high": float(interval.high), "hedges_g": hedges_g(a, b),
    }  # fmt: skip
    if math.isnan(result["p_value"]):
        return {**result, "verdict": INCONCLUSIVE, "reason": "t undefined: both groups constant and equal"}
    return result


def welch_interval(a: np.ndarray, b: np.ndarray, confidence: float = CONFIDENCE) -> dict[str, float]:
    """mean(A) − mean(B) with scipy's Welch interval (``ttest_ind(equal_var=False).confidence_interval``) and its df,
    for reading a difference without a test (the per-size comparison, :mod:`akdg.sizes`).

    Seeds of two methods have unequal spreads (one method can be less stable), which a pooled-variance
    interval would hide; :func:`welch_test` uses the same interval. Interval and df are NaN where a group
    has fewer than 2 values or both groups are constant (no spread to scale by); the difference is NaN
    only where a group is empty.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = float(a.mean() - b.mean()) if len(a) and len(b) else math.nan
    if len(a) < 2 or len(b) < 2 or a.var() + b.var() == 0:
        return {"diff": diff, "ci_low": math.nan, "ci_high": math.nan, "df": math.nan}
    welch = ttest_ind(a, b, equal_var=False)
    interval = welch.confidence_interval(confidence)
    return {"diff": diff, "ci_low": float(interval.low), "ci_high": float(interval.high), "df": float(welch.df)}


def hedges_g(a: np.ndarray, b: np.ndarray) -> float:
    """Hedges' g of A − B: how many pooled standard deviations apart the means are, bias-corrected for small n.

    g = J·(mean_A − mean_B)/s_pooled, s_pooled² = ((n_A−1)s_A² + (n_B−1)s_B²)/(n_A+n_B−2) (sample
    variances, ddof 1), J = 1 − 3/(4(n_A+n_B)−9) (Hedges 1981): with 3 seeds a group, Cohen's d
    overstates the effect by about 1/J ≈ 1.2. NaN where both groups are constant (s_pooled = 0).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n_a, n_b = len(a), len(b)
    pooled = math.sqrt(((n_a - 1) * a.var(ddof=1) + (n_b - 1) * b.var(ddof=1)) / (n_a + n_b - 2))
    if pooled == 0:
        return math.nan
    return (1 - 3 / (4 * (n_a + n_b) - 9)) * float(a.mean() - b.mean()) / pooled


def ratio_test(ratios: np.ndarray) -> dict[str, Any]:
    """One-sample t-tests of log(A/B) over paired rounds, > 0 (claimed) and < 0; its mean with a 95% interval; g.

    On a log scale a ratio of 2 and of 1/2 are equally far from 1, and a round's load scales both
    A and B of that round, which the log ratio cancels. ``diff``, ``ci_low`` and ``ci_high`` are on
    the log scale (exp gives the geometric-mean ratio and its interval); g = J·mean/sd of the log
    ratios with J = 1 − 3/(4(n−1)−1), Hedges' correction for n − 1 degrees of freedom.
    """
    logs = np.log(np.asarray(ratios, dtype=float))
    if len(logs) < 2:
        return {
            "verdict": INCONCLUSIVE,
            "reason": f"fewer than 2 rounds of ratios (n={len(logs)}); rerun measure-cost with speed.rounds >= 3",
        }
    claimed = ttest_1samp(logs, 0.0, alternative="greater")
    opposite = ttest_1samp(logs, 0.0, alternative="less")
    interval = ttest_1samp(logs, 0.0).confidence_interval(CONFIDENCE)
    spread = float(logs.std(ddof=1))
    result = {
        "statistic": float(claimed.statistic), "df": float(claimed.df), "p_value": float(claimed.pvalue), "p_opposite": float(opposite.pvalue),
        "diff": float(logs.mean()), "ci_low": float(interval.low), "ci_high": float(interval.high), "ratio": math.exp(logs.mean()),
        "hedges_g": (1 - 3 / (4 * (len(logs) - 1) - 1)) * float(logs.mean()) / spread if spread > 0 else math.nan,
    }  # fmt: skip
    if math.isnan(result["p_value"]):
        return {**result, "verdict": INCONCLUSIVE, "reason": "t undefined: every round's ratio is 1"}
    return result


def holm(p_values: list[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (scipy has none, and statsmodels is not a dependency).

    With the m p-values sorted ascending, the i-th (0-based) is multiplied by m − i, a running
    maximum keeps the adjusted values in the same order, and they are clipped to 1; rejecting
    where adjusted p < alpha is Holm's procedure, which bounds the chance of any false rejection
    among the m at alpha whatever their dependence.
    """
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p)
    adjusted = np.minimum(np.maximum.accumulate(p[order] * (len(p) - np.arange(len(p)))), 1.0)
    result = np.empty_like(adjusted)
    result[order] = adjusted
    return result


def holm_verdicts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The verdicts of one claim's rows: Holm over its tested rows (those without a verdict yet), each direction apart."""
    tested = [index for index, row in enumerate(rows) if "verdict" not in row]
    adjusted = {
        "p_holm": holm([rows[index]["p_value"] for index in tested]),
        "p_opposite_holm": holm([rows[index]["p_opposite"] for index in tested]),
    }
    rows = [dict(row) for row in rows]
    for position, index in enumerate(tested):
        row = rows[index]
        row.update(p_holm=float(adjusted["p_holm"][position]), p_opposite_holm=float(adjusted["p_opposite_holm"][position]))
        family = f"Holm over the claim's {len(tested)} tested rows" if len(tested) > 1 else "one tested row"
        if row["p_holm"] < ALPHA:
            row.update(verdict=HOLDS, reason="")
        elif row["p_opposite_holm"] < ALPHA:
            row.update(verdict=FAILS, reason=f"significant in the opposite direction (Holm p = {row['p_opposite_holm']:.3g}, {family})")
        elif min(row["p_value"], row["p_opposite"]) < ALPHA:
            row.update(verdict=INCONCLUSIVE, reason=f"p = {min(row['p_value'], row['p_opposite']):.3g} < {ALPHA}, but not after {family}")
        else:
            row.update(verdict=INCONCLUSIVE, reason=f"neither one-sided test has p < {ALPHA}")
    return rows


def evaluate_claims(runs: pd.DataFrame, dataset: str) -> ClaimsReport:
    """Test claims 1-5 on ``runs`` (rows of :func:`akdg.tables.load_runs`) for each student, that is each family and size.

    Rows come by claim, then family, then size (params): a sweep's sizes of a family stand together, smallest first.
    """
    students = trained_students(runs)
    teachers = runs[runs["role"] == "teacher"]
    names = student_sizes(students)["student"].tolist()
    rows: list[dict[str, Any]] = []
    for claim, metric, base_a, base_b, alternative in (
        (1, "fid", "akdg", "mse", "less"),
        (2, "fid", "akdg", "vanilla", "less"),
        (3, "fid", "mse", "vanilla", "greater"),
        (4, "is_mean", "akdg", "mse", "greater"),
        (4, "is_mean", "akdg", "vanilla", "greater"),
    ):
        for student in names or ["–"]:
            rows += _method_rows(claim, students[students["student"] == student], student, metric, base_a, base_b, alternative)
    for student in names or ["–"]:
        rows += _cost_rows(runs[(runs["role"] == "student") & (runs["student"] == student)], teachers, student)
    rows = [row for claim in sorted(CLAIMS) for row in holm_verdicts([row for row in rows if row["claim"] == claim])]
    table = pd.DataFrame([{**dict.fromkeys(ROW_COLUMNS), "dataset": dataset, **row} for row in rows], columns=list(ROW_COLUMNS))
    table["claim_text"] = table["claim"].map(CLAIMS)
    summary = pd.DataFrame(
        [
            {
                "claim": claim,
                "claim_text": CLAIMS[claim],
                "dataset": dataset,
                "verdict": summary_verdict(group["verdict"].tolist()),
                "rows": _tally(group["verdict"]),
            }
            for claim, group in table.groupby("claim", sort=True)
        ]
    )
    measurements = runs["speed_measurement"].dropna() if "speed_measurement" in runs else pd.Series(dtype=object)
    remarks = load_warning(measurements.iloc[0] if len(measurements) else None) + _capacity_remarks(table)
    return ClaimsReport(dataset, table, summary, tuple(remarks))


def trained_students(runs: pd.DataFrame) -> pd.DataFrame:
    """The trained students' runs (rows of :func:`akdg.tables.load_runs`): what the claims and the per-size comparison test."""
    return runs[(runs["role"] == "student") & (runs["kind"] == "trained")]


def student_sizes(students: pd.DataFrame, columns: tuple[str, ...] = ("arch", "params")) -> pd.DataFrame:
    """One row per student with its first run's ``columns``, by family, then params (then name): every per-size table's order."""
    sizes = students.groupby("student", sort=False)[list(columns)].first().reset_index()
    return sizes.sort_values(["arch", "params", "student"], kind="stable")


def load_warning(measurement: dict[str, Any] | None) -> list[str]:
    """The warning for the tables when the cost job found the machine loaded (``cost["measurement"]``); else nothing.

    Absolute images/s then reflect the load, not the generators; the per-round ratios cancel much
    of it, but not a load that changed within a round.
    """
    if not measurement or not measurement.get("loaded"):
        return []
    others = measurement.get("other_runnable_median")
    busy = f"a median of {others:g} other runnable tasks between rounds" if others is not None else "other runnable tasks not sampled"
    return [
        f"warning: the machine was loaded while speed was measured (1-minute load average "
        f"{measurement['load_average_1min_before']:.2f} before and {measurement['load_average_1min_after']:.2f} after, "
        f"on {measurement['cpu_count']} cores; {busy}, beside this job's {measurement['threads']} threads; CPU/wall time "
        f"{measurement['cpu_per_wall']:.2f}); images/s and claim 5's throughput verdict may be off: rerun measure-cost on an idle machine"
    ]


def _capacity_remarks(table: pd.DataFrame) -> list[str]:
    """A note per student whose params or mult-adds are not below the teacher's: the paper's students all are."""
    exact = table[(table["claim"] == 5) & table["metric"].isin(["params", "mult-adds"]) & table["ratio"].notna()]
    remarks = []
    for student, rows in exact.groupby("student", sort=False):
        if (rows["verdict"] == FAILS).any():
            ratios = ", ".join(f"{metric} A/B = {ratio:.3g}" for metric, ratio in zip(rows["metric"], rows["ratio"]))
            remarks.append(
                f"student {student} is not smaller than the teacher ({ratios}): comparisons with the teacher lack the paper's capacity gap"
            )
    return remarks


def summary_verdict(verdicts: list[str]) -> str:
    """One verdict per claim from its rows (the rule is :data:`SUMMARY_RULE`)."""
    if FAILS in verdicts:
        return FAILS
    if verdicts and all(verdict == HOLDS for verdict in verdicts):
        return HOLDS
    if all(verdict == NOT_TESTED for verdict in verdicts):
        return NOT_TESTED
    return INCONCLUSIVE


def write_claims(report: ClaimsReport, tables_dir: Path | str) -> list[Path]:
    """``<dataset>_claims.md`` and ``<dataset>_claims.csv`` (every row, unrounded) under ``tables_dir``."""
    tables_dir = Path(tables_dir)
    markdown, csv = tables_dir / f"{report.dataset}_claims.md", tables_dir / f"{report.dataset}_claims.csv"
    with atomic_write(csv) as tmp:
        report.rows.to_csv(tmp, index=False)
    with atomic_write(markdown) as tmp:
        tmp.write_text(report.markdown())
    return [markdown, csv]


def _method_rows(
    claim: int, runs: pd.DataFrame, student: str, metric: str, base_a: str, base_b: str, alternative: Alternative
) -> list[dict[str, Any]]:
    """One row per (label of base A, label of base B) of one student; a 'not tested' row if either is missing."""
    labels = {base: list(dict.fromkeys(runs.loc[runs["base_method"] == base, "method"])) for base in (base_a, base_b)}
    comparison = f"{base_a} vs {base_b}"
    name = "FID" if metric == "fid" else "IS"
    missing = [base for base in (base_a, base_b) if not labels[base]]
    if missing:
        present = sorted(set(runs["method"])) or ["none"]
        reason = f"no trained {' or '.join(missing)} runs for this student (method labels present: {', '.join(present)})"
        return [{"claim": claim, "student": student, "comparison": comparison, "metric": name, "verdict": NOT_TESTED, "reason": reason}]
    rows = []
    for label_a, label_b in fair_pairs(
        runs, labels[base_a], labels[base_b], claimed_better_is_a=alternative == ("less" if metric == "fid" else "greater")
    ):
        runs_a, runs_b = (runs[(runs["method"] == label) & runs[metric].notna()] for label in (label_a, label_b))
        a, b = runs_a[metric].to_numpy(dtype=float), runs_b[metric].to_numpy(dtype=float)
        rows.append(
            {
                "claim": claim, "student": student, "comparison": f"{label_a} vs {label_b}", "metric": name,
                "label_a": label_a, "label_b": label_b, **group_spread(a, "a"), **group_spread(b, "b"),
                "test": f"Welch's t, one-sided (A {_SYMBOL[alternative]} B)", **welch_test(a, b, alternative),
                **per_teacher_signs(runs_a, runs_b, metric), **fidelity_diversity(runs_a, "a"), **fidelity_diversity(runs_b, "b"),
            }
        )  # fmt: skip
    return rows


def per_teacher_signs(runs_a: pd.DataFrame, runs_b: pd.DataFrame, metric: str) -> dict[str, Any]:
    """mean(A) − mean(B) of ``metric`` within each teacher's runs, and how many teachers share the overall difference's sign.

    A side whose runs distilled no teacher (``teacher_seed`` empty: vanilla) enters every teacher's
    difference with all its runs. ``teachers``: how many teachers the runs distilled; ``teachers_same_sign``:
    of those, how many give A − B the sign of the difference over all runs; ``teacher_diffs``: ``seed: diff``
    per teacher. NaN (and no text) with fewer than 2 teachers: there is nothing to break down.
    """
    seeds = sorted(pd.concat([_teacher_seeds(runs_a), _teacher_seeds(runs_b)]).unique())
    if len(seeds) < 2 or runs_a.empty or runs_b.empty:
        return {"teachers": len(seeds), "teachers_same_sign": math.nan, "teacher_diffs": ""}
    overall = np.sign(runs_a[metric].mean() - runs_b[metric].mean())
    diffs = {seed: _teachers_runs(runs_a, seed)[metric].mean() - _teachers_runs(runs_b, seed)[metric].mean() for seed in seeds}
    return {
        "teachers": len(seeds),
        "teachers_same_sign": sum(1 for diff in diffs.values() if np.sign(diff) == overall and overall != 0),
        "teacher_diffs": "; ".join(f"{seed:.0f}: {diff:+.4g}" for seed, diff in diffs.items()),
    }


def _teacher_seeds(runs: pd.DataFrame) -> pd.Series:
    """The teacher seeds a group's runs distilled (none for a method without a teacher, or runs that predate the record)."""
    return runs["teacher_seed"].dropna() if "teacher_seed" in runs else pd.Series(dtype=float)


def _teachers_runs(runs: pd.DataFrame, seed: float) -> pd.DataFrame:
    """The runs that distilled teacher ``seed``; all of them where the group distilled no teacher."""
    return runs if _teacher_seeds(runs).empty else runs[runs["teacher_seed"] == seed]


def fidelity_diversity(runs: pd.DataFrame, side: str) -> dict[str, float]:
    """Mean and sample std of precision and recall over one side's runs (NaN where the runs lack them)."""
    values = {}
    for column in FIDELITY_DIVERSITY:
        scores = runs[column].dropna().to_numpy(dtype=float) if column in runs else np.array([])
        spread = group_spread(scores, side)
        values.update({f"{column}_{side}": spread[f"mean_{side}"], f"{column}_std_{side}": spread[f"std_{side}"]})
    return values


def fair_pairs(runs: pd.DataFrame, labels_a: list[str], labels_b: list[str], claimed_better_is_a: bool) -> list[tuple[str, str]]:
    """The (A label, B label) pairs a claim is tested on: those in which the method the claim favours saw no more images.

    A grid may train a method at several batch sizes (LSUN: vanilla, MSE and AKDG at 64 and 2048).
    Comparing AKDG at 2048 with vanilla at 64 would credit AKDG with 32x the images; the paper's own
    comparison, AKDG at 64 against vanilla at 2048, stays. Runs without an images-seen record pair freely.
    """
    seen = runs.groupby("method")["images_seen"].max() if "images_seen" in runs else pd.Series(dtype=float)
    pairs = []
    for label_a in labels_a:
        for label_b in labels_b:
            favoured, other = (label_a, label_b) if claimed_better_is_a else (label_b, label_a)
            if pd.isna(seen.get(favoured)) or pd.isna(seen.get(other)) or seen[favoured] <= seen[other]:
                pairs.append((label_a, label_b))
    return pairs


def _cost_rows(student_runs: pd.DataFrame, teachers: pd.DataFrame, student: str) -> list[dict[str, Any]]:
    """Claim 5 for one student: params and mult-adds exactly, throughput by :func:`ratio_test` on per-round ratios."""
    base = {"claim": 5, "student": student, "comparison": f"{student} vs teacher", "label_a": student, "label_b": "teacher"}
    if student_runs.empty or teachers.empty:
        lacking = "student" if student_runs.empty else "teacher"
        return [{**base, "metric": "cost", "verdict": NOT_TESTED, "reason": f"no {lacking} run among the aggregated runs"}]
    mine, theirs = student_runs.iloc[0], teachers.iloc[0]  # cost is per architecture: every seed carries the same
    rows = []
    for column, metric in (("params", "params"), ("mult_adds", "mult-adds")):
        a, b = float(mine[column]), float(theirs[column])
        if math.isnan(a) or math.isnan(b):
            rows.append(
                {
                    **base,
                    "metric": metric,
                    "verdict": NOT_TESTED,
                    "reason": f"no {metric} in the runs' cost; rerun measure-cost and evaluate",
                }
            )
            continue
        holds = a < b
        rows.append(
            {
                **base, "metric": metric, "mean_a": a, "mean_b": b, "ratio": a / b, "test": "exact (A < B)",
                "verdict": HOLDS if holds else FAILS, "reason": "" if holds else f"student {metric} not smaller than the teacher's",
            }
        )  # fmt: skip
    a, b = _rounds(mine), _rounds(theirs)
    row = {
        **base,
        "metric": "images/s",
        **group_spread(a, "a"),
        **group_spread(b, "b"),
        "ratio": _ratio(a, b),
        "test": "one-sample t on log(A/B) per round (> 0)",
    }
    ratios = _listed(mine.get("throughput_ratio_rounds"))
    if ratios is None:
        reason = (
            "no per-round throughput ratios (throughput_ratio_rounds) in the student's cost; rerun measure-cost and evaluate to record them"
        )
        return [*rows, {**row, "verdict": INCONCLUSIVE, "reason": reason}]
    return [*rows, {**row, **ratio_test(ratios)}]


def _listed(values: Any) -> np.ndarray | None:
    """A non-empty list of figures from a cost entry as an array; None where the entry has none (older cost JSONs)."""
    return np.asarray(values, dtype=float) if isinstance(values, (list, tuple, np.ndarray)) and len(values) > 0 else None


def _rounds(record: pd.Series) -> np.ndarray:
    """Per-round images/s, or the one summary figure where the cost step recorded no rounds."""
    rounds = _listed(record.get("images_per_s_rounds"))
    return rounds if rounds is not None else np.asarray([record["images_per_s"]], dtype=float)


def _ratio(a: np.ndarray, b: np.ndarray) -> float:
    """Median images/s over median images/s: the throughput ratio shown where the rounds' ratios are absent."""
    return float(np.median(a) / np.median(b))


def group_spread(values: np.ndarray, side: str) -> dict[str, float]:
    """``mean_<side>``, ``std_<side>`` (sample, ddof 1) and ``n_<side>`` of one group of a comparison; NaN where undefined."""
    return {
        f"mean_{side}": float(values.mean()) if len(values) else math.nan,
        f"std_{side}": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
        f"n_{side}": len(values),
    }


def _tally(verdicts: pd.Series) -> str:
    return ", ".join(f"{count} {verdict}" for verdict, count in verdicts.value_counts(sort=False).items())


def _number(value: Any, spec: str) -> str:
    return "–" if value is None or pd.isna(value) else format(value, spec)


_FORMATS: dict[str, Callable[[float], str]] = {
    "FID": lambda v: f"{v:.2f}",
    "IS": lambda v: f"{v:.2f}",
    "params": lambda v: f"{v:,.0f}",
    "mult-adds": lambda v: f"{v:,.0f}",
    "images/s": lambda v: f"{v:,.0f}",
}


def _effect_cell(row: pd.Series) -> str:
    """A − B [95% CI] of a seed comparison; the geometric-mean ratio A/B [95% CI] of a per-round ratio test."""
    if row["diff"] is None or pd.isna(row["diff"]):
        return "–"
    if row["metric"] == "images/s":
        return f"A/B {math.exp(row['diff']):.2f} [{math.exp(row['ci_low']):.2f}, {math.exp(row['ci_high']):.2f}]"
    return f"{row['diff']:+.2f} [{row['ci_low']:+.2f}, {row['ci_high']:+.2f}]"


def _teacher_cell(row: pd.Series) -> str:
    """``yes (2 of 2)`` / ``no (1 of 2)`` where a comparison spans several teachers; – otherwise."""
    count, same = row["teachers"], row["teachers_same_sign"]
    if same is None or pd.isna(same):
        return "–"
    return f"{'yes' if same == count else 'no'} ({same:.0f} of {count:.0f})"


def _prc_cell(row: pd.Series, side: str) -> str:
    """``precision ± std / recall ± std`` of one side of a method comparison; – where the runs lack them."""
    cells = []
    for column in FIDELITY_DIVERSITY:
        mean, std = row[f"{column}_{side}"], row[f"{column}_std_{side}"]
        if mean is None or pd.isna(mean):
            return "–"
        cells.append(f"{mean:.3f}" + ("" if std is None or pd.isna(std) else f" ± {std:.3f}"))
    return " / ".join(cells)


def _cell(row: pd.Series, side: str) -> str:
    """``mean ± std (n=k)`` of one side of a comparison, or the single value for exact comparisons."""
    mean, std, count = row[f"mean_{side}"], row[f"std_{side}"], row[f"n_{side}"]
    if mean is None or pd.isna(mean):
        return "–"
    fmt = _FORMATS.get(row["metric"], lambda v: f"{v:.4g}")
    label = f"{row[f'label_{side}']}: " if isinstance(row[f"label_{side}"], str) else ""
    if count is None or pd.isna(count):
        return f"{label}{fmt(mean)}"
    spread = f" ± {fmt(std)}" if not pd.isna(std) else ""
    return f"{label}{fmt(mean)}{spread} (n={count:.0f})"
