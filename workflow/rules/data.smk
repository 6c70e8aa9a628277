# The dataset's fixed split, and the domain classifier that serves as the feature extractor.


if NEEDS_DOWNLOAD:

    rule download_data:
        """Fetch (or verify placed) official files in a job of its own: on clusters, a node with network."""
        output:
            DOWNLOAD_RECORD,
        params:
            spec=as_json(config["dataset"]),
        resources:
            **job_resources("data"),
        conda:
            "../envs/akdg.yaml"
        log:
            f"{LOGS}/download_data.log",
        benchmark:
            f"{BENCHMARKS}/download_data.tsv"
        shell:
            "akdg download-data --spec {params.spec:q} --out {output} > {log} 2>&1"


rule prepare_data:
    input:
        DOWNLOAD_RECORD if NEEDS_DOWNLOAD else [],
    output:
        npz=DATA,
        protocol=DATA.replace(".npz", ".json"),
    params:
        spec=as_json(config["dataset"]),
    resources:
        **job_resources("data"),
    conda:
        "../envs/akdg.yaml"
    log:
        f"{LOGS}/prepare_data.log",
    benchmark:
        f"{BENCHMARKS}/prepare_data.tsv"
    shell:
        "akdg prepare-data --spec {params.spec:q} --out {output.npz} > {log} 2>&1"


if FEATURE_EXTRACTOR == "akdg-classifier":

    rule train_extractor:
        input:
            DATA,
        output:
            weights=EXTRACTOR_WEIGHTS,
            protocol=EXTRACTOR,
        params:
            spec=as_json(config["extractor"]),
        threads: 1
        resources:
            **job_resources("data"),
        conda:
            "../envs/akdg.yaml"
        log:
            f"{LOGS}/train_extractor.log",
        benchmark:
            f"{BENCHMARKS}/train_extractor.tsv"
        shell:
            "akdg train-extractor --spec {params.spec:q} --data {input} --threads {threads} --out {output.weights} > {log} 2>&1"

else:

    rule fetch_extractor:
        """A pretrained extractor (Inception-v3): its weights located or downloaded, their sha256 recorded."""
        output:
            EXTRACTOR,
        params:
            spec=as_json({key: config["evaluation"].get(key) for key in ("feature_extractor", "inception_weights")}),
        resources:
            **job_resources("data"),
        conda:
            "../envs/akdg.yaml"
        log:
            f"{LOGS}/fetch_extractor.log",
        benchmark:
            f"{BENCHMARKS}/fetch_extractor.tsv"
        shell:
            "akdg fetch-extractor --spec {params.spec:q} --out {output} > {log} 2>&1"


rule reference_stats:
    """The train split's features, once, into a cache keyed by content that the evaluations only read."""
    input:
        data=DATA,
        extractor=EXTRACTOR,
    output:
        REFERENCE_STATS,
    params:
        spec=as_json({"feature_extractor": FEATURE_EXTRACTOR, "batch_size": config["evaluation"]["batch_size"]}),
        cache=REFERENCE_CACHE,
    threads: 1
    resources:
        **job_resources("evaluate"),
    conda:
        "../envs/akdg.yaml"
    log:
        f"{LOGS}/reference_stats.log",
    benchmark:
        f"{BENCHMARKS}/reference_stats.tsv"
    shell:
        "akdg reference-stats --spec {params.spec:q} --data {input.data} --extractor {input.extractor}"
        " --cache-dir {params.cache} --threads {threads} --out {output} > {log} 2>&1"
