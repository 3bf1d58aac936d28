"""The sector engine against the independent brute-force reference (tests/reference.py).

Every output variable is compared on small chains, for symmetric and asymmetric
layers, at T = 0 and at a finite Gibbs temperature.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import reference as ref
from spinvalve.config import load_config
from spinvalve.simulate import Engine

KEYS = ["electron_spin", "spin_expectation", "entropy_p", "entropy_a", "entropy_pa",
        "mutual_information", "log_negativity", "magnon_probability", "w_state_probability",
        "qfi_bound", "qfi_exact", "norm", "energy", "sz_total"]


def small_config(n_p=2, n_a=2, L=36, p0=14, spacer=2, t_end=8.0, dt_out=1.0, **extra):
    raw = {"chain": {"n_sites": L}, "layers": {"n_p": n_p, "n_a": n_a, "fm_p_start": p0, "spacer": spacer},
           "pulse": {"x0": 6.0}, "time": {"t_end": t_end, "dt_out": dt_out},
           "numerics": {"chebyshev": {"tolerance": 1e-12}}}
    for section, values in extra.items():
        raw.setdefault(section, {}).update(values)
    return load_config(raw)


def reference_series(cfg, spin_members=None):
    lay, c = cfg.layers, cfg.couplings
    geom = ref.Geometry(cfg.chain.n_sites, lay.fm_p_start, lay.n_p, lay.spacer, lay.n_a)
    H = ref.hamiltonian(geom, gamma=cfg.chain.hopping, j_sd=c.j_sd, j=c.j, jz_ratio=c.jz_ratio)
    psis, ws = ref.initial_ensemble(geom, cfg.pulse.x0, cfg.pulse.k, cfg.pulse.dk, spin_members)
    times = np.arange(cfg.time.n_out + 1) * cfg.time.dt_out
    traj = [ref.evolve(H, p, times) for p in psis]
    return geom, [ref.observables([tr[n] for tr in traj], ws, H, geom, cfg.observables.k_values)
                  for n in range(len(times))]


def compare(ds, series, atol=1e-8):
    for key in KEYS:
        got = ds[key].values
        want = np.array([obs[key] for obs in series])
        assert got.shape == want.shape, key
        err = np.abs(got - want).max()
        assert err < atol, f"{key}: max deviation {err:.2e}"


@pytest.mark.parametrize("n_p,n_a", [(2, 2), (3, 1), (1, 2)])
def test_matches_full_space_reference_t0(n_p, n_a):
    cfg = small_config(n_p, n_a)
    ds = Engine(cfg).run(log=None)
    _, series = reference_series(cfg)
    compare(ds, series)
    # the dynamics is not trivial over this window
    assert ds.log_negativity.max() > 1e-4 and ds.entropy_pa.max() > 1e-3


def test_matches_reference_gibbs_ensemble():
    cfg = small_config(2, 2, temperature={"gibbs": 300.0, "h_pin": 0.01, "weight_cutoff": 0.0})
    eng = Engine(cfg)
    geom = ref.Geometry(cfg.chain.n_sites, 14, 2, 2, 2)
    members = ref.gibbs_ensemble(geom, cfg.couplings.j, cfg.couplings.jz_ratio, 0.01, 300.0)
    assert eng.ensemble.n_spin_states == len(members) == 16
    ds = eng.run(log=None)
    _, series = reference_series(cfg, members)
    compare(ds, series)
    assert ds.entropy_pa[0] > 1e-3  # a mixed initial state


def test_gibbs_cutoff_records_discarded_weight():
    cfg = small_config(2, 2, t_end=1.0, temperature={"gibbs": 300.0, "weight_cutoff": 1e-2})
    eng = Engine(cfg)
    geom = ref.Geometry(cfg.chain.n_sites, 14, 2, 2, 2)
    members = ref.gibbs_ensemble(geom, cfg.couplings.j, cfg.couplings.jz_ratio, 0.01, 300.0)
    weights = np.array([w for w, _ in members])
    assert eng.ensemble.n_spin_states == (weights >= 1e-2).sum() < len(members)
    assert math.isclose(eng.ensemble.discarded_weight, weights[weights < 1e-2].sum(), rel_tol=1e-9)
    assert math.isclose(sum(m.weight for m in eng.ensemble.members), 1.0)


def test_zero_temperature_is_the_product_state():
    eng = Engine(small_config(3, 2, t_end=1.0))
    assert eng.ensemble.n_spin_states == 1 and len(eng.ensemble.members) == 2
    ds = eng.run(log=None)
    first = ds.isel(time=0)
    np.testing.assert_allclose(first.spin_expectation.sel(component="z"), [1, 1, 1, -1, -1])
    for key in ("entropy_p", "entropy_a", "entropy_pa", "mutual_information", "log_negativity",
                "w_state_probability"):
        assert abs(float(first[key])) < 1e-12, key
    np.testing.assert_allclose(first.electron_spin, 0, atol=1e-14)
    assert float(first.magnon_probability.sel(magnons=0)) == pytest.approx(1, abs=1e-14)


@pytest.mark.parametrize("integrator", ["krylov", "rk4"])
def test_integrators_agree(integrator):
    base = small_config(2, 1, L=24, p0=10, spacer=1, t_end=2.0, dt_out=0.5)
    other = load_config(base.to_dict(), [f"numerics.integrator={integrator}",
                                          "numerics.rk4.dt=0.002"])
    a, b = Engine(base).run(log=None), Engine(other).run(log=None)
    for key in KEYS:
        assert np.abs(a[key].values - b[key].values).max() < 1e-9, key


def test_single_site_exchange_by_hand():
    """One site, one spin: <S^z> = (1 + cos(4 J_sd t / hbar)) / 2, <s^z_e> = (1 - cos(...)) / 2."""
    from spinvalve import HBAR
    cfg = load_config({"chain": {"n_sites": 1}, "layers": {"n_p": 1, "n_a": 0, "fm_p_start": 0,
                                                          "spacer": 0},
                       "pulse": {"x0": 0.0}, "time": {"t_end": 3.0, "dt_out": 0.25},
                       "numerics": {"chebyshev": {"tolerance": 1e-13}}})
    ds = Engine(cfg).run(log=None)
    t = ds.time.values
    c = np.cos(4 * cfg.couplings.j_sd * t / HBAR)
    np.testing.assert_allclose(ds.spin_expectation.sel(component="z", spin=0), (1 + c) / 2, atol=1e-11)
    np.testing.assert_allclose(ds.electron_spin.sel(component="z"), (1 - c) / 2, atol=1e-11)
    # the electron's spin and the localized spin are entangled, the pair with itself is pure
    assert ds.entropy_p.max() > 0.5


def test_free_packet_moves_at_group_velocity():
    """No spins: the packet's centre moves at 2 gamma sin(k) exp(-dk^2/8) / hbar sites per fs."""
    from spinvalve import HBAR
    from spinvalve.ensemble import packet
    from spinvalve.hamiltonian import HamiltonianShell, Model
    from spinvalve.basis import Sector
    from spinvalve.propagate import make_propagator
    from mpi4py import MPI
    from petsc4py import PETSc
    cfg = load_config({"chain": {"n_sites": 200}, "layers": {"n_p": 0, "n_a": 0, "fm_p_start": 0,
                                                            "spacer": 0},
                       "pulse": {"x0": 50.0}, "time": {"t_end": 10.0, "dt_out": 10.0}})
    model = Model.from_config(cfg)
    shell = HamiltonianShell(model, Sector(model.layers, 1), MPI.COMM_SELF)
    mat = shell.create_mat(PETSc.COMM_SELF)
    vec = mat.createVecRight()
    vec.array[:] = packet(cfg)
    make_propagator(shell, mat, 10.0, cfg.numerics).step(vec)
    prob = np.abs(vec.array) ** 2
    x = np.arange(200)
    v = 2 * math.sin(cfg.pulse.k) * math.exp(-cfg.pulse.dk ** 2 / 8) / HBAR
    assert prob.sum() == pytest.approx(1, abs=1e-10)
    assert (x * prob).sum() == pytest.approx(50 + v * 10, abs=1e-3)
    # spreading: width grows but stays that of a Gaussian packet (sigma_0 = 1/dk)
    var = (x ** 2 * prob).sum() - ((x * prob).sum()) ** 2
    assert 1 / cfg.pulse.dk ** 2 < var < 4 / cfg.pulse.dk ** 2


