# Stage 1: one job per sweep point.  results/jobs/<family>/<key~value/...>.{yaml,nc}
#
# The job config is written by its own (local) rule whose only parameter is the
# job's YAML text: Snakemake's params trigger rewrites it exactly when that job's
# settings change, and the new file reruns exactly that simulation.


rule job_config:
    output:
        "results/jobs/{family}/{params}.yaml",
    params:
        text=lambda wildcards: job_of(wildcards).yaml,
    localrule: True
    run:
        Path(output[0]).write_text(params.text)


# MPI families. Ranks come from the rule's resources (config: <family>.resources.ranks);
# the launcher is the `mpi` resource: mpiexec locally, srun under the SLURM executor
# (common.smk: mpi_launcher; a profile may override it with set-resources: simulate: mpi: ...).
# Under SLURM an MPI job needs ranks >= 2 (snakemake-executor-plugin-slurm). The engine writes its output atomically,
# so a killed job leaves no file Snakemake could take as complete.
rule simulate:
    input:
        "results/jobs/{family}/{params}.yaml",
    output:
        "results/jobs/{family}/{params}.nc",
    log:
        "results/logs/jobs/{family}/{params}.log",
    benchmark:
        "results/benchmarks/jobs/{family}/{params}.tsv"
    wildcard_constraints:
        family="closed|gibbs|bath|boundary",
    threads: lambda wildcards: job_resources(wildcards)["ranks"]
    resources:
        mpi=mpi_launcher,
        tasks=lambda wildcards: job_resources(wildcards)["ranks"],
        cpus_per_task=1,
        mem_mb=lambda wildcards: job_resources(wildcards)["mem_mb"],
        runtime=lambda wildcards: job_resources(wildcards)["runtime"],
    shell:
        "{resources.mpi} -n {resources.tasks} spinvalve simulate --config {input} "
        "--output {output} > {log} 2>&1"


# Multi-electron pulses (tDMRG, threaded, not MPI).
rule simulate_tdmrg:
    input:
        "results/jobs/{family}/{params}.yaml",
    output:
        "results/jobs/{family}/{params}.nc",
    log:
        "results/logs/jobs/{family}/{params}.log",
    benchmark:
        "results/benchmarks/jobs/{family}/{params}.tsv"
    wildcard_constraints:
        family="multi_electron",
    threads: lambda wildcards: job_resources(wildcards)["threads"]
    resources:
        cpus_per_task=lambda wildcards: job_resources(wildcards)["threads"],
        mem_mb=lambda wildcards: job_resources(wildcards)["mem_mb"],
        runtime=lambda wildcards: job_resources(wildcards)["runtime"],
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads} "
        "spinvalve simulate --config {input} --output {output} > {log} 2>&1"
