"""The DAG's steps as functions: each reads its inputs, writes its outputs atomically, logs, returns.

The CLI (``akdg <step>``) and the Snakemake rules call these; a ``spec`` is the part of the config a
step depends on, so that Snakemake reruns a step exactly when its part of the protocol changes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from akdg import checkpoint, datasets
from akdg.architectures import build_generator
from akdg.config import check_spec
from akdg.images import to_uint8
from akdg.io import atomic_write, prepare_outputs, read_json, sha256_file, write_json
from akdg.losses import build_loss, describe_loss
from akdg.progress import LoggedProgress
from akdg.protocol import describe_device, environment
from akdg.registry import AkdgError
from akdg.resume import Resumable
from akdg.training import TrainContext, check_probe, checks_made, curve_steps, ema_bn_statistics, resolve_device, train
from akdg.tuning import applied_tuning

log = logging.getLogger(__name__)


def download_data(spec: dict[str, Any], out: Path | None = None) -> None:
    """Fetch or verify the dataset's official files, then record what was done if ``out`` is given.

    The workflow tracks the files themselves (:func:`akdg.datasets.sources`), so it asks for no record.
    """
    prepare_outputs([out] if out is not None else [])
    datasets.download(spec)
    if out is not None:
        write_json(out, {"dataset": spec, "downloader": spec["name"] in datasets.DOWNLOADERS.names()})


def prepare_data(spec: dict[str, Any], out: Path) -> None:
    prepare_outputs([out, Path(out).with_suffix(".json")])
    protocol = datasets.prepare(spec, out)
    write_json(Path(out).with_suffix(".json"), protocol)


def train_extractor(spec: dict[str, Any], data: Path, out: Path) -> None:
    from akdg.feature_extractor_classifier import train_classifier  # torch-fidelity: imported only where needed

    prepare_outputs([out, Path(out).with_suffix(".json")])
    splits = datasets.load_prepared(data)
    protocol = train_classifier(splits, spec, out)
    protocol["weights_sha256"] = sha256_file(out)
    write_json(Path(out).with_suffix(".json"), protocol)


def with_defaults(step: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``spec`` checked against its step's schema, with the config schema's defaults for what it omits."""
    spec = copy.deepcopy(spec)
    check_spec(step, spec)
    return spec


