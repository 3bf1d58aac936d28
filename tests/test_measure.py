"""The fast measurement path (spinvalve.measure, default) against its reference and brute force.

Every observable of ``measure.derived`` agrees to 1e-10 with the original block
functions (``reference=True``) on random states (dense and thin-factor blocks,
up to 5+5 spins), with the dense formulas of tests/reference.py, and on
physical states of the engine (T = 0 and a Gibbs ensemble). The certified
trace-norm bounds that let the fast negativity skip eigenvalues hold on
random Hermitian and partially transposed blocks, and the block moments
computed from the factors equal those of the assembled blocks.
"""

from __future__ import annotations

import numpy as np
import pytest

import reference as ref
from spinvalve import entanglement, measure, reduced
from spinvalve.basis import SpinLayers
from spinvalve.config import load_config
from spinvalve.simulate import Engine
from test_reduced import random_state, to_reference_order

KS = (np.pi / 6, np.pi / 2)


def derived(rho, positions, reference):
    return measure.derived(rho, positions, KS, negativity_max_dim=1 << 20, qfi_exact_max_dim=1 << 20,
                           reference=reference)


def assert_same(got: dict, want: dict, atol=1e-10):
    assert set(got) == set(want)
    for key, w in want.items():
        g = got[key]
        if isinstance(w, dict):
            assert set(g) == set(w), key
            for q in w:
                assert g[q] == pytest.approx(w[q], abs=atol), (key, q)
        else:
            np.testing.assert_allclose(np.asarray(g, float), np.asarray(w, float), atol=atol, rtol=0,
                                       err_msg=key)


def fresh(rho):
    """A copy without caches (each path must compute its own decompositions)."""
    return reduced.BlockDensityMatrix(rho.layers, {K: f.copy() for K, f in rho.factors.items()})


@pytest.mark.parametrize("thin", [False, True])
@pytest.mark.parametrize("n_p,n_a,charges,rank", [(3, 3, (2, 3, 4), 3), (3, 2, (2, 3), 4),
                                                   (2, 3, (0, 1, 2, 3, 4, 5), 2), (5, 5, (4, 5, 6), 3),
                                                   (4, 4, (3, 4, 5), 40)])
def test_fast_path_equals_reference_and_dense_formulas(monkeypatch, thin, n_p, n_a, charges, rank):
    if thin:
        monkeypatch.setattr(reduced, "DENSE_LIMIT", 0)
    rho = random_state(n_p, n_a, charges, rank, seed=7 * n_p + n_a + rank)
    geom = ref.Geometry(30, 3, n_p, 2, n_a)
    positions = np.array(geom.sites, dtype=float)
    fast = derived(fresh(rho), positions, reference=False)
    assert_same(fast, derived(fresh(rho), positions, reference=True))
    if n_p + n_a > 8:
        return  # the reference path itself is checked against the dense formulas at 5+5 (test_reduced)
    want = ref.observables_from_rho(to_reference_order(rho.to_dense(), n_p + n_a), geom, KS)
    for key in ("entropy_p", "entropy_a", "entropy_pa", "log_negativity", "w_state_probability",
                "qfi_bound", "qfi_exact", "magnon_probability"):
        np.testing.assert_allclose(fast[key], want[key], atol=1e-9, rtol=0, err_msg=key)
    assert fast["log_negativity"] > 1e-3


def test_dense_blocks_and_gibbs_like_factors(monkeypatch):
    """from_dense_blocks (the engine's dense reduction) with its cached eigenpairs, and
    the large-layer path (no gather plan) against the gathered one."""
    rng = np.random.default_rng(3)
    lay = SpinLayers(3, 3)
    blocks = {}
    for K in range(7):
        x = rng.standard_normal((lay.block(K).size, 5)) + 1j * rng.standard_normal((lay.block(K).size, 5))
        blocks[K] = x @ x.conj().T
    tot = sum(np.trace(b).real for b in blocks.values())
    blocks = {K: b / tot for K, b in blocks.items()}
    positions = np.arange(6.0) * 1.5
    want = derived(reduced.BlockDensityMatrix.from_dense_blocks(lay, blocks), positions, True)
    got = derived(reduced.BlockDensityMatrix.from_dense_blocks(lay, blocks), positions, False)
    assert_same(got, want)
    monkeypatch.setattr(entanglement, "PLAN_MAX_ELEMENTS", 0)
    monkeypatch.setattr(entanglement, "BATCH_MAX", 1)
    got = derived(reduced.BlockDensityMatrix.from_dense_blocks(lay, blocks), positions, False)
    assert_same(got, want)


@pytest.mark.parametrize("n_p,n_a,charges,rank", [(3, 3, (2, 3, 4), 3), (4, 3, (3, 4, 5), 50),
                                                   (5, 5, (4, 5, 6), 2)])
