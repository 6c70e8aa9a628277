# Config validation (before any job runs) and the helpers that turn the config into paths and specs.
import json
import os
import sys
from collections import Counter
from pathlib import Path

from snakemake.exceptions import WorkflowError

from akdg.config import (
    capacity_warnings,
    check_buildable,
    loss_name,
    method_variants,
    student_key,
    student_training_spec,
    teacher_seed_for,
    teacher_training_spec,
    validate_config,
)
from akdg.datasets import sources as dataset_sources
from akdg.extractor_pins import pinned_weights, resolve_source
from akdg.fingerprint import fingerprint
from akdg.outdir_lock import OutdirLock
from akdg.registry import DOWNLOADERS, METHODS as METHOD_REGISTRY, AkdgError
from akdg.tuning import apply_setting, candidates, tuned_source

# The one validation akdg validate-config also runs: string coercion of nested --config values,
# schema validation (workflow/schemas/config.schema.yaml) with defaults, registry names; one sentence on error.
try:
    validate_config(config)
except AkdgError as error:
    raise WorkflowError(str(error))

# Jobs call the `akdg` command of the Python that runs Snakemake, venv activated or not.
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
OUT = config["outdir"]
DATASET = config["dataset"]["label"]  # names paths, tables and runs; the loader is config["dataset"]["name"]
DATASET_SPEC = {key: value for key, value in config["dataset"].items() if key != "label"}  # what the loader reads
STUDENTS = {student_key(model): model for model in config["students"]}
VARIANTS = method_variants(config)  # method label -> registered method, options, training overrides
METHODS = list(VARIANTS)
SEEDS = config["seeds"]

DATA = f"{OUT}/data/{DATASET}.npz"
try:
    DATA_SOURCES = dataset_sources(DATASET_SPEC)  # the files prepare_data reads, or a folder's manifest (hashed here)
except AkdgError as error:
    raise WorkflowError(str(error))
# Official files (under dataset.root) are outputs of download_data only while missing: Snakemake deletes a job's
# outputs before running it, and no rerun (--forceall, as DVC's stage runs) may delete a placed or fetched download.
TO_DOWNLOAD = [str(path) for path in DATA_SOURCES.files if not path.exists()] if config["dataset"]["name"] in DOWNLOADERS.names() else []
FEATURE_EXTRACTOR = config["evaluation"].get("feature_extractor", "akdg-classifier")
EXTRACTOR_SOURCE = resolve_source(config)  # the classifier's: pinned or train; None for Inception
PINNED_EXTRACTOR = (
    str(pinned_weights(config["dataset"]["name"], config["dataset"]["resolution"])[0]) if EXTRACTOR_SOURCE == "pinned" else None
)
EXTRACTOR_WEIGHTS = f"{OUT}/models/{DATASET}/extractor.pt"  # the classifier's: trained by the DAG or the pinned copy
EXTRACTOR = f"{OUT}/models/{DATASET}/extractor.json"  # the extractor's protocol: name, weights, sha256
REFERENCE_CACHE = f"{OUT}/cache/{DATASET}/fidelity"  # torch-fidelity's cache, keyed by content
REFERENCE_STATS = f"{OUT}/cache/{DATASET}/reference.json"
TEACHER_SEEDS = config["teacher"]["seeds"]  # one teacher per seed; student seed i distils teacher_seed_for(config, i)
TEACHER_CHECKPOINT = f"{OUT}/models/{DATASET}/teacher/seed{{seed}}.pt"
TEACHERS = expand(TEACHER_CHECKPOINT, seed=TEACHER_SEEDS)
TEACHER_METHOD = "imported" if config["teacher"]["checkpoint"] else "vanilla"
COST = f"{OUT}/cost/{DATASET}.json"
LOGS = f"{OUT}/logs/{DATASET}"
BENCHMARKS = f"{OUT}/logs/{DATASET}/benchmark"  # per-job wall time and memory (Snakemake benchmark files)
STUDENT_CHECKPOINT = f"{OUT}/models/{DATASET}/{{student}}/{{method}}/seed{{seed}}.pt"
STUDENT_RUN = f"{OUT}/runs/{DATASET}/{{student}}/{{method}}/seed{{seed}}.json"
TEACHER_RUN = f"{OUT}/runs/{DATASET}/teacher/seed{{seed}}.json"
TEACHER_RUNS = expand(TEACHER_RUN, seed=TEACHER_SEEDS)
REAL_RUN = f"{OUT}/runs/{DATASET}/real.json"
UNTRAINED_RUNS = {name: f"{OUT}/runs/{DATASET}/{name}/untrained/seed{SEEDS[0]}.json" for name in STUDENTS}
STUDENT_RUNS = expand(STUDENT_RUN, student=STUDENTS, method=METHODS, seed=SEEDS)
ALL_RUNS = [*TEACHER_RUNS, *STUDENT_RUNS, *UNTRAINED_RUNS.values(), REAL_RUN]
TABLES = expand(f"{OUT}/tables/{DATASET}.{{ext}}", ext=["md", "csv", "tex"])
CLAIMS = expand(f"{OUT}/tables/{DATASET}_claims.{{ext}}", ext=["md", "csv"])  # the paper's five claims, tested
PLOTS = [f"{OUT}/plots/{DATASET}_fid_vs_params.png", f"{OUT}/plots/{DATASET}_samples.png"]
# A grid with two or more sizes of one family also gets the per-size comparison and the trade-off figure (akdg.sizes).
SWEEPS_SIZES = max(Counter(model["arch"] for model in STUDENTS.values()).values()) >= 2
SIZE_TABLES = expand(f"{OUT}/tables/{DATASET}_sizes.{{ext}}", ext=["md", "csv"]) if SWEEPS_SIZES else []
SIZE_PLOT = [f"{OUT}/plots/{DATASET}_sizes.png"] if SWEEPS_SIZES else []
TRADEOFF = [f"{OUT}/plots/{DATASET}_tradeoff.{ext}" for ext in ("png", "csv")] if SWEEPS_SIZES else []
# A grid with a registered ablation of one of its methods (akdg-kd-only, akdg-paired) also tables the two side by side.
ABLATES = any(METHOD_REGISTRY.metadata(variant["method"]).get("ablation_of") for variant in VARIANTS.values())
ABLATION_TABLES = expand(f"{OUT}/tables/{DATASET}_ablations.{{ext}}", ext=["md", "csv"]) if ABLATES else []
# Runs scored during training (evaluation.curve_fractions) also get FID against training steps.
CURVES = [f"{OUT}/plots/{DATASET}_curves.{ext}" for ext in ("png", "csv")] if config["evaluation"]["curve_fractions"] else []


