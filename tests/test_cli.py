"""The command line: bad input, atomic output, MPI rank counts and sub-communicators."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

JOB = """
chain: {n_sites: 40}
layers: {n_p: 2, n_a: 2, fm_p_start: 16, spacer: 2}
pulse: {x0: 6.0}
time: {t_end: 6.0, dt_out: 1.0}
temperature: {gibbs: 200.0, weight_cutoff: 1.0e-3}
"""


@pytest.fixture
def job(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(JOB)
    return path


@pytest.mark.parametrize("override,key", [
    ("chain.n_site=3", "chain.n_site"),
    ("layers.n_p=two", "layers.n_p"),
    ("time.dt_out=-1", "time.dt_out"),
    ("temperature.gibbs=-5", "temperature.gibbs"),
    ("layers.fm_p_start=38", "layers"),
    ("numerics.integrator=euler", "numerics.integrator"),
    ("pulse.dk=.nan", "pulse.dk"),
])
def test_bad_config_is_rejected_naming_the_key(cli, job, tmp_path, override, key):
    out = tmp_path / "out.nc"
    proc = cli(["simulate", "--config", str(job), "--set", override, "--output", str(out)], check=False)
    assert proc.returncode == 2
    assert key in proc.stderr and "error" in proc.stderr
    assert not out.exists()


def test_missing_config_file_is_named(cli, tmp_path):
    proc = cli(["simulate", "--config", str(tmp_path / "nope.yaml"), "-o", str(tmp_path / "o.nc")],
               check=False)
    assert proc.returncode == 2 and "nope.yaml" in proc.stderr


def test_failed_run_leaves_previous_output_untouched(cli, job, tmp_path):
    out = tmp_path / "out.nc"
    out.write_bytes(b"previous result")
    proc = cli(["simulate", "--config", str(job), "--set", "numerics.invariant_tolerance=1e-300",
                "--output", str(out)], check=False)
    assert proc.returncode != 0 and "invariant" in proc.stderr
    assert out.read_bytes() == b"previous result"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.nc")] == []


def test_output_is_self_describing(cli, job, tmp_path):
    out = tmp_path / "out.nc"
    cli(["simulate", "--config", str(job), "--output", str(out)])
    ds = xr.open_dataset(out)
    for name, var in ds.data_vars.items():
        assert "units" in var.attrs and "long_name" in var.attrs, name
    for attr in ("config", "spinvalve_version", "petsc_version", "slepc_version", "mpi_ranks"):
        assert attr in ds.attrs
    assert "gibbs: 200.0" in ds.attrs["config"]
    assert ds.attrs["n_members"] == 2 * ds.attrs["n_spin_states"] > 2
    assert 0 < ds.attrs["discarded_weight"] < 1e-2


@pytest.mark.mpi
def test_rank_counts_and_member_groups_agree(cli, job, tmp_path):
    runs = {"1": (1, 0), "2": (2, 0), "4": (4, 0), "2x1": (2, 1), "4x2": (4, 2)}
    data = {}
    for name, (ranks, per) in runs.items():
        out = tmp_path / f"{name}.nc"
        cli(["simulate", "--config", str(job), "--set", f"parallel.ranks_per_member={per}",
             "--output", str(out)], ranks=ranks)
        data[name] = xr.open_dataset(out)
    base = data["1"]
    assert float(base.entropy_pa[-1] - base.entropy_pa[0]) > 1e-4  # the pulse did act
    for name, ds in data.items():
        assert ds.attrs["mpi_ranks"] == runs[name][0]
        for var in base.data_vars:
            err = float(np.abs(ds[var] - base[var]).max())
            assert err < 1e-10, f"{name}: {var} deviates by {err:.2e}"


def test_runs_are_bit_for_bit_deterministic(cli, job, tmp_path):
    outs = [tmp_path / f"run{n}.nc" for n in range(2)]
    for out in outs:
        cli(["simulate", "--config", str(job), "--output", str(out)])
    a, b = (xr.open_dataset(o) for o in outs)
    for var in a.data_vars:
        assert np.array_equal(a[var].values, b[var].values, equal_nan=True), var


def test_unwritable_output_path_is_a_clear_error(cli, job, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = cli(["simulate", "--config", str(job), "--output", str(blocker / "out.nc")], check=False)
    assert proc.returncode == 2 and str(blocker) in proc.stderr


def test_disk_full_keeps_previous_file_and_removes_temporary(tmp_path, monkeypatch):
    import errno
    from spinvalve.io import OutputError, write_dataset
    out = tmp_path / "out.nc"
    out.write_bytes(b"previous")

    def full(self, path, *args, **kwargs):
        open(path, "wb").write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", full)
    with pytest.raises(OutputError, match="No space left"):
        write_dataset(xr.Dataset({"a": ("t", np.zeros(3))}), out)
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nc"]


@pytest.mark.parametrize("env,var", [({"SLURM_NTASKS": "3"}, "SLURM_NTASKS"),
                                     ({"SLURM_NTASKS": "1", "SLURM_STEP_NUM_TASKS": "4"},
                                      "SLURM_STEP_NUM_TASKS")])
def test_rank_count_other_than_slurm_granted_is_an_error_before_any_work(job, tmp_path,
                                                                         monkeypatch, env, var):
    """srun -n N without MPI wiring starts N single-rank copies: refused at once."""
    from conftest import run_cli
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "out.nc"
    proc = run_cli(["simulate", "--config", str(job), "--output", str(out)], check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and var in lines[0] and "1 rank" in lines[0], proc.stderr
    assert not out.exists() and not list(tmp_path.glob("out.nc*"))


def test_rank_count_variables():
    from spinvalve.errors import LaunchError
    from spinvalve.launch import check_rank_count, expected_rank_count
    assert expected_rank_count({}) is None
    assert expected_rank_count({"SLURM_NTASKS": "4"}) == ("SLURM_NTASKS", 4)
    # inside an srun step its task count wins over the allocation's; mpiexec's over both
    assert expected_rank_count({"SLURM_NTASKS": "4", "SLURM_STEP_NUM_TASKS": "1"}) == (
        "SLURM_STEP_NUM_TASKS", 1)
    assert expected_rank_count({"SLURM_STEP_NUM_TASKS": "1", "OMPI_COMM_WORLD_SIZE": "2"}) == (
        "OMPI_COMM_WORLD_SIZE", 2)
    check_rank_count(2, ("SLURM_NTASKS", 2))
    with pytest.raises(LaunchError, match="SLURM_NTASKS = 2 but MPI COMM_WORLD has 1 rank"):
        check_rank_count(1, ("SLURM_NTASKS", 2))


TDMRG = """
chain: {n_sites: 16}
layers: {n_p: 2, n_a: 2, fm_p_start: 6, spacer: 2}
multi_electron: {n_electrons: 2, n_conf: 3, method: tebd}
time: {t_end: 1.3164239138, dt_out: 0.6582119569}
"""


@pytest.mark.parametrize("sets,code,key", [
    (["multi_electron.chi_start=1", "multi_electron.chi_max=1"], 1, "multi_electron.chi_start"),
    (["time.dt_out=0.5", "time.t_end=1.0"], 2, "time.dt_out"),
    (["multi_electron.trunc_cut=1e-3"], 0, None),      # 1e-3: a float, not the string "1e-3"
    (["pulse.x0=500"], 0, None),                       # the packet is unused by tDMRG jobs
])
def test_tdmrg_errors_are_one_clean_line(cli, tmp_path, sets, code, key):
    pytest.importorskip("tenpy")
    job = tmp_path / "me.yaml"
    job.write_text(TDMRG)
    args = ["simulate", "--config", str(job), "--output", str(tmp_path / "me.nc")]
    proc = cli(args + [a for s in sets for a in ("--set", s)], check=False)
    assert proc.returncode == code, proc.stderr
    if key is not None:
        errors = [ln for ln in proc.stderr.splitlines() if "error" in ln.lower()]
        assert len(errors) == 1 and errors[0].startswith("spinvalve: error: " + key), proc.stderr
        assert "Traceback" not in proc.stderr


@pytest.mark.mpi
def test_tdmrg_job_under_mpiexec_is_refused(cli, tmp_path):
    pytest.importorskip("tenpy")
    job = tmp_path / "me.yaml"
    job.write_text(TDMRG)
    proc = cli(["simulate", "--config", str(job), "--output", str(tmp_path / "me.nc")], ranks=2,
               check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "multi_electron: a tDMRG job runs on one MPI rank" in proc.stderr