def train_generator(
    spec: dict[str, Any], data: Path, out: Path, teacher: Path | None = None, checkpoint_every: int = 0, tuned: Path | None = None
) -> None:
    """Train one generator (teacher or student) with one method and seed, then save it.

    With ``checkpoint_every`` > 0 the training state goes to ``<out>.state`` every that many steps
    and a rerun resumes from it; it is removed once ``out`` is written. The spec's ``device`` is the
    one asked for (``auto`` on every machine, so Snakemake's params do not depend on where it runs);
    the device it resolved to goes into the checkpoint's meta and the resume identity, so a state
    written on a GPU is never continued on a CPU. A run that diverges (NaN/Inf or out-of-bound
    losses, NaN/Inf weights: see :func:`akdg.training.train`; NaN/Inf probe images from the generator
    to be saved: :func:`akdg.training.check_probe`) stops with an AkdgError
    before ``out`` is written; its meta's ``checks`` records what was checked. With ``curve_fractions``
    in the spec the checkpoint also holds the generator at those fractions of the steps (its ``curve``). ``tuned``: a tuning selection
    (``akdg select-tuning``) whose chosen setting is applied to the spec and recorded in the meta's ``tuning``.
    """
    spec = with_defaults("train", spec)
    tuning_record = None
    if tuned is not None:
        spec, tuning_record = applied_tuning(tuned, spec)
        log.info("tuned setting %s (validation FID %.3f)", tuning_record["setting"], tuning_record["validation_fid"])
    prepare_outputs([out, f"{out}.state"])
    device = resolve_device(spec["device"])
    splits = datasets.load_prepared(data, splits=("train",))  # models learn from the train split alone
    torch.manual_seed(spec["seed"])
    generator = build_generator(spec["generator"], resolution=splits.resolution, channels=splits.channels, z_dim=spec["z_dim"])
    teacher_model, teacher_meta = None, None
    if teacher is not None:
        teacher_model, teacher_meta = checkpoint.load_generator(
            teacher, expect={"resolution": splits.resolution, "channels": splits.channels, "z_dim": spec["z_dim"]}
        )
        teacher_model.requires_grad_(False)
    ctx = TrainContext(
        generator=generator,
        teacher=teacher_model,
        generator_spec=spec["generator"],
        teacher_spec=teacher_meta["generator"] if teacher_meta else None,
        images=torch.from_numpy(splits.x_train),
        z_dim=spec["z_dim"],
        batch_size=spec["batch_size"],
        loss=build_loss(spec["loss"]),
        discriminator_spec=spec["discriminator"],
        optimizer=spec["optimizer"],
        n_dis=spec["n_dis"],
        device=device,
        rng=torch.Generator().manual_seed(spec["seed"]),
        amp=spec["amp"],
        channels_last=spec["channels_last"],
        compile=spec["compile"],
        generator_batch_size=spec.get("generator_batch_size"),
    )
    teacher_sha256 = sha256_file(teacher) if teacher else None
    identity = {"spec": spec, "data_sha256": splits.protocol["content_sha256"], "teacher_sha256": teacher_sha256, "device": device.type}
    resume = Resumable(Path(f"{out}.state"), hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest(), checkpoint_every)
    history = train(
        spec["method"],
        spec["method_options"],
        ctx,
        spec["steps"],
        log_every=spec["log_every"],
        ema_decay=spec["ema_decay"],
        resume=resume,
        max_abs_loss=spec["max_abs_loss"],
        ema_bn_batches=spec["ema_bn_batches"],
        lr_schedule=spec.get("lr_schedule"),
        curve_at=curve_steps(spec.get("curve_fractions", []), spec["steps"]),
    )
    meta = {
        "generator": spec["generator"],
        "resolution": splits.resolution,
        "channels": splits.channels,
        "z_dim": spec["z_dim"],
        "training": {
            **spec,
            "loss": describe_loss(spec["loss"]),
            "resolved_device": describe_device(device),
            "data_sha256": splits.protocol["content_sha256"],
            "teacher_sha256": teacher_sha256,
            "teacher_training": teacher_meta["training"] if teacher_meta else None,
            "teacher_seed": teacher_meta["training"].get("seed") if teacher_meta else None,  # which of the grid's teachers
            **({"tuning": tuning_record} if tuning_record else {}),
            "final_losses": history[-1],
            "checks": checks_made(spec["log_every"], spec["max_abs_loss"]),
            "images_seen": spec["steps"] * spec["batch_size"],  # generator steps x batch size
            "real_images_seen": ctx.real_images_seen,  # real images the discriminators drew (n_dis per step; none for MSE)
            "ema_bn_statistics": ema_bn_statistics(generator, spec["ema_decay"], spec["batch_size"], spec["ema_bn_batches"]),
        },
    }
    check_probe(generator, spec["z_dim"], device)
    curve = [{**snapshot, "fraction": snapshot["step"] / spec["steps"]} for snapshot in ctx.curve]
    checkpoint.save_generator(out, generator.cpu(), meta, ctx.last_weights, curve=curve)  # CPU tensors: the checkpoint loads anywhere
    resume.discard()
    log.info("saved %s after %d steps; final losses %s", out, spec["steps"], history[-1])


def import_teacher(spec: dict[str, Any], data: Path, source: Path, out: Path) -> None:
    """Bring a teacher trained elsewhere into the DAG, checked against this config's data and z size."""
    prepare_outputs([out])
    splits = datasets.load_prepared(data)
    generator, meta = checkpoint.import_generator(
        source, spec["generator"], resolution=splits.resolution, channels=splits.channels, z_dim=spec["z_dim"]
    )
    meta["training"] = {**meta["training"], "method": "imported", "source_sha256": sha256_file(source)}
    checkpoint.save_generator(out, generator, meta)
    log.info("imported teacher %s (%s) -> %s", source, spec["generator"], out)


