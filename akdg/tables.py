"""Per-run JSONs -> paper-style tables (Markdown, CSV, LaTeX) and per-run metrics files for DVC.

Layout follows the paper's Table I: the teacher, then for each student family its untrained
(sanity), vanilla, MSE and AKDG rows (any registered method, in config order), then the test split
as the "real data" row. Cells are mean ± std over seeds; the protocol is printed under the table.
For a dataset the paper has (cifar10, lsun_bedroom), each cell the paper reports gets the paper's
number and ours − paper beside it; the paper's claims are tested in a second table (akdg.claims).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd

from akdg.claims import ClaimsReport, evaluate_claims, load_warning, write_claims
from akdg.io import atomic_write, prepare_outputs, read_json, write_json
from akdg.paper import load_paper, match_paper
from akdg.registry import AkdgError

log = logging.getLogger(__name__)

METRIC_COLUMNS = ("is_mean", "fid", "kid_mean", "precision", "recall")
# The raw last-step weights' scores beside the EMA's (the run JSON's metrics_last); NaN for runs without an EMA.
LAST_COLUMNS = ("is_mean_last", "fid_last", "precision_last", "recall_last")
COST_COLUMNS = ("layers", "params", "mult_adds", "images_per_s", "latency_ms")
# From the run's training protocol: images seen = generator steps x batch size (what separates vanilla-b64
# from vanilla-b2048); real_images_seen counts the real images the discriminators drew (n_dis per step, none for MSE).
TRAINING_COLUMNS = ("batch_size", "images_seen", "real_images_seen")


def load_runs(paths: Iterable[Path | str]) -> pd.DataFrame:
    """One row per run JSON: identity (with the base method a label trains with), metrics, cost."""
    rows = []
    for path in paths:
        result = read_json(path)
        try:
            rows.append(_run_row(result))
        except RUN_FORM_ERRORS as error:
            raise _not_a_run(path, error) from None
    if not rows:
        raise AkdgError("no run JSONs to aggregate; run the evaluation steps first")
    return pd.DataFrame(rows)


RUN_FORM_ERRORS = (KeyError, TypeError, AttributeError)  # what reading a field of a JSON without it raises


def _not_a_run(path: Path | str, error: Exception) -> AkdgError:
    return AkdgError(
        f"run JSON {path} lacks a field a run has ({type(error).__name__}: {error}); delete it and rerun the evaluation that makes it"
    )


def _run_row(result: dict[str, Any]) -> dict[str, Any]:
    run, cost = result["run"], result.get("cost") or {}
    return {
        "dataset": run["dataset"],
        "loader": result["protocol"]["dataset"]["name"],  # the dataset's registered name, e.g. cifar10 under any label
        "student": run.get("generator_label", ""),
        "arch": (run.get("generator") or {}).get("arch", ""),
        "role": run["role"],
        "method": run.get("method", ""),
        "base_method": (result["protocol"].get("training") or {}).get("method"),
        "kind": run["kind"],
        "seed": run.get("seed"),
        "teacher_seed": run.get("teacher_seed"),  # the teacher a distilled student distilled, or a teacher's own seed
        **{key: result["metrics"][key] for key in ("is_mean", "fid", "kid_mean", "is_std", "kid_std")},
        **{key: result["metrics"].get(key) for key in ("precision", "recall")},  # absent from runs scored before akdg added them
        **{f"{key}_last": (result.get("metrics_last") or {}).get(key, float("nan")) for key in ("is_mean", "fid", "precision", "recall")},
        **{key: cost.get(key) for key in COST_COLUMNS},
        **{key: cost.get(key) for key in ("images_per_s_rounds", "throughput_ratio_rounds")},
        "speed_measurement": cost.get("measurement"),
        "samples": result["protocol"]["samples"]["candidate"],
        **{key: (result["protocol"].get("training") or {}).get(key) for key in TRAINING_COLUMNS},
    }


def row_label(row: pd.Series) -> str:
    if row["role"] == "teacher":
        return f"Teacher ({row['arch']})"
    if row["kind"] == "real":
        return "Real data (test split)"
    return f"{row['student']} {row['method']}"


def summarise(runs: pd.DataFrame, method_order: list[str]) -> pd.DataFrame:
    """Mean and sample std over seeds per row; rows in the paper's order: the teacher, then the students by
    family (alphabetical), size (params; then name, where two widths share a count) and method, then the real data."""
    runs = runs.assign(row=runs.apply(row_label, axis=1))
    grouped = runs.groupby("row", sort=False)
    summary = grouped[[*METRIC_COLUMNS, *COST_COLUMNS, *LAST_COLUMNS]].mean()
    spread = grouped[list(METRIC_COLUMNS)].std(ddof=1).add_suffix("_seed_std")
    first = grouped[["role", "student", "arch", "method", "kind", "samples", *TRAINING_COLUMNS]].first()
    teachers = grouped["teacher_seed"].agg(_seed_list).rename("teacher_seeds")
    summary = pd.concat([first, summary, spread, grouped.size().rename("seeds"), teachers], axis=1).reset_index()
    order = {name: index for index, name in enumerate(["untrained", *method_order])}
    summary["_block"] = summary["role"].map({"teacher": 0, "student": 1, "reference": 2})
    summary["_method"] = summary["method"].map(order).fillna(len(order))
    summary = summary.sort_values(["_block", "arch", "params", "student", "_method"], kind="stable").drop(columns=["_block", "_method"])
    return summary.reset_index(drop=True)


def _seed_list(seeds: pd.Series) -> str:
    """The distinct teacher seeds of a row's runs, e.g. ``0 1``: which teachers a row's cells span (empty without one)."""
    return " ".join(str(int(seed)) for seed in sorted(seeds.dropna().unique()))


def _mean_std(mean: float, std: float, seeds: int, digits: int) -> str:
    if pd.isna(mean):
        return "–"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if seeds > 1 else f"{mean:.{digits}f}"


def _count(value: float, spec: str = ".2f") -> str:
    """1234567 -> 1.23M; ``spec`` "g" prints the paper's rounded counts as printed (4.1M, not 4.10M)."""
    if pd.isna(value):
        return "–"
    for threshold, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= threshold:
            return f"{value / threshold:{spec}}{suffix}"
    return f"{value:.0f}"


