# Tables (Markdown, CSV, LaTeX), the claims table, the DVC metrics and the plots, all from the run JSONs.


rule aggregate:
    input:
        ALL_RUNS,
    output:
        tables=[in_report(path, "summary", "Tables", table="summary") for path in TABLES],
        claims=[in_report(path, "claims", "Tables", table="claims") for path in CLAIMS],
        metrics=directory(f"{OUT}/metrics/{DATASET}"),
        plot=in_report(f"{OUT}/plots/{DATASET}_fid_vs_params.png", "fid_vs_params", "Plots", plot="FID vs parameters"),
        plot_data=in_report(f"{OUT}/plots/{DATASET}_fid_vs_params.csv", "fid_vs_params", "Plots", plot="FID vs parameters"),
        size_tables=[in_report(path, "sizes", "Tables", table="per-size comparison") for path in SIZE_TABLES],
        size_plot=[in_report(path, "sizes", "Plots", plot="method differences per size") for path in SIZE_PLOT],
        tradeoff=[in_report(path, "tradeoff", "Plots", plot="trade-off") for path in TRADEOFF],
        ablation_tables=[in_report(path, "ablations", "Tables", table="ablations") for path in ABLATION_TABLES],
        curves=[in_report(path, "curves", "Plots", plot="FID during training") for path in CURVES],
    log:
        f"{LOGS}/aggregate.log",
    benchmark:
        f"{BENCHMARKS}/aggregate.tsv"
    conda:
        "../envs/akdg.yaml"
    resources:
        **job_resources("report"),
    params:
        methods=" ".join(METHODS),
        dataset=DATASET,
        tables_dir=lambda wildcards, output: os.path.dirname(output.tables[0]),
        plots_dir=lambda wildcards, output: os.path.dirname(output.plot),
        sizes="--sizes" if SWEEPS_SIZES else "",
        ablations="--ablations" if ABLATES else "",
        curves="--curves" if CURVES else "",
        code=fingerprint("aggregate"),
    shell:
        "akdg aggregate --runs {input} --method-order {params.methods} --dataset {params.dataset}"
        " --tables-dir {params.tables_dir} --plots-dir {params.plots_dir} --metrics-dir {output.metrics}"
        " {params.sizes} {params.ablations} {params.curves} > {log} 2>&1"


rule plot_samples:
    """The first seed's teacher and every student of the first seed (its students), on the same z."""
    input:
        teacher=TEACHER_CHECKPOINT.format(seed=teacher_seed_for(config, SEEDS[0])),
        students=expand(STUDENT_CHECKPOINT, student=STUDENTS, method=METHODS, seed=SEEDS[0]),
    output:
        in_report(f"{OUT}/plots/{DATASET}_samples.png", "samples", "Plots", plot="sample grids"),
    log:
        f"{LOGS}/plot_samples.log",
    benchmark:
        f"{BENCHMARKS}/plot_samples.tsv"
    conda:
        "../envs/akdg.yaml"
    resources:
        **job_resources("report"),
    params:
        checkpoints=lambda wildcards, input: " ".join(
            [f"teacher={input.teacher}"]
            + [f"{name}/{method}={path}" for (name, method), path in zip([(n, m) for n in STUDENTS for m in METHODS], input.students)]
        ),
        z_dim=config["z_dim"],
        code=fingerprint("plot_samples", architectures=GENERATOR_ARCHS),
    shell:
        "akdg plot-samples --checkpoint {params.checkpoints} --z-dim {params.z_dim} --out {output} > {log} 2>&1"