def measure_cost(spec: dict[str, Any], data: Path, out: Path, threads: int) -> None:
    """Cost of every generator in the grid, measured side by side in one process.

    Cost depends on the architecture only (not the weights), so it is measured once per generator,
    not per seed, and in one job so that speed figures share the same machine state. They are timed
    on ``speed.device`` (``auto``: the GPU where there is one, as on a cluster's GPU node), in
    ``speed.rounds`` interleaved rounds (:func:`akdg.cost.measure_speeds`); every student's entry
    has its per-round images/s over the teacher's (claim 5 tests those), and every entry the same
    ``measurement`` block: how the job ran and whether the machine was loaded.
    """
    from akdg import cost

    speed = with_defaults("measure-cost", spec)["speed"]
    prepare_outputs([out])
    device = resolve_device(speed["device"])
    splits = datasets.load_prepared(data)
    generators, figures = {}, {}
    for label, generator_spec in spec["generators"].items():
        torch.manual_seed(0)
        generators[label] = build_generator(generator_spec, resolution=splits.resolution, channels=splits.channels, z_dim=spec["z_dim"]).to(
            device
        )
        figures[label] = {
            "generator": generator_spec,
            "resolution": splits.resolution,
            **cost.generator_size(generators[label], spec["z_dim"]),
        }
    speeds, measurement = cost.measure_speeds(
        generators,
        spec["z_dim"],
        batch_size=speed["batch_size"],
        min_run_time=speed["min_run_time"],
        threads=threads,
        rounds=speed["rounds"],
    )
    ratios = cost.throughput_ratios(speeds, "teacher") if "teacher" in speeds else {}
    for label in figures:
        figures[label].update(speeds[label], **ratios.get(label, {}), measurement=measurement)
        log.info("%s: %s", label, figures[label])
    if measurement["loaded"]:
        log.warning("the machine was loaded while speed was measured (%s); rerun measure-cost on an idle machine", measurement)
    write_json(out, figures)


