# Helpers: config loading and validation, sweep expansion, figure inputs.
# Everything below runs when the DAG is built, i.e. before any job starts.

import json
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from spinvalve.figures import jobs as sweeps

SCHEMA = os.path.join(workflow.basedir, "workflow", "schemas", "config.schema.yaml")

# The quick config unless --configfile names another one (no silent merging).
if not workflow.overwrite_configfiles and not config:

    configfile: "config/config.yaml"


# Jobs find `spinvalve`, `python` and `mpiexec` children in this environment;
# Open MPI refuses to start as root (containers) without these two variables.
_bindir = os.path.dirname(sys.executable)
if _bindir not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _bindir + os.pathsep + os.environ.get("PATH", "")
if hasattr(os, "geteuid") and os.geteuid() == 0:
    os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")


def _config_error(exc):
    return WorkflowError(f"invalid workflow config: {exc}")


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

# once per run: not again in the Snakemake processes that execute single jobs
if str(getattr(getattr(workflow, "exec_mode", None), "name", "DEFAULT")) == "DEFAULT":
    print(sweeps.describe_status(STATUS), file=sys.stderr)


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


def job_resources(wildcards):
    return sweeps.resources(config, wildcards.family, job_of(wildcards))


def mpi_launcher(wildcards):
    """The `mpi` resource: srun under SLURM, mpiexec otherwise.

    SLURM means the slurm executor (on the submit host) or a SLURM allocation
    (inside the batch job the rule runs in a nested, locally executing Snakemake,
    with SLURM_JOB_ID set). A profile can still override it per rule
    (set-resources: simulate: mpi: ...).
    """
    plugin = getattr(workflow, "executor_plugin", None)
    name = str(getattr(plugin, "name", "") or "")
    return "srun" if "slurm" in name or os.environ.get("SLURM_JOB_ID") else "mpiexec"


def figure_inputs(wildcards):
    return sweeps.figure_inputs(config, JOBS, wildcards.figure)


def figure_settings(wildcards):
    return json.dumps(sweeps.figure_settings(config, wildcards.figure), sort_keys=True)


def figure_sources(figure):
    """Labels of the sweep points a figure shows (for the report captions)."""
    files = sweeps.figure_inputs(config, JOBS, figure)
    return sorted(p.split("/", 2)[2].rsplit(".", 1)[0] for fam in files for p in files[fam])


def all_targets():
    targets = [f"results/figures/{fig}.nc" for fig in FIGURES]
    targets += [f"results/figures/{fig}.{ext}" for fig in FIGURES for ext in FORMATS]
    return targets