def as_json(value):
    """A spec as one JSON argument; shell commands quote it with {params.spec:q}."""
    return json.dumps(value, sort_keys=True)


def run_identity(role, label, generator, method, seed, teacher_seed=None):
    """Who a run is; ``teacher_seed``: the teacher it is (a teacher's run) or distilled (a distilled student's), else absent."""
    identity = {"dataset": DATASET, "role": role, "generator_label": label, "generator": generator, "method": method, "seed": seed}
    return identity if teacher_seed is None else {**identity, "teacher_seed": teacher_seed}


def uses_teacher(label):
    """Whether the method label's registered method distils a teacher (vanilla students train without one)."""
    return METHOD_REGISTRY.metadata(VARIANTS[label]["method"])["requires_teacher"]


def paired_teacher(label, seed):
    """The teacher seed a (method label, student seed) run distils, or None where the method uses no teacher."""
    return teacher_seed_for(config, int(seed)) if uses_teacher(label) else None


def evaluation_spec(rows):
    return {"evaluation": config["evaluation"], "z_dim": config["z_dim"], "rows": rows}


def student_spec_json(wildcards):
    return as_json(student_training_spec(config, STUDENTS[wildcards.student], wildcards.method, int(wildcards.seed)))


# The tuning stage's paths and specs (workflow/rules/tune.smk, docs/tuning.md); empty without a `tuning` block.
TUNING = config.get("tuning")
TUNING_DIR = f"{OUT}/tuning/{DATASET}"
TUNING_SELECTION = f"{TUNING_DIR}/{{student}}/{{method}}.json"  # every candidate's validation scores and the choice
TUNING_CHECKPOINT = f"{TUNING_DIR}/models/{{student}}/{{method}}/{{candidate}}.pt"
TUNING_RUN = f"{TUNING_DIR}/runs/{{student}}/{{method}}/{{candidate}}.json"
VALIDATION_STATS = f"{OUT}/cache/{DATASET}/reference_validation.json"
TUNING_CANDIDATES = {label: candidates(grid) for label, grid in TUNING["grid"].items()} if TUNING else {}  # label -> setting
TUNED_SOURCES = {label: tuned_source(config, label) for label in METHODS} if TUNING else {}  # whose selection each trains with
TUNING_SELECTIONS = expand(TUNING_SELECTION, student=STUDENTS, method=TUNING_CANDIDATES)
TUNING_TABLES = expand(f"{OUT}/tables/{DATASET}_tuning.{{ext}}", ext=["md", "csv"]) if TUNING else []


