# The teachers (vanilla, on real data; one per teacher seed) and every student: methods x student generators x seeds.


if config["teacher"]["checkpoint"]:

    rule import_teacher:
        """A teacher trained elsewhere (teacher.checkpoint): checked against the config, stored in akdg's format."""
        input:
            data=DATA,
            checkpoint=config["teacher"]["checkpoint"],
        output:
            TEACHERS,  # one: an imported teacher takes one seed
        log:
            f"{LOGS}/import_teacher.log",
        benchmark:
            f"{BENCHMARKS}/import_teacher.tsv"
        priority: 90  # the critical path: every distilled student waits for the teacher
        conda:
            "../envs/akdg.yaml"
        resources:
            **job_resources("teacher"),
        params:
            spec=as_json({"generator": config["teacher"]["generator"], "z_dim": config["z_dim"]}),
            code=fingerprint("import_teacher", architectures=[TEACHER_ARCH]),
        shell:
            "akdg import-teacher --spec {params.spec:q} --data {input.data} --checkpoint {input.checkpoint:q} --out {output} > {log} 2>&1"

else:

    rule train_teacher:
        """One teacher per teacher seed: the teacher's spread across seeds enters the students it distils into."""
        input:
            DATA,
        output:
            TEACHER_CHECKPOINT,
        log:
            f"{LOGS}/train_teacher_seed{{seed}}.log",
        benchmark:
            f"{BENCHMARKS}/train_teacher_seed{{seed}}.tsv"
        priority: 90  # the critical path: first (after measure_cost) once both cores are free; see docs/benchmarks.md
        conda:
            "../envs/akdg.yaml"
        threads: 2  # the teacher is the DAG's critical path; students and evaluations take 1 thread each
        resources:
            **job_resources("teacher"),
        params:
            spec=lambda wildcards: as_json(teacher_training_spec(config, int(wildcards.seed))),
            every=config["training"]["checkpoint_every"],
            code=fingerprint(
                "train",
                architectures=[TEACHER_ARCH, config["teacher"]["discriminator"]["arch"]],
                methods=["vanilla"],
                losses=[TEACHER_LOSS],
            ),
        message:
            f"train the teacher of seed {{wildcards.seed}}, {config['teacher']['steps']} steps on {{threads}} threads (progress: {{log}})"
        shell:
            "akdg train --spec {params.spec:q} --data {input} --threads {threads} --checkpoint-every {params.every} --out {output} > {log} 2>&1"


rule train_student:
    input:
        unpack(tuned_student_inputs),
    output:
        STUDENT_CHECKPOINT,
    log:
        f"{LOGS}/train/{{student}}_{{method}}_seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/train/{{student}}_{{method}}_seed{{seed}}.tsv"
    conda:
        "../envs/akdg.yaml"
    threads: 1
    resources:
        **job_resources("student"),
    params:
        spec=student_spec_json,
        teacher=lambda wildcards, input: f"--teacher {input.teacher}" if "teacher" in input.keys() else "",
        tuned=lambda wildcards, input: f"--tuned {input.tuned}" if "tuned" in input.keys() else "",
        every=config["training"]["checkpoint_every"],
        code=student_code,
    message:
        "train student {wildcards.student} with {wildcards.method}, seed {wildcards.seed} (progress: {log})"
    shell:
        "akdg train --spec {params.spec:q} --data {input.data} {params.teacher} {params.tuned}"
        " --threads {threads} --checkpoint-every {params.every} --out {output} > {log} 2>&1"
