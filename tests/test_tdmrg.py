"""tDMRG multi-electron pulse (paper Sec. III C) against an exact two-electron solver.

The reference below is written independently of TeNPy: Jordan-Wigner fermions on
2L modes (mode 2 i + sigma, sigma = 0 up, 1 down) in the two-electron sector of the
Fock space, tensored with the 2^N localized-spin space, evolved with
``scipy.sparse.linalg.expm_multiply``. It builds Eq. 7 + Eq. 21 from the operator
definitions of SPEC.md (Pauli electron spin density and localized spins).
"""

from __future__ import annotations

import io
import itertools
import math
import signal

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import eigsh, expm_multiply

pytest.importorskip("tenpy")

from conftest import StopAfter  # noqa: E402
from spinvalve import HBAR  # noqa: E402
from spinvalve.config import load_config  # noqa: E402
from spinvalve.tdmrg import run_tdmrg  # noqa: E402
from spinvalve.tdmrg.evolve import step_fs  # noqa: E402

T_UNIT = HBAR  # hbar / gamma in fs for gamma = 1 eV: 10 tDMRG steps

SMALL = {"chain": {"n_sites": 16, "hopping": 1.0},
         "layers": {"n_p": 2, "n_a": 2, "fm_p_start": 6, "spacer": 2},
         "pulse": {"x0": 2.0},
         "multi_electron": {"n_electrons": 2, "n_conf": 3}}


def small_cfg(n_out: int, **extra):
    raw = {k: dict(v) for k, v in SMALL.items()}
    raw["time"] = {"t_end": n_out * T_UNIT, "dt_out": T_UNIT}
    for key, val in extra.items():
        raw.setdefault(key, {}).update(val)
    return load_config(raw)


# ---------------------------------------------------------------------------
# Exact reference: two electrons (x) localized spins
# ---------------------------------------------------------------------------

PAULI = {"x": np.array([[0, 1], [1, 0]], dtype=complex),
         "y": np.array([[0, -1j], [1j, 0]], dtype=complex),
         "z": np.array([[1, 0], [0, -1]], dtype=complex)}


