# Stage 2: job files -> one figure-ready NetCDF per figure (results/figures/<figure>.nc).
# Inputs of a figure are the job files of its enabled families only, so a figure
# whose family is not implemented yet is aggregated from what exists and fills
# in (reruns) when the jobs appear.


# Batches are summed (rho_FM) by spinvalve.opensystem.combine: observables and bands once.
rule merge_bath_batches:
    input:
        lambda wildcards: [
            j.output for j in BATH_GROUPS[f"results/merged/bath/{wildcards.params}.nc"]
        ],
    output:
        "results/merged/bath/{params}.nc",
    log:
        "results/logs/merged/bath/{params}.log",
    localrule: True
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
    shell:
        "spinvalve aggregate {wildcards.figure} --closed {input.closed} --gibbs {input.gibbs} "
        "--bath {input.bath} --multi-electron {input.multi_electron} --boundary {input.boundary} "
        "--settings {params.settings:q} --output {output} > {log} 2>&1"
