# spinvalve pipeline: sweeps -> jobs -> figure-ready NetCDF -> Figs. 2-7 (PNG, PDF).
#
#   snakemake --cores 2 --configfile config/config.yaml --profile workflow/profiles/local
#   snakemake --configfile config/paper.yaml --profile workflow/profiles/slurm
#   snakemake --report results/report.html --configfile config/config.yaml
#
# Rules are thin shells over the `spinvalve` CLI; sweeps and validation live in
# spinvalve.pipeline.sweeps. See workflow/README.md and config/README.md.

from snakemake.utils import min_version

min_version("8.20")


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/plot.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
