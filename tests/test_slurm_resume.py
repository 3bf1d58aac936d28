"""On the real single-node SLURM cluster: a job of every family that gets SLURM's warning
signal (SIGUSR1 to its job step, as `--signal=USR1@<lead>` sends it before the time limit)
checkpoints, exits 75, and its resubmission resumes and ends with the same result as an
uninterrupted run; a config edit between the two submissions starts afresh with no hand
deletion (the stale checkpoint is moved aside).

The job steps are launched as the workflow's rules launch them: `srun` ranks running
`python -m spinvalve.usage ... -- spinvalve simulate ...`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

try:
    from slurm_fixture import slurm_cluster  # noqa: F401
except ImportError:
    from tests.slurm_fixture import slurm_cluster  # noqa: F401

pytestmark = [pytest.mark.slurm, pytest.mark.mpi]

BIN = Path(sys.executable).parent
LEADS = {"chain": {"leads": "auto"}}
# each runs well over the ~10 s to its first progress line (about 40 s or more on a
# quiet core), so the signal lands inside the loop
JOBS = {
    "closed": (2, {**LEADS, "layers": {"n_p": 5, "n_a": 5}, "time": {"t_end": 70.0, "dt_out": 0.5}}),
    "gibbs": (2, {**LEADS, "layers": {"n_p": 3, "n_a": 3}, "temperature": {"gibbs": 300.0},
                  "time": {"t_end": 120.0, "dt_out": 0.5}}),
    "bath": (2, {**LEADS, "layers": {"n_p": 3, "n_a": 3},
                 "bath": {"temperature": 100.0}, "trajectories": {"count": 48, "seed": 7},
                 "time": {"t_end": 40.0, "dt_out": 0.5}}),
    "multi_electron": (1, {"chain": {"n_sites": 24},
                           "layers": {"n_p": 2, "n_a": 2, "fm_p_start": 10, "spacer": 2},
                           "pulse": {"x0": 2.0},
                           "time": {"t_end": 4.607483699, "dt_out": 0.3291059785},
                           "multi_electron": {"n_electrons": 4, "n_conf": 8, "chi_start": 32,
                                              "chi_max": 64, "trunc_cut": 1e-8}}),
}


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")
    return env


def _reference(tmp: Path, ranks: int, job: Path) -> xr.Dataset:
    out = tmp / "reference.nc"
    cmd = ([str(BIN / "spinvalve")] if ranks == 1 else
           ["mpiexec", "-n", str(ranks), str(BIN / "spinvalve")])
    subprocess.run([*cmd, "simulate", "--config", str(job), "--output", str(out)],
                   check=True, timeout=900, env=_env(), capture_output=True, text=True)
    with xr.open_dataset(out) as ds:
        return ds.load()


def _submit(cluster, tmp: Path, ranks: int, job: Path, name: str) -> str:
    script = tmp / f"{name}.sh"
    script.write_text(
        "#!/bin/bash\n"
        f"srun -n {ranks} --mpi=pmix {BIN}/python -m spinvalve.usage {tmp}/{name}.usage.tsv -- "
        f"{BIN}/spinvalve simulate --config {job} --output {tmp}/out.nc\n")
    proc = cluster.run(["sbatch", "--parsable", "-p", cluster.partition, "-n", str(ranks),
                        "-t", "15", "-o", str(tmp / f"{name}.log"), "-D", str(tmp),
                        str(script)], timeout=60, env=_env())
    return proc.stdout.strip().split(";")[0]


def _job_state(cluster, jobid: str) -> tuple[str, str]:
    out = cluster.run(["scontrol", "show", "job", jobid], timeout=60, check=False).stdout
    state = re.search(r"JobState=(\S+)", out)
    code = re.search(r"\bExitCode=(\S+)", out)
    return (state.group(1) if state else "?"), (code.group(1) if code else "?")


def _wait(cluster, jobid: str, timeout: float = 900) -> tuple[str, str]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        state, code = _job_state(cluster, jobid)
        if state not in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "?"):
            return state, code
        time.sleep(2)
    pytest.fail(f"SLURM job {jobid} did not end in {timeout} s")


def _signal_in_the_loop(cluster, jobid: str, log: Path, timeout: float = 600) -> None:
    """SIGUSR1 to the job once it reports progress (output times, or trajectories of a bath
    job): it is inside its loop, with the signal handlers installed."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if log.exists() and re.search(r"spinvalve: (t = |trajectory )\d", log.read_text()):
            state = _job_state(cluster, jobid)
            assert state[0] == "RUNNING", f"job {jobid} ended before the signal {state}: " \
                "lengthen its t_end in JOBS"
            cluster.run(["scancel", "--signal=USR1", jobid], timeout=60)
            return
        time.sleep(1)
    pytest.fail(f"no progress line in {log} after {timeout} s:\n"
                + (log.read_text()[-2000:] if log.exists() else "(no log)"))


