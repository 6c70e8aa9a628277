# The teacher (vanilla, on real data) and every student: methods x student generators x seeds.


rule train_teacher:
    input:
        DATA,
    output:
        TEACHER,
    params:
        spec=as_json(
            training_spec(
                config["teacher"]["generator"],
                config["teacher"]["discriminator"],
                "vanilla",
                config["teacher"]["seed"],
                config["teacher"]["steps"],
            )
        ),
    threads: 2
    log:
        f"{LOGS}/train_teacher.log",
    benchmark:
        f"{BENCHMARKS}/train_teacher.tsv"
    shell:
        "{AKDG} train --spec {params.spec:q} --data {input} --threads {threads} --out {output} > {log} 2>&1"


def student_training_spec(wildcards):
    return as_json(
        training_spec(
            STUDENTS[wildcards.student],
            config["student_discriminator"],
            wildcards.method,
            int(wildcards.seed),
            config["training"]["steps"],
        )
    )


def student_inputs(wildcards):
    """Only distillation methods wait for the teacher; vanilla students train alongside it."""
    inputs = {"data": DATA}
    if METHOD_REGISTRY.get(wildcards.method).requires_teacher:
        inputs["teacher"] = TEACHER
    return inputs


rule train_student:
    input:
        unpack(student_inputs),
    output:
        STUDENT_CHECKPOINT,
    params:
        spec=student_training_spec,
        teacher=lambda wildcards, input: f"--teacher {input.teacher}" if "teacher" in input.keys() else "",
    threads: 1
    log:
        f"{LOGS}/train/{{student}}_{{method}}_seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/train/{{student}}_{{method}}_seed{{seed}}.tsv"
    shell:
        "{AKDG} train --spec {params.spec:q} --data {input.data} {params.teacher}"
        " --threads {threads} --out {output} > {log} 2>&1"
