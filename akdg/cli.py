"""The ``akdg`` command: one subcommand per DAG step, plus ``run`` and ``validate-config``.

Steps take a ``--spec`` (JSON: the slice of the config the step depends on) so Snakemake can pass
exactly what each job needs; users can call any step by hand the same way.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from akdg.registry import AkdgError, import_plugins

log = logging.getLogger("akdg")

REPO_ROOT = Path(__file__).resolve().parent.parent


def _spec(text: str) -> dict[str, Any]:
    """``--spec`` value: inline JSON, or ``@path`` to a JSON file."""
    try:
        return json.loads(Path(text[1:]).read_text() if text.startswith("@") else text)
    except (OSError, json.JSONDecodeError) as error:
        raise argparse.ArgumentTypeError(f"--spec must be JSON or @file.json ({error})") from None


def _count(minimum: int, meaning: str) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``minimum``, refused in a sentence that says what the number is."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= {minimum} ({meaning})")
        return value

    return parse


def _threads(requested: int | None) -> int:
    import torch

    threads = max(1, min(requested or os.cpu_count() or 1, os.cpu_count() or 1))
    torch.set_num_threads(threads)
    return threads


def cmd_download_data(args: argparse.Namespace) -> None:
    from akdg.steps import download_data

    download_data(args.spec, args.out)


def cmd_prepare_data(args: argparse.Namespace) -> None:
    from akdg.steps import prepare_data

    prepare_data(args.spec, args.out)


def cmd_train_extractor(args: argparse.Namespace) -> None:
    from akdg.steps import train_extractor

    _threads(args.threads)
    train_extractor(args.spec, args.data, args.out)


def cmd_train(args: argparse.Namespace) -> None:
    from akdg.steps import train_generator

    _threads(args.threads)
    train_generator(args.spec, args.data, args.out, teacher=args.teacher, checkpoint_every=args.checkpoint_every)


def cmd_import_teacher(args: argparse.Namespace) -> None:
    from akdg.steps import import_teacher

    import_teacher(args.spec, args.data, args.checkpoint, args.out)


def cmd_measure_cost(args: argparse.Namespace) -> None:
    from akdg.steps import measure_cost

    measure_cost(args.spec, args.data, args.out, threads=_threads(args.threads))


def cmd_evaluate(args: argparse.Namespace) -> None:
    from akdg.steps import evaluate

    _threads(args.threads)
    evaluate(args.spec, args.data, args.extractor, args.cost, reference_cache=args.reference_cache)


def cmd_fetch_extractor(args: argparse.Namespace) -> None:
    from akdg.steps import fetch_extractor

    fetch_extractor(args.spec, args.out)


def cmd_reference_stats(args: argparse.Namespace) -> None:
    from akdg.steps import reference_stats

    _threads(args.threads)
    reference_stats(args.spec, args.data, args.extractor, args.cache_dir, args.out)


def cmd_aggregate(args: argparse.Namespace) -> None:
    from akdg.io import prepare_outputs
    from akdg.plots import fid_vs_params
    from akdg.tables import aggregate

    plot, plot_data = args.plots_dir / f"{args.dataset}_fid_vs_params.png", args.plots_dir / f"{args.dataset}_fid_vs_params.csv"
    prepare_outputs([plot, plot_data])
    runs, claims = aggregate(args.runs, args.method_order, args.tables_dir, args.metrics_dir, args.dataset)
    for _, claim in claims.summary.iterrows():
        log.info("claim %d (%s) on %s: %s [%s]", claim["claim"], claim["claim_text"], claim["dataset"], claim["verdict"], claim["rows"])
    fid_vs_params(runs, plot, plot_data, args.dataset)


def cmd_plot_samples(args: argparse.Namespace) -> None:
    from akdg.io import prepare_outputs
    from akdg.plots import sample_grids
    from akdg.steps import sample_grid_images

    prepare_outputs([args.out])
    checkpoints = {}
    for item in args.checkpoint:
        label, _, path = item.partition("=")
        if not path:
            raise AkdgError(f"--checkpoint {item!r} must be LABEL=PATH")
        checkpoints[label] = Path(path)
    images, training_seeds = sample_grid_images(checkpoints, args.z_dim, args.count, args.seed)
    log.info("%s: %s", args.out, sample_grids(images, args.out, noise_seed=args.seed, training_seeds=training_seeds))


def cmd_validate_config(args: argparse.Namespace) -> None:
    from akdg.config import capacity_warnings, load_config

    config = load_config(args.config)
    for line in capacity_warnings(config):
        log.warning("%s", line)
    log.info("%s is valid: %d students x %d methods x %d seeds", args.config, len(config["students"]), len(config["methods"]), len(config["seeds"]))


def cmd_run(args: argparse.Namespace) -> None:
    """Run the Snakemake DAG (the same as calling snakemake in the repository root)."""
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO_ROOT / "Snakefile"), "--cores", str(args.cores), args.target]
    command += args.snakemake_args
    if args.configfile:  # last: --configfile takes every following word as a file
        command += ["--configfile", str(args.configfile)]
    log.info("running %s", " ".join(command))
    completed = subprocess.run(command, check=False)
    if completed.returncode:
        raise AkdgError(f"snakemake failed with exit code {completed.returncode}; see the log it printed above")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="akdg", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def step(name: str, handler: Any, help_text: str, *, spec: bool = True, data: bool = True, threads: bool = False) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        if spec:
            command.add_argument("--spec", type=_spec, required=True, help="JSON (or @file) with this step's slice of the config")
        if data:
            command.add_argument("--data", type=Path, required=True, help="prepared dataset (.npz from prepare-data)")
        if threads:
            command.add_argument("--threads", type=_count(1, "CPU threads for torch; omit it for all cores"), default=None, help="CPU threads for torch (default: all cores)")
        command.set_defaults(handler=handler)
        return command

    command = step("download-data", cmd_download_data, "fetch or verify a dataset's official files under its root", data=False)
    command.add_argument("--out", type=Path, default=None, help="a JSON record of what was fetched (optional)")

    command = step("prepare-data", cmd_prepare_data, "load a dataset by name, split it, write an .npz and its protocol", data=False)
    command.add_argument("--out", type=Path, required=True)

    command = step("train-extractor", cmd_train_extractor, "train the domain classifier used as the feature extractor", threads=True)
    command.add_argument("--out", type=Path, required=True, help="weights (.pt); protocol goes beside it (.json)")

    command = step("train", cmd_train, "train one generator (teacher or student) with one method and seed", threads=True)
    command.add_argument("--teacher", type=Path, default=None, help="teacher checkpoint, for distillation methods")
    command.add_argument(
        "--checkpoint-every", type=_count(0, "steps between saved training states; 0: never"), default=0,
        help="write the training state every N steps (to OUT.state) and resume from it; 0: never",
    )
    command.add_argument("--out", type=Path, required=True)

    command = step("import-teacher", cmd_import_teacher, "check a teacher trained elsewhere against the config and store it")
    command.add_argument("--checkpoint", type=Path, required=True, help="akdg checkpoint or plain state_dict of spec's generator")
    command.add_argument("--out", type=Path, required=True)

    command = step("measure-cost", cmd_measure_cost, "params, layers, mult-adds, images/s and latency of every generator, side by side", threads=True)
    command.add_argument("--out", type=Path, required=True)

    command = step("evaluate", cmd_evaluate, "IS/FID/KID of table rows (spec 'rows': kind, run, checkpoint, out) into run JSONs", threads=True)
    command.add_argument("--extractor", type=Path, required=True, help="feature extractor protocol JSON (or the classifier's .pt beside it)")
    command.add_argument("--cost", type=Path, required=True, help="cost JSON from measure-cost")
    command.add_argument(
        "--reference-cache", type=Path, default=None, help="train-split feature cache filled by reference-stats (missing entries are filled); default: no cache"
    )

    command = step("fetch-extractor", cmd_fetch_extractor, "resolve Inception-v3 weights (local file or download), write their protocol and sha256", data=False)
    command.add_argument("--out", type=Path, required=True, help="extractor protocol (.json)")

    command = step("reference-stats", cmd_reference_stats, "compute the train split's features once into a cache keyed by content", threads=True)
    command.add_argument("--extractor", type=Path, required=True, help="feature extractor protocol JSON (or the classifier's .pt beside it)")
    command.add_argument("--cache-dir", type=Path, required=True, help="torch-fidelity cache folder the evaluations read")
    command.add_argument("--out", type=Path, required=True, help="JSON: cache key, its fields, files and their sha256")

    command = step("aggregate", cmd_aggregate, "turn run JSONs into tables (md/csv/tex), DVC metrics and plots", spec=False, data=False)
    command.add_argument("--runs", type=Path, nargs="+", required=True)
    command.add_argument("--method-order", nargs="+", required=True)
    command.add_argument("--dataset", required=True, help="the runs' dataset.label: names the tables, claims and plots")
    command.add_argument("--tables-dir", type=Path, required=True)
    command.add_argument("--plots-dir", type=Path, required=True)
    command.add_argument("--metrics-dir", type=Path, required=True, help="one numeric JSON per run (for dvc metrics show)")

    command = step("plot-samples", cmd_plot_samples, "sample grids of several generators on the same z", spec=False, data=False)
    command.add_argument("--checkpoint", nargs="+", required=True, metavar="LABEL=PATH")
    command.add_argument("--z-dim", type=_count(1, "the generators' noise size"), required=True)
    command.add_argument("--count", type=_count(1, "images per generator"), default=32, help="images per generator, in rows of 32 (default: 32)")
    command.add_argument("--seed", type=_count(0, "seed of the shared noise"), default=0)
    command.add_argument("--out", type=Path, required=True)

    command = step("validate-config", cmd_validate_config, "check a config against the schema and the registries", spec=False, data=False)
    command.add_argument("config", type=Path)
    command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging, with the schema's full report on an error")

    command = step("run", cmd_run, "run the Snakemake DAG (default target all_tables)", spec=False, data=False)
    command.add_argument("--cores", type=_count(1, "cores Snakemake may use"), default=os.cpu_count() or 1)
    command.add_argument("--configfile", type=Path, default=None)
    command.add_argument("--target", default="all_tables")
    command.add_argument("snakemake_args", nargs="*", help="passed to snakemake (after --)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import_plugins(name for name in os.environ.get("AKDG_PLUGINS", "").split(",") if name)  # set by the Snakefile
        if getattr(args, "spec", None) is not None:
            from akdg.config import check_spec

            check_spec(args.command, args.spec)
        args.handler(args)
    except AkdgError as error:
        log.error("%s", error)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
