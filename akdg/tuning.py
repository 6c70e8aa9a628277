"""The tuning stage: an equal grid of settings per method, scored on the validation split, the best one applied.

A setting is ``{knob: value}``; knob ``lr`` sets both optimizer learning rates, any other knob is a method
option. Candidates are named by a readable label of their values (``kd_weight1-lr0.0002``), which names
their checkpoints and run JSONs. Selection reads only validation scores: the test split is never read to choose.
"""

from __future__ import annotations

import copy
import itertools
import logging
from pathlib import Path
from typing import Any

from akdg.io import read_json, sha256_file
from akdg.registry import AkdgError

log = logging.getLogger(__name__)

LR = "lr"  # the knob that sets lr_g and lr_d together
RULE = "lowest validation FID; a tie goes to the candidate listed first (the grid's order)"


def _value_label(value: Any) -> str:
    return format(value, "g") if isinstance(value, float) else str(value).lower()


def candidate_label(setting: dict[str, Any]) -> str:
    """A setting as a path-safe label: knob and value per knob, in the grid's order (``kd_weight0.3-lr0.0002``)."""
    return "-".join(f"{knob}{_value_label(value)}" for knob, value in setting.items())


def candidates(grid: dict[str, list[Any]]) -> dict[str, dict[str, Any]]:
    """Every combination of one method's grid, by label, in the grid's order."""
    knobs = list(grid)
    settings = [dict(zip(knobs, values)) for values in itertools.product(*(grid[knob] for knob in knobs))]
    return {candidate_label(setting): setting for setting in settings}


def tuned_source(config: dict[str, Any], label: str) -> str | None:
    """The method label whose selection ``label``'s students train with: its own, a shared one, or None (no tuning)."""
    tuning = config.get("tuning")
    if not tuning:
        return None
    if label in tuning["grid"]:
        return label
    return tuning.get("share", {}).get(label)


def apply_setting(spec: dict[str, Any], setting: dict[str, Any]) -> dict[str, Any]:
    """A copy of a train spec with ``setting`` applied: ``lr`` to both optimizer rates, other knobs to the method's options."""
    spec = copy.deepcopy(spec)
    for knob, value in setting.items():
        if knob == LR:
            spec["optimizer"] = {**spec["optimizer"], "lr_g": value, "lr_d": value}
        else:
            spec["method_options"] = {**spec["method_options"], knob: value}
    return spec


def check_tuning(config: dict[str, Any], methods: dict[str, dict[str, Any]], option_schemas: dict[str, dict[str, Any]]) -> None:
    """Refuse a tuning block that cannot run as meant, in a sentence naming the fix.

    ``methods``: each label's variant (:func:`akdg.config.method_variants`); ``option_schemas``: each label's
    method option schema.
    """
    from akdg.method_options import check_options

    tuning = config.get("tuning")
    if not tuning:
        return
    if not config["dataset"].get("validation_fraction"):
        raise AkdgError("tuning needs a validation split to choose on; set dataset.validation_fraction (e.g. 0.1) or remove tuning")
    if tuning["num_samples"] < config["evaluation"]["isc_splits"]:
        raise AkdgError(
            f"tuning.num_samples={tuning['num_samples']} is below evaluation.isc_splits={config['evaluation']['isc_splits']}; raise it"
        )
    grid, share = tuning["grid"], tuning.get("share", {})
    for label in [*grid, *share]:
        if label not in methods:
            raise AkdgError(
                f"tuning names method {label!r}, which is not in methods ({', '.join(methods)}); add it there or remove it from tuning"
            )
    for label, knobs in grid.items():
        schema = option_schemas[label]
        for knob, values in knobs.items():
            where = f"tuning.grid.{label}.{knob}"
            if not values:
                raise AkdgError(f"{where} is empty; list at least one value")
            if knob == LR:
                for value in values:
                    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                        raise AkdgError(f"{where} holds {value!r}; a learning rate is a positive number")
            elif knob not in schema["properties"]:
                raise AkdgError(
                    f"{where}: {knob!r} is no knob of method {methods[label]['method']!r}; use lr or one of its options "
                    f"({', '.join(sorted(schema['properties'])) or 'none'})"
                )
            else:
                for value in values:
                    check_options(schema, {**methods[label]["options"], knob: value}, where)
    for label, source in share.items():
        if label in grid:
            raise AkdgError(f"tuning: method {label!r} has both a grid and a share; keep one")
        if source not in grid:
            raise AkdgError(f"tuning.share.{label} is {source!r}, which has no grid; share the setting of a method in tuning.grid")
        foreign = sorted(knob for knob in grid[source] if knob != LR and knob not in option_schemas[label]["properties"])
        if foreign:
            raise AkdgError(
                f"tuning.share.{label}: {source}'s grid tunes {', '.join(foreign)}, which method {methods[label]['method']!r} "
                "does not take; give it a grid of its own"
            )
    for label in methods:
        if label not in grid and label not in share:
            raise AkdgError(
                f"tuning is on but method {label!r} has neither a grid nor a share; give it tuning.grid.{label} "
                f"(the same budget as the others) or tuning.share.{label}"
            )