def _signed(value: float, spec: str) -> str:
    return "–" if pd.isna(value) else f"{value:+{spec}}"


def _signed_count(value: float) -> str:
    return "–" if pd.isna(value) else ("+" if value >= 0 else "-") + _count(abs(value))


# Display column -> (summary column, paper cell, ours - paper cell) for the cells the paper reports.
PAPER_CELLS: dict[str, tuple[str, Callable[[pd.Series], str], Callable[[float], str]]] = {
    "layers": ("layers", lambda row: _number(row["paper_layers"], ".0f"), lambda v: _signed(v, ".0f")),
    "params": ("params", lambda row: _count(row["paper_params"], "g"), _signed_count),
    "mult-adds": ("mult_adds", lambda row: _count(row["paper_mult_adds"], "g"), _signed_count),
    "IS": (
        "is_mean",
        lambda row: "–" if pd.isna(row["paper_is_mean"]) else f"{row['paper_is_mean']:.2f} ({row['paper_is_std']:.2f})",
        lambda v: _signed(v, ".2f"),
    ),
    "FID": ("fid", lambda row: _number(row["paper_fid"], ".2f"), lambda v: _signed(v, ".2f")),
}


def _number(value: float, spec: str) -> str:
    return "–" if pd.isna(value) else f"{value:{spec}}"