def test_paper_geometry_reaches_182_configurations():
    cfg = load_config({"time": {"t_end": 1.0, "dt_out": 1.0}})
    assert cfg.layers.sites == (43, 44, 45, 46, 51, 52, 53, 54)  # 1-based 44-47 and 52-55
    ds = Engine(cfg).run(log=None)
    assert ds.attrs["reachable_configurations"] == 182


def test_negativity_stride_skips_only_the_negativity():
    full = Engine(small_config(2, 2, t_end=6.0)).run(log=None)
    sparse = Engine(small_config(2, 2, t_end=6.0, observables={"negativity_stride": 3})).run(log=None)
    np.testing.assert_array_equal(np.isnan(sparse.log_negativity.values), [False, True, True] * 2 + [False])
    np.testing.assert_allclose(sparse.log_negativity[::3], full.log_negativity[::3], atol=1e-14)
    np.testing.assert_allclose(sparse.entropy_pa, full.entropy_pa, atol=1e-14)


def test_members_hold_no_work_vectors_between_steps():
    """Between steps (while the engine measures) a member holds its state alone: the
    Chebyshev step's two work vectors exist only during the step (numpy allocations are
    traced by tracemalloc)."""
    import tracemalloc
    eng = Engine(small_config(4, 4, L=201, p0=90, t_end=2.0))
    state = eng.states[0].local.nbytes            # 2.5 MB per member here
    eng.step()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        eng.step()
        now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert now - before < 0.1 * state                   # nothing state-sized kept
    assert peak - before >= 1.9 * state                 # two work vectors during the step


