# Config validation (before any job runs) and the helpers that turn the config into paths and specs.
import json
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from akdg.config import check_names, student_key
from akdg.registry import AkdgError
from akdg.training import METHODS as METHOD_REGISTRY


validate(config, "../schemas/config.schema.yaml")
try:
    check_names(config)
except AkdgError as error:
    raise WorkflowError(f"invalid config: {error}")

AKDG = f"{sys.executable} -m akdg"  # the akdg command of the Python running Snakemake
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
BENCHMARKS = f"{OUT}/benchmarks/{DATASET}"  # per-job wall time and memory (Snakemake's benchmark files)
STUDENT_CHECKPOINT = f"{OUT}/models/{DATASET}/{{student}}/{{method}}/seed{{seed}}.pt"
STUDENT_RUN = f"{OUT}/runs/{DATASET}/{{student}}/{{method}}/seed{{seed}}.json"
TEACHER_RUN = f"{OUT}/runs/{DATASET}/teacher.json"
REAL_RUN = f"{OUT}/runs/{DATASET}/real.json"
UNTRAINED_RUNS = {name: f"{OUT}/runs/{DATASET}/{name}/untrained/seed{SEEDS[0]}.json" for name in STUDENTS}
STUDENT_RUNS = expand(STUDENT_RUN, student=STUDENTS, method=METHODS, seed=SEEDS)
ALL_RUNS = [TEACHER_RUN, *STUDENT_RUNS, *UNTRAINED_RUNS.values(), REAL_RUN]
TABLES = expand(f"{OUT}/tables/{DATASET}.{{ext}}", ext=["md", "csv", "tex"])
PLOTS = [f"{OUT}/plots/{DATASET}_fid_vs_params.png", f"{OUT}/plots/{DATASET}_samples.png"]


wildcard_constraints:
    student="|".join(STUDENTS),
    method="|".join(METHODS),
    seed=r"\d+",


def as_json(value):
    """A spec as one shell-safe argument (quoted by the rule with {params.spec:q})."""
    return json.dumps(value, sort_keys=True)


def training_spec(generator, discriminator, method, seed, steps):
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
        "optimizer": training["optimizer"],
    }


def run_identity(role, label, generator, method, seed):
    return {"dataset": DATASET, "role": role, "generator_label": label, "generator": generator, "method": method, "seed": seed}


def evaluation_spec(rows):
    return {"evaluation": config["evaluation"], "z_dim": config["z_dim"], "rows": rows}
