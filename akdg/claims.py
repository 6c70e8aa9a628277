"""The paper's five claims, tested on one dataset's runs with Welch's t-test over seeds.

A table of means says which number is smaller; it does not say whether the gap is larger than the
seed-to-seed spread. Each claim is therefore tested per student architecture as a one-sided Welch
t-test (unequal variances: methods differ in stability) in the claimed direction, and the verdict
says "holds", "does not hold" (the opposite one-sided test is significant) or "inconclusive".
Methods are grouped by their registered base method (``protocol.training.method``), so that e.g.
both LSUN vanilla batch sizes count as "vanilla"; the rows name the config labels.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import pandas as pd
from scipy.stats import ttest_ind

from akdg.io import atomic_write

log = logging.getLogger(__name__)

ALPHA = 0.05
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
    "p_value", "p_opposite", "verdict", "reason",
)  # fmt: skip
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

    def markdown(self) -> str:
        """The report as Markdown: verdicts per claim, then every comparison, then how they were decided."""
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
                "A/B": self.rows["ratio"].map(lambda v: _number(v, ".3g")),
                "verdict": self.rows["verdict"],
                "reason": self.rows["reason"],
            }
        )
        summary = self.summary.assign(claim=[f"{n}: {t}" for n, t in zip(self.summary["claim"], self.summary["claim_text"])])
        return (
            f"# {self.dataset}: the paper's claims\n\n"
            f"{summary[['claim', 'dataset', 'verdict', 'rows']].rename(columns={'rows': 'row verdicts'}).to_markdown(index=False)}\n\n"
            f"{rows.to_markdown(index=False)}\n\n" + "".join(f"- {line}\n" for line in notes())
        )


def notes() -> list[str]:
    """How every verdict in the report was reached (printed under the tables)."""
    return [
        f"test: Welch's t-test (scipy.stats.ttest_ind, equal_var=False) over seeds (one value per run), one-sided "
        f"in the claimed direction, alpha = {ALPHA}; p is the claimed direction's p-value; no correction for "
        "multiple comparisons",
        f"verdict: '{HOLDS}' if A differs from B in the claimed direction with p < alpha; '{FAILS}' if the opposite "
        f"one-sided test has p < alpha; '{INCONCLUSIVE}' otherwise, or when a group has fewer than 2 seeds; "
        f"'{NOT_TESTED}' when the runs lack a group the claim needs",
        "groups: methods by their registered base method (protocol.training.method); akdg/mse/vanilla rows name "
        "the config labels; every label of a base method is compared separately",
        "claim 5: params and mult-adds compared exactly (A/B = student/teacher); throughput by Welch's t on the "
        "per-block images/s samples of the cost step (images_per_s_blocks), inconclusive where those are absent",
        SUMMARY_RULE,
    ]


def welch(a: np.ndarray, b: np.ndarray, alternative: Alternative) -> dict[str, Any]:
    """Welch's t-test of A against B in the claimed direction, and the verdict it gives."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return {"verdict": INCONCLUSIVE, "reason": f"fewer than 2 seeds in a group (A n={len(a)}, B n={len(b)})"}
    claimed = ttest_ind(a, b, equal_var=False, alternative=alternative)
    opposite = ttest_ind(a, b, equal_var=False, alternative=_OPPOSITE[alternative])
    result = {"statistic": float(claimed.statistic), "df": float(claimed.df), "p_value": float(claimed.pvalue), "p_opposite": float(opposite.pvalue)}
    in_direction = a.mean() < b.mean() if alternative == "less" else a.mean() > b.mean()
    if math.isnan(result["p_value"]):
        return {**result, "verdict": INCONCLUSIVE, "reason": "t undefined: both groups constant and equal"}
    if in_direction and result["p_value"] < ALPHA:
        return {**result, "verdict": HOLDS, "reason": ""}
    if result["p_opposite"] < ALPHA:
        return {**result, "verdict": FAILS, "reason": f"significant in the opposite direction (p = {result['p_opposite']:.3g})"}
    return {**result, "verdict": INCONCLUSIVE, "reason": f"neither one-sided test has p < {ALPHA}"}


