"""akdg: the AKDG reproduction (GAN knowledge distillation, Tsunashima et al., ICPR 2020) as a Snakemake DAG.

'akdg run' runs the whole DAG (data, feature extractor, teacher, students, evaluation, tables, plots).
Every other command is one step of it: Snakemake calls each with a --spec, the JSON slice of the
config that step reads, and you can call any step by hand the same way (see 'akdg COMMAND --help').
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
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
    train_generator(args.spec, args.data, args.out, teacher=args.teacher, checkpoint_every=args.checkpoint_every, tuned=args.tuned)


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


def cmd_select_tuning(args: argparse.Namespace) -> None:
    from akdg.steps import select_tuning

    select_tuning(args.spec, args.runs, args.out)


def cmd_tuning_table(args: argparse.Namespace) -> None:
    from akdg.steps import tuning_tables

    tuning_tables(args.selections, args.out_md, args.out_csv)


def cmd_aggregate(args: argparse.Namespace) -> None:
    from akdg.ablations import ablation_outputs, write_ablations
    from akdg.io import prepare_outputs
    from akdg.plots import curve_outputs, fid_vs_params, training_curves
    from akdg.sizes import size_outputs, write_sizes
    from akdg.tables import aggregate

    plot, plot_data = args.plots_dir / f"{args.dataset}_fid_vs_params.png", args.plots_dir / f"{args.dataset}_fid_vs_params.csv"
    prepare_outputs(
        [
            plot,
            plot_data,
            *(size_outputs(args.tables_dir, args.plots_dir, args.dataset) if args.sizes else []),
            *(ablation_outputs(args.tables_dir, args.dataset) if args.ablations else []),
            *(curve_outputs(args.plots_dir, args.dataset) if args.curves else []),
        ]
    )
    runs, claims = aggregate(args.runs, args.method_order, args.tables_dir, args.metrics_dir, args.dataset)
    for _, claim in claims.summary.iterrows():
        log.info("claim %d (%s) on %s: %s [%s]", claim["claim"], claim["claim_text"], claim["dataset"], claim["verdict"], claim["rows"])
    fid_vs_params(runs, plot, plot_data, args.dataset)
    if args.curves:
        training_curves(args.runs, args.method_order, *curve_outputs(args.plots_dir, args.dataset), args.dataset)
    if args.sizes:
        write_sizes(runs, args.tables_dir, args.plots_dir, args.dataset)
    if args.ablations:
        write_ablations(runs, args.tables_dir, args.dataset)


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
    from akdg.config import capacity_warnings, check_buildable, load_config

    config = load_config(args.config)
    check_buildable(config)
    for line in capacity_warnings(config):
        log.warning("%s", line)
    log.info(
        "%s is valid: %d students x %d methods x %d seeds",
        args.config,
        len(config["students"]),
        len(config["methods"]),
        len(config["seeds"]),
    )


def snakemake_command(args: argparse.Namespace) -> list[str]:
    """The snakemake call ``akdg run`` makes: this checkout's Snakefile, config files as absolute paths.

    The paths are resolved here, against the caller's working directory, because Snakemake then runs
    in the repository root.
    """
    configfiles = [path.resolve() for path in args.configfile or []]
    for given, path in zip(args.configfile or [], configfiles):
        if not path.is_file():
            raise AkdgError(
                f"--configfile {given}: {path} is not a file; give a path relative to where you call akdg run "
                "(--configfile takes every word that follows it as a file, so put targets before it)"
            )
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO_ROOT / "Snakefile"), "--cores", str(args.cores)]
    command += args.snakemake_args
    if configfiles:  # last: --configfile takes every following word as a file
        command += ["--configfile", *map(str, configfiles)]
    return command


def cmd_run(args: argparse.Namespace) -> None:
    """Run the Snakemake DAG in the repository root, wherever akdg is called from, so its outputs land there."""
    if not (REPO_ROOT / "Snakefile").is_file():
        raise AkdgError(
            f"akdg run needs the repository the akdg package comes from, but {REPO_ROOT} has no Snakefile; "
            "install akdg from a clone (pip install -e .) or call snakemake in the clone"
        )
    command = snakemake_command(args)
    log.info("running snakemake in %s: %s", REPO_ROOT, shlex.join(command))
    completed = subprocess.run(command, cwd=REPO_ROOT, check=False)
    if completed.returncode:
        raise AkdgError(f"snakemake failed with exit code {completed.returncode}; see the log it printed above")


def _example(*lines: str) -> str:
    """An argparse epilog: one command, continued over ``lines``."""
    return "example:\n  " + " \\\n      ".join(lines)


# The --help examples: commands the workflow's rules run for config/test.yaml (snakemake -n -p prints them).
DIGITS_DATA = "--data results/data/digits.npz"
DIGITS_EXTRACTOR = "--extractor results/models/digits/extractor.json"
TRAIN_SPEC = (
    '{"amp": false, "batch_size": 16, "channels_last": false, "compile": "off", "device": "auto", '
    '"discriminator": {"arch": "dcgan", "width": 8}, "ema_decay": 0.0, "generator": {"arch": "dcgan", "width": 4}, '
    '"log_every": 10, "loss": "hinge", "max_abs_loss": 10000.0, "method": "akdg", "method_options": {"kd_weight": 1.0}, '
    '"n_dis": 1, "optimizer": {"betas": [0.5, 0.999], "lr_d": 0.0002, "lr_g": 0.0002}, "seed": 0, "steps": 20, "z_dim": 16}'
)
EVALUATE_SPEC = (
    '{"evaluation": {"batch_size": 200, "isc_splits": 2, "kid_subset_size": 100, "kid_subsets": 10, "num_samples": 200, "rng_seed": 2020}, '
    '"rows": [{"checkpoint": "results/models/digits/dcgan-w4/akdg/seed0.pt", "kind": "trained", '
    '"out": "results/runs/digits/dcgan-w4/akdg/seed0.json", "run": {"dataset": "digits", "generator": {"arch": "dcgan", "width": 4}, '
    '"generator_label": "dcgan-w4", "method": "akdg", "role": "student", "seed": 0}}], "z_dim": 16}'
)
DIGITS_SPEC = '{"name": "digits", "resolution": 16, "split_seed": 0, "test_fraction": 0.2}'


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="akdg",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  akdg run -n\n  akdg run --cores 2 all_tables --configfile config/test.yaml\n  akdg validate-config config/config.yaml",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def step(
        name: str,
        handler: Any,
        help_text: str,
        example: str,
        *,
        out: str | None = None,
        spec: bool = True,
        data: bool = True,
        threads: bool = False,
        **options: Any,
    ) -> argparse.ArgumentParser:
        options.setdefault("description", help_text)
        command = sub.add_parser(name, help=help_text, epilog=example, formatter_class=argparse.RawDescriptionHelpFormatter, **options)
        if spec:
            command.add_argument("--spec", type=_spec, required=True, help="JSON (or @file) with this step's slice of the config")
        if data:
            command.add_argument("--data", type=Path, required=True, help="prepared dataset (.npz from prepare-data)")
        if threads:
            command.add_argument(
                "--threads",
                type=_count(1, "CPU threads for torch; omit it for all cores"),
                default=None,
                help="CPU threads for torch (default: all cores)",
            )
        if out:
            command.add_argument("--out", type=Path, required=True, help=out)
        command.set_defaults(handler=handler)
        return command

    command = step(
        "download-data",
        cmd_download_data,
        "fetch or verify a dataset's official files under its root",
        _example(
            "akdg download-data",
            """--spec '{"download": true, "name": "cifar10", "resolution": 32, "root": "data", "split_seed": 0, "test_fraction": 0.2}'""",
        ),
        data=False,
    )
    command.add_argument("--out", type=Path, default=None, help="a JSON record of what was fetched (optional)")

    command = step(
        "prepare-data",
        cmd_prepare_data,
        "load a dataset by name, split it, write an .npz and its protocol",
        _example("akdg prepare-data", f"--spec '{DIGITS_SPEC}'", "--out results/data/digits.npz"),
        data=False,
        out="the split dataset (.npz); its protocol goes beside it (.json)",
    )

    command = step(
        "train-extractor",
        cmd_train_extractor,
        "train the domain classifier used as the feature extractor",
        _example(
            "akdg train-extractor",
            """--spec '{"batch_size": 64, "epochs": 1, "lr": 0.001, "seed": 0, "width": 32}'""",
            f"{DIGITS_DATA} --threads 1 --out results/models/digits/extractor.pt",
        ),
        threads=True,
        out="weights (.pt); protocol goes beside it (.json)",
    )

    command = step(
        "train",
        cmd_train,
        "train one generator (teacher or student) with one method and seed",
        _example(
            "akdg train",
            f"--spec '{TRAIN_SPEC}'",
            f"{DIGITS_DATA} --teacher results/models/digits/teacher/seed0.pt",
            "--threads 1 --checkpoint-every 100 --out results/models/digits/dcgan-w4/akdg/seed0.pt",
        ),
        threads=True,
        out="the trained generator's checkpoint (.pt)",
    )
    command.add_argument("--teacher", type=Path, default=None, help="teacher checkpoint, for distillation methods")
    command.add_argument(
        "--tuned",
        type=Path,
        default=None,
        help="a tuning selection (select-tuning's JSON): train with its chosen setting, recorded in the checkpoint",
    )
    command.add_argument(
        "--checkpoint-every",
        type=_count(0, "steps between saved training states; 0: never"),
        default=0,
        help="write the training state every N steps (to OUT.state) and resume from it; 0: never",
    )

    command = step(
        "import-teacher",
        cmd_import_teacher,
        "check a teacher trained elsewhere against the config and store it",
        _example(
            "akdg import-teacher",
            """--spec '{"generator": {"arch": "sngan", "width": 16}, "z_dim": 16}'""",
            f"{DIGITS_DATA} --checkpoint my_teacher_state_dict.pt --out results/models/digits/teacher/seed0.pt",
        ),
        out="the teacher in akdg's checkpoint format (.pt)",
    )
    command.add_argument("--checkpoint", type=Path, required=True, help="akdg checkpoint or plain state_dict of spec's generator")

    command = step(
        "measure-cost",
        cmd_measure_cost,
        "params, layers, mult-adds, images/s and latency of every generator, side by side",
        _example(
            "akdg measure-cost",
            """--spec '{"generators": {"dcgan-w4": {"arch": "dcgan", "width": 4}, "mlp-w32": {"arch": "mlp", "width": 32}, """
            """"teacher": {"arch": "sngan", "width": 16}}, "speed": {"batch_size": 16, "device": "auto", "min_run_time": 0.02, "rounds": 3}, "z_dim": 16}'""",
            f"{DIGITS_DATA} --threads 2 --out results/cost/digits.json",
        ),
        threads=True,
        out="cost JSON: one entry per generator, with how it was measured",
    )

    command = step(
        "evaluate",
        cmd_evaluate,
        "IS/FID/KID of table rows (spec 'rows': kind, run, checkpoint, out) into run JSONs",
        _example(
            "akdg evaluate",
            f"--spec '{EVALUATE_SPEC}'",
            f"{DIGITS_DATA} {DIGITS_EXTRACTOR}",
            "--cost results/cost/digits.json --reference-cache results/cache/digits/fidelity --threads 1",
        ),
        threads=True,
    )
    command.add_argument(
        "--extractor", type=Path, required=True, help="feature extractor protocol JSON (or the classifier's .pt beside it)"
    )
    command.add_argument("--cost", type=Path, required=True, help="cost JSON from measure-cost")
    command.add_argument(
        "--reference-cache",
        type=Path,
        default=None,
        help="train-split feature cache filled by reference-stats (missing entries are filled); default: no cache",
    )

    command = step(
        "fetch-extractor",
        cmd_fetch_extractor,
        "resolve a fixed extractor's weights (the pinned classifier; Inception-v3 from a file or download), write their protocol and sha256",
        _example(
            "akdg fetch-extractor",
            """--spec '{"feature_extractor": "akdg-classifier", "inception_weights": null, "pinned": {"dataset": "digits", "resolution": 16}}'""",
            "--out results/models/digits/extractor.json",
        ),
        data=False,
        out="extractor protocol (.json)",
    )

    command = step(
        "reference-stats",
        cmd_reference_stats,
        "compute the train split's features once into a cache keyed by content",
        _example(
            "akdg reference-stats",
            """--spec '{"batch_size": 200, "feature_extractor": "akdg-classifier"}'""",
            f"{DIGITS_DATA} {DIGITS_EXTRACTOR}",
            "--cache-dir results/cache/digits/fidelity --threads 1 --out results/cache/digits/reference.json",
        ),
        threads=True,
        out="JSON: cache key, its fields, files and their sha256",
    )
    command.add_argument(
        "--extractor", type=Path, required=True, help="feature extractor protocol JSON (or the classifier's .pt beside it)"
    )
    command.add_argument("--cache-dir", type=Path, required=True, help="torch-fidelity cache folder the evaluations read")

    command = step(
        "select-tuning",
        cmd_select_tuning,
        "choose one (student, method)'s setting: the candidate of lowest validation FID (ties: the grid's first)",
        _example(
            "akdg select-tuning",
            """--spec '{"student": "dcgan-w4", "generator": {"arch": "dcgan", "width": 4}, "method": "vanilla", """
            """"method_registered": "vanilla", "seed": 0, "num_samples": 1000, "candidates": {"lr0.0002": {"lr": 0.0002}}}'""",
            "--runs results/tuning/digits/runs/dcgan-w4/vanilla/lr0.0002.json --out results/tuning/digits/dcgan-w4/vanilla.json",
        ),
        data=False,
        out="the selection JSON: every candidate's validation scores, the chosen setting, the protocol",
    )
    command.add_argument("--runs", type=Path, nargs="+", required=True, help="one validation run JSON per candidate, named <label>.json")

    command = step(
        "tuning-table",
        cmd_tuning_table,
        "every tuning candidate's validation scores, the chosen ones marked, as Markdown and CSV",
        _example(
            "akdg tuning-table",
            "--selections results/tuning/digits/dcgan-w4/*.json --out-md results/tables/digits_tuning.md --out-csv results/tables/digits_tuning.csv",
        ),
        spec=False,
        data=False,
    )
    command.add_argument("--selections", type=Path, nargs="+", required=True, help="select-tuning's JSONs")
    command.add_argument("--out-md", type=Path, required=True, help="the Markdown table")
    command.add_argument("--out-csv", type=Path, required=True, help="the CSV table")

    command = step(
        "aggregate",
        cmd_aggregate,
        "turn run JSONs into tables (md/csv/tex), DVC metrics and plots",
        _example(
            "akdg aggregate",
            "--runs $(find results/runs/digits -name '*.json') --method-order vanilla mse akdg --dataset digits",
            "--tables-dir results/tables --plots-dir results/plots --metrics-dir results/metrics/digits",
        ),
        spec=False,
        data=False,
    )
    command.add_argument(
        "--runs", type=Path, nargs="+", required=True, help="run JSONs written by evaluate: teacher, students, untrained and real rows"
    )
    command.add_argument("--method-order", nargs="+", required=True, help="the config's method labels, in the order the table lists them")
    command.add_argument("--dataset", required=True, help="the runs' dataset.label: names the tables, claims and plots")
    command.add_argument("--tables-dir", type=Path, required=True, help="folder for DATASET.md/.csv/.tex and DATASET_claims.md/.csv")
    command.add_argument("--plots-dir", type=Path, required=True, help="folder for DATASET_fid_vs_params.png and its data (.csv)")
    command.add_argument("--metrics-dir", type=Path, required=True, help="one numeric JSON per run (for dvc metrics show)")
    command.add_argument(
        "--sizes",
        action="store_true",
        help="also write the per-size comparison (DATASET_sizes.md/.csv, DATASET_sizes.png) and the trade-off (DATASET_tradeoff.png/.csv)",
    )
    command.add_argument(
        "--ablations",
        action="store_true",
        help="also write each method beside its registered ablations (DATASET_ablations.md/.csv)",
    )
    command.add_argument(
        "--curves",
        action="store_true",
        help="also write FID during training (DATASET_curves.png/.csv) from the runs' curves (evaluation.curve_fractions)",
    )

    command = step(
        "plot-samples",
        cmd_plot_samples,
        "sample grids of several generators on the same z",
        _example(
            "akdg plot-samples",
            "--checkpoint teacher=results/models/digits/teacher/seed0.pt",
            "dcgan-w4/vanilla=results/models/digits/dcgan-w4/vanilla/seed0.pt dcgan-w4/akdg=results/models/digits/dcgan-w4/akdg/seed0.pt",
            "--z-dim 16 --out results/plots/digits_samples.png",
        ),
        spec=False,
        data=False,
        out="the figure (.png)",
    )
    command.add_argument(
        "--checkpoint",
        nargs="+",
        required=True,
        metavar="LABEL=PATH",
        help="generators to show, one row each, labelled LABEL (e.g. student/method)",
    )
    command.add_argument(
        "--z-dim", type=_count(1, "the generators' noise size"), required=True, help="the generators' noise size (config z_dim)"
    )
    command.add_argument(
        "--count", type=_count(1, "images per generator"), default=32, help="images per generator, in rows of 32 (default: 32)"
    )
    command.add_argument(
        "--seed", type=_count(0, "seed of the shared noise"), default=0, help="seed of the noise every generator gets (default: 0)"
    )

    command = step(
        "validate-config",
        cmd_validate_config,
        "check a config against the schema and the registries",
        _example("akdg validate-config config/paper/cifar10.yaml"),
        spec=False,
        data=False,
    )
    command.add_argument("config", type=Path, help="the config file (YAML) to check")
    command.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging, with the schema's full report on an error"
    )

    command = step(
        "run",
        cmd_run,
        "run the Snakemake DAG (default target all_tables) in the repository root",
        "examples:\n  akdg run -n\n  akdg run --cores 2 all_tables --configfile config/test.yaml\n"
        "  akdg run --profile profiles/slurm all_tables --configfile config/paper/cifar10.yaml",
        spec=False,
        data=False,
        description="Run the Snakemake DAG in the repository root (where the Snakefile is), wherever this is called from,\n"
        "so the config's outdir (results/ by default) is the repository's. Every option not listed below, and any target\n"
        "(default: all_tables), goes to snakemake unchanged: see snakemake --help.",
        allow_abbrev=False,  # no prefix matching: snakemake's --config must not read as --configfile
    )
    command.add_argument(
        "--cores",
        type=_count(1, "cores Snakemake may use"),
        default=os.cpu_count() or 1,
        help="cores Snakemake may use (default: all of this machine's; overrides a profile's)",
    )
    command.add_argument(
        "--configfile",
        "--configfiles",
        type=Path,
        nargs="+",
        action="extend",
        default=None,
        help="config file(s), relative to where you are; every word after it is a file, so put targets before it",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args, unknown = parser.parse_known_args(argv)
    if args.command == "run" and "--" in unknown:  # `akdg run -- -n`, the form before flags passed straight through
        del argv[argv.index("--")]
        args, unknown = parser.parse_known_args(argv)
    if args.command == "run":
        args.snakemake_args = unknown
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
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
