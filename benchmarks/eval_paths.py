"""Evaluation time for N samples: akdg's in-memory generator path against PNG files scored by torch-fidelity.

- ours: what ``akdg evaluate`` runs (``akdg.metrics.fidelity_metrics``): the generator is torch-fidelity's
  input1 (``GenerativeModelModuleWrapper``), its images quantised to uint8 in memory, no files.
- png: the same N images (the same z: torch-fidelity's noise from ``rng_seed``, drawn in the same
  batches), quantised the same way (``akdg.images.to_uint8``), written as PNG files with PIL, then
  ``torch_fidelity.calculate_metrics`` on the folder.

Both use the same extractor weights, reference split, options and torch-fidelity arguments, and a
reference cache filled once beforehand (as the DAG's ``reference_stats`` does), so what is timed is
everything from z to the metrics, PNG writing included. PNG is lossless: the metrics must be
identical, and are compared exactly. torch-fidelity opens image files as RGB (PIL ``convert("RGB")``);
akdg's classifier on grey data takes one channel, so the png path runs the same classifier through an
adapter that keeps the first of the three (equal) channels: the same weights on the same pixel values.

The generator: the config's first student trained ``--train-steps`` vanilla steps (or ``--checkpoint``).
The extractor: the config's classifier trained here (or ``--extractor``, e.g. results/models/digits/extractor.pt);
Inception-v3 too where its weights are at hand (``--inception-weights``, or torch-fidelity's download location).

    python benchmarks/eval_paths.py                     # the default config, N = 2000
    python benchmarks/eval_paths.py --samples 10000 --inception-weights ~/pt_inception-2015-12-05-6726825d.pth
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
import torch_fidelity
from PIL import Image
from torch_fidelity.noise import random_normal

from akdg import checkpoint, datasets, metrics
from akdg.architectures import build_generator
from akdg.config import load_config
from akdg.feature_extractor_classifier import NAME as CLASSIFIER
from akdg.feature_extractor_classifier import ClassifierFeatureExtractor, train_classifier
from akdg.feature_extractors import INCEPTION, default_inception_weights_path
from akdg.images import to_uint8
from akdg.io import sha256_file
from akdg.losses import build_loss
from akdg.training import TrainContext, train
from benchlib import CONFIGS, RESULTS, choose_device, interleave, machine, ratio_figures, run, setup_logging, table, write_result

log = logging.getLogger("eval_paths")
FROM_RGB = "akdg-classifier-from-rgb"  # the classifier on torch-fidelity's RGB file images (grey repeated)


class FirstChannelClassifier(ClassifierFeatureExtractor):
    """akdg's classifier fed channel 0 of an RGB image file read from a grey PNG (R = G = B = the grey value)."""

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return super().forward(images[:, :1])


def register_from_rgb() -> None:
    if FROM_RGB not in torch_fidelity.registry.FEATURE_EXTRACTORS_REGISTRY:
        torch_fidelity.register_feature_extractor(FROM_RGB, FirstChannelClassifier)


def file_extractor(extractor: str, channels: int) -> str:
    """The extractor the png path runs: the same one, or for 1-channel data the classifier's RGB adapter."""
    if extractor == CLASSIFIER and channels == 1:
        register_from_rgb()
        return FROM_RGB
    return extractor


def in_memory(
    generator: nn.Module,
    splits: datasets.ImageSplits,
    z_dim: int,
    extractor: str,
    weights: Path,
    options: dict[str, Any],
    cache: metrics.ReferenceCache,
) -> dict[str, float]:
    """akdg's path, exactly what ``steps.evaluate`` calls."""
    return metrics.fidelity_metrics(
        generator, splits.x_train, z_dim=z_dim, extractor=extractor, extractor_weights=weights, options=options, cache=cache
    )


def write_pngs(generator: nn.Module, z_dim: int, options: dict[str, Any], folder: Path) -> int:
    """The images torch-fidelity's generator path would make (its noise, its batches), as numbered PNG files; returns their bytes."""
    device = metrics.metrics_device()
    generator = generator.to(device).eval()
    rng = np.random.RandomState(options["rng_seed"])
    count, batch = options["num_samples"], min(options["batch_size"], options["num_samples"])
    with torch.no_grad():
        for start in range(0, count, batch):
            z = random_normal(rng, (min(batch, count - start), z_dim)).to(device)
            for index, image in enumerate(to_uint8(generator(z)).cpu().numpy(), start):
                Image.fromarray(image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)).save(folder / f"{index:07d}.png")
    return sum(path.stat().st_size for path in folder.iterdir())


