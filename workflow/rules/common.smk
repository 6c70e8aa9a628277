# Config validation (before any job runs) and the helpers that turn the config into paths and specs.
import json
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from akdg.config import student_key, validate_config
from akdg.registry import AkdgError
from akdg.training import METHODS as METHOD_REGISTRY


# The one validation akdg validate-config also runs: string coercion of nested --config values,
# Snakemake's schema validation (workflow/schemas/config.schema.yaml) with defaults, registry names.
try:
    validate_config(config)
except AkdgError as error:
    raise WorkflowError(str(error))

# Jobs call the `akdg` command of the Python that runs Snakemake, venv activated or not.
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
OUT = config["outdir"]
DATASET = config["dataset"]["name"]
STUDENTS = {student_key(model): model for model in config["students"]}
METHODS = list(config["methods"])
SEEDS = config["seeds"]

DATA = f"{OUT}/data/{DATASET}.npz"
EXTRACTOR = f"{OUT}/models/{DATASET}/extractor.pt"
TEACHER = f"{OUT}/models/{DATASET}/teacher.pt"
COST = f"{OUT}/cost/{DATASET}.json"
LOGS = f"{OUT}/logs/{DATASET}"
BENCHMARKS = f"{OUT}/logs/{DATASET}/benchmark"  # per-job wall time and memory (Snakemake benchmark files)
STUDENT_CHECKPOINT = f"{OUT}/models/{DATASET}/{{student}}/{{method}}/seed{{seed}}.pt"
STUDENT_RUN = f"{OUT}/runs/{DATASET}/{{student}}/{{method}}/seed{{seed}}.json"
TEACHER_RUN = f"{OUT}/runs/{DATASET}/teacher.json"
REAL_RUN = f"{OUT}/runs/{DATASET}/real.json"
UNTRAINED_RUNS = {name: f"{OUT}/runs/{DATASET}/{name}/untrained/seed{SEEDS[0]}.json" for name in STUDENTS}
STUDENT_RUNS = expand(STUDENT_RUN, student=STUDENTS, method=METHODS, seed=SEEDS)
ALL_RUNS = [TEACHER_RUN, *STUDENT_RUNS, *UNTRAINED_RUNS.values(), REAL_RUN]
TABLES = expand(f"{OUT}/tables/{DATASET}.{{ext}}", ext=["md", "csv", "tex"])
PLOTS = [f"{OUT}/plots/{DATASET}_fid_vs_params.png", f"{OUT}/plots/{DATASET}_samples.png"]


def as_json(value):
    """A spec as one JSON argument; shell commands quote it with {params.spec:q}."""
    return json.dumps(value, sort_keys=True)


def training_spec(generator, discriminator, method, seed, steps, ema_decay):
    training = config["training"]
    return {
        "generator": generator,
        "discriminator": discriminator,
        "method": method,
        "method_options": config["methods"].get(method) or {},
        "seed": seed,
        "steps": steps,
        "z_dim": config["z_dim"],
        "loss": config["loss"],
        "batch_size": training["batch_size"],
        "n_dis": training["n_dis"],
        "log_every": training["log_every"],
        "ema_decay": ema_decay,
        "optimizer": training["optimizer"],
    }


def run_identity(role, label, generator, method, seed):
    return {"dataset": DATASET, "role": role, "generator_label": label, "generator": generator, "method": method, "seed": seed}


def evaluation_spec(rows):
    return {"evaluation": config["evaluation"], "z_dim": config["z_dim"], "rows": rows}


def student_training_spec(wildcards):
    return as_json(
        training_spec(
            STUDENTS[wildcards.student],
            config["student_discriminator"],
            wildcards.method,
            int(wildcards.seed),
            config["training"]["steps"],
            config["training"]["ema_decay"],
        )
    )


def student_inputs(wildcards):
    """Only distillation methods wait for the teacher; vanilla students train alongside it."""
    inputs = {"data": DATA}
    if METHOD_REGISTRY.get(wildcards.method).requires_teacher:
        inputs["teacher"] = TEACHER
    return inputs
