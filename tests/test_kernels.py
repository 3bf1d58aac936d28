"""The fused compiled kernels against the numpy/scipy reference path of the same operator."""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import dense_matrix
from mpi4py import MPI

from spinvalve import kernels
from spinvalve.basis import Sector
from spinvalve.config import load_config
from spinvalve.hamiltonian import HamiltonianShell, Model
from spinvalve.propagate import lanczos_bounds

pytestmark = pytest.mark.skipif(not kernels.HAVE_NUMBA, reason="numba not available")


@pytest.mark.parametrize("n_p,n_a,M", [(4, 4, 1), (4, 4, -1), (3, 2, 2), (2, 0, -1), (0, 3, -2)])
def test_fused_apply_and_chebyshev_term_match_numpy(n_p, n_a, M, kernel_threads):
    cfg = load_config({"chain": {"n_sites": 30}, "layers": {"n_p": n_p, "n_a": n_a, "fm_p_start": 5,
                                                             "spacer": 3}})
    model = Model.from_config(cfg)
    shell = HamiltonianShell(model, Sector(model.layers, M), MPI.COMM_SELF)
    rng = np.random.default_rng(1)
    shape = shell.local_shape
    cur, prev, acc = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape) for _ in range(3))
    out_f, out_n = np.empty_like(cur), np.empty_like(cur)
    assert kernels._THREADS == min(kernel_threads, kernels.numba.config.NUMBA_NUM_THREADS)
    shell.apply(cur, out_f)
    shell.apply_numpy(cur, out_n)
    np.testing.assert_allclose(out_f, out_n, atol=1e-13)
    # H is Hermitian: <u|H v> = <H u|v>
    v = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    hv = np.empty_like(v)
    shell.apply(v, hv)
    assert abs(np.vdot(cur, hv) - np.vdot(out_f, v)) < 1e-10
    ck, a, s = 0.3 - 0.2j, 0.7, 0.4
    want_prev = s * (out_n - a * cur) - prev
    want_acc = acc + ck * want_prev
    shell.chebyshev_term(cur, prev, acc, ck, a, s)
    np.testing.assert_allclose(prev, want_prev, atol=1e-13)
    np.testing.assert_allclose(acc, want_acc, atol=1e-13)


@pytest.fixture(params=[1, 2], ids=["serial", "threads2"])
def kernel_threads(request, monkeypatch):
    """Run with the serial kernels and with the prange ones (2 threads; every shell
    calls set_threads() from SPINVALVE_THREADS), then restore."""
    monkeypatch.setenv("SPINVALVE_THREADS", str(request.param))
    kernels.set_threads()
    yield request.param
    monkeypatch.delenv("SPINVALVE_THREADS")
    kernels.set_threads()


def test_spin_term_and_separate_output_match_numpy(kernel_threads):
    """H + 1 (x) K with a complex K (the open system's -(i/2) Gamma): fused pass vs numpy path,
    with the Chebyshev output in a separate array and without accumulation."""
    import scipy.sparse as sp
    from spinvalve.basis import SpinSpace
    cfg = load_config({"chain": {"n_sites": 16}, "layers": {"n_p": 2, "n_a": 2, "fm_p_start": 4,
                                                             "spacer": 2}, "pulse": {"x0": 3.0}})
    model = Model.from_config(cfg)
    shell = HamiltonianShell(model, SpinSpace.full(model.layers), MPI.COMM_SELF)
    rng = np.random.default_rng(3)
    shape = shell.local_shape
    k = sp.random(shape[0], shape[0], density=0.2, random_state=4, dtype=complex)
    k.data += 1j * rng.standard_normal(k.nnz)
    shell.add_spin_term(k)
    cur, prev, acc = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape) for _ in range(3))
    cur[: shape[0] // 2] = 0                       # zero rows reached only through K
    h_f, h_n, h0 = np.empty_like(cur), np.empty_like(cur), np.empty_like(cur)
    shell.apply(cur, h_f)
    shell.apply_numpy(cur, h_n)
    np.testing.assert_allclose(h_f, h_n, atol=1e-13)
    shell.apply_numpy(cur, h0, spin_term=False)     # H alone
    np.testing.assert_allclose(h_f - h0, k @ cur, atol=1e-13)
    shell.apply(cur, h_f, spin_term=False)
    np.testing.assert_allclose(h_f, h0, atol=1e-13)
    ck, a, s = 0.3 - 0.2j, 0.7, 0.4
    want = s * (h_n - a * cur) - prev
    out, prev0, acc0 = np.empty_like(cur), prev.copy(), acc.copy()
    shell.chebyshev_term(cur, prev, None, ck, a, s, out=out)
    np.testing.assert_allclose(out, want, atol=1e-13)
    assert np.array_equal(prev, prev0)
    shell.chebyshev_term(cur, prev, acc, ck, a, s)
    np.testing.assert_allclose(prev, want, atol=1e-13)
    np.testing.assert_allclose(acc, acc0 + ck * want, atol=1e-13)
    with pytest.raises(ValueError, match="in place"):
        shell.chebyshev_term(cur, prev, acc, ck, a, s, out=out)


def test_spectral_bounds_contain_the_spectrum():
    cfg = load_config({"chain": {"n_sites": 12}, "layers": {"n_p": 3, "n_a": 2, "fm_p_start": 2,
                                                             "spacer": 2}, "pulse": {"x0": 3.0}})
    model = Model.from_config(cfg)
    lo, hi = model.spectral_bounds()
    for M in (-4, -2, 0, 2, 4):
        shell = HamiltonianShell(model, Sector(model.layers, M), MPI.COMM_SELF)
        ev = np.linalg.eigvalsh(dense_matrix(shell))
        assert lo - 1e-12 <= ev.min() and ev.max() <= hi + 1e-12
        llo, lhi = lanczos_bounds(shell)
        assert llo <= ev.min() and ev.max() <= lhi


def test_full_spin_space_has_the_reference_spectrum():
    """The direct sum of all parts reproduces the spectrum of the full tensor-product H."""
    import reference as ref
    from spinvalve.basis import SpinSpace
    cfg = load_config({"chain": {"n_sites": 5}, "layers": {"n_p": 2, "n_a": 1, "fm_p_start": 1,
                                                            "spacer": 1}, "pulse": {"x0": 1.0}})
    model = Model.from_config(cfg)
    shell = HamiltonianShell(model, SpinSpace.full(model.layers), MPI.COMM_SELF)
    assert shell.local_size == 5 * 2 * 2 ** 3
    H = dense_matrix(shell)
    geom = ref.Geometry(5, 1, 2, 1, 1)
    want = np.linalg.eigvalsh(ref.hamiltonian(geom).toarray())
    np.testing.assert_allclose(np.linalg.eigvalsh(H), want, atol=1e-12)


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_freed_large_arrays_return_to_the_os_after_petsc_init():
    """PETSc's initialisation turns glibc's mmap allocations off; the engine turns them
    back on, so a freed 200 MB array does not stay resident."""
    from petsc4py import PETSc  # noqa: F401
    assert kernels.allow_mmap_malloc()
    before = _rss_mb()
    a = np.ones(200 * 2 ** 20 // 8)
    grown = _rss_mb()
    del a
    after = _rss_mb()
    assert grown - before > 150
    assert after - before < 50