def evaluate(spec: dict[str, Any], data: Path, extractor: Path, cost_path: Path, reference_cache: Path | None = None) -> None:
    """Score table rows and write one JSON per row with its metrics, cost and full protocol.

    Each row's ``kind``: ``trained`` (needs ``checkpoint``), ``untrained`` (a freshly initialised
    generator: the sanity row) or ``real`` (the test split itself: the best attainable row).
    ``extractor``: the extractor's protocol JSON (or the classifier's .pt beside it).
    ``reference_cache``: folder of train-split features (``reference_stats`` fills it once, so parallel
    evaluations only read it); absent entries are computed and filled; None computes without caching.
    A checkpoint with training-curve snapshots (``evaluation.curve_fractions``) also gets each scored with
    ``evaluation.curve_samples`` samples, as the run JSON's ``curve`` (one entry per step, in order).
    Every row is scored before any JSON is written: a row that fails (e.g. a generator whose images
    hold NaN or Inf) writes none of the job's files, so no table reads part of a failed job.
    The spec's ``reference`` (default train) is the split rows are scored against; ``validation`` (the
    tuning stage) reads only the validation split from ``data``, never the test split, and takes no real rows.
    """
    from akdg import metrics  # torch-fidelity (and torchvision) cost seconds to import: only here

    prepare_outputs([row["out"] for row in spec["rows"]])
    split = spec.get("reference", "train")
    if split == "validation" and any(row["kind"] == "real" for row in spec["rows"]):
        raise AkdgError("a real row scores the test split, which an evaluation against the validation split never reads; drop it")
    splits = datasets.load_prepared(data, splits=("validation",) if split == "validation" else ("train", "test"))
    reference = splits.x_val if split == "validation" else splits.x_train
    options = spec["evaluation"]
    costs = read_json(cost_path)
    uncosted = sorted({row["run"]["generator_label"] for row in spec["rows"] if row["kind"] != "real"} - set(costs))
    if uncosted:
        raise AkdgError(
            f"cost file {cost_path} has no figures for {', '.join(uncosted)}; rerun 'akdg measure-cost' with this config's generators"
        )
    fe = _configured_extractor(options, extractor)
    cache = metrics.reference_cache(reference_cache, splits, fe.name, fe.weights_sha256, split=split) if reference_cache else None
    if cache is not None:
        cache.remove_damaged(fe.name)
        if not cache.is_filled(fe.name):
            prepare_outputs([], folders=[cache.root])  # the evaluation fills it
    device = metrics.metrics_device()
    results = []
    for row in LoggedProgress(spec["rows"], desc="evaluate", unit="rows", logger=log):
        kind, run = row["kind"], row["run"]
        row_options = options
        if kind == "real" and options["kid_subset_size"] > len(splits.x_test):
            # A small test split (LSUN's 300 val images) is scored whole; its KID subsets shrink to fit, as recorded.
            row_options = {**options, "kid_subset_size": len(splits.x_test)}
            log.warning("real-data row: KID subset size %d -> %d (the test split's size)", options["kid_subset_size"], len(splits.x_test))
        if split == "validation" and options["kid_subset_size"] > len(reference):
            # A validation split smaller than a KID subset: its subsets shrink to fit, as recorded.
            row_options = {**options, "kid_subset_size": len(reference)}
            log.warning("KID subset size %d -> %d (the validation split's size)", options["kid_subset_size"], len(reference))
        available = len(splits.x_test) if kind == "real" else options["num_samples"]
        if row_options["kid_subset_size"] > min(available, len(reference)):
            raise AkdgError(
                f"evaluation.kid_subset_size={options['kid_subset_size']} exceeds the {available} samples of row {run}; lower it"
            )
        training, checkpoint_path, last, curve_points = None, row.get("checkpoint"), None, []
        if kind == "real":
            candidate: Any = splits.x_test
            samples = {"generated": 0, "candidate_split": "test", "candidate": len(splits.x_test)}
        else:
            if kind == "trained":
                expect = {
                    "generator": run["generator"],
                    "resolution": splits.resolution,
                    "channels": splits.channels,
                    "z_dim": spec["z_dim"],
                }
                candidate, meta = checkpoint.load_generator(checkpoint_path, expect=expect)
                training = meta["training"]
                if checkpoint.has_last_weights(checkpoint_path):
                    last, _ = checkpoint.load_generator(checkpoint_path, expect=expect, last=True)
                curve_points = checkpoint.curve_generators(checkpoint_path, expect=expect)
            else:
                torch.manual_seed(run["seed"])
                candidate = build_generator(
                    run["generator"], resolution=splits.resolution, channels=splits.channels, z_dim=spec["z_dim"]
                ).eval()
            samples = {"generated": options["num_samples"], "candidate": options["num_samples"]}
        cache_use = None
        if cache is not None:
            cache_use = {"root": str(cache.root), "key": cache.key, "fields": cache.fields, "hit": cache.is_filled(fe.name)}
            log.info("reference features %s in %s (key %s)", "read" if cache_use["hit"] else "computed and filled", cache.root, cache.key)
        scored = {
            name: metrics.fidelity_metrics(
                model,
                reference,
                z_dim=spec["z_dim"],
                extractor=fe.name,
                extractor_weights=fe.weights,
                options=row_options,  # the same rng_seed: the same z for both weight sets
                cache=cache,
                label=_row_label(run, checkpoint_path) + (" (its last-step weights)" if name == "metrics_last" else ""),
            )
            for name, model in (("metrics", candidate), ("metrics_last", last))
            if model is not None
        }
        scores = scored["metrics"]
        curve_options = _curve_options(options)
        curve = [
            {
                **point,
                **metrics.fidelity_metrics(
                    model,
                    reference,
                    z_dim=spec["z_dim"],
                    extractor=fe.name,
                    extractor_weights=fe.weights,
                    options=curve_options,
                    cache=cache,
                    label=f"{_row_label(run, checkpoint_path)} (its weights at step {point['step']})",
                ),
            }
            for point, model in curve_points
        ]
        result = {
            "run": {**run, "kind": kind},
            **scored,
            **({"curve": curve} if curve else {}),
            "cost": costs[run["generator_label"]] if kind != "real" else None,
            "protocol": {
                "dataset": {**splits.protocol, "reference_split": split, "reference_samples": len(reference)},
                "samples": samples,
                "samples_checked_finite": kind != "real",  # generated images with NaN/Inf are refused; real ones are uint8
                **(
                    {
                        "weights_scored": "ema",
                        "weights_note": "metrics: the EMA generator (the saved one, which the table reports); "
                        "metrics_last: the raw weights at the last training step, scored on the same z and reference",
                    }
                    if last is not None
                    else {}
                ),
                **(
                    {
                        "curve": {
                            "samples": curve_options["num_samples"],
                            "evaluation": curve_options,
                            "note": "curve: the generator the run would have saved at each step (the EMA with standing BatchNorm "
                            "statistics where it has one), each scored with the table's noise seed on curve_samples samples, fewer "
                            "than metrics', so its FID is biased upward against the table's",
                        }
                    }
                    if curve
                    else {}
                ),
                "feature_extractor": fe.protocol,
                "evaluation": row_options,
                "metrics_device": device,
                "reference_cache": cache_use,
                "noise": "torch-fidelity 'normal' noise from numpy RandomState(rng_seed): the same z for every generator",
                "checkpoint_sha256": sha256_file(checkpoint_path) if checkpoint_path else None,
                "training": training,
                "environment": environment(),
            },
        }
        results.append((row["out"], result))
        log.info("%s: IS %.3f FID %.3f KID %.4f", row["out"], scores["is_mean"], scores["fid"], scores["kid_mean"])
    for out, result in results:
        write_json(out, result)