def display_table(summary: pd.DataFrame, paper: pd.DataFrame | None = None) -> pd.DataFrame:
    """Human-readable cells, as in the paper's tables.

    ``paper`` (from :func:`akdg.paper.match_paper`) adds "<cell> paper" and "<cell> Δ" (ours − paper)
    beside each cell it has numbers for; "–" where the paper has no such row.
    """
    table = pd.DataFrame(
        {
            "Method": summary["row"],
            "layers": summary["layers"].map(lambda v: "–" if pd.isna(v) else f"{v:.0f}"),
            "params": summary["params"].map(_count),
            "mult-adds": summary["mult_adds"].map(_count),
            "IS": [_mean_std(m, s, n, 2) for m, s, n in zip(summary["is_mean"], summary["is_mean_seed_std"], summary["seeds"])],
            "FID": [_mean_std(m, s, n, 2) for m, s, n in zip(summary["fid"], summary["fid_seed_std"], summary["seeds"])],
            "KID": [_mean_std(m, s, n, 4) for m, s, n in zip(summary["kid_mean"], summary["kid_mean_seed_std"], summary["seeds"])],
            "precision": [_mean_std(m, s, n, 3) for m, s, n in zip(summary["precision"], summary["precision_seed_std"], summary["seeds"])],
            "recall": [_mean_std(m, s, n, 3) for m, s, n in zip(summary["recall"], summary["recall_seed_std"], summary["seeds"])],
            "images/s": summary["images_per_s"].map(lambda v: "–" if pd.isna(v) else f"{v:,.0f}"),
            "batch": summary["batch_size"].map(lambda v: "–" if pd.isna(v) else f"{v:.0f}"),
            "images seen": summary["images_seen"].map(_count),
            "seeds": summary["seeds"],
        }
    )
    if paper is None:
        return table
    columns = {}
    for name, cells in table.items():
        columns[name] = cells
        metric, paper_cell, diff_cell = PAPER_CELLS.get(name, (None, None, None))
        if metric and f"paper_{metric}" in paper:
            columns[f"{name} paper"] = paper.apply(paper_cell, axis=1)
            columns[f"{name} Δ"] = paper[f"{metric}_minus_paper"].map(diff_cell)
    return pd.DataFrame(columns)


def paper_note(paper: pd.DataFrame) -> list[str]:
    """What the paper columns are, or nothing when the dataset has none."""
    sources = sorted(paper["paper_source"].dropna().unique()) if "paper_source" in paper else []
    if not sources:
        return []
    return [
        f"paper: {', '.join(sources)} of Tsunashima et al., ICPR 2020 (akdg/data/akdg_icpr2020.csv), matched by "
        "teacher role or by (student family, method label), in a size sweep at the size nearest the paper's; 'paper' "
        "cells as printed there (params and mult-adds rounded; its IS spread in brackets is the paper's, not over "
        "seeds); Δ = ours − paper; – where the paper has no such row"
    ]


def protocol_lines(example: dict[str, Any], cost: dict[str, Any] | None) -> list[str]:
    """The protocol every number in the table was produced under, from one run's JSON and one generator's cost.

    Every run embeds the figures of the one ``measure_cost`` job, so one generator's cost says where
    and how speed was timed for all of them.
    """
    protocol = example["protocol"]
    dataset, extractor, evaluation = protocol["dataset"], protocol["feature_extractor"], protocol["evaluation"]
    environment, layers = protocol["environment"], extractor["features"]
    return [
        f"dataset: {dataset['name']} ({dataset['source']}); {dataset['preprocessing']}; split: {dataset['split']}; "
        f"content sha256 {dataset['content_sha256'][:16]}…",
        f"reference statistics: {dataset['reference_split']} split, {dataset['reference_samples']} images; "
        f"generated samples per run: {evaluation['num_samples']} (real-data row: the whole test split)",
        f"feature extractor: {extractor['name']} ({extractor_origin(extractor)}weights sha256 {extractor['weights_sha256'][:16]}…); "
        f"IS on '{layers['is']}' with {evaluation['isc_splits']} splits; FID on '{layers['fid']}'; KID on "
        f"'{layers['kid']}', {evaluation['kid_subsets']} subsets of {evaluation['kid_subset_size']}"
        + (
            f"; precision and recall (Kynkäänniemi et al. 2019) on '{layers['prc']}', k = {evaluation.get('prc_neighborhood')}"
            if "prc" in layers
            else ""
        ),
        "cells: mean ± sample std over seeds (a single value where one seed); the teacher row's over the teacher seeds, "
        "each trained alone; a distilled student's seed distils its paired teacher (the CSV's teacher_seeds); " + speed_line(cost),
        "weights: a model trained with an EMA is scored on its EMA weights (the saved generator); the CSV's *_last "
        "columns are the raw weights at its last training step, scored on the same z (empty without an EMA)",
        f"code: git {environment['git_commit']}; "
        + ", ".join(f"{name} {version}" for name, version in environment["packages"].items() if version),
    ]