def test_imbalance_moments_and_bounds(monkeypatch, n_p, n_a, charges, rank):
    """tr M_q and ||M_q||_F^2 from the factors equal those of the assembled blocks, and
    lo <= ||M_q||_1 <= hi holds for every block."""
    for thin in (False, True):
        monkeypatch.setattr(reduced, "DENSE_LIMIT", 0 if thin else 2048)
        rho = random_state(n_p, n_a, charges, rank, seed=rank)
        moments = rho.imbalance_moments()
        nuclear = rho.imbalance_nuclear_bounds()
        blocks = dict(entanglement.partial_transpose_blocks(rho))
        assert set(moments) == set(blocks) == set(nuclear)
        for q, m in blocks.items():
            tr, f2 = moments[q]
            assert tr == pytest.approx(np.trace(m).real, abs=1e-14)
            assert f2 == pytest.approx(np.vdot(m, m).real, rel=1e-12, abs=1e-300)
            exact = np.abs(np.linalg.eigvalsh(m)).sum()
            lo, hi = entanglement.trace_norm_bounds(m)
            lo2, hi2 = entanglement._moment_bounds(tr, f2, m.shape[0])
            assert lo2 == pytest.approx(lo, rel=1e-12) and hi2 == pytest.approx(hi, rel=1e-10)
            assert lo <= exact * (1 + 1e-12) and exact <= hi * (1 + 1e-12)
            assert exact <= nuclear[q] * (1 + 1e-12)


def test_nuclear_bound_of_product_columns_is_exact():
    """One column that is a product state within each layer charge: the bound is attained."""
    lay = SpinLayers(2, 2)
    rng = np.random.default_rng(4)
    block = lay.block(2)
    f = np.zeros((block.size, 1), complex)
    sb = block.subblocks[1]  # k_p = 1, k_a = 1: a 2 x 2 sub-block
    u, v = rng.standard_normal(2) + 1j * rng.standard_normal(2), rng.standard_normal(2)
    f[sb.slice, 0] = np.outer(u, v).ravel()
    f /= np.linalg.norm(f)
    rho = reduced.BlockDensityMatrix(lay, {2: f})
    got = rho.imbalance_nuclear_bounds()
    for q, m in entanglement.partial_transpose_blocks(rho):
        assert got[q] == pytest.approx(np.abs(np.linalg.eigvalsh(m)).sum(), rel=1e-12)


def test_bounds_on_random_hermitian_matrices():
    rng = np.random.default_rng(11)
    for n in (1, 2, 5, 40):
        for shift in (-3.0, 0.0, 0.5, 3.0):
            x = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
            m = x + x.conj().T + shift * n * np.eye(n)
            exact = np.abs(np.linalg.eigvalsh(m)).sum()
            lo, hi = entanglement.trace_norm_bounds(m)
            assert lo <= exact * (1 + 1e-12) and exact <= hi * (1 + 1e-12)


def test_skipped_blocks_are_within_the_tolerance():
    """With a tolerance the midpoint of the bounds replaces a block's eigenvalues only
    where the bounds allow it, and stays within the tolerance of the exact value."""
    rho = random_state(4, 4, (3, 4, 5), 4, seed=2)
    _, exact = entanglement.negativity(rho)
    for tol in (1e-3, 3e-2, 1.0):
        _, got = entanglement.negativity_fast(fresh(rho), tol=tol)
        assert set(got) == set(exact)
        assert max(abs(got[q] - exact[q]) for q in exact) <= tol
    _, none = entanglement.negativity_fast(fresh(rho), tol=0.0)
    assert max(abs(none[q] - exact[q]) for q in exact) < 1e-12


def test_thin_eig_reconstructs_blocks(monkeypatch):
    monkeypatch.setattr(reduced, "DENSE_LIMIT", 0)
    rho = random_state(4, 4, (3, 4, 5), 6, seed=9)
    for K, f in rho.factors.items():
        p, u = rho.eig(K)
        assert u.shape[1] == 6 and np.all(np.diff(p) <= 0)
        np.testing.assert_allclose((u * p) @ u.conj().T, f @ f.conj().T, atol=1e-14)


def small_engine(n_p, n_a, **extra):
    raw = {"chain": {"n_sites": 40}, "layers": {"n_p": n_p, "n_a": n_a, "fm_p_start": 16, "spacer": 2},
           "pulse": {"x0": 6.0}, "time": {"t_end": 6.0, "dt_out": 6.0}}
    for section, values in extra.items():
        raw.setdefault(section, {}).update(values)
    eng = Engine(load_config(raw))
    eng.step()
    return eng


@pytest.mark.parametrize("n_p,n_a,extra", [(5, 5, {}), (4, 3, {}),
                                           (3, 3, {"temperature": {"gibbs": 300.0, "weight_cutoff": 0.0}})])
def test_physical_states_fast_equals_reference(n_p, n_a, extra):
    """Engine.measure at a time after the packet has passed the layers, both paths."""
    eng = small_engine(n_p, n_a, **extra)
    fast, _ = eng.measure()
    eng.reference_observables = True
    slow, _ = eng.measure()
    assert_same(fast, slow)
    assert fast["log_negativity"] > 1e-6
