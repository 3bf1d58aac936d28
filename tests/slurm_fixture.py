"""Session fixture that brings up the single-node SLURM test cluster.

Use it from any test module::

    from slurm_fixture import slurm_cluster  # noqa: F401  (pytest fixture)

    @pytest.mark.slurm
    def test_x(slurm_cluster):
        slurm_cluster.run(["sbatch", "--wait", "--wrap", "true"])

or register it once for the whole suite in tests/conftest.py with
``pytest_plugins = ["slurm_fixture"]``.

The fixture runs ``scripts/slurm-cluster.sh start`` (idempotent: installs the
Debian packages if missing, writes /etc/slurm/slurm.conf, starts munged,
slurmctld and slurmd without systemd, waits for the node to be idle).  Tests
are skipped only when the packages cannot be installed (script exit code 3)
or, for a non-root user, when no cluster is running and none can be started.
The cluster is left running after the session (a later `start` is a no-op);
``scripts/slurm-cluster.sh stop`` stops it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SCRIPT = REPO / "scripts" / "slurm-cluster.sh"
SLURM_PROFILE = REPO / "workflow" / "profiles" / "slurm"
CLUSTER_GENERIC_PROFILE = REPO / "workflow" / "profiles" / "cluster-generic"

START_TIMEOUT = 1500  # s; includes apt-get install on a fresh machine
EXIT_INSTALL_FAILED = 3

# Open MPI refuses to run as root without these (mpiexec; harmless for srun).
MPI_ENV = {
    "OMPI_ALLOW_RUN_AS_ROOT": "1",
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
}


def _has_module(python: str, module: str) -> bool:
    try:
        return (
            subprocess.run(
                [python, "-c", f"import {module}"],
                capture_output=True,
                timeout=120,
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_mpi_python() -> str | None:
    """Project venv python if it has mpi4py, else Debian's python3-mpi4py."""
    for cand in (REPO / ".venv" / "bin" / "python", Path("/usr/bin/python3")):
        if cand.exists() and _has_module(str(cand), "mpi4py"):
            return str(cand)
    return None


def find_snakemake(plugin_module: str = "snakemake_executor_plugin_slurm") -> str | None:
    """A snakemake whose interpreter has the executor plugin.

    Order: $SPINVALVE_SNAKEMAKE, .venv/bin/snakemake, snakemake on PATH.
    """
    cands = []
    if os.environ.get("SPINVALVE_SNAKEMAKE"):
        cands.append(Path(os.environ["SPINVALVE_SNAKEMAKE"]))
    cands.append(REPO / ".venv" / "bin" / "snakemake")
    which = shutil.which("snakemake")
    if which:
        cands.append(Path(which))
    for cand in cands:
        if not cand.exists():
            continue
        python = cand.parent / "python"
        if not python.exists():
            python = cand.parent / "python3"
        if not python.exists() or _has_module(str(python), plugin_module):
            return str(cand)
    return None


@dataclass
class SlurmCluster:
    node: str
    partition: str
    repo: Path = REPO
    script: Path = CLUSTER_SCRIPT
    slurm_profile: Path = SLURM_PROFILE
    cluster_generic_profile: Path = CLUSTER_GENERIC_PROFILE
    env: dict = field(default_factory=dict)

    def run(self, cmd, timeout: float = 300, check: bool = True, **kw):
        """subprocess.run with the cluster env, captured text output, a timeout."""
        kw.setdefault("env", self.env)
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, **kw
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"command failed ({proc.returncode}): {cmd}\n"
                f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
            )
        return proc

    def site_profile(self, directory: Path, route: str = "slurm") -> Path:
        """A user's site profile for this cluster, as a real user would keep one
        (~/.config/snakemake/<site>/config.yaml): the partition, and the status command
        of a cluster without an accounting database. The project's workflow profiles
        (workflow/profiles/slurm, .../cluster-generic) hold no site settings."""
        directory.mkdir(parents=True, exist_ok=True)
        if route == "slurm":
            text = (
                "# site: single-node test cluster, no slurmdbd (sacct lists nothing)\n"
                "slurm-status-command: squeue\n"
                "slurm-init-seconds-before-status-checks: 5\n"
                "slurm-status-attempts: 5\n"
                "default-resources:\n"
                f"  slurm_partition: {self.partition}\n"
            )
        else:  # cluster-generic: what the submit line needs of rules that do not set it
            text = (
                "default-resources:\n"
                "  tasks: 1\n  cpus_per_task: 1\n  mem_mb: 1000\n  runtime: 10\n"
                f"  sbatch_flags: \"--partition={self.partition}\"\n"
            )
        (directory / "config.yaml").write_text(text)
        return directory

    def snakemake_cmd(self, snakemake: str, profile: Path, workdir: Path,
                      *args: str, timeout: int = 600, site: Path | None = None) -> list[str]:
        """`timeout N snakemake --workflow-profile P [--profile SITE] --directory W ...`."""
        return [
            "timeout", "-k", "30", str(timeout), snakemake,
            "--workflow-profile", str(profile),
            *(["--profile", str(site)] if site is not None else []),
            "--directory", str(workdir),
            *args,
        ]


def _cluster_env() -> dict:
    env = dict(os.environ)
    env.update(MPI_ENV)
    # A profile from the caller's environment must not leak into the tests.
    env.pop("SNAKEMAKE_PROFILE", None)
    return env


def start_cluster() -> SlurmCluster:
    if os.geteuid() != 0:
        status = subprocess.run(
            ["bash", str(CLUSTER_SCRIPT), "status"], capture_output=True, text=True,
            timeout=120,
        )
        if status.returncode != 0:
            pytest.skip(
                "no SLURM test cluster running and not root: cannot install/start "
                "it (run `sudo scripts/slurm-cluster.sh start`)"
            )
    else:
        # Idempotent and fast (~0.2 s) when the cluster is already healthy.
        try:
            proc = subprocess.run(
                ["bash", str(CLUSTER_SCRIPT), "start"],
                capture_output=True, text=True, timeout=START_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"scripts/slurm-cluster.sh start did not finish in {START_TIMEOUT}s")
        if proc.returncode == EXIT_INSTALL_FAILED:
            pytest.skip(
                "SLURM/munge/PMIx Debian packages could not be installed: "
                + (proc.stderr.strip().splitlines() or ["?"])[-1]
            )
        if proc.returncode != 0:
            pytest.fail(
                f"scripts/slurm-cluster.sh start failed ({proc.returncode}):\n"
                f"{proc.stdout}\n{proc.stderr}"
            )
    node = subprocess.run(
        ["hostname", "-s"], capture_output=True, text=True, check=True
    ).stdout.strip()
    part = subprocess.run(
        ["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=60,
    ).stdout.split()
    partition = next((p.rstrip("*") for p in part if p.endswith("*")),
                     part[0].rstrip("*") if part else "debug")
    return SlurmCluster(node=node, partition=partition, env=_cluster_env())


@pytest.fixture(scope="session")
def slurm_cluster() -> SlurmCluster:
    """A running single-node SLURM cluster (started if needed)."""
    return start_cluster()


if __name__ == "__main__":  # manual use: python tests/slurm_fixture.py
    c = start_cluster()
    print(c, file=sys.stderr)
