# Stage 4: HTML report with every figure, its caption and its parameters.
#
#   snakemake --report results/report.html --configfile config/config.yaml
#
# The figures are the report() outputs of the plot rules (workflow/rules/plot.smk);
# captions live in workflow/report/<figure>.rst and show the job parameters.


report: "../report/workflow.rst"