def _same(a: xr.Dataset, b: xr.Dataset) -> None:
    skip = ("wall_time", "propagation_seconds", "measurement_seconds")
    names = [n for n in a.data_vars if a[n].dtype.kind in "fciu" and n not in skip]
    assert names
    for n in names:
        np.testing.assert_allclose(b[n].values, a[n].values, rtol=0, atol=1e-12, err_msg=n)


@pytest.mark.parametrize("family", list(JOBS))
def test_warning_signal_checkpoints_and_the_resubmission_resumes(slurm_cluster, tmp_path,
                                                                  family):
    ranks, mapping = JOBS[family]
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump(mapping))
    ref = _reference(tmp_path, ranks, job)

    first = _submit(slurm_cluster, tmp_path, ranks, job, "first")
    _signal_in_the_loop(slurm_cluster, first, tmp_path / "first.log")
    state, code = _wait(slurm_cluster, first)
    log1 = (tmp_path / "first.log").read_text()
    assert code.startswith("75:") and not (tmp_path / "out.nc").exists(), (state, code, log1)
    assert "checkpoint written" in log1, log1[-3000:]
    assert list(tmp_path.glob("out.nc.ckpt*")) or list(tmp_path.glob("*.ckpt*")), \
        sorted(p.name for p in tmp_path.iterdir())

    second = _submit(slurm_cluster, tmp_path, ranks, job, "second")
    state, code = _wait(slurm_cluster, second)
    log2 = (tmp_path / "second.log").read_text()
    assert code.startswith("0:"), (state, code, log2[-3000:])
    assert re.search(r"resum", log2, re.I), log2[-3000:]
    with xr.open_dataset(tmp_path / "out.nc") as ds:
        _same(ref, ds.load())
    assert not [p for p in tmp_path.iterdir() if ".ckpt" in p.name and "stale" not in p.name]


def test_config_edit_after_a_stop_starts_afresh_without_hand_deletion(slurm_cluster,
                                                                       tmp_path):
    ranks, mapping = JOBS["closed"]
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump(mapping))
    first = _submit(slurm_cluster, tmp_path, ranks, job, "first")
    _signal_in_the_loop(slurm_cluster, first, tmp_path / "first.log")
    assert _wait(slurm_cluster, first)[1].startswith("75:")
    edited = {**mapping, "time": {"t_end": 40.0, "dt_out": 0.5}}
    job.write_text(yaml.safe_dump(edited))
    ref = _reference(tmp_path, ranks, job)
    (tmp_path / "reference.nc").rename(tmp_path / "edited_reference.nc")
    second = _submit(slurm_cluster, tmp_path, ranks, job, "second")
    state, code = _wait(slurm_cluster, second)
    log2 = (tmp_path / "second.log").read_text()
    assert code.startswith("0:"), (state, code, log2[-3000:])
    assert re.search(r"stale", log2, re.I), log2[-3000:]
    assert [p for p in tmp_path.iterdir() if "stale" in p.name]      # moved aside, not deleted
    with xr.open_dataset(tmp_path / "out.nc") as ds:
        _same(ref, ds.load())
