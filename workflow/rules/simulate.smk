# Stage 1: one job per sweep point.  results/jobs/<family>/<key~value/...>.{yaml,nc}
#
# The job config is written by its own (local) rule whose only parameter is the
# job's YAML text: Snakemake's params trigger rewrites it exactly when that job's
# settings change, and the new file reruns exactly that simulation.


rule job_config:
    output:
        "results/jobs/{family}/{params}.yaml",
    log:
        "results/logs/jobs/{family}/{params}.config.log",
    params:
        text=lambda wildcards: job_of(wildcards).yaml,
    localrule: True
    run:
        Path(output[0]).write_text(params.text)
        Path(log[0]).write_text(f"wrote {output[0]}\n")


# MPI families. Ranks, memory, runtime and BLAS threads per rank come from the cost model
# (spinvalve.cost via spinvalve.pipeline.cluster.resources; the config's <family>.resources win;
# runtime and memory grow with the attempt). The launcher is the `mpi` resource: mpiexec
# locally, srun under the SLURM executor (common.smk: mpi_launcher; a profile may override it
# with set-resources: simulate: mpi: ...). Under SLURM an MPI job needs ranks >= 2
# (snakemake-executor-plugin-slurm). Every rank runs under spinvalve.usage, which writes its
# wall / CPU time and peak memory to results/benchmarks/ranks/... (sizing data of the ranks,
# not of srun). BLAS threads: cpus_per_task per rank (the measuring rank uses them); the
# compiled propagation kernels stay at one thread per rank. The engine writes its output
# atomically, so a killed job leaves no file Snakemake could take as complete.
rule simulate:
    input:
        "results/jobs/{family}/{params}.yaml",
    output:
        nc="results/jobs/{family}/{params}.nc",
        usage="results/benchmarks/ranks/{family}/{params}.tsv",
    log:
        "results/logs/jobs/{family}/{params}.log",
    wildcard_constraints:
        family="closed|gibbs|bath|boundary",
    threads: lambda wildcards: job_resources(wildcards)["ranks"] * job_resources(wildcards)["threads"]
    resources:
        mpi=mpi_launcher,
        tasks=lambda wildcards: job_resources(wildcards)["ranks"],
        cpus_per_task=lambda wildcards: job_resources(wildcards)["threads"],
        mem_mb=lambda wildcards, attempt: job_resources(wildcards, attempt)["mem_mb"],
        runtime=lambda wildcards, attempt: job_resources(wildcards, attempt)["runtime"],
        # <family>.parallel: on the command line, not in the job file (no rerun when edited)
        parallel_args=lambda wildcards: sweeps.parallel_args(config, wildcards.family),
        **site_resources(),
    conda:
        "../../envs/spinvalve.yaml"
    shell:
        "OMP_NUM_THREADS={resources.cpus_per_task} OPENBLAS_NUM_THREADS={resources.cpus_per_task} "
        "MKL_NUM_THREADS={resources.cpus_per_task} SRUN_CPUS_PER_TASK={resources.cpus_per_task} "
        "{resources.mpi} -n {resources.tasks} python -m spinvalve.usage {output.usage} -- "
        "spinvalve simulate --config {input} {resources.parallel_args} --output {output.nc} "
        "> {log} 2>&1"


# Multi-electron pulses (tDMRG, threaded, not MPI).
rule simulate_tdmrg:
    input:
        "results/jobs/{family}/{params}.yaml",
    output:
        nc="results/jobs/{family}/{params}.nc",
        usage="results/benchmarks/ranks/{family}/{params}.tsv",
    log:
        "results/logs/jobs/{family}/{params}.log",
    wildcard_constraints:
        family="multi_electron",
    threads: lambda wildcards: job_resources(wildcards)["threads"]
    resources:
        tasks=1,
        cpus_per_task=lambda wildcards: job_resources(wildcards)["threads"],
        mem_mb=lambda wildcards, attempt: job_resources(wildcards, attempt)["mem_mb"],
        runtime=lambda wildcards, attempt: job_resources(wildcards, attempt)["runtime"],
        **site_resources(),
    conda:
        "../../envs/spinvalve.yaml"
    shell:
        "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads} "
        "python -m spinvalve.usage {output.usage} -- "
        "spinvalve simulate --config {input} --output {output.nc} > {log} 2>&1"