def from_files(
    folder: Path, splits: datasets.ImageSplits, extractor: str, weights: Path, options: dict[str, Any], cache: metrics.ReferenceCache
) -> dict[str, float]:
    """torch-fidelity on a folder of image files, with the arguments akdg passes it (same batch size, cache, device)."""
    name = file_extractor(extractor, splits.channels)
    # files are read as RGB: the reference goes in as RGB too
    return metrics.score(str(folder), metrics.UInt8Images(splits.x_train, 3), name, weights, options, cache, samples_find_ext="png")


def via_png(
    generator: nn.Module,
    splits: datasets.ImageSplits,
    z_dim: int,
    extractor: str,
    weights: Path,
    options: dict[str, Any],
    cache: metrics.ReferenceCache,
    folder: Path,
) -> dict[str, Any]:
    """Write the PNGs then score the folder; returns the metrics and the seconds the writing took."""
    start = time.perf_counter()
    size = write_pngs(generator, z_dim, options, folder)
    written = time.perf_counter() - start
    return {"metrics": from_files(folder, splits, extractor, weights, options, cache), "write_seconds": written, "png_bytes": size}


def trained_generator(config: dict[str, Any], splits: datasets.ImageSplits, steps: int) -> nn.Module:
    """The config's first student after ``steps`` vanilla steps on the CPU (0: as initialised): images with some structure."""
    torch.manual_seed(0)
    generator = build_generator(config["students"][0], resolution=splits.resolution, channels=splits.channels, z_dim=config["z_dim"])
    if steps:
        training = config["training"]
        ctx = TrainContext(
            generator=generator,
            teacher=None,
            images=torch.from_numpy(splits.x_train),
            z_dim=config["z_dim"],
            batch_size=training["batch_size"],
            loss=build_loss(config["loss"]),
            discriminator_spec=config["student_discriminator"],
            optimizer=training["optimizer"],
            n_dis=training["n_dis"],
            device=torch.device("cpu"),
            rng=torch.Generator().manual_seed(0),
        )
        train("vanilla", {}, ctx, steps, log_every=steps)
    return generator.eval()


