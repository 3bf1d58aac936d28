"""Quantum trajectories (spinvalve.opensystem) against direct integration of the Lindblad equation.

The cross-check system is small (2+1 spins, L = 8, 12 fs) with a bath 80x the
default strength (gamma = 0.01 eV, omega_m = 0.3 eV) so that the baths halve
the MLN on that time scale.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg as sla
import xarray as xr
from mpi4py import MPI

import reference as ref
from conftest import MPI_ENV, ROOT
from spinvalve import HBAR, dense
from spinvalve.config import load_config
from spinvalve.hamiltonian import HamiltonianShell
from spinvalve.io import write_dataset
from spinvalve.opensystem import combine, run_open
from spinvalve.opensystem.bands import CombineError
from spinvalve.opensystem.trajectories import TrajectoryRunner
from spinvalve.simulate import Engine
from test_dense import to_reference_basis

BANDED = ["entropy_pa", "entropy_p", "mutual_information", "log_negativity", "w_state_probability",
          "magnon_probability"]


def open_config(n_p=2, n_a=1, L=8, p0=2, spacer=1, x0=1.0, t_end=12.0, dt_out=1.0, count=32, first=0,
                gamma=0.01, omega_max=0.3, temperature=100.0, bands=True, **bath):
    return load_config({
        "chain": {"n_sites": L}, "layers": {"n_p": n_p, "n_a": n_a, "fm_p_start": p0, "spacer": spacer},
        "pulse": {"x0": x0}, "time": {"t_end": t_end, "dt_out": dt_out},
        "bath": {"temperature": temperature, "gamma": gamma, "omega_max": omega_max, **bath},
        "trajectories": {"count": count, "first": first, "seed": 11, "bands": bands}})


@pytest.fixture(scope="module")
def lindblad():
    cfg = open_config()
    lay, b = cfg.layers, cfg.bath
    geom = ref.Geometry(cfg.chain.n_sites, lay.fm_p_start, lay.n_p, lay.spacer, lay.n_a)
    H = ref.hamiltonian(geom)
    jumps = ref.ule_jump_operators(geom, 0.1, 1.005, b.temperature, b.gamma, b.omega_max, b.components)
    psis, ws = ref.initial_ensemble(geom, cfg.pulse.x0)
    times = np.arange(cfg.time.n_out + 1) * cfg.time.dt_out
    out = ref.lindblad_evolve(H, jumps, ref.ensemble_density(psis, ws), times)
    perm = to_reference_basis(lay.n_spins)
    rho = np.array([r[np.ix_(perm, perm)] for r in out["rho_fm"]])
    pos = np.array(geom.sites, dtype=float)
    obs = [dense.derived_observables(r, lay.n_p, lay.n_a, pos, cfg.observables.k_values) for r in rho]
    unitary = ref.lindblad_evolve(H, [], ref.ensemble_density(psis, ws), times, N=lay.n_spins)
    return {"rho": rho, "rho_e": out["rho_e"], "obs": {k: np.array([o[k] for o in obs]) for k in obs[0]},
            "unitary_mln": np.array([ref.log_negativity(r, geom) for r in unitary["rho_fm"]])}


@pytest.fixture(scope="module")
def runs():
    return {n: run_open(open_config(count=n), log=None) for n in (32, 128)}


def test_trajectory_average_converges_to_lindblad(lindblad, runs):
    ds = runs[128]
    assert ds.attrs["n_trajectories"] == 128 and ds.attrs["n_jumps"] > 20
    err = {n: np.abs(r.rho_fm_sum_real.values + 1j * r.rho_fm_sum_imag.values - n * lindblad["rho"]).max() / n
           for n, r in runs.items()}
    assert err[128] < 0.03 and err[32] < 0.05
    for key in BANDED:
        want = lindblad["obs"][key]
        lo, hi = ds[f"{key}_lower"].values, ds[f"{key}_upper"].values
        slack = 1e-9
        inside = ((want >= lo - slack) & (want <= hi + slack)).mean()
        assert inside >= 0.75, f"{key}: only {inside:.0%} of the exact values inside the band"
    # the bath matters on this time scale: MLN well below the closed system's at the end
    assert lindblad["obs"]["log_negativity"][-3:].mean() < 0.6 * lindblad["unitary_mln"][-3:].mean()
    # linear observables: electron spin (all components) and transverse localized spins
    e_want = np.array([dense.electron_spin(r) for r in lindblad["rho_e"]])
    assert np.abs(ds.electron_spin.values - e_want).max() < 0.1
    s_want = np.array([dense.spin_expectations(r, 3) for r in lindblad["rho"]])
    assert np.abs(ds.spin_expectation.values - s_want).max() < 0.15
    assert np.abs(s_want[:, :, :2]).max() > 0.01  # baths with sigma^x + sigma^y do tilt the spins


def test_band_shrinks_as_inverse_sqrt_of_trajectories(runs):
    widths = {}
    for n, ds in runs.items():
        widths[n] = np.array([np.mean(ds[f"{k}_upper"].values - ds[f"{k}_lower"].values) for k in BANDED])
    ratio = widths[32] / widths[128]
    assert 1.4 < np.median(ratio) < 2.9, ratio     # sqrt(128 / 32) = 2


def test_invariants_recorded_per_step(runs):
    ds = runs[32]
    assert np.abs(ds.trace_rho.values - 1).max() < 1e-12
    assert ds.hermiticity_error.values.max() < 1e-14
    assert np.abs(ds.norm.values - 1).max() < 1e-12
    for key in BANDED:
        assert (ds[f"{key}_lower"] <= ds[key] + 1e-12).all() and (ds[f"{key}_upper"] >= ds[key] - 1e-12).all()
    assert ds.attrs["seed"] == 11 and ds.attrs["first_trajectory"] == 0


def test_early_mln_rise_shrinks_with_trajectories(lindblad, runs):
    """Too few trajectories overestimate the MLN (a noisy rho_FM looks entangled)."""
    exact = lindblad["obs"]["log_negativity"]
    err = {n: np.abs(ds.log_negativity.values - exact).mean() for n, ds in runs.items()}
    assert err[128] < err[32]


def test_gamma_zero_reproduces_unitary_engine():
    raw = {"chain": {"n_sites": 14}, "layers": {"n_p": 2, "n_a": 2, "fm_p_start": 4, "spacer": 1},
           "pulse": {"x0": 2.0}, "time": {"t_end": 4.0, "dt_out": 0.5}}
    closed = Engine(load_config(raw)).run(log=None)
    ds = run_open(load_config({**raw, "bath": {"gamma": 0.0}, "trajectories": {"count": 2}}), log=None)
    assert ds.attrs["n_jumps"] == 0
    for key in ["electron_spin", "spin_expectation", "entropy_p", "entropy_a", "entropy_pa",
                "mutual_information", "log_negativity", "magnon_probability", "w_state_probability",
                "qfi_bound", "qfi_exact", "norm", "energy", "sz_total"]:
        err = np.abs(ds[key].values - closed[key].values).max()
        assert err < 1e-9, f"{key}: {err:.2e}"
    assert closed.log_negativity.max() > 1e-4
    for key in BANDED:  # one pure-state history: zero-width bands
        assert np.abs(ds[f"{key}_upper"] - ds[f"{key}_lower"]).max() < 1e-9


def test_non_hermitian_chebyshev_matches_dense_exponential():
    cfg = open_config(n_p=1, n_a=2, L=6, p0=1, spacer=1, gamma=0.3, count=1)
    runner = TrajectoryRunner(cfg)
    p = runner.problem
    shape = p.local_shape
    D = shape[0] * shape[1]
    heff = np.zeros((D, D), complex)
    G = np.zeros((D, D), complex)
    out = np.empty(shape, complex)
    for j in range(D):
        e = np.zeros(D, complex)
        e[j] = 1
        p.shell.apply(e.reshape(shape), out)          # the shell applies H_eff
        heff[:, j] = out.reshape(-1)
        G[:, j] = (p.decay_csr @ e.reshape(shape)).reshape(-1)
    assert np.allclose(G, G.conj().T) and np.linalg.eigvalsh(G).min() > -1e-12
    assert np.linalg.eigvalsh(G).max() == pytest.approx(p.max_decay, rel=1e-10)
    np.testing.assert_allclose(1j * (heff - heff.conj().T), G, atol=1e-13)   # H_eff = H - (i/2) G
    h_closed = np.zeros((D, D), complex)
    closed = HamiltonianShell(p.model, p.space, MPI.COMM_SELF)
    for j in range(D):
        e = np.zeros(D, complex)
        e[j] = 1
        closed.apply(e.reshape(shape), out)
        h_closed[:, j] = out.reshape(-1)
    np.testing.assert_allclose(heff, h_closed - 0.5j * G, atol=1e-13)
    rng = np.random.default_rng(0)
    psi0 = rng.standard_normal(D) + 1j * rng.standard_normal(D)
    # a span of several windows (no jump: r = 0)
    span = 2.5 * runner.prop.max_window
    psi, r, jumps = runner._advance(psi0.reshape(shape).copy(), span, 0.0, rng)
    want = sla.expm(-1j * heff * span / HBAR) @ psi0
    assert jumps == 0 and np.abs(psi.reshape(-1) - want).max() < 1e-10 * np.abs(psi0).max()
    # a window of outputs from one recursion
    taus = [0.3, 1.7, 9.0]
    for tau, got in zip(taus, runner.prop.propagate_many(psi0.reshape(shape), taus)):
        want = sla.expm(-1j * heff * tau / HBAR) @ psi0
        assert np.abs(got.reshape(-1) - want).max() < 1e-10 * np.abs(psi0).max(), tau
    assert runner.prop.rho > 1.0


def test_slices_combine_like_one_job(tmp_path):
    cfg = dict(n_p=1, n_a=1, L=8, p0=2, spacer=1, t_end=3.0, dt_out=0.5)
    whole = run_open(open_config(count=6, **cfg), log=None)
    parts = [run_open(open_config(count=2, first=0, **cfg), log=None),            # with bands
             run_open(open_config(count=4, first=2, bands=False, **cfg), log=None)]  # sums only
    assert "log_negativity_lower" in parts[0] and "log_negativity_lower" not in parts[1]
    assert parts[1].attrs["n_bootstrap"] == 0
    assert np.array_equal(parts[1].log_negativity, run_open(open_config(count=4, first=2, **cfg),
                                                             log=None).log_negativity)
    paths = []
    for n, d in enumerate(parts):
        paths.append(write_dataset(d, tmp_path / f"slice{n}.nc"))
    merged = combine([xr.open_dataset(p) for p in paths])
    assert merged.attrs["n_trajectories"] == 6 and merged.attrs["combined_slices"] == 2
    assert np.abs(merged.rho_fm_sum_real - whole.rho_fm_sum_real).max() < 1e-13
    assert np.abs(merged.rho_fm_sum_imag - whole.rho_fm_sum_imag).max() < 1e-13
    for key in BANDED + ["electron_spin", "spin_expectation", "energy"]:
        assert np.abs(merged[key] - whole[key]).max() < 1e-12, key
        if key in BANDED:
            assert np.abs(merged[f"{key}_upper"] - whole[f"{key}_upper"]).max() < 1e-5, key
    with pytest.raises(CombineError):
        combine([parts[0], parts[0]])
    # slices that differ in more than their trajectories (here the bath) are refused
    parts[0].attrs["config"] = open_config(count=2, first=0, **cfg).to_yaml()
    parts[1].attrs["config"] = open_config(count=4, first=2, bands=False, **cfg).to_yaml()
    assert combine(parts).attrs["n_trajectories"] == 6
    parts[1].attrs["config"] = open_config(count=4, first=2, bands=False, gamma=0.02, **cfg).to_yaml()
    with pytest.raises(CombineError, match="bath sections differ"):
        combine(parts)


def test_series_jump_operators_run():
    ds = run_open(open_config(n_p=2, n_a=1, t_end=2.0, count=4, jump_operators="series", series_order=2, gamma=1.2e-4,
                              omega_max=0.01), log=None)
    assert ds.attrs["bath_jump_operators"] == "series"
    assert np.abs(ds.trace_rho.values - 1).max() < 1e-12


SCRIPT = """
import sys, numpy as np
from mpi4py import MPI
sys.path.insert(0, {tests!r})
from test_trajectories import open_config
from spinvalve.opensystem import run_open
from spinvalve.io import write_dataset
ds = run_open(open_config(n_p=1, n_a=1, L=8, p0=2, spacer=1, t_end=3.0, dt_out=0.5, count=5), log=None)
if MPI.COMM_WORLD.rank == 0:
    write_dataset(ds, {out!r})
