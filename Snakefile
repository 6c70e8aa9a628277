# The AKDG reproduction DAG: data -> feature extractor -> teacher -> students (methods x seeds)
# -> cost + evaluation -> tables and plots. `snakemake --cores 2` runs the default target all_tables.
from snakemake.utils import min_version

min_version("9.0")


configfile: f"{workflow.basedir}/config/config.yaml"  # found from any working directory (akdg run)


envvars:
    "PATH",


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


wildcard_constraints:
    student="|".join(STUDENTS),
    method="|".join(METHODS),
    seed=r"\d+",


rule all_tables:
    default_target: True
    input:
        TABLES,
        PLOTS,
