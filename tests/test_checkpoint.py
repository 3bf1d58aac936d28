"""Checkpoint/resume: SIGKILL and SIGTERM mid-run, with 1 and 2 MPI ranks."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

from conftest import MPI_ENV, ROOT, StopAfter

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
    one_per_rank = ["--set", "parallel.ranks_per_member=1"]
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


def test_checkpoint_of_another_config_is_moved_aside(reference, tmp_path):
    """After a config edit the leftover checkpoint is renamed (never deleted), the job
    starts afresh and succeeds; a second run finds nothing stale."""
    job, ref = reference
    out = tmp_path / "out.nc"
    proc = launch(job, out)
    wait_for_checkpoint(proc, tmp_path / "out.nc.ckpt.meta")
    kill_job(proc, out, signal.SIGKILL)
    left = sorted(p.name for p in tmp_path.glob("out.nc.ckpt*"))
    proc = launch(job, out, extra=["--set", "couplings.j_sd=0.4"])
    assert proc.wait(timeout=600) == 0
    err = proc.stderr.read()
    assert "different config" in err and "moved aside" in err and "resuming" not in err
    stale = sorted(p.name for p in tmp_path.glob("out.nc.ckpt.stale-*"))
    assert [n.split(".", 4)[-1] for n in stale] == [n.split(".", 3)[-1] for n in left]
    rest = sorted(p.name for p in tmp_path.iterdir() if ".stale-" not in p.name)
    assert rest == ["out.nc"]
    ds = xr.open_dataset(out)
    assert ds.attrs["config"] != ref.attrs["config"]
    assert np.abs(ds.log_negativity.values - ref.log_negativity.values).max() > 1e-6


def test_stale_checkpoint_files_survive_a_later_success(tmp_path):
    """remove() after a successful run deletes this checkpoint's files only, never the
    ones moved aside (their names also start with <base>.s...)."""
    from mpi4py import MPI
    from spinvalve.checkpoint import Checkpointer
    from spinvalve.config import load_config
    world = MPI.COMM_WORLD
    a, b = load_config({"couplings": {"j": 0.2}}), load_config({})
    Checkpointer(tmp_path / "x.ckpt", a, world).save(3, [1], [np.arange(4.0)])
    log = io.StringIO()
    ck = Checkpointer(tmp_path / "x.ckpt", b, world, log=log)
    assert ck.load() is None and "moved aside" in log.getvalue()
    ck.save(5, [2], [np.ones(2)], extra={"pending": 1})
    saved = ck.load()
    assert (saved.step, saved.records, saved.extra) == (5, [2], {"pending": 1})
    np.testing.assert_array_equal(saved.arrays[0], np.ones(2))
    ck.remove()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and all(".stale-" in n for n in names), names
    stale = Checkpointer(tmp_path / names[0].rsplit(".", 1)[0], a, world)
    assert stale.load().step == 3  # the moved-aside checkpoint is intact
    (tmp_path / "x.ckpt").write_bytes(b"old one-file format")
    assert Checkpointer(tmp_path / "x.ckpt", b, world, log=None).load() is None
    legacy = [p for p in tmp_path.iterdir() if p.name.endswith(".legacy")]
    assert len(legacy) == 1 and legacy[0].read_bytes() == b"old one-file format"
    assert not (tmp_path / "x.ckpt").exists()


def test_parallel_settings_keep_the_checkpoint_but_its_layout_must_match(tmp_path):
    """parallel.* is not part of the config hash: a checkpoint survives a change of the
    overlap or memory limit; another ranks_per_member lays the states out differently and
    is refused (never silently resumed, never moved aside)."""
    from mpi4py import MPI
    from spinvalve.checkpoint import Checkpointer
    from spinvalve.config import load_config
    from spinvalve.errors import CheckpointError
    world = MPI.COMM_WORLD
    Checkpointer(tmp_path / "x.ckpt", load_config({}), world).save(2, [7], [np.arange(3.0)])
    limits = load_config({}, ["parallel.overlap_limit_gb=0", "parallel.memory_limit_gb=3"])
    saved = Checkpointer(tmp_path / "x.ckpt", limits, world, log=None).load()
    assert (saved.step, saved.records) == (2, [7])
    other = load_config({}, ["parallel.ranks_per_member=1"])
    with pytest.raises(CheckpointError, match="ranks_per_member = 0.*ranks_per_member = 1"):
        Checkpointer(tmp_path / "x.ckpt", other, world, log=None).load()
    assert (tmp_path / "x.ckpt.meta").exists() and not list(tmp_path.glob("*stale*"))


def test_checkpoint_files_honour_the_umask(tmp_path):
    from mpi4py import MPI
    from spinvalve.checkpoint import Checkpointer
    from spinvalve.config import load_config
    old = os.umask(0o027)
    try:
        Checkpointer(tmp_path / "x.ckpt", load_config({}), MPI.COMM_WORLD).save(1, [], [np.zeros(2)])
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == {"x.ckpt.meta": 0o640, "x.ckpt.s1.r0.npz": 0o640}


TDMRG_JOB = """
chain: {n_sites: 16}
layers: {n_p: 2, n_a: 2, fm_p_start: 6, spacer: 2}
multi_electron: {n_electrons: 2, n_conf: 3, method: tebd}
time: {t_end: 3.2910597845, dt_out: 0.6582119569}
checkpoint: {interval: 1.0e-9}
"""


def test_tdmrg_job_stopped_by_sigusr1_resumes_to_the_same_file(tmp_path):
    """SLURM's warning signal: the tDMRG job checkpoints, exits 75 and prints progress;
    the rerun resumes and writes the file an uninterrupted run writes."""
    pytest.importorskip("tenpy")
    job = tmp_path / "job.yaml"
    job.write_text(TDMRG_JOB)
    ref_out = tmp_path / "ref.nc"
    proc = launch(job, ref_out)
    assert proc.wait(timeout=900) == 0, proc.stderr.read()
    err = proc.stderr.read()
    assert "bond dimension" in err and "truncation error" in err and "eta" in err
    out = tmp_path / "out.nc"
    proc = launch(job, out)
    wait_for_checkpoint(proc, tmp_path / "out.nc.ckpt.meta", timeout=600)
    code = kill_job(proc, out, signal.SIGUSR1)
    assert code == 75, proc.stderr.read()
    assert "checkpoint written" in proc.stderr.read() and not out.exists()
    proc = launch(job, out)
    assert proc.wait(timeout=900) == 0, proc.stderr.read()
    assert "resuming from checkpoint" in proc.stderr.read()
    ref, ds = xr.open_dataset(ref_out), xr.open_dataset(out)
    for var in ref.data_vars:
        np.testing.assert_array_equal(ds[var].values, ref[var].values, err_msg=var)
    assert not list(tmp_path.glob("out.nc.ckpt*"))


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


class StopAtBlock:
    """A stop flag raised once the measurement has polled it ``n`` times between
    charge-imbalance blocks (the engine's own polls between output times do not count)."""

    def __init__(self, n):
        self.n, self.on = n, False

    @property
    def raised(self):
        import inspect
        caller = inspect.stack()[2].function
        if caller == "check":
            self.n -= 1
            self.on = self.on or self.n < 0
        return signal.SIGUSR1 if self.on else None


SMALL = {"chain": {"n_sites": 40}, "layers": {"n_p": 2, "n_a": 2, "fm_p_start": 16, "spacer": 2},
         "pulse": {"x0": 6.0}, "time": {"t_end": 5.0, "dt_out": 1.0}}


@pytest.mark.parametrize("overlap_limit_gb", [1.0, 0.0], ids=["in-turn", "rank-0-blocking"])
def test_stop_inside_a_measurement_resumes_exactly(tmp_path, monkeypatch, overlap_limit_gb):
    """The stop flag is honoured between the charge-imbalance blocks of one output
    time's measurement: the checkpoint holds rho_FM and the finished blocks, and the
    resumed run (which measures that output time first, reusing them) equals an
    uninterrupted run exactly."""
    from mpi4py import MPI
    from spinvalve import entanglement
    from spinvalve.checkpoint import Checkpointer, Interrupted
    from spinvalve.config import load_config
    from spinvalve.simulate import Engine
    # the large-layer path of negativity_fast: blocks assembled and diagonalised one by one
    monkeypatch.setattr(entanglement, "PLAN_MAX_ELEMENTS", 0)
    world = MPI.COMM_WORLD
    cfg = load_config({**SMALL, "parallel": {"overlap_limit_gb": overlap_limit_gb}})
    ref = Engine(cfg, world).run(log=None)
    assert Engine(cfg, world).overlap == (overlap_limit_gb > 0)
    inside = 0
    for n in (0, 1, 3, 6):
        ckpt = Checkpointer(tmp_path / f"n{n}.ckpt", cfg, world, log=None)
        with pytest.raises(Interrupted):
            Engine(cfg, world).run(log=None, checkpointer=ckpt, stop=StopAtBlock(n))
        saved = ckpt.load()
        assert saved.extra and not set(saved.extra) & set(saved.records["records"])
        assert set(saved.records["records"]) | set(saved.extra) == set(range(saved.step + 1))
        inside += any(blocks.done for _, _, blocks in saved.extra.values())  # after some blocks
        ds = Engine(cfg, world).run(log=None, checkpointer=ckpt)
        for name in ref.data_vars:
            np.testing.assert_array_equal(ds[name].values, ref[name].values, err_msg=f"{n}: {name}")
    assert inside >= 2


MPI_SCRIPT = '''
import sys, signal, pathlib, inspect
import numpy as np
sys.path.insert(0, {tests!r})
from mpi4py import MPI
from spinvalve import entanglement
from spinvalve.checkpoint import Checkpointer, Interrupted
from spinvalve.config import load_config
from spinvalve.simulate import Engine
from test_checkpoint import SMALL, StopAtBlock
entanglement.PLAN_MAX_ELEMENTS = 0
world = MPI.COMM_WORLD
cfg = load_config({{**SMALL, "parallel": {{"ranks_per_member": 1, "overlap_limit_gb": {limit}}}}})
ref = Engine(cfg, world).run(log=None)
assert Engine(cfg, world).overlap == ({limit} > 0)
ckpt = Checkpointer(pathlib.Path({base!r}), cfg, world, log=None)
try:
    Engine(cfg, world).run(log=None, checkpointer=ckpt, stop=StopAtBlock({n}))
    raise SystemExit("not interrupted")
except Interrupted:
    pass
saved = ckpt.load()
kept = world.allgather(sorted(saved.extra or {{}}))
ds = Engine(cfg, world).run(log=None, checkpointer=ckpt)
for name in ref.data_vars:
    np.testing.assert_array_equal(ds[name].values, ref[name].values, err_msg=name)
if world.rank == 0:
    print("kept", repr(kept), "OK")
'''


@pytest.mark.mpi
@pytest.mark.parametrize("limit", [1.0, 0.0], ids=["in-turn", "rank-0-blocking"])
def test_stop_inside_a_measurement_resumes_exactly_on_two_ranks(tmp_path, limit):
    """Two ranks, a member each: the interrupted measurements of every rank go into
    its own checkpoint file and the resumed run equals the uninterrupted one."""
    script = tmp_path / "run.py"
    script.write_text(MPI_SCRIPT.format(tests=str(ROOT / "tests"), limit=limit, n=1,
                                        base=str(tmp_path / "job.ckpt")))
    env = {**os.environ, **MPI_ENV, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([shutil.which("mpiexec"), "--oversubscribe", "-n", "2", sys.executable,
                           str(script)], capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stdout + proc.stderr
    import ast
    kept = ast.literal_eval(proc.stdout.split("kept", 1)[1].split("OK")[0].strip())
    assert len(kept) == 2 and any(kept)          # output times whose measurement stopped, per rank
    if limit == 0:
        assert kept[0] and not kept[1]           # rank 0 measures every output time
