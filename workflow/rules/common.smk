# Helpers: config loading and validation, sweep expansion, figure inputs.
# Everything below runs when the DAG is built, i.e. before any job starts.

import json
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from spinvalve.config import yaml_numbers
from spinvalve.pipeline import cluster, sweeps

SCHEMA = os.path.join(workflow.basedir, "workflow", "schemas", "config.schema.yaml")

# The quick config unless --configfile names another one (no silent merging).
if not workflow.overwrite_configfiles and not config:

    configfile: "config/config.yaml"


# Jobs find `spinvalve`, `python` and `mpiexec` children in this environment;
# Open MPI refuses to start as root (containers) without its two permission variables.
sweeps.prepare_environment(sys.executable)


def _config_error(exc):
    return WorkflowError(f"invalid workflow config: {exc}")


# Snakemake reads --configfile with a YAML 1.1 loader, to which 1e-4 is a string: numbers first.
config.update(yaml_numbers(dict(config)))

try:
    with open(SCHEMA) as _fh:
        import yaml as _yaml

        _schema = _yaml.safe_load(_fh)
    sweeps.check_schema(config, _schema)  # first error, named by its dotted key
except sweeps.PipelineConfigError as exc:
    raise _config_error(exc)
validate(config, SCHEMA)  # snakemake's validation; also fills in the schema's defaults

STATUS = sweeps.family_status(config)
try:
    sweeps.validate(config, STATUS)  # every job config, through spinvalve.config.load_config
except sweeps.PipelineConfigError as exc:
    raise _config_error(exc)
JOBS = sweeps.all_jobs(config, STATUS)
BATH_GROUPS = sweeps.bath_groups(JOBS)
FIGURES = sweeps.FIGURES
FORMATS = config["plot"]["formats"]

SITE_KEYS = cluster.site_keys(config)
PLAN = "results/plan.tsv"

# once per run (dry runs included): not again in the Snakemake processes that execute single
# jobs. The plan: every job with its request and predicted cost (spinvalve.cost).
if str(getattr(getattr(workflow, "exec_mode", None), "name", "DEFAULT")) == "DEFAULT":
    print(sweeps.describe_status(STATUS), file=sys.stderr)
    _rows = cluster.plan(config, JOBS)
    Path(PLAN).parent.mkdir(parents=True, exist_ok=True)
    Path(PLAN).write_text(cluster.plan_text(_rows))
    print(cluster.plan_summary(_rows) + f" (per job: {PLAN})", file=sys.stderr)


wildcard_constraints:
    family="|".join(sweeps.FAMILIES),
    figure="|".join(FIGURES),
    params=r"[^/]+~[^/]+(/[^/]+~[^/]+)*",


def job_of(wildcards):
    key = (wildcards.family, wildcards.params)
    if key not in JOBS:
        raise WorkflowError(
            f"results/jobs/{key[0]}/{key[1]}: not a point of the configured sweep "
            f"(enabled families: {[f for f, (on, _) in STATUS.items() if on]})"
        )
    return JOBS[key]


# A job's request, once per (job, attempt): every resource of its rule reads it, and the
# cost model behind it loads the job config and sizes its sectors.
_REQUESTS = {}


def job_resources(wildcards, attempt=1):
    key = (wildcards.family, wildcards.params, attempt)
    if key not in _REQUESTS:
        _REQUESTS[key] = cluster.resources(config, wildcards.family, job_of(wildcards), attempt)
    return _REQUESTS[key]


def merge_resources(wildcards, attempt=1):
    merged = f"results/merged/bath/{wildcards.params}.nc"
    key = ("merge", merged, attempt)
    if key not in _REQUESTS:
        _REQUESTS[key] = cluster.merge_resources(config, merged, BATH_GROUPS[merged], attempt)
    return _REQUESTS[key]


def site_resources(family=None, signal=True):
    """Resources of the site settings the config sets (config ``cluster``, ``<family>.cluster``):
    slurm_partition / slurm_account / qos for the slurm executor, sbatch_flags for the
    cluster-generic submit line, slurm_extra with the time-limit warning signal. A setting the
    config leaves out is not a resource here, so the user's profile supplies it."""
    fam = (lambda wc: family) if family else (lambda wc: wc.family)
    out = {}
    for key, res in cluster.SITE_KEYS.items():
        if key in SITE_KEYS:
            out[res] = lambda wc, key=key: cluster.site_settings(config, fam(wc)).get(key)
    # SIGUSR1 cluster.warning_lead seconds (5 min; tDMRG 15 min) before the time limit, for the
    # jobs that checkpoint on it (exit 75, the retry resumes): in sbatch_flags for the
    # cluster-generic submit line, in slurm_extra for the slurm executor (a profile's
    # default-resources would replace the user's own). A job without it is not signalled.
    out["sbatch_flags"] = lambda wc: cluster.sbatch_flags(config, fam(wc), signal)
    out["slurm_extra"] = lambda wc: cluster.slurm_extra(config, fam(wc), signal)
    return out


def mpi_launcher(wildcards):
    """The `mpi` resource: srun under SLURM, mpiexec otherwise.

    SLURM means the slurm executor (on the submit host) or a SLURM allocation
    (inside the batch job the rule runs in a nested, locally executing Snakemake,
    with SLURM_JOB_ID set). A profile can still override it per rule
    (set-resources: simulate: mpi: ...).
    """
    plugin = getattr(workflow, "executor_plugin", None)
    return cluster.mpi_launcher(str(getattr(plugin, "name", "") or ""))


def figure_inputs(wildcards):
    return sweeps.figure_inputs(config, JOBS, wildcards.figure)


def figure_settings(wildcards):
    return json.dumps(sweeps.figure_settings(config, wildcards.figure), sort_keys=True)


def figure_sources(figure):
    """Labels of the sweep points a figure shows (for the report captions)."""
    return sweeps.figure_source_labels(config, JOBS, figure)


def all_targets():
    targets = [f"results/figures/{fig}.nc" for fig in FIGURES]
    targets += [f"results/figures/{fig}.{ext}" for fig in FIGURES for ext in FORMATS]
    return targets
