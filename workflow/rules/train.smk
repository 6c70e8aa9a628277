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
                config["teacher"]["ema_decay"],
            )
        ),
    threads: 2  # the teacher is the DAG's critical path; students and evaluations take 1 thread each
    conda:
        "../envs/akdg.yaml"
    log:
        f"{LOGS}/train_teacher.log",
    benchmark:
        f"{BENCHMARKS}/train_teacher.tsv"
    shell:
        "akdg train --spec {params.spec:q} --data {input} --threads {threads} --out {output} > {log} 2>&1"


rule train_student:
    input:
        unpack(student_inputs),
    output:
        STUDENT_CHECKPOINT,
    params:
        spec=student_training_spec,
        teacher=lambda wildcards, input: f"--teacher {input.teacher}" if "teacher" in input.keys() else "",
    threads: 1
    conda:
        "../envs/akdg.yaml"
    log:
        f"{LOGS}/train/{{student}}_{{method}}_seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/train/{{student}}_{{method}}_seed{{seed}}.tsv"
    shell:
        "akdg train --spec {params.spec:q} --data {input.data} {params.teacher}"
        " --threads {threads} --out {output} > {log} 2>&1"