def _curve_options(options: dict[str, Any]) -> dict[str, Any]:
    """The evaluation options of a training-curve point: ``curve_samples`` samples, the KID subsets and IS splits
    shrunk to fit them where they would not, everything else (seed, extractor, precision/recall's k) the table's."""
    samples = options.get("curve_samples", options["num_samples"])
    return {
        **options,
        "num_samples": samples,
        "kid_subset_size": min(options["kid_subset_size"], samples),
        "isc_splits": min(options["isc_splits"], samples),
    }


def _row_label(run: dict[str, Any], checkpoint_path: Path | str | None) -> str:
    """How an evaluation error names its row: the run's identity and, for a trained one, its checkpoint."""
    identity = ", ".join(
        f"{key} {run[key]}" for key in ("dataset", "role", "generator_label", "method", "seed") if run.get(key) not in (None, "")
    )
    return f"run [{identity}]" + (f" from checkpoint {checkpoint_path}" if checkpoint_path else "")


def sample_grid_images(
    checkpoints: dict[str, Path], z_dim: int, count: int, seed: int
) -> tuple[dict[str, np.ndarray], dict[str, int | None]]:
    """Images from each generator on the same z (uint8 NCHW), and each one's training seed from its checkpoint,
    for side-by-side sample grids that say which run they show."""
    z = torch.randn(count, z_dim, generator=torch.Generator().manual_seed(seed))
    images, training_seeds = {}, {}
    for label, path in checkpoints.items():
        generator, meta = checkpoint.load_generator(path, expect={"z_dim": z_dim})  # the z drawn above must fit it
        with torch.no_grad():
            images[label] = to_uint8(generator(z)).numpy()
        training_seeds[label] = (meta.get("training") or {}).get("seed")
    return images, training_seeds


def fetch_extractor(spec: dict[str, Any], out: Path) -> None:
    """Resolve a pretrained feature extractor's weights and write its protocol JSON ``out``.

    Inception's weights are located or downloaded; the pinned classifier's are checked and copied
    to the .pt beside ``out``, where a trained classifier's would be.
    """
    from akdg.feature_extractors import fetch_extractor as fetch

    prepare_outputs([out, Path(out).with_suffix(".pt")])
    protocol = fetch(spec, Path(out).with_suffix(".pt"))
    write_json(out, protocol)
    log.info("%s: weights %s (sha256 %s) -> %s", protocol["name"], protocol["weights"], protocol["weights_sha256"][:16], out)


