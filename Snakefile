# The AKDG reproduction DAG: data -> feature extractor -> teacher -> students (methods x seeds)
# -> cost + evaluation -> tables and plots. `snakemake --cores 2` runs the default target all_tables.
import os
import re

from snakemake.logging import logger
from snakemake.utils import min_version

min_version("9.0")


# A config file given with --configfile is a whole grid (config/test.yaml, config/paper/*.yaml): merged key by
# key into the default, a paper grid would inherit the default's method labels and dataset options.
# The default applies when none is given; --config KEY=VALUE overrides apply either way.
if not workflow.overwrite_configfiles:

    configfile: f"{workflow.basedir}/config/config.yaml"  # found from any working directory (akdg run)


# Jobs import the config's plugins too (the akdg command reads AKDG_PLUGINS), so that the datasets,
# architectures and methods a plugin registers exist in every job, not only here.
os.environ["AKDG_PLUGINS"] = ",".join(config.get("plugins") or [])


envvars:
    "PATH",
    "AKDG_PLUGINS",


report: "workflow/report/workflow.rst"  # the description atop `snakemake --report` (docs/report.md)


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/tune.smk"
include: "workflow/rules/report.smk"


# One DAG per outdir, whichever clone or folder it runs from (akdg.outdir_lock): taken when a run starts,
# never by a dry run or a job (Snakemake calls neither hook there), given back however the run ends.
OUTDIR_LOCK = OutdirLock(OUT)


onstart:
    try:
        check_buildable(config)  # a width its family cannot build is refused before any job
        OUTDIR_LOCK.acquire()
    except AkdgError as error:
        raise WorkflowError(str(error))
    for line in capacity_warnings(config):  # builds the generators (torch): a real run's start, never a dry run or a job
        logger.warning(f"warning: {line}")


onsuccess:
    OUTDIR_LOCK.release()


onerror:
    OUTDIR_LOCK.release()


wildcard_constraints:
    student="|".join(map(re.escape, STUDENTS)),
    method="|".join(map(re.escape, METHODS)),
    seed=r"\d+",


rule all_tables:
    default_target: True
    input:
        TABLES,
        CLAIMS,
        PLOTS,
        SIZE_TABLES,
        SIZE_PLOT,
        TRADEOFF,
        ABLATION_TABLES,
        CURVES,
        TUNING_TABLES,


rule all_outputs:
    """Every output a DVC stage declares, not only the tables: a stage run where the tables exist but the
    cached outputs (data, checkpoints, caches, run JSONs) do not, as in a clone without a DVC remote, makes them."""
    input:
        TABLES,
        CLAIMS,
        PLOTS,
        SIZE_TABLES,
        SIZE_PLOT,
        TRADEOFF,
        ABLATION_TABLES,
        CURVES,
        TUNING_TABLES,
        ALL_RUNS,
        COST,
        REFERENCE_STATS,
        EXTRACTOR,
        TEACHERS,
        expand(STUDENT_CHECKPOINT, student=STUDENTS, method=METHODS, seed=SEEDS),