def evaluate_claims(runs: pd.DataFrame, dataset: str) -> ClaimsReport:
    """Test claims 1-5 on ``runs`` (rows of :func:`akdg.tables.load_runs`) for each student architecture."""
    students = runs[(runs["role"] == "student") & (runs["kind"] == "trained")]
    teachers = runs[runs["role"] == "teacher"]
    names = list(dict.fromkeys(students["student"]))
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
    table = pd.DataFrame([{**dict.fromkeys(ROW_COLUMNS), "dataset": dataset, **row} for row in rows], columns=list(ROW_COLUMNS))
    table["claim_text"] = table["claim"].map(CLAIMS)
    summary = pd.DataFrame(
        [
            {"claim": claim, "claim_text": CLAIMS[claim], "dataset": dataset, "verdict": summary_verdict(group["verdict"].tolist()), "rows": _tally(group["verdict"])}
            for claim, group in table.groupby("claim", sort=True)
        ]
    )
    return ClaimsReport(dataset, table, summary)


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


def _method_rows(claim: int, runs: pd.DataFrame, student: str, metric: str, base_a: str, base_b: str, alternative: Alternative) -> list[dict[str, Any]]:
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
    for label_a in labels[base_a]:
        for label_b in labels[base_b]:
            a = runs.loc[runs["method"] == label_a, metric].dropna().to_numpy(dtype=float)
            b = runs.loc[runs["method"] == label_b, metric].dropna().to_numpy(dtype=float)
            rows.append(
                {
                    "claim": claim, "student": student, "comparison": f"{label_a} vs {label_b}", "metric": name,
                    "label_a": label_a, "label_b": label_b, **_spread(a, "a"), **_spread(b, "b"),
                    "test": f"Welch's t, one-sided (A {_SYMBOL[alternative]} B)", **welch(a, b, alternative),
                }
            )  # fmt: skip
    return rows


def _cost_rows(student_runs: pd.DataFrame, teachers: pd.DataFrame, student: str) -> list[dict[str, Any]]:
    """Claim 5 for one student: params and mult-adds exactly, throughput by Welch's t over timing blocks."""
    base = {"claim": 5, "student": student, "comparison": f"{student} vs teacher", "label_a": student, "label_b": "teacher"}
    if student_runs.empty or teachers.empty:
        lacking = "student" if student_runs.empty else "teacher"
        return [{**base, "metric": "cost", "verdict": NOT_TESTED, "reason": f"no {lacking} run among the aggregated runs"}]
    mine, theirs = student_runs.iloc[0], teachers.iloc[0]  # cost is per architecture: every seed carries the same
    rows = []
    for column, metric in (("params", "params"), ("mult_adds", "mult-adds")):
        a, b = float(mine[column]), float(theirs[column])
        if math.isnan(a) or math.isnan(b):
            rows.append({**base, "metric": metric, "verdict": NOT_TESTED, "reason": f"no {metric} in the runs' cost; rerun measure-cost and evaluate"})
            continue
        holds = a < b
        rows.append(
            {
                **base, "metric": metric, "mean_a": a, "mean_b": b, "ratio": a / b, "test": "exact (A < B)",
                "verdict": HOLDS if holds else FAILS, "reason": "" if holds else f"student {metric} not smaller than the teacher's",
            }
        )  # fmt: skip
    a, b = _blocks(mine), _blocks(theirs)
    row = {**base, "metric": "images/s", **_spread(a, "a"), **_spread(b, "b"), "ratio": a.mean() / b.mean(), "test": "Welch's t, one-sided (A > B)"}
    absent = [who for who, record in (("student", mine), ("teacher", theirs)) if not _has_blocks(record)]
    if absent:
        reason = f"no per-block timings (images_per_s_blocks) for the {' and '.join(absent)}; rerun measure-cost to record them"
        return [*rows, {**row, "verdict": INCONCLUSIVE, "reason": reason}]
    return [*rows, {**row, **welch(a, b, "greater")}]


def _has_blocks(record: pd.Series) -> bool:
    blocks = record.get("images_per_s_blocks")
    return isinstance(blocks, (list, tuple, np.ndarray)) and len(blocks) > 0


def _blocks(record: pd.Series) -> np.ndarray:
    """Per-block images/s samples, or the one summary figure where the cost step recorded no blocks."""
    return np.asarray(record["images_per_s_blocks"] if _has_blocks(record) else [record["images_per_s"]], dtype=float)


def _spread(values: np.ndarray, side: str) -> dict[str, float]:
    return {f"mean_{side}": float(values.mean()) if len(values) else math.nan, f"std_{side}": float(values.std(ddof=1)) if len(values) > 1 else math.nan, f"n_{side}": len(values)}


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