"""


def test_rank_count_does_not_change_results(tmp_path):
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("mpiexec not found")
    one = run_open(open_config(n_p=1, n_a=1, L=8, p0=2, spacer=1, t_end=3.0, dt_out=0.5, count=5), log=None)
    script = tmp_path / "run.py"
    out = tmp_path / "two.nc"
    script.write_text(SCRIPT.format(tests=str(ROOT / "tests"), out=str(out)))
    env = {**os.environ, **MPI_ENV, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([mpiexec, "--oversubscribe", "-n", "2", sys.executable, str(script)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    two = xr.open_dataset(out)
    assert two.attrs["n_trajectories"] == 5
    assert np.abs(two.rho_fm_sum_real.values - one.rho_fm_sum_real.values).max() < 1e-13
    assert np.abs(two.log_negativity.values - one.log_negativity.values).max() < 1e-12
    assert np.array_equal(two.jumps_per_spin.values, one.jumps_per_spin.values)
    # the bootstrap bands are computed with the band times shared out over the ranks
    for name in ("log_negativity", "entropy_pa", "qfi_exact"):
        for side in ("lower", "upper"):
            got, want = two[f"{name}_{side}"].values, one[f"{name}_{side}"].values
            assert np.abs(got - want).max() < 1e-12, (name, side)


def test_jump_search_leaves_no_window_alive():
    """The root search must not pin a window's recursion vectors in a reference cycle
    (scipy's brentq wraps f in a self-referencing closure): with the cyclic collector
    off, no window survives a trajectory with jumps."""
    import gc
    from spinvalve.opensystem.trajectories import ChebyshevWindow
    runner = TrajectoryRunner(open_config(gamma=0.05, count=4))
    gc.collect()
    gc.disable()
    try:
        for i in range(4):
            runner.run_trajectory(i)
        alive = [o for o in gc.get_objects() if isinstance(o, ChebyshevWindow)]
    finally:
        gc.enable()
    assert runner.n_jumps.sum() > 0
    assert not alive
