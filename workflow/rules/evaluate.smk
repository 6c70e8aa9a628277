# Cost of every generator (side by side, one job) and IS/FID/KID of every row of the table.


rule measure_cost:
    input:
        DATA,
    output:
        COST,
    log:
        f"{LOGS}/measure_cost.log",
    benchmark:
        f"{BENCHMARKS}/measure_cost.tsv"
    priority: 100  # first: evaluations (which embed its figures) never wait for it; alone on the machine, it costs the same anywhere
    conda:
        "../envs/akdg.yaml"
    threads: cost_threads()  # alone on the machine, so speed figures are not disturbed by other jobs
    resources:
        **job_resources("cost"),
    params:
        spec=as_json(
            {
                "generators": {"teacher": config["teacher"]["generator"], **STUDENTS},
                "z_dim": config["z_dim"],
                "speed": config["speed"],
            }
        ),
        code=fingerprint("measure_cost", architectures=GENERATOR_ARCHS),
    message:
        "measure every generator's cost on {threads} threads, alone (log: {log})"
    shell:
        "akdg measure-cost --spec {params.spec:q} --data {input} --threads {threads} --out {output} > {log} 2>&1"


EVALUATE_SHELL = (
    "akdg evaluate --spec {params.spec:q} --data {input.data} --extractor {input.extractor}"
    " --cost {input.cost} --reference-cache {params.cache} --threads {threads} > {log} 2>&1"
)


rule evaluate_teacher:
    """Every teacher seed in one job, as the seeds of a student: torch-fidelity's import costs more than a row."""
    input:
        data=DATA,
        extractor=EXTRACTOR,
        stats=REFERENCE_STATS,
        cost=COST,
        checkpoints=TEACHERS,
    output:
        TEACHER_RUNS,
    log:
        f"{LOGS}/evaluate_teacher.log",
    benchmark:
        f"{BENCHMARKS}/evaluate_teacher.tsv"
    priority: 10  # as soon as its inputs are ready: the critical path ends with the evaluations
    conda:
        "../envs/akdg.yaml"
    threads: 1
    resources:
        **job_resources("evaluate"),
    params:
        cache=REFERENCE_CACHE,
        spec=as_json(
            evaluation_spec(
                [
                    {
                        "kind": "trained",
                        "checkpoint": TEACHER_CHECKPOINT.format(seed=seed),
                        "out": TEACHER_RUN.format(seed=seed),
                        "run": run_identity("teacher", "teacher", config["teacher"]["generator"], TEACHER_METHOD, seed, seed),
                    }
                    for seed in TEACHER_SEEDS
                ]
            )
        ),
        code=fingerprint("evaluate", architectures=[TEACHER_ARCH]),
    message:
        "evaluate every teacher (progress: {log})"
    shell:
        EVALUATE_SHELL


rule evaluate_student:
    """All seeds of one (student, method) in one job: torch-fidelity's import costs more than a row."""
    input:
        data=DATA,
        extractor=EXTRACTOR,
        stats=REFERENCE_STATS,
        cost=COST,
        checkpoints=expand(STUDENT_CHECKPOINT, seed=SEEDS, allow_missing=True),
    output:
        expand(STUDENT_RUN, seed=SEEDS, allow_missing=True),
    log:
        f"{LOGS}/evaluate/{{student}}_{{method}}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate/{{student}}_{{method}}.tsv"
    priority: 10  # as soon as its seeds are trained: the critical path ends with the evaluations
    conda:
        "../envs/akdg.yaml"
    threads: 1
    resources:
        **job_resources("evaluate"),
    params:
        cache=REFERENCE_CACHE,
        # of the wildcards only: Snakemake's params trigger skips a param function that takes input or output
        spec=lambda wildcards: as_json(
            evaluation_spec(
                [
                    {
                        "kind": "trained",
                        "checkpoint": STUDENT_CHECKPOINT.format(student=wildcards.student, method=wildcards.method, seed=seed),
                        "out": STUDENT_RUN.format(student=wildcards.student, method=wildcards.method, seed=seed),
                        "run": run_identity(
                            "student",
                            wildcards.student,
                            STUDENTS[wildcards.student],
                            wildcards.method,
                            seed,
                            paired_teacher(wildcards.method, seed),
                        ),
                    }
                    for seed in SEEDS
                ]
            )
        ),
        code=lambda wildcards: fingerprint("evaluate", architectures=[STUDENTS[wildcards.student]["arch"]]),
    message:
        "evaluate student {wildcards.student} with {wildcards.method}, every seed (progress: {log})"
    shell:
        EVALUATE_SHELL


rule evaluate_references:
    """The test split itself (best attainable) and each untrained student (sanity), in one job."""
    input:
        data=DATA,
        extractor=EXTRACTOR,
        stats=REFERENCE_STATS,
        cost=COST,
    output:
        real=REAL_RUN,
        untrained=list(UNTRAINED_RUNS.values()),
    log:
        f"{LOGS}/evaluate_references.log",
    benchmark:
        f"{BENCHMARKS}/evaluate_references.tsv"
    conda:
        "../envs/akdg.yaml"
    threads: 1
    resources:
        **job_resources("evaluate"),
    params:
        cache=REFERENCE_CACHE,
        spec=as_json(
            evaluation_spec(
                [{"kind": "real", "out": REAL_RUN, "run": run_identity("reference", "", None, "", None)}]
                + [
                    {"kind": "untrained", "out": path, "run": run_identity("student", name, STUDENTS[name], "untrained", SEEDS[0])}
                    for name, path in UNTRAINED_RUNS.items()
                ]
            )
        ),
        code=fingerprint("evaluate", architectures=sorted({model["arch"] for model in STUDENTS.values()})),
    message:
        "evaluate the test split and the untrained students (progress: {log})"
    shell:
        EVALUATE_SHELL