class ExactTwoElectron:
    """H of Eq. 7 (+ Eq. 21 if ``equilibrium``) on {two electrons} (x) {N spins-1/2}."""

    def __init__(self, cfg):
        self.L = cfg.chain.n_sites
        self.cfg = cfg
        self.spin_sites = list(cfg.layers.sites)
        self.layers = ["p"] * cfg.layers.n_p + ["a"] * cfg.layers.n_a
        self.n_spins = len(self.spin_sites)
        n_modes = 2 * self.L
        self.pairs = [(1 << a) | (1 << b) for a, b in itertools.combinations(range(n_modes), 2)]
        self.index = {m: k for k, m in enumerate(self.pairs)}
        self.d_e = len(self.pairs)
        self.d_s = 2 ** self.n_spins

    # --- fermions (Jordan-Wigner sign: occupied modes below the acted-on mode) ---
    @staticmethod
    def _sign(mask: int, mode: int) -> int:
        return -1 if bin(mask & ((1 << mode) - 1)).count("1") % 2 else 1

    def hop(self, a: int, b: int) -> sp.csr_matrix:
        """c+_a c_b on the two-electron space."""
        rows, cols, vals = [], [], []
        for k, m in enumerate(self.pairs):
            if not m >> b & 1:
                continue
            s = self._sign(m, b)
            m1 = m & ~(1 << b)
            if m1 >> a & 1:
                continue
            s *= self._sign(m1, a)
            rows.append(self.index[m1 | (1 << a)])
            cols.append(k)
            vals.append(s)
        return sp.csr_matrix((vals, (rows, cols)), shape=(self.d_e, self.d_e), dtype=complex)

    def spin_op(self, k: int, alpha: str) -> sp.csr_matrix:
        return sp.kron(sp.kron(sp.identity(2 ** k), PAULI[alpha]),
                       sp.identity(2 ** (self.n_spins - k - 1)), format="csr")

    def s_e(self, i: int, alpha: str) -> sp.csr_matrix:
        """Electron spin density s_i^alpha = sum c+_{i s} sigma^alpha_{s s'} c_{i s'} (Eq. 8)."""
        out = sp.csr_matrix((self.d_e, self.d_e), dtype=complex)
        for s1, s2 in itertools.product(range(2), repeat=2):
            coef = PAULI[alpha][s1, s2]
            if coef != 0:
                out = out + coef * self.hop(2 * i + s1, 2 * i + s2)
        return out

    def n_e(self, i: int) -> sp.csr_matrix:
        return self.hop(2 * i, 2 * i) + self.hop(2 * i + 1, 2 * i + 1)

    def hamiltonian(self, equilibrium: bool) -> sp.csr_matrix:
        cfg, L = self.cfg, self.L
        Ie, Is = sp.identity(self.d_e, format="csr"), sp.identity(self.d_s, format="csr")
        he = sp.csr_matrix((self.d_e, self.d_e), dtype=complex)
        for i in range(L - 1):
            for s in range(2):
                t = self.hop(2 * i + s, 2 * (i + 1) + s)
                he = he - cfg.chain.hopping * (t + t.getH())
        if equilibrium:
            for i in range(cfg.multi_electron.n_conf):
                he = he - cfg.multi_electron.well_depth * self.n_e(i)
        H = sp.kron(he, Is, format="csr")
        for k, i in enumerate(self.spin_sites):
            for a in "xyz":
                H = H - cfg.couplings.j_sd * sp.kron(self.s_e(i, a), self.spin_op(k, a))
        hs = sp.csr_matrix((self.d_s, self.d_s), dtype=complex)
        for k in range(self.n_spins - 1):
            if self.layers[k] == self.layers[k + 1] and \
                    self.spin_sites[k + 1] == self.spin_sites[k] + 1:
                for a, coup in (("x", cfg.couplings.j), ("y", cfg.couplings.j),
                                ("z", cfg.couplings.jz)):
                    hs = hs - coup * self.spin_op(k, a) @ self.spin_op(k + 1, a)
        if equilibrium:
            for k, lay in enumerate(self.layers):
                sign = 1.0 if lay == "a" else -1.0
                hs = hs + sign * cfg.multi_electron.pin_field * self.spin_op(k, "z")
        return (H + sp.kron(Ie, hs)).tocsr()

    def half_entropy(self, psi: np.ndarray) -> float:
        """S_half for the cut after chain site L//2-1 (left modes precede right modes in
        the JW order, so the left/right split of the Fock basis carries no extra sign)."""
        L2 = self.L // 2
        n_left_spins = sum(1 for x in self.spin_sites if x < L2)
        left_modes = (1 << (2 * L2)) - 1
        psi = psi.reshape(self.d_e, 2 ** n_left_spins, 2 ** (self.n_spins - n_left_spins))
        left_idx, right_idx, entries = {}, {}, {}
        for k, m in enumerate(self.pairs):
            ml, mr = m & left_modes, m >> (2 * L2)
            for sl in range(psi.shape[1]):
                for sr in range(psi.shape[2]):
                    li = left_idx.setdefault((ml, sl), len(left_idx))
                    ri = right_idx.setdefault((mr, sr), len(right_idx))
                    entries[(li, ri)] = psi[k, sl, sr]
        M = np.zeros((len(left_idx), len(right_idx)), dtype=complex)
        for (li, ri), v in entries.items():
            M[li, ri] = v
        p = np.linalg.svd(M, compute_uv=False) ** 2
        p = p[p > 1e-16]
        return float(-(p * np.log(p)).sum())

    def run(self, times: np.ndarray) -> dict:
        h0 = self.hamiltonian(equilibrium=True)
        vals, vecs = eigsh(h0, k=2, which="SA", tol=1e-13)
        order = np.argsort(vals)
        psi0 = vecs[:, order[0]]
        h = self.hamiltonian(equilibrium=False)
        dt = times[1] - times[0]
        states = expm_multiply(-1j * h * (dt / HBAR), psi0, start=0, stop=len(times) - 1,
                               num=len(times), endpoint=True)
        Ie, Is = sp.identity(self.d_e), sp.identity(self.d_s)
        Sops = {(k, a): sp.kron(Ie, self.spin_op(k, a), format="csr")
                for k in range(self.n_spins) for a in "xyz"}
        nops = [sp.kron(self.n_e(i), Is, format="csr") for i in range(self.L)]
        out = {"gap": vals[order[1]] - vals[order[0]], "spin": [], "density": [],
               "energy": [], "entropy": []}
        for psi in states:
            out["spin"].append([[np.vdot(psi, Sops[k, a] @ psi).real for a in "xyz"]
                                for k in range(self.n_spins)])
            out["density"].append([np.vdot(psi, n @ psi).real for n in nops])
            out["energy"].append(np.vdot(psi, h @ psi).real)
            out["entropy"].append(self.half_entropy(psi))
        return {k: np.array(v) for k, v in out.items()}


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def short_run():
    return run_tdmrg(small_cfg(4, multi_electron={"method": "tdvp"}))


