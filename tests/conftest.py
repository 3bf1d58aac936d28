"""Shared test helpers: MPI launch environment and small job configs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMPI_MCA_rmaps_base_oversubscribe": "1"}


def run_cli(args: list[str], ranks: int = 1, timeout: float = 300, check: bool = True,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``spinvalve ...`` (under mpiexec when ranks > 1) and return the completed process."""
    cmd = [sys.executable, "-m", "spinvalve.cli", *args]
    if ranks > 1:
        mpiexec = shutil.which("mpiexec")
        if mpiexec is None:
            pytest.skip("mpiexec not found")
        cmd = [mpiexec, "--oversubscribe", "-n", str(ranks), *cmd]
    env = {**os.environ, **MPI_ENV, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


class StopAfter:
    """A stop flag (:class:`spinvalve.checkpoint.StopFlag`'s interface) that 'receives the
    signal ``sig``' after it has been polled ``n`` times."""

    def __init__(self, n: int, sig: int = signal.SIGTERM):
        self.n, self.sig = n, sig

    @property
    def raised(self):
        self.n -= 1
        return self.sig if self.n < 0 else None


def dense_matrix(shell):
    """H of a :class:`spinvalve.hamiltonian.HamiltonianShell`, column by column from its
    matrix-free apply (small sectors only)."""
    import numpy as np
    n = shell.local_size
    H = np.empty((n, n), complex)
    e = np.zeros(shell.local_shape, complex)
    out = np.empty_like(e)
    for col in range(n):
        e.flat[col] = 1
        shell.apply(e, out)
        H[:, col] = out.ravel()
        e.flat[col] = 0
    return H


@pytest.fixture
def cli():
    return run_cli


def simulate_job(tmp: Path, name: str, mapping: dict, timeout: float = 600) -> Path:
    """``spinvalve simulate`` of one job config (a mapping) in ``tmp``; the output file."""
    import yaml
    cfg, out = tmp / f"{name}.yaml", tmp / f"{name}.nc"
    cfg.write_text(yaml.safe_dump(mapping))
    proc = subprocess.run([sys.executable, "-m", "spinvalve.cli", "simulate", "--config",
                           str(cfg), "--output", str(out)], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out