# -- measurement paths: overlapped dense reduction, blocking, gathered Gram factors --------
def gibbs_config(**extra):
    return small_config(2, 2, t_end=6.0, temperature={"gibbs": 200.0, "weight_cutoff": 1e-3}, **extra)


MODES = ("overlap", "blocking", "factors", "factors-overlap")


def engine(cfg, mode: str) -> Engine:
    """``overlap`` (dense blocks measured in turn: the default for small blocks),
    ``blocking`` (dense blocks, rank 0 measures every time), ``factors`` (rank 0
    gathers the Gram factors: the path of large sectors) or ``factors-overlap``
    (Gram factors gathered without blocking, measured in turn)."""
    import spinvalve.closed_system as closed_system
    limit = closed_system.DENSE_LIMIT
    closed_system.DENSE_LIMIT = 0 if mode.startswith("factors") else limit
    try:
        eng = Engine(cfg)
    finally:
        closed_system.DENSE_LIMIT = limit
    eng.overlap = mode.endswith("overlap")
    return eng


@pytest.mark.parametrize("mode", MODES[1:])
def test_measurement_paths_agree(mode):
    cfg = gibbs_config()
    assert Engine(cfg).overlap, "the small Gibbs job should take the overlapped path"
    want = engine(cfg, "overlap").run(log=None)
    got = engine(cfg, mode).run(log=None)
    assert float(want.entropy_pa[-1] - want.entropy_pa[0]) > 1e-4
    for var in want.data_vars:
        err = float(np.abs(got[var] - want[var]).max())
        assert err < 1e-12, f"{mode}: {var} deviates by {err:.2e}"