def test_exact_reference_sanity():
    """The reference conserves N and S^z_tot, and its hopping alone is the free chain."""
    cfg = small_cfg(1)
    ex = ExactTwoElectron(cfg)
    assert ex.d_e == math.comb(32, 2)
    h = ex.hamiltonian(False)
    assert abs(h - h.getH()).max() < 1e-14
    sz_tot = sum(sp.kron(ex.s_e(i, "z"), sp.identity(ex.d_s)) for i in range(ex.L)) \
        + sum(sp.kron(sp.identity(ex.d_e), ex.spin_op(k, "z")) for k in range(ex.n_spins))
    assert abs(h @ sz_tot - sz_tot @ h).max() < 1e-12
    # one-body hopping spectrum: lowest two-electron (singlet) energy = 2 * (-2 cos(pi/(L+1)))
    he = -(sum(ex.hop(2 * i + s, 2 * (i + 1) + s) for i in range(ex.L - 1) for s in range(2)))
    he = he + he.getH()
    e0 = eigsh(he, k=1, which="SA")[0][0]
    assert e0 == pytest.approx(-4 * math.cos(math.pi / (ex.L + 1)), abs=1e-10)


def test_ground_state_pinned_and_confined(short_run):
    ds = short_run.isel(time=0)
    sz = ds.spin_expectation.sel(component="z").values
    layer = ds.layer.values
    np.testing.assert_allclose(sz[layer == "p"], 1.0, atol=1e-6)
    np.testing.assert_allclose(sz[layer == "a"], -1.0, atol=1e-6)
    assert abs(float(ds.electron_spin_density.sum())) < 1e-6  # <s_e>(t=0) = 0
    assert float(ds.density[:3].sum()) > 1.9  # electrons in the well
    assert float(ds.n_electrons_total) == pytest.approx(2.0, abs=1e-10)


def test_conservation(short_run):
    np.testing.assert_allclose(short_run.n_electrons_total, 2.0, atol=1e-9)
    np.testing.assert_allclose(short_run.sz_total, 0.0, atol=1e-9)  # 1 up, 1 down; 2 p up, 2 a down
    np.testing.assert_allclose(short_run.norm, 1.0, atol=1e-9)
    e = short_run.energy.values
    assert np.ptp(e) < 1e-6
    assert (np.diff(short_run.truncation_error.values) >= 0).all()


def test_dataset_layout(short_run):
    ds = short_run
    assert set(ds.dims) == {"time", "spin", "component", "site"}
    np.testing.assert_allclose(ds.time, np.arange(5) * T_UNIT)
    assert list(ds.component.values) == ["x", "y", "z"]
    assert list(ds.spin_site.values) == [6, 7, 10, 11]
    assert list(ds.layer.values) == ["p", "p", "a", "a"]
    for name in list(ds.data_vars) + list(ds.coords):
        assert "units" in ds[name].attrs and "long_name" in ds[name].attrs, name
    assert ds.spin_expectation.dims == ("time", "spin", "component")
    assert ds.density.dims == ("time", "site")
    assert ds.bond_dimension.dtype.kind == "i"


@pytest.mark.parametrize("method,n_out", [("tdvp", 4),
                                          pytest.param("tdvp", 16, marks=pytest.mark.slow),
                                          pytest.param("tebd", 16, marks=pytest.mark.slow)])