def loss_lines(results: Iterable[dict[str, Any]]) -> list[str]:
    """Which GAN loss each trained model used, the teacher's and each method label's, as their checkpoints recorded it."""
    used: dict[str, set[str]] = {}
    for result in results:
        training = result["protocol"].get("training") or {}
        if "loss" in training:
            model = "teacher" if result["run"]["role"] == "teacher" else result["run"]["method"]
            used.setdefault(model, set()).add(loss_text(training["loss"]))
    if not used:
        return []
    return [
        "GAN loss per model: "
        + "; ".join(f"{model} {', '.join(sorted(losses))}" for model, losses in used.items())
        + " (a method without a discriminator, such as mse, records the loss it was given but uses none)"
    ]


def tuning_lines(results: Iterable[dict[str, Any]]) -> list[str]:
    """Each tuned (student, method)'s chosen setting and validation FID, as its checkpoint recorded them (docs/tuning.md)."""
    tuned = {}
    for result in results:
        tuning = (result["protocol"].get("training") or {}).get("tuning")
        if tuning and result["run"]["role"] == "student":
            setting = ", ".join(
                f"{knob}={value:g}" if isinstance(value, float) else f"{knob}={value}" for knob, value in tuning["setting"].items()
            )
            shared = f", {tuning['source_method']}'s" if tuning["source_method"] != result["run"]["method"] else ""
            tuned[(result["run"]["generator_label"], result["run"]["method"])] = (
                f"{setting} (validation FID {tuning['validation_fid']:.2f}, best of {tuning['candidates']}{shared})"
            )
    if not tuned:
        return []
    return ["tuned on the validation split: " + "; ".join(f"{student} {method}: {text}" for (student, method), text in tuned.items())]


def loss_text(loss: str | dict[str, Any]) -> str:
    """``wgan-gp (gp_weight 10, drift 0.001)`` from a recorded loss (a name, or a name with its parameters)."""
    if isinstance(loss, str):
        return loss
    parameters = ", ".join(f"{key} {value:g}" for key, value in loss.items() if key != "name")
    return f"{loss['name']} ({parameters})" if parameters else loss["name"]


def extractor_origin(extractor: dict[str, Any]) -> str:
    """Where the extractor's weights came from: pinned or trained here (on what, how long, how accurate), or a file."""
    if "trained_on" not in extractor:  # Inception: the file it was given or downloaded, and whether it is the official one
        return "".join(f"{extractor[key]}; " for key in ("source", "weights_check") if extractor.get(key))
    trained = extractor["trained_on"]
    origin = "pinned, shipped with akdg" if extractor.get("source") == "pinned" else "trained by the DAG"
    return (
        f"{origin}; trained on {trained['dataset']} at {trained['resolution']} px, {trained['split']}, "
        f"{extractor['training']['epochs']} epochs, test accuracy {extractor['test_accuracy']:.4f}; "
    )


def speed_line(cost: dict[str, Any] | None) -> str:
    """How speed was measured; a cost from before interleaved rounds says so (its figures are single-generator medians)."""
    if not cost or "speed_device" not in cost:
        return "speed: not measured"
    rounds = cost.get("speed_rounds")
    how = (
        f"medians over {rounds} interleaved rounds in one job, each timing one block of about "
        f"{cost['speed_min_run_time']:g} s per generator and batch size, the order rotated each round"
        if rounds
        else "medians of timed blocks, each generator timed alone in one job"
    )
    return (
        f"images/s at batch {cost['speed_batch_size']} and latency at batch 1 ({how}), "
        f"on {cost['speed_device']}; CPU {cost['speed_processor']}, {cost['speed_threads']} threads"
    )


