"""Checkpoint/resume: SIGKILL and SIGTERM mid-run, with 1 and 2 MPI ranks."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

from conftest import MPI_ENV, ROOT

JOB = """
chain: {n_sites: 90}
layers: {n_p: 3, n_a: 3, fm_p_start: 30, spacer: 2}
pulse: {x0: 12.0}
time: {t_end: 30.0, dt_out: 0.1}
checkpoint: {interval: 1.0e-9}
"""


def launch(job, out, ranks=1, extra=()):
    cmd = [sys.executable, "-m", "spinvalve.cli", "simulate", "--config", str(job), "-o", str(out), *extra]
    if ranks > 1:
        cmd = [shutil.which("mpiexec"), "--oversubscribe", "-n", str(ranks), *cmd]
    env = {**os.environ, **MPI_ENV, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def wait_for_checkpoint(proc, meta, timeout=120):
    t0 = time.monotonic()
    while not meta.exists():
        assert proc.poll() is None, "job ended before writing a checkpoint"
        assert time.monotonic() - t0 < timeout
        time.sleep(0.01)


def kill_job(proc, out, sig):
    """Send ``sig`` to the job's process group, then make sure no rank of it survives
    (MPI ranks may sit in their own process groups; a batch system kills them all)."""
    os.killpg(proc.pid, sig)
    code = proc.wait(timeout=120)
    t0 = time.monotonic()
    while True:
        found = subprocess.run(["pgrep", "-f", str(out)], capture_output=True, text=True).stdout.split()
        if not found:
            return code
        if sig == signal.SIGKILL or time.monotonic() - t0 > 30:
            subprocess.run(["kill", "-9", *found], capture_output=True)
        assert time.monotonic() - t0 < 60, "ranks of the killed job do not exit"
        time.sleep(0.1)


def assert_same(a, b):
    for var in a.data_vars:
        np.testing.assert_allclose(a[var].values, b[var].values, atol=1e-12, rtol=0, err_msg=var)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref")
    job = d / "job.yaml"
    job.write_text(JOB)
    out = d / "ref.nc"
    proc = launch(job, out)
    assert proc.wait(timeout=600) == 0, proc.stderr.read()
    assert not list(d.glob("ref.nc.ckpt*")), "checkpoint files left behind after success"
    return job, xr.open_dataset(out).load()


@pytest.mark.parametrize("ranks,sig", [(1, signal.SIGKILL), (1, signal.SIGTERM),
                                       (2, signal.SIGKILL), (2, signal.SIGTERM)])
def test_interrupted_job_resumes_to_the_same_result(reference, tmp_path, ranks, sig):
    job, ref = reference
    out = tmp_path / "out.nc"
    proc = launch(job, out, ranks)
    wait_for_checkpoint(proc, tmp_path / "out.nc.ckpt.meta")
    code = kill_job(proc, out, sig)
    assert code != 0
    if sig == signal.SIGTERM and ranks == 1:
        assert code == 75 and "checkpoint written" in proc.stderr.read()
    assert not out.exists()
    proc = launch(job, out, ranks)
    assert proc.wait(timeout=600) == 0, proc.stderr.read()
    if ranks == 1:
        assert "resuming from checkpoint" in proc.stderr.read()
    assert_same(xr.open_dataset(out), ref)
    assert not list(tmp_path.glob("out.nc.ckpt*"))


def test_job_measuring_in_turn_resumes_to_the_same_result(reference, tmp_path):
    """A member per rank: the ranks measure in turn and the stop signal, due
    checkpoints and records travel with the non-blocking reductions."""
    job, ref = reference
    out = tmp_path / "out.nc"
    one_per_rank = ["--set", "numerics.ranks_per_member=1"]
    proc = launch(job, out, 2, one_per_rank)
    wait_for_checkpoint(proc, tmp_path / "out.nc.ckpt.meta")
    assert kill_job(proc, out, signal.SIGTERM) != 0
    assert not out.exists()
    proc = launch(job, out, 2, one_per_rank)
    assert proc.wait(timeout=600) == 0, proc.stderr.read()
    assert "resuming from checkpoint" in proc.stderr.read()
    ds = xr.open_dataset(out)
    assert ds.attrs["groups"] == 2
    assert_same(ds, ref)
    assert not list(tmp_path.glob("out.nc.ckpt*"))


def test_checkpoint_of_another_config_is_refused(reference, tmp_path):
    job, _ = reference
    out = tmp_path / "out.nc"
    proc = launch(job, out)
    wait_for_checkpoint(proc, tmp_path / "out.nc.ckpt.meta")
    kill_job(proc, out, signal.SIGKILL)
    proc = launch(job, out, extra=["--set", "couplings.j_sd=0.4"])
    assert proc.wait(timeout=120) == 1
    assert "different config" in proc.stderr.read()
    assert not out.exists()


class StopAfter:
    """A stop flag that 'receives a signal' after it has been polled ``n`` times."""

    def __init__(self, n):
        self.n = n

    @property
    def raised(self):
        self.n -= 1
        return signal.SIGTERM if self.n < 0 else None


def test_trajectory_job_resumes_to_the_same_sums(tmp_path):
    from mpi4py import MPI
    from spinvalve.checkpoint import Checkpointer, Interrupted
    from spinvalve.config import load_config
    from spinvalve.opensystem import run_open
    cfg = load_config({"chain": {"n_sites": 10}, "layers": {"n_p": 2, "n_a": 1, "fm_p_start": 3, "spacer": 1},
                       "pulse": {"x0": 1.0}, "time": {"t_end": 4.0, "dt_out": 0.5},
                       "bath": {"temperature": 100.0, "gamma": 0.01},
                       "trajectories": {"count": 9, "seed": 7}, "checkpoint": {"interval": 1e6}})
    world = MPI.COMM_WORLD
    ref = run_open(cfg, world, log=None)
    ckpt = Checkpointer(tmp_path / "job.ckpt", cfg, world)
    with pytest.raises(Interrupted):
        run_open(cfg, world, log=None, checkpointer=ckpt, stop=StopAfter(4))
    assert (tmp_path / "job.ckpt.meta").exists()
    resumed = run_open(cfg, world, log=None, checkpointer=ckpt)
    assert resumed.attrs["n_trajectories"] == ref.attrs["n_trajectories"] == 9
    for var in ("rho_fm_sum_real", "rho_fm_sum_imag", "log_negativity", "entropy_pa", "jumps_per_spin"):
        np.testing.assert_allclose(resumed[var].values, ref[var].values, atol=1e-12, rtol=0, err_msg=var)