class FailsAt3fs(Engine):
    """An engine whose invariant check fails from t = 3 fs on (a later, overlapped time)."""

    def check_invariants(self, obs, first, t):
        if t >= 3.0:
            from spinvalve.errors import InvariantError
            raise InvariantError(f"test drift at t = {t:g} fs")


def test_failure_of_an_overlapped_measurement_stops_the_run():
    from spinvalve.errors import InvariantError
    eng = FailsAt3fs(gibbs_config())
    assert eng.overlap
    with pytest.raises(InvariantError, match="t = 3 fs"):
        eng.run(log=None)
    assert not eng.in_turn.in_flight


MPI_SCRIPT = """
import sys
import numpy as np
from mpi4py import MPI
sys.path.insert(0, {tests!r})
from test_engine import MODES, FailsAt3fs, engine, gibbs_config, small_config
from spinvalve.errors import InvariantError
world = MPI.COMM_WORLD
one = {{"parallel": {{"ranks_per_member": 1}}}}
runs = {{mode: engine(gibbs_config(**one), mode).run(log=None) for mode in MODES}}
# T = 0 has two members: the third rank has none and only measures
runs["t0"] = engine(small_config(2, 2, t_end=6.0, **one), "factors-overlap").run(log=None)
if world.rank == 0:
    np.savez({out!r}, **{{f"{{mode}}.{{var}}": ds[var].values for mode, ds in runs.items()
                          for var in ds.data_vars}})
try:
    FailsAt3fs(gibbs_config(**one)).run(log=None)
    message = "no error"
except InvariantError as exc:
    message = f"InvariantError: {{exc}}"
with open(f"{out}.rank{{world.rank}}", "w") as fh:  # (stdout of the ranks interleaves)
    fh.write(message)
"""


@pytest.mark.mpi
def test_ranks_share_the_measurements(tmp_path):
    """At 3 ranks (a member per rank; at T = 0 one rank without a member) every
    measurement path gives the 1-rank result, and an invariant failure found by
    one rank stops all."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from conftest import MPI_ENV, ROOT
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("mpiexec not found")
    gibbs = Engine(gibbs_config()).run(log=None)
    want = {**dict.fromkeys(MODES, gibbs), "t0": Engine(small_config(2, 2, t_end=6.0)).run(log=None)}
    script, out = tmp_path / "run.py", tmp_path / "three.npz"
    script.write_text(MPI_SCRIPT.format(tests=str(ROOT / "tests"), out=str(out)))
    env = {**os.environ, **MPI_ENV, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([mpiexec, "--oversubscribe", "-n", "3", sys.executable, str(script)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    with np.load(out) as three:
        for mode, ds in want.items():
            for var in ds.data_vars:
                err = np.abs(three[f"{mode}.{var}"] - ds[var].values).max()
                assert err < 1e-10, f"{mode}: {var} deviates by {err:.2e}"
    # rank 0 measures t = 3 fs (index 3); the others stop with their own failure
    # (t = 4 or 5 fs) or the relayed one
    got = [Path(f"{out}.rank{r}").read_text() for r in range(3)]
    assert got[0] == "InvariantError: test drift at t = 3 fs"
    for rank in (1, 2):
        assert got[rank] in (f"InvariantError: test drift at t = {rank + 3} fs",
                             "InvariantError: an invariant drifted (reported by another rank)"), got

def test_large_blocks_are_gathered_as_factors():
    """5+5 spins on 36 sites: the K = 5 block (252 configurations) is larger than its
    factor is wide, so rho_FM travels as Gram factors; on one rank nothing is overlapped."""
    eng = Engine(small_config(5, 5, L=36, p0=12, t_end=1.0))
    assert eng.dense is None and not eng.overlap
    assert 0 < eng.factor_gb < eng.cfg.parallel.overlap_limit_gb
