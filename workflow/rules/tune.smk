# The tuning stage (docs/tuning.md), only with a `tuning` block: per (student, method) every candidate setting of the
# method's grid trains at tuning.seed, is scored on the validation split (never the test split), and the one of lowest
# validation FID is what that method's students of the tables train with (train_student's --tuned).

if TUNING:

    rule validation_stats:
        """The validation split's features, once, into the reference cache (its key names the split)."""
        input:
            data=DATA,
            extractor=EXTRACTOR,
        output:
            VALIDATION_STATS,
        log:
            f"{LOGS}/validation_stats.log",
        benchmark:
            f"{BENCHMARKS}/validation_stats.tsv"
        conda:
            "../envs/akdg.yaml"
        threads: 1
        resources:
            **job_resources("evaluate"),
        params:
            spec=as_json(
                {"feature_extractor": FEATURE_EXTRACTOR, "batch_size": config["evaluation"]["batch_size"], "split": "validation"}
                | ({"allow_nonstandard_inception": True} if config["evaluation"].get("allow_nonstandard_inception") else {})
            ),
            cache=REFERENCE_CACHE,
            code=fingerprint("reference_stats"),
        message:
            "reference features of the validation split (log: {log})"
        shell:
            "akdg reference-stats --spec {params.spec:q} --data {input.data} --extractor {input.extractor}"
            " --cache-dir {params.cache} --threads {threads} --out {output} > {log} 2>&1"

    rule train_candidate:
        """One candidate setting of a method's grid: one student at tuning.seed."""
        input:
            unpack(candidate_inputs),
        output:
            TUNING_CHECKPOINT,
        log:
            f"{LOGS}/tuning/train/{{student}}_{{method}}_{{candidate}}.log",
        benchmark:
            f"{BENCHMARKS}/tuning/train/{{student}}_{{method}}_{{candidate}}.tsv"
        wildcard_constraints:
            method="|".join(map(re.escape, TUNING_CANDIDATES)),
            candidate="|".join(re.escape(label) for grid in TUNING_CANDIDATES.values() for label in grid),
        conda:
            "../envs/akdg.yaml"
        threads: 1
        resources:
            **job_resources("student"),
        params:
            spec=candidate_spec_json,
            teacher=lambda wildcards, input: f"--teacher {input.teacher}" if "teacher" in input.keys() else "",
            every=config["training"]["checkpoint_every"],
            code=student_code,
        message:
            "tuning: train student {wildcards.student} with {wildcards.method}, candidate {wildcards.candidate} (progress: {log})"
        shell:
            "akdg train --spec {params.spec:q} --data {input.data} {params.teacher}"
            " --threads {threads} --checkpoint-every {params.every} --out {output} > {log} 2>&1"

    for tuned_method, tuned_candidates in TUNING_CANDIDATES.items():  # a rule per method: its grid sets the job's outputs

        rule:
            """All candidates of one (student, method), scored against the validation split alone, in one job."""
            name:
                f"evaluate_tuning_{tuned_method.replace('-', '_')}"
            input:
                data=DATA,
                extractor=EXTRACTOR,
                stats=VALIDATION_STATS,
                cost=COST,
                checkpoints=expand(TUNING_CHECKPOINT, method=tuned_method, candidate=tuned_candidates, allow_missing=True),
            output:
                expand(TUNING_RUN, method=tuned_method, candidate=tuned_candidates, allow_missing=True),
            log:
                f"{LOGS}/tuning/evaluate/{{student}}_{tuned_method}.log",
            benchmark:
                f"{BENCHMARKS}/tuning/evaluate/{{student}}_{tuned_method}.tsv"
            conda:
                "../envs/akdg.yaml"
            threads: 1
            resources:
                **job_resources("evaluate"),
            params:
                cache=REFERENCE_CACHE,
                spec=lambda wildcards, method=tuned_method: as_json(
                    {
                        "evaluation": config["evaluation"]
                        | {
                            "num_samples": TUNING["num_samples"],
                            "kid_subset_size": min(config["evaluation"]["kid_subset_size"], TUNING["num_samples"]),
                        },
                        "z_dim": config["z_dim"],
                        "reference": "validation",
                        "rows": [
                            {
                                "kind": "trained",
                                "checkpoint": TUNING_CHECKPOINT.format(student=wildcards.student, method=method, candidate=label),
                                "out": TUNING_RUN.format(student=wildcards.student, method=method, candidate=label),
                                "run": run_identity(
                                    "tuning",
                                    wildcards.student,
                                    STUDENTS[wildcards.student],
                                    method,
                                    TUNING["seed"],
                                    TUNING_TEACHER_SEED if uses_teacher(method) else None,
                                )
                                | {"candidate": label},
                            }
                            for label in TUNING_CANDIDATES[method]
                        ],
                    }
                ),
                code=lambda wildcards: fingerprint("evaluate", architectures=[STUDENTS[wildcards.student]["arch"]]),
            message:
                f"tuning: score every {tuned_method} candidate of student {{wildcards.student}} on the validation split (progress: {{log}})"
            shell:
                EVALUATE_SHELL

    rule select_tuning:
        """The candidate of lowest validation FID (ties: the grid's first), with every candidate's scores."""
        input:
            lambda wildcards: expand(
                TUNING_RUN, student=wildcards.student, method=wildcards.method, candidate=TUNING_CANDIDATES[wildcards.method]
            ),
        output:
            TUNING_SELECTION,
        log:
            f"{LOGS}/tuning/select/{{student}}_{{method}}.log",
        wildcard_constraints:
            method="|".join(map(re.escape, TUNING_CANDIDATES)),
        conda:
            "../envs/akdg.yaml"
        resources:
            **job_resources("report"),
        params:
            spec=lambda wildcards: as_json(
                {
                    "student": wildcards.student,
                    "generator": STUDENTS[wildcards.student],
                    "method": wildcards.method,
                    "method_registered": VARIANTS[wildcards.method]["method"],
                    "seed": TUNING["seed"],
                    "num_samples": TUNING["num_samples"],
                    "candidates": TUNING_CANDIDATES[wildcards.method],
                }
            ),
            code=fingerprint("select_tuning"),
        shell:
            "akdg select-tuning --spec {params.spec:q} --runs {input} --out {output} > {log} 2>&1"

    rule tuning_table:
        """Every candidate's validation scores, the chosen ones marked."""
        input:
            TUNING_SELECTIONS,
        output:
            md=TUNING_TABLES[0],
            csv=TUNING_TABLES[1],
        log:
            f"{LOGS}/tuning/table.log",
        conda:
            "../envs/akdg.yaml"
        resources:
            **job_resources("report"),
        params:
            code=fingerprint("select_tuning"),
        shell:
            "akdg tuning-table --selections {input} --out-md {output.md} --out-csv {output.csv} > {log} 2>&1"
