# The dataset's fixed split, and the domain classifier that serves as the feature extractor.


rule prepare_data:
    output:
        npz=DATA,
        protocol=DATA.replace(".npz", ".json"),
    params:
        spec=as_json(config["dataset"]),
    conda:
        "../envs/akdg.yaml"
    log:
        f"{LOGS}/prepare_data.log",
    benchmark:
        f"{BENCHMARKS}/prepare_data.tsv"
    shell:
        "akdg prepare-data --spec {params.spec:q} --out {output.npz} > {log} 2>&1"


rule train_extractor:
    input:
        DATA,
    output:
        weights=EXTRACTOR,
        protocol=EXTRACTOR.replace(".pt", ".json"),
    params:
        spec=as_json(config["extractor"]),
    threads: 1
    conda:
        "../envs/akdg.yaml"
    log:
        f"{LOGS}/train_extractor.log",
    benchmark:
        f"{BENCHMARKS}/train_extractor.tsv"
    shell:
        "akdg train-extractor --spec {params.spec:q} --data {input} --threads {threads} --out {output.weights} > {log} 2>&1"
