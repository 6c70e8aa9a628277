"""A method beside its ablations: what each removed piece is worth, per student.

A registered method that declares ``ablation_of`` (``akdg-kd-only``: no D_S and no real images;
``akdg-paired``: the teacher's images come from the student's own z) is compared with the method it
ablates, per student and metric, as full − ablation with its Welch 95% interval over seeds
(:func:`akdg.sizes.method_comparisons`, the per-size table's statistics). A negative FID difference
means the removed piece helped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from akdg.io import atomic_write
from akdg.registry import METHODS
from akdg.sizes import comparison_markdown, method_comparisons

log = logging.getLogger(__name__)


def ablation_pairs(base_methods: Iterable[str]) -> list[tuple[str, str]]:
    """(full method, ablation) for every registered ablation among ``base_methods`` whose full method is there too."""
    present = set(base_methods)
    pairs = {(METHODS.metadata(name).get("ablation_of"), name) for name in present}
    return sorted((full, ablation) for full, ablation in pairs if full in present)


def ablation_outputs(tables_dir: Path | str, dataset: str) -> list[Path]:
    """What :func:`write_ablations` writes: the table as Markdown and CSV."""
    return [Path(tables_dir) / f"{dataset}_ablations.{ext}" for ext in ("md", "csv")]


def write_ablations(runs: pd.DataFrame, tables_dir: Path | str, dataset: str) -> list[Path]:
    """Write ``<dataset>_ablations.md/.csv`` from the runs (rows of :func:`akdg.tables.load_runs`); return their paths."""
    students = runs[(runs["role"] == "student") & runs["base_method"].notna()]
    comparisons = method_comparisons(runs, ablation_pairs(students["base_method"].unique()))
    notes = [
        "A − B: the full method minus its ablation, difference of the means over seeds with Welch's 95% interval "
        "(Welch–Satterthwaite df), per row on its own, uncorrected for the number of rows",
        "a negative FID difference (positive IS, precision or recall difference) means the piece the ablation removes helped; "
        "an interval across 0 leaves the sign open",
        "each ablation changes one thing: akdg-kd-only has no D_S and sees no real images; akdg-paired gives the teacher "
        "the student's z in D_KD's batches; both use the full method's tuned setting where the grid tunes",
    ]
    paths = ablation_outputs(tables_dir, dataset)
    with atomic_write(paths[0]) as tmp:
        tmp.write_text(comparison_markdown(comparisons, f"{dataset}: each method beside its ablations", notes))
    with atomic_write(paths[1]) as tmp:
        comparisons.to_csv(tmp, index=False)
    log.info("wrote %s ablation table (%d rows)", dataset, len(comparisons))
    return paths
