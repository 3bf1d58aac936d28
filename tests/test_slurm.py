"""Tests against a REAL single-node SLURM cluster (scripts/slurm-cluster.sh).

The session fixture `slurm_cluster` (tests/slurm_fixture.py) installs and
starts the cluster when needed.  Every external command is bounded by a
timeout.
"""

from __future__ import annotations

import re
import subprocess
import textwrap

import pytest

try:  # tests/ on sys.path (rootdir-less layout, the default)
    from slurm_fixture import find_mpi_python, find_snakemake, slurm_cluster  # noqa: F401
except ImportError:  # tests/ is a package
    from tests.slurm_fixture import find_mpi_python, find_snakemake, slurm_cluster  # noqa: F401

pytestmark = pytest.mark.slurm

MPI_SIZE = "from mpi4py import MPI; print(MPI.COMM_WORLD.size)"


@pytest.fixture(scope="module")
def mpi_python():
    py = find_mpi_python()
    if py is None:
        pytest.fail(
            "no python with mpi4py: neither .venv/bin/python nor /usr/bin/python3 "
            "(apt-get install python3-mpi4py openmpi-bin)"
        )
    return py


def _squeue_state(cluster, jobid: str) -> str:
    out = cluster.run(
        ["squeue", "--noheader", "--states=all", "--jobs", jobid, "--format=%T"],
        timeout=60,
    ).stdout
    return out.strip()


def test_cluster_config_no_accounting(slurm_cluster):
    """Finished jobs must stay visible to squeue (no sacct on this cluster)."""
    conf = slurm_cluster.run(["scontrol", "show", "config"], timeout=60).stdout
    m = re.search(r"^MinJobAge\s*=\s*(\d+)", conf, re.M)
    assert m and int(m.group(1)) >= 120, conf
    assert re.search(r"^MpiDefault\s*=\s*pmix", conf, re.M), conf
    assert re.search(r"^AccountingStorageType\s*=\s*accounting_storage/none", conf, re.M)
    state = slurm_cluster.run(
        ["sinfo", "-h", "-N", "-n", slurm_cluster.node, "-o", "%T"], timeout=60
    ).stdout.strip()
    assert state in {"idle", "mixed", "allocated", "completing"}, state


def test_sbatch_hostname(slurm_cluster, tmp_path):
    out = tmp_path / "hostname.out"
    proc = slurm_cluster.run(
        ["timeout", "300", "sbatch", "--parsable", "--wait",
         "-p", slurm_cluster.partition, "-n", "1", "-t", "5",
         "-o", str(out), "--wrap", "hostname"],
        timeout=330,
    )
    jobid = proc.stdout.strip().split(";")[0]
    assert jobid.isdigit(), proc.stdout
    assert out.read_text().strip() == slurm_cluster.node
    # Status without an accounting database: squeue --states=all.
    assert _squeue_state(slurm_cluster, jobid) == "COMPLETED"


def test_srun_mpi_two_ranks(slurm_cluster, mpi_python):
    proc = slurm_cluster.run(
        ["timeout", "-k", "10", "300", "srun", "-p", slurm_cluster.partition,
         "-n", "2", "--mpi=pmix", "-t", "5", mpi_python, "-c", MPI_SIZE],
        timeout=330,
    )
    assert proc.stdout.split() == ["2", "2"], proc.stdout + proc.stderr


SNAKEFILE = textwrap.dedent(
    '''
    PY = config["python"]

    rule all:
        input: "mpi_size.txt", "plain_jobid.txt"

    rule plain:
        output: "plain_jobid.txt"
        shell: "echo ${{SLURM_JOB_ID:-none}} > {output}"

    rule mpi_size:
        output: "mpi_size.txt"
        resources:
            mpi="srun",
            tasks=2,
        shell:
            "{resources.mpi} -n {resources.tasks} {PY} -c "
            "'from mpi4py import MPI; print(MPI.COMM_WORLD.size)' > {output}"
    '''
)


def _run_snakemake(cluster, tmp_path, mpi_python, profile, plugin_module, route):
    snakemake = find_snakemake(plugin_module)
    if snakemake is None:
        pytest.fail(
            f"no snakemake with {plugin_module}: install the workflow extra "
            "(pip install -e '.[workflow]') into .venv or set SPINVALVE_SNAKEMAKE"
        )
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    site = cluster.site_profile(tmp_path / "site-profile", route)
    cmd = cluster.snakemake_cmd(
        snakemake, profile, tmp_path,
        "--snakefile", str(tmp_path / "Snakefile"),
        "--config", f"python={mpi_python}",
        timeout=600, site=site,
    )
    try:
        proc = cluster.run(cmd, timeout=660, check=False, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail("snakemake did not finish in 660 s")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-8000:]
    assert (tmp_path / "mpi_size.txt").read_text().split() == ["2", "2"]
    jobid = (tmp_path / "plain_jobid.txt").read_text().strip()
    assert jobid.isdigit(), f"plain rule did not run inside a SLURM job: {jobid!r}"
    return proc


def test_snakemake_slurm_executor_mpi(slurm_cluster, tmp_path, mpi_python):
    proc = _run_snakemake(
        slurm_cluster, tmp_path, mpi_python, slurm_cluster.slurm_profile,
        "snakemake_executor_plugin_slurm", "slurm",
    )
    # (the plugin deletes the logs of successful jobs, so check its report)
    out = proc.stdout + proc.stderr
    assert re.search(r"submitted with SLURM jobid \d+ \(log: \S*rule_mpi_size", out), out[-3000:]


def test_snakemake_cluster_generic_sbatch(slurm_cluster, tmp_path, mpi_python):
    _run_snakemake(
        slurm_cluster, tmp_path, mpi_python, slurm_cluster.cluster_generic_profile,
        "snakemake_executor_plugin_cluster_generic", "cluster-generic",
    )
    logs = list((tmp_path / ".snakemake" / "cluster_logs").rglob("*.log"))
    assert any("mpi_size" in str(p) for p in logs), logs