def run_id(row: pd.Series) -> str:
    if row["role"] == "teacher":
        return f"teacher/seed{row['seed']:.0f}"
    if row["kind"] == "real":
        return "real"
    return f"{row['student']}/{row['method']}/seed{row['seed']:.0f}"


def write_run_metrics(runs: pd.DataFrame, metrics_dir: Path) -> None:
    """One small numeric JSON per run, so that ``dvc metrics show`` lists every run as a row."""
    metrics_dir = Path(metrics_dir)
    if metrics_dir.exists():
        shutil.rmtree(metrics_dir)  # a run dropped from the grid must not linger here
    for _, row in runs.iterrows():
        values = {key: (None if pd.isna(row[key]) else float(row[key])) for key in (*METRIC_COLUMNS, "params", "images_per_s")}
        write_json(metrics_dir / f"{run_id(row)}.json", values)


def aggregate(
    run_paths: list[Path], method_order: list[str], tables_dir: Path, metrics_dir: Path, dataset: str
) -> tuple[pd.DataFrame, ClaimsReport]:
    """Write ``<dataset>.md/.csv/.tex`` and ``<dataset>_claims.md/.csv`` under ``tables_dir`` and per-run DVC
    metrics; return the runs (for plots) and the claims report (for the log). ``dataset`` is the runs'
    ``dataset.label``; the paper's numbers are matched by the loader's name the runs' protocol records."""
    tables_dir = Path(tables_dir)
    prepare_outputs(
        [
            tables_dir / name
            for name in (f"{dataset}.csv", f"{dataset}.md", f"{dataset}.tex", f"{dataset}_claims.md", f"{dataset}_claims.csv")
        ],
        folders=[metrics_dir],
    )
    runs = load_runs(run_paths)
    found = sorted(set(runs["dataset"]))
    if found != [dataset]:
        raise AkdgError(f"the runs are of dataset(s) {found}, not {dataset!r}; pass one dataset's run JSONs and its name as --dataset")
    loaders = sorted(set(runs["loader"]))
    if len(loaders) != 1:
        raise AkdgError(f"the runs of {dataset!r} were prepared by the dataset loaders {loaders}; pass the run JSONs of one dataset")
    summary = summarise(runs, method_order)
    paper = match_paper(summary, loaders[0], load_paper())  # the paper's rows are keyed by loader name, whatever the label
    table = display_table(summary, paper)  # no paper columns for a dataset the paper lacks
    results = [read_json(path) for path in run_paths]  # once, for every note below
    cost = next((result["cost"] for result in results if result.get("cost")), None)  # the real-data row has none
    try:
        notes = (
            protocol_lines(results[0], cost)
            + loss_lines(results)
            + tuning_lines(results)
            + load_warning(cost.get("measurement") if cost else None)
            + paper_note(paper)
        )
    except RUN_FORM_ERRORS as error:
        raise _not_a_run(run_paths[0], error) from None
    with atomic_write(tables_dir / f"{dataset}.csv") as tmp:
        pd.concat([summary, paper], axis=1).to_csv(tmp, index=False)
    with atomic_write(tables_dir / f"{dataset}.md") as tmp:
        tmp.write_text(f"# {dataset}\n\n{table.to_markdown(index=False)}\n\n" + "".join(f"- {line}\n" for line in notes))
    with atomic_write(tables_dir / f"{dataset}.tex") as tmp:
        tmp.write_text(table.to_latex(index=False, caption=f"{dataset}: " + "; ".join(notes[:3]), label=f"tab:{dataset}"))
    write_run_metrics(runs, metrics_dir)
    claims = evaluate_claims(runs, dataset)
    write_claims(claims, tables_dir)
    log.info(
        "wrote %s tables for %d rows from %d runs (paper columns: %s)",
        dataset,
        len(summary),
        len(runs),
        "yes" if len(paper.columns) else "none",
    )
    return runs, claims