def select(candidate_runs: dict[str, Path], settings: dict[str, dict[str, Any]], identity: dict[str, Any]) -> dict[str, Any]:
    """The selection record of one (student, method): every candidate's validation scores and the chosen one.

    ``candidate_runs``: label -> run JSON of its validation evaluation; ``settings``: label -> setting, in the grid's
    order, which breaks ties. Refuses runs scored against any reference but the validation split.
    """
    rows = []
    for label, setting in settings.items():
        run = read_json(candidate_runs[label])
        reference = run["protocol"]["dataset"].get("reference_split")
        if reference != "validation":
            raise AkdgError(
                f"{candidate_runs[label]} was scored against the {reference} split; tuning chooses on the validation split only"
            )
        metrics = run["metrics"]
        rows.append(
            {
                "label": label,
                "setting": setting,
                "fid": metrics["fid"],
                "kid_mean": metrics.get("kid_mean"),
                "precision": metrics.get("precision"),
                "recall": metrics.get("recall"),
                "run_sha256": sha256_file(candidate_runs[label]),
            }
        )
    chosen = min(rows, key=lambda row: row["fid"])  # min keeps the first of equals: ties go to the grid's order
    dataset = run["protocol"]["dataset"]
    return {
        **identity,
        "candidates": rows,
        "chosen": {"label": chosen["label"], "setting": chosen["setting"], "validation_fid": chosen["fid"]},
        "rule": RULE,
        "protocol": {
            "reference_split": "validation",
            "validation": dataset.get("validation"),
            "data_sha256": dataset.get("content_sha256"),
            "evaluation": run["protocol"]["evaluation"],
            "feature_extractor": run["protocol"]["feature_extractor"],
            "test_split_read": False,
        },
    }


def applied_tuning(selection_path: Path, spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A train spec with the selection's chosen setting applied, and what a checkpoint records of it.

    Refuses a selection made for another student generator than the spec's (a shared one comes from another method).
    """
    selection = read_json(selection_path)
    if selection["generator"] != spec["generator"]:
        raise AkdgError(
            f"tuning selection {selection_path} was made for generator {selection['generator']}, not this spec's "
            f"{spec['generator']}; pass the selection of this student"
        )
    chosen = selection["chosen"]
    record = {
        "source_method": selection["method"],
        "setting": chosen["setting"],
        "label": chosen["label"],
        "validation_fid": chosen["validation_fid"],
        "candidates": len(selection["candidates"]),
        "rule": selection["rule"],
        "selection_sha256": sha256_file(selection_path),
    }
    return apply_setting(spec, chosen["setting"]), record


def tuning_table(selections: list[Path]) -> Any:
    """Every candidate of every selection with its validation scores, the chosen one marked, one row each (a DataFrame)."""
    import pandas as pd

    rows = []
    for path in selections:
        selection = read_json(path)
        for candidate in selection["candidates"]:
            rows.append(
                {
                    "student": selection["student"],
                    "method": selection["method"],
                    "candidate": candidate["label"],
                    **{f"setting.{knob}": value for knob, value in candidate["setting"].items()},
                    "val_fid": candidate["fid"],
                    "val_precision": candidate["precision"],
                    "val_recall": candidate["recall"],
                    "chosen": candidate["label"] == selection["chosen"]["label"],
                }
            )
    frame = pd.DataFrame(rows)
    settings = [column for column in frame.columns if column.startswith("setting.")]
    return frame[["student", "method", "candidate", *settings, "val_fid", "val_precision", "val_recall", "chosen"]]