def test_against_exact_two_electron(method, n_out, short_run):
    """Eq. 22 by tDMRG agrees with the exact Fock-space evolution to 1e-4 (to 10.5 fs)."""
    cfg = small_cfg(n_out, multi_electron={"method": method})
    ds = short_run if n_out == 4 else run_tdmrg(cfg)
    ref = ExactTwoElectron(cfg).run(ds.time.values)
    assert ref["gap"] > 0.1
    err_spin = np.abs(ds.spin_expectation.values - ref["spin"]).max()
    err_n = np.abs(ds.density.values - ref["density"]).max()
    err_s = np.abs(ds.entropy_half.values - ref["entropy"]).max()
    err_e = np.abs(ds.energy.values - ref["energy"]).max()
    print(f"{method}: t_end={ds.time.values[-1]:.3f} fs: max|dS|={err_spin:.2e} max|dn|={err_n:.2e} "
          f"max|dS_half|={err_s:.2e} max|dE|={err_e:.2e}")
    assert err_spin < 1e-4
    assert err_n < 1e-4
    assert err_s < 1e-4
    assert err_e < (1e-6 if method == "tdvp" else 1e-5)  # TEBD: Trotter error in <H>
    # the pulse reaches both layers: the comparison is not trivial
    assert np.abs(ref["spin"][:, :, 2] - ref["spin"][0, :, 2]).max() > (0.01 if n_out == 4 else 0.3)


def test_tebd_agrees_with_tdvp(short_run):
    ds = run_tdmrg(small_cfg(2, multi_electron={"method": "tebd"}))
    ref = short_run.isel(time=slice(0, 3))
    assert np.abs(ds.spin_expectation.values - ref.spin_expectation.values).max() < 1e-4
    assert np.abs(ds.density.values - ref.density.values).max() < 1e-4


def test_dt_out_must_be_multiple_of_step():
    from spinvalve.errors import ConfigError
    with pytest.raises(ConfigError, match="time.dt_out"):
        load_config({**SMALL, "time": {"t_end": 1.0, "dt_out": 0.5}})
    cfg = load_config({**SMALL, "time": {"t_end": 2 * T_UNIT, "dt_out": T_UNIT}})
    assert step_fs(cfg) == pytest.approx(0.1 * HBAR)


def test_stopped_run_resumes_bit_for_bit(tmp_path, short_run):
    """Stopped after the 2nd output time (checkpoint, Interrupted), resumed from TeNPy's
    resume data: every variable equals the uninterrupted run's exactly."""
    from mpi4py import MPI
    from spinvalve.checkpoint import Checkpointer
    from spinvalve.errors import Interrupted
    cfg = small_cfg(4, multi_electron={"method": "tdvp"})  # checkpoint.interval: 600 s
    ckpt = Checkpointer(tmp_path / "job.ckpt", cfg, MPI.COMM_SELF, log=None)
    with pytest.raises(Interrupted) as stopped:
        run_tdmrg(cfg, checkpointer=ckpt, stop=StopAfter(1, signal.SIGUSR1), log=None)
    assert stopped.value.code == 75
    assert (tmp_path / "job.ckpt.s2.r0.npz").exists()
    seen = []
    ds = run_tdmrg(cfg, progress=lambda t, info: seen.append(t), checkpointer=ckpt, log=None)
    assert seen == pytest.approx([3 * T_UNIT, 4 * T_UNIT])  # only what was left
    for name in ds.data_vars:
        np.testing.assert_array_equal(ds[name].values, short_run[name].values, err_msg=name)


def test_checkpoint_of_another_config_is_moved_aside(tmp_path):
    from mpi4py import MPI
    from spinvalve.checkpoint import Checkpointer
    cfg = small_cfg(2, multi_electron={"method": "tebd"})
    other = small_cfg(2, multi_electron={"method": "tebd", "well_depth": 1.5})
    Checkpointer(tmp_path / "job.ckpt", other, MPI.COMM_SELF).save(1, {"stale": True}, [])
    log = io.StringIO()
    ckpt = Checkpointer(tmp_path / "job.ckpt", cfg, MPI.COMM_SELF, log=log)
    ds = run_tdmrg(cfg, checkpointer=ckpt, log=None)
    assert len(ds.time) == 3
    assert "different config" in log.getvalue() and "moved aside" in log.getvalue()
    assert sorted(p.name.split(".", 3)[-1] for p in tmp_path.iterdir()) == ["meta", "s1.r0.npz"]
    assert all(".stale-" in p.name for p in tmp_path.iterdir())