def tuned_selection(wildcards):
    """The selection a main student's job applies: its method's own, a shared one's, or none (no tuning)."""
    source = TUNED_SOURCES.get(wildcards.method)
    return {"tuned": TUNING_SELECTION.format(student=wildcards.student, method=source)} if source else {}


TUNING_TEACHER_SEED = TEACHER_SEEDS[0]  # every candidate of a distillation method distils the first teacher


def candidate_inputs(wildcards):
    """A tuning candidate's inputs: the data, and for a distillation method the first teacher."""
    inputs = {"data": DATA}
    if uses_teacher(wildcards.method):
        inputs["teacher"] = TEACHER_CHECKPOINT.format(seed=TUNING_TEACHER_SEED)
    return inputs


def candidate_spec_json(wildcards):
    """A candidate's training spec: the student's at tuning.seed with the candidate's setting, without training curves."""
    spec = student_training_spec(config, STUDENTS[wildcards.student], wildcards.method, TUNING["seed"])
    spec.pop("curve_fractions", None)  # selection reads the final validation scores only
    return as_json(apply_setting(spec, TUNING_CANDIDATES[wildcards.method][wildcards.candidate]))


# Each job's code as a param (akdg.fingerprint): Snakemake reruns the jobs whose code changed, and what follows them.
TEACHER_LOSS = loss_name(config["teacher"].get("loss", config["loss"]))
TEACHER_ARCH = config["teacher"]["generator"]["arch"]
GENERATOR_ARCHS = sorted({TEACHER_ARCH, *(model["arch"] for model in STUDENTS.values())})


def student_code(wildcards):
    method = VARIANTS[wildcards.method]["method"]
    architectures = [STUDENTS[wildcards.student]["arch"], config["student_discriminator"]["arch"]]
    if uses_teacher(wildcards.method):
        architectures.append(TEACHER_ARCH)
    return fingerprint("train", architectures=architectures, methods=[method], losses=[loss_name(VARIANTS[wildcards.method]["loss"])])


def student_inputs(wildcards):
    """Only distillation methods wait for a teacher, their seed's paired one; vanilla students train alongside the teachers."""
    inputs = {"data": DATA}
    if uses_teacher(wildcards.method):
        inputs["teacher"] = TEACHER_CHECKPOINT.format(seed=paired_teacher(wildcards.method, wildcards.seed))
    return inputs


def tuned_student_inputs(wildcards):
    """A main student's inputs: with tuning, also the selection whose chosen setting it trains with (workflow/rules/tune.smk)."""
    return student_inputs(wildcards) | tuned_selection(wildcards)


# What each job group asks a cluster scheduler for; the config's `resources` block overrides any of it.
DEFAULT_RESOURCES = {
    "data": {"gpu": 0, "mem_mb": 8000, "runtime": 120},
    "teacher": {"gpu": 1, "mem_mb": 16000, "runtime": 1440},
    "student": {"gpu": 1, "mem_mb": 16000, "runtime": 720},
    "cost": {"gpu": 1, "mem_mb": 8000, "runtime": 60, "threads": 8},
    "evaluate": {"gpu": 1, "mem_mb": 16000, "runtime": 240},
    "report": {"gpu": 0, "mem_mb": 4000, "runtime": 30},
}


def job_resources(group):
    """Scheduler resources of a job group: gpu, mem_mb, runtime (threads are the rule's own)."""
    merged = {**DEFAULT_RESOURCES[group], **config["resources"].get(group, {})}
    merged.pop("threads", None)
    return merged


def cost_threads():
    """measure_cost runs alone: every core of this machine, or on a cluster (no --cores) the threads its job asks for."""
    try:
        return workflow.cores
    except WorkflowError:
        return config["resources"].get("cost", {}).get("threads", DEFAULT_RESOURCES["cost"]["threads"])


REPORT_FORMATS = {".md": "Markdown", ".csv": "CSV", ".tex": "LaTeX", ".png": "PNG"}


def in_report(path, caption, category, **labels):
    """``path`` as `snakemake --report` shows it (docs/report.md): captioned by workflow/report/<caption>.rst, labelled with its format."""
    labels["format"] = REPORT_FORMATS[os.path.splitext(path)[1]]
    return report(path, caption=f"../report/{caption}.rst", category=category, subcategory=DATASET, labels=labels)
