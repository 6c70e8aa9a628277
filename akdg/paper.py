"""The paper's own numbers (Tables I and II of AKDG, ICPR 2020) as data, matched to our table rows.

Kept as a CSV (``akdg/data/akdg_icpr2020.csv``) rather than in code so that a reader can check each
number against the paper in one place, and so the tables can print "ours − paper" beside every cell
the paper reports. Params and mult-adds are as printed (2-3 significant digits, e.g. 4.1M).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from akdg.registry import AkdgError

PAPER_CSV = Path(__file__).with_name("data") / "akdg_icpr2020.csv"
KEY = ("dataset", "role", "arch", "method")
# Cells the paper reports and the tables compare (summary column names); is_std rides along with is_mean.
COMPARED = ("layers", "params", "mult_adds", "is_mean", "fid")
NUMBERS = (*COMPARED, "is_std")


def load_paper(path: Path | str = PAPER_CSV) -> pd.DataFrame:
    """The paper's rows, keyed by (dataset, role, arch, method label); teacher rows have no method."""
    try:
        paper = pd.read_csv(
            path,
            dtype={name: str for name in (*KEY, "paper_row", "source")},
            keep_default_na=False,
            na_values={name: [""] for name in NUMBERS},
        )
    except FileNotFoundError:
        raise AkdgError(f"{path} is missing; reinstall akdg (the file ships with the package)") from None
    missing = {*KEY, *NUMBERS, "paper_row", "source"} - set(paper.columns)
    if missing:
        raise AkdgError(f"{path} lacks the columns {sorted(missing)}; restore it from the repository")
    duplicated = paper[paper.duplicated(list(KEY), keep=False)]
    if len(duplicated):
        raise AkdgError(f"{path} has several rows for the keys {duplicated[list(KEY)].values.tolist()}; keep one per key")
    return paper


def paper_datasets(paper: pd.DataFrame | None = None) -> list[str]:
    """Dataset names the paper has numbers for (the names our configs use, e.g. ``cifar10``)."""
    paper = load_paper() if paper is None else paper
    return sorted(paper["dataset"].unique())


def match_paper(summary: pd.DataFrame, dataset: str, paper: pd.DataFrame | None = None) -> pd.DataFrame:
    """Paper numbers and ``ours - paper`` for each summary row, aligned with ``summary``'s index.

    Teacher rows match the dataset's teacher row whatever its architecture (the paper has one
    teacher per dataset); student rows match by (architecture family, method label), and where a
    grid has several sizes of a family, only the size nearest the paper's parameters (on a log
    scale) does: the paper's numbers are of one size. Only the
    metrics the paper reports for this dataset get columns (``paper_<metric>``,
    ``<metric>_minus_paper``); a dataset the paper lacks gets a frame with no columns. Unmatched
    rows hold NaN.
    """
    paper = load_paper() if paper is None else paper
    rows = paper[paper["dataset"] == dataset]
    if rows.empty:
        return pd.DataFrame(index=summary.index)
    reported = [name for name in COMPARED if rows[name].notna().any()]
    numbers = [*reported, *(["is_std"] if "is_mean" in reported else [])]
    teacher = rows[rows["role"] == "teacher"]
    students = rows[rows["role"] == "student"].set_index(["arch", "method"])
    nearest = _nearest_sizes(summary, students)
    matched = []
    for _, row in summary.iterrows():
        if row["role"] == "teacher" and len(teacher):
            matched.append(teacher.iloc[0])
        elif (
            row["role"] == "student"
            and (row["arch"], row["method"]) in students.index
            and (row["arch"] not in nearest or nearest[row["arch"]] == row["params"])
        ):
            matched.append(students.loc[(row["arch"], row["method"])])
        else:
            matched.append(None)
    columns: dict[str, list] = {"paper_row": [], "paper_source": [], **{f"paper_{name}": [] for name in numbers}}
    for match in matched:
        columns["paper_row"].append(None if match is None else match["paper_row"])
        columns["paper_source"].append(None if match is None else match["source"])
        for name in numbers:
            columns[f"paper_{name}"].append(float("nan") if match is None else float(match[name]))
    result = pd.DataFrame(columns, index=summary.index)
    for name in reported:
        result[f"{name}_minus_paper"] = summary[name].astype(float) - result[f"paper_{name}"]
    return result


def _nearest_sizes(summary: pd.DataFrame, students: pd.DataFrame) -> dict[str, float]:
    """Per student family with several sizes, the params of the size nearest the paper's (log ratio)."""
    nearest = {}
    for arch, sizes in summary[summary["role"] == "student"].groupby("arch")["params"]:
        candidates = sizes.dropna().unique()
        if len(candidates) > 1 and arch in students.index.get_level_values("arch"):
            paper_params = students.xs(arch, level="arch")["params"].dropna()
            if len(paper_params):
                nearest[arch] = min(candidates, key=lambda params: abs(np.log(params / paper_params.iloc[0])))
    return nearest
