# The dataset's fixed split, and the domain classifier that serves as the feature extractor.


if TO_DOWNLOAD:

    rule download_data:
        """Fetch (or extract a placed archive of) the missing official files in a job of its own: on clusters, a node
        with network. Write-protected once made; replacing one by hand reruns prepare_data and what follows."""
        output:
            [protected(path) for path in TO_DOWNLOAD],
        log:
            f"{LOGS}/download_data.log",
        benchmark:
            f"{BENCHMARKS}/download_data.tsv"
        priority: 95  # the root of the critical path: data -> teacher -> distilled students -> their evaluation
        conda:
            "../envs/akdg.yaml"
        resources:
            **job_resources("data"),
        params:
            spec=as_json(DATASET_SPEC),
        shell:
            "akdg download-data --spec {params.spec:q} > {log} 2>&1"


rule prepare_data:
    input:
        [str(path) for path in DATA_SOURCES.files],
    output:
        npz=DATA,
        protocol=DATA.replace(".npz", ".json"),
    log:
        f"{LOGS}/prepare_data.log",
    benchmark:
        f"{BENCHMARKS}/prepare_data.tsv"
    priority: 95  # the root of the critical path: data -> teacher -> distilled students -> their evaluation
    conda:
        "../envs/akdg.yaml"
    resources:
        **job_resources("data"),
    params:
        **({"manifest": DATA_SOURCES.manifest} if DATA_SOURCES.manifest else {}),  # a folder's content: params changed, job rerun
        spec=as_json(DATASET_SPEC),
        code=fingerprint("prepare_data", dataset=config["dataset"]["name"]),
    shell:
        "akdg prepare-data --spec {params.spec:q} --out {output.npz} > {log} 2>&1"


if EXTRACTOR_SOURCE == "train":

    rule train_extractor:
        """The classifier extractor trained on the train split's labels: for datasets without a pinned one."""
        input:
            DATA,
        output:
            weights=EXTRACTOR_WEIGHTS,
            protocol=EXTRACTOR,
        log:
            f"{LOGS}/train_extractor.log",
        benchmark:
            f"{BENCHMARKS}/train_extractor.tsv"
        priority: 50  # after the teacher has its cores, before the students: every evaluation waits for it
        conda:
            "../envs/akdg.yaml"
        threads: 1
        resources:
            **job_resources("data"),
        params:
            spec=as_json({key: value for key, value in config["extractor"].items() if key != "source"}),
            code=fingerprint("train_extractor"),
        message:
            "train the feature extractor (log: {log})"
        shell:
            "akdg train-extractor --spec {params.spec:q} --data {input} --threads {threads} --out {output.weights} > {log} 2>&1"

else:

    rule fetch_extractor:
        """A fixed extractor: the pinned classifier (checked and copied) or Inception-v3 (located or downloaded)."""
        input:
            PINNED_EXTRACTOR or config["evaluation"].get("inception_weights") or [],  # Inception's: a local copy, if given
        output:
            **({"weights": EXTRACTOR_WEIGHTS} if PINNED_EXTRACTOR else {}),
            protocol=EXTRACTOR,
        log:
            f"{LOGS}/fetch_extractor.log",
        benchmark:
            f"{BENCHMARKS}/fetch_extractor.tsv"
        priority: 50  # before the students: every evaluation waits for it
        conda:
            "../envs/akdg.yaml"
        resources:
            **job_resources("data"),
        params:
            spec=as_json(
                {"feature_extractor": FEATURE_EXTRACTOR, "inception_weights": config["evaluation"].get("inception_weights")}
                | ({"allow_nonstandard_inception": True} if config["evaluation"].get("allow_nonstandard_inception") else {})
                | (
                    {"pinned": {"dataset": config["dataset"]["name"], "resolution": config["dataset"]["resolution"]}}
                    if PINNED_EXTRACTOR
                    else {}
                )
            ),
            code=fingerprint("fetch_extractor"),
        shell:
            "akdg fetch-extractor --spec {params.spec:q} --out {output.protocol} > {log} 2>&1"


rule reference_stats:
    """The train split's features, once, into a cache keyed by content that the evaluations only read."""
    input:
        data=DATA,
        extractor=EXTRACTOR,
    output:
        REFERENCE_STATS,
    log:
        f"{LOGS}/reference_stats.log",
    benchmark:
        f"{BENCHMARKS}/reference_stats.tsv"
    priority: 50  # after the teacher has its cores, before the students: every evaluation waits for it
    conda:
        "../envs/akdg.yaml"
    threads: 1
    resources:
        **job_resources("evaluate"),
    params:
        spec=as_json(
            {"feature_extractor": FEATURE_EXTRACTOR, "batch_size": config["evaluation"]["batch_size"]}
            | ({"allow_nonstandard_inception": True} if config["evaluation"].get("allow_nonstandard_inception") else {})
        ),
        cache=REFERENCE_CACHE,
        code=fingerprint("reference_stats"),
    message:
        "reference features of the train split (log: {log})"
    shell:
        "akdg reference-stats --spec {params.spec:q} --data {input.data} --extractor {input.extractor}"
        " --cache-dir {params.cache} --threads {threads} --out {output} > {log} 2>&1"
