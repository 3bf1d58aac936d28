# Stage 2: job files -> one figure-ready NetCDF per figure (results/figures/<figure>.nc).
# Inputs of a figure are the job files of its enabled families only, so a figure
# whose family is not implemented yet is aggregated from what exists and fills
# in (reruns) when the jobs appear.


# Batches are summed (rho_FM) by spinvalve.opensystem.combine: observables and bands once.
# A cluster job (the bootstrap bands cost minutes to hours), sized by spinvalve.cost.predict_merge.
rule merge_bath_batches:
    input:
        lambda wildcards: [
            j.output for j in BATH_GROUPS[f"results/merged/bath/{wildcards.params}.nc"]
        ],
    output:
        "results/merged/bath/{params}.nc",
    log:
        "results/logs/merged/bath/{params}.log",
    resources:
        tasks=1,
        cpus_per_task=1,
        mem_mb=lambda wildcards, attempt: merge_resources(wildcards, attempt)["mem_mb"],
        runtime=lambda wildcards, attempt: merge_resources(wildcards, attempt)["runtime"],
        **site_resources("bath", signal=False),  # no checkpoint: no warning signal
    conda:
        "../../envs/spinvalve.yaml"
    shell:
        "spinvalve aggregate bath_batches --bath {input} --output {output} > {log} 2>&1"


rule aggregate_figure:
    input:
        unpack(figure_inputs),
    output:
        "results/figures/{figure}.nc",
    log:
        "results/logs/figures/{figure}.aggregate.log",
    params:
        settings=figure_settings,
    localrule: True
    conda:
        "../../envs/spinvalve.yaml"
    shell:
        "spinvalve aggregate {wildcards.figure} --closed {input.closed} --gibbs {input.gibbs} "
        "--bath {input.bath} --multi-electron {input.multi_electron} --boundary {input.boundary} "
        "--settings {params.settings:q} --output {output} > {log} 2>&1"