def compare(
    generator: nn.Module,
    splits: datasets.ImageSplits,
    z_dim: int,
    extractor: str,
    weights: Path,
    options: dict[str, Any],
    repeats: int,
    workdir: Path,
) -> dict[str, Any]:
    """Both paths, interleaved, ``repeats`` times after one untimed run each (which fills the reference caches)."""
    device = torch.device(metrics.metrics_device())
    folder, checksum = workdir / "png", sha256_file(weights)  # evaluate hashes the weights once per job: not timed
    cache_ours = metrics.reference_cache(workdir / "cache", splits, extractor, checksum)
    cache_png = metrics.reference_cache(workdir / "cache", splits, file_extractor(extractor, splits.channels), checksum)
    pairs: list[dict[str, Any]] = []

    def png_run() -> Callable[[], dict[str, Any]]:
        shutil.rmtree(folder, ignore_errors=True)  # each run writes every file anew
        folder.mkdir(parents=True)
        return lambda: via_png(generator, splits, z_dim, extractor, weights, options, cache_png, folder)

    runs = {"ours": lambda: lambda: in_memory(generator, splits, z_dim, extractor, weights, options, cache_ours), "png": png_run}
    interleave(runs, 1, device)
    seconds, cpu_seconds = interleave(runs, repeats, device, on_result=lambda _, values: pairs.append(values))
    identical = all(pair["ours"] == pair["png"]["metrics"] for pair in pairs)
    ratios, cpu_ratios = ratio_figures(seconds["png"], seconds["ours"]), ratio_figures(cpu_seconds["png"], cpu_seconds["ours"])
    return {
        "extractor": extractor,
        "png_extractor": file_extractor(extractor, splits.channels),
        "weights_sha256": checksum,
        "samples": options["num_samples"],
        "options": options,
        "metrics_device": str(device),
        "repeats": repeats,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "png_write_seconds": [pair["png"]["write_seconds"] for pair in pairs],
        "png_bytes": pairs[-1]["png"]["png_bytes"],
        "ours_median_s": statistics.median(seconds["ours"]),
        "png_median_s": statistics.median(seconds["png"]),
        "png_over_ours": ratios["median_paired_ratio"],  # the headline: each pair ran back to back
        "png_over_ours_of_medians": ratios["ratio_of_medians"],
        "png_over_ours_cpu_time": cpu_ratios["median_paired_ratio"],
        "ours_faster": ratios["median_paired_ratio"] > 1.0,
        "metrics_ours": pairs[-1]["ours"],
        "metrics_png": pairs[-1]["png"]["metrics"],
        "metrics_identical": identical,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000, help="N generated images per evaluation")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1: what the DAG gives an evaluation job)")
    parser.add_argument("--train-steps", type=int, default=100, help="vanilla steps for the generator scored (0: as initialised)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="score this generator checkpoint instead")
    parser.add_argument("--extractor", type=Path, default=None, help="the classifier's weights (.pt); default: train one here")
    parser.add_argument("--extractor-epochs", type=int, default=5, help="epochs for the classifier trained here")
    parser.add_argument(
        "--inception-weights",
        type=Path,
        default=None,
        help=f"Inception-v3 weights (default: {default_inception_weights_path()} if present)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "eval_paths.json")
    args = parser.parse_args(argv)
    setup_logging()
    choose_device("cpu", args.threads)  # metrics pick their own device (CUDA where there is one), as evaluate's do
    info = machine(torch.device(metrics.metrics_device()))
    config = load_config(CONFIGS["default"])  # its data, first student and evaluation options
    options = {**config["evaluation"], "num_samples": args.samples}
    if options["kid_subset_size"] > args.samples:
        options["kid_subset_size"] = args.samples
        log.warning("KID subset size lowered to --samples (%d)", args.samples)
    workdir = Path(tempfile.mkdtemp(prefix="akdg-eval-paths-"))
    try:
        datasets.prepare(config["dataset"], workdir / "data.npz")
        splits = datasets.load_prepared(workdir / "data.npz")
        if args.checkpoint:
            generator, _ = checkpoint.load_generator(
                args.checkpoint, expect={"resolution": splits.resolution, "channels": splits.channels, "z_dim": config["z_dim"]}
            )
            source = f"checkpoint {args.checkpoint}"
        else:
            generator = trained_generator(config, splits, args.train_steps)
            source = f"{config['students'][0]} after {args.train_steps} vanilla steps (seed 0)"
        weights = args.extractor
        if weights is None:
            weights = workdir / "extractor.pt"
            train_classifier(splits, {**config["extractor"], "epochs": args.extractor_epochs}, weights)
        results = [compare(generator, splits, config["z_dim"], CLASSIFIER, weights, options, args.repeats, workdir)]
        inception = args.inception_weights or default_inception_weights_path()
        skipped = None
        if inception.is_file():
            results.append(compare(generator, splits, config["z_dim"], INCEPTION, inception, options, args.repeats, workdir))
        else:
            skipped = f"inception-v3-compat: no weights at {inception} (offline here); pass --inception-weights to measure it"
            log.warning("skipped %s", skipped)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows = [
        (
            r["extractor"],
            r["samples"],
            f"{r['ours_median_s']:.3f}",
            f"{r['png_median_s']:.3f}",
            f"{statistics.median(r['png_write_seconds']):.3f}",
            f"{r['png_over_ours']:.2f}",
            f"{r['png_over_ours_cpu_time']:.2f}",
            "yes" if r["metrics_identical"] else "NO",
        )
        for r in results
    ]
    log.info(
        "\n%s",
        table(["extractor", "N", "ours s", "png s", "of which writing", "png/ours (paired)", "by CPU time", "identical metrics"], rows),
    )
    settings = {
        "config": "default",
        "samples": args.samples,
        "repeats": args.repeats,
        "threads": args.threads,
        "generator": source,
        "extractor": str(args.extractor) if args.extractor else f"akdg-classifier trained here ({args.extractor_epochs} epochs)",
    }
    write_result(args.out, "eval_paths", info, settings, results, skipped=skipped, target="ours faster than png, with identical metrics")
    if not all(r["metrics_identical"] for r in results):
        log.error("the two paths gave different metrics for the same images")
        return 1
    return 0


if __name__ == "__main__":
    run(main)