def reference_stats(spec: dict[str, Any], data: Path, extractor: Path, cache_dir: Path, out: Path) -> None:
    """Fill the reference (train split) feature cache once, so parallel evaluations only read it.

    ``spec``: the evaluation block, and ``split``: train (default) or validation (the tuning stage's reference,
    read alone). ``out`` records the cache key, what it is made of, and each file's sha256.
    """
    from akdg import metrics

    prepare_outputs([out], folders=[cache_dir])
    split = spec.get("split", "train")
    splits = datasets.load_prepared(data, splits=(split,))
    fe = _configured_extractor(spec, extractor)
    cache = metrics.reference_cache(cache_dir, splits, fe.name, fe.weights_sha256, split=split)
    cache.remove_damaged(fe.name)
    hit = cache.is_filled(fe.name)
    files = metrics.fill_reference_cache(
        splits.x_val if split == "validation" else splits.x_train,
        extractor=fe.name,
        extractor_weights=fe.weights,
        batch_size=spec["batch_size"],
        cache=cache,
    )
    write_json(
        out,
        {
            "key": cache.key,
            "fields": cache.fields,
            "cache_dir": str(cache.root),
            "files": {path.name: sha256_file(path) for path in files},
            "already_filled": hit,
            "metrics_device": metrics.metrics_device(),
            "feature_extractor": fe.protocol,
        },
    )
    log.info("reference features %s in %s (key %s)", "were already" if hit else "computed", cache.root, cache.key)


def _configured_extractor(options: dict[str, Any], path: Path) -> Any:
    """The extractor at ``path`` (see ``feature_extractors.load_extractor``), checked to be the one the config names."""
    from akdg.feature_extractors import CLASSIFIER, load_extractor

    fe = load_extractor(path, options.get("allow_nonstandard_inception", False))
    wanted = options.get("feature_extractor", CLASSIFIER)  # no schema default: old configs keep their exact spec
    if fe.name != wanted:
        raise AkdgError(f"evaluation.feature_extractor is {wanted!r} but {path} describes {fe.name!r}; pass the extractor the config names")
    return fe


def select_tuning(spec: dict[str, Any], runs: list[Path], out: Path) -> None:
    """Choose one (student, method)'s setting from its candidates' validation run JSONs and write the selection.

    ``spec``: student, generator, method (label), method_registered, seed, num_samples and candidates (label ->
    setting, in the grid's order); ``runs``: one run JSON per candidate, named ``<label>.json``.
    """
    from akdg.tuning import select

    check_spec("select-tuning", spec)
    prepare_outputs([out])
    by_label = {Path(path).stem: Path(path) for path in runs}
    missing = sorted(set(spec["candidates"]) - set(by_label))
    if missing:
        raise AkdgError(f"select-tuning: no run JSON for candidate(s) {', '.join(missing)}; pass one <label>.json per candidate")
    identity = {key: spec[key] for key in ("student", "generator", "method", "method_registered", "seed", "num_samples")}
    selection = select(by_label, spec["candidates"], identity)
    write_json(out, selection)
    log.info(
        "%s/%s: chose %s (validation FID %.3f) of %d",
        spec["student"],
        spec["method"],
        selection["chosen"]["label"],
        selection["chosen"]["validation_fid"],
        len(selection["candidates"]),
    )


def tuning_tables(selections: list[Path], out_md: Path, out_csv: Path) -> None:
    """Every candidate with its validation scores, the chosen ones marked, as Markdown and CSV."""
    from akdg.tuning import tuning_table

    prepare_outputs([out_md, out_csv])
    frame = tuning_table(selections)
    with atomic_write(Path(out_csv)) as tmp:
        frame.to_csv(tmp, index=False)
    with atomic_write(Path(out_md)) as tmp:
        tmp.write_text(
            "Tuning: every candidate's scores on the validation split (never the test split); chosen: lowest validation FID.\n\n"
            + _tuning_display(frame).to_markdown(index=False, disable_numparse=True)
            + "\n"
        )


def _tuning_display(frame: Any) -> Any:
    """The tuning table as text cells: settings as given (0.0002, not 0.000), scores to 3 decimals, the chosen row marked."""

    def setting(value: Any) -> str:
        if isinstance(value, float):
            return "" if value != value else format(value, "g")  # NaN: a knob this method's grid lacks
        return str(value)

    settings = {column: setting for column in frame.columns if column.startswith("setting.")}
    scores = {column: lambda value: f"{value:.3f}" for column in ("val_fid", "val_precision", "val_recall")}
    shown = frame.copy()
    for column, show in {**settings, **scores, "chosen": lambda value: "chosen" if value else ""}.items():
        shown[column] = shown[column].map(show)
    return shown
