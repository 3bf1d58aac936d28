"""Dense rho_FM observables (spinvalve.dense) against the block functions and the reference."""

from __future__ import annotations

import numpy as np
import pytest

import reference as ref
from spinvalve import dense
from spinvalve.basis import SpinLayers
from spinvalve.entanglement import entropies, negativity
from spinvalve.magnons import magnon_probabilities, w_state_probability
from spinvalve.qfi import qfi_bound, qfi_exact, sz_moments
from spinvalve.reduced import BlockDensityMatrix

K_VALUES = (np.pi / 6, np.pi / 2, 1.0)


def to_reference_basis(n: int) -> np.ndarray:
    """perm[c] = reference index of bit-basis configuration c (ref: spin 0 most significant, up = 0)."""
    c = np.arange(1 << n)
    s = np.zeros_like(c)
    for i in range(n):
        up = (c >> i) & 1
        s += (1 - up) << (n - 1 - i)
    return s


def from_reference(rho_ref: np.ndarray, n: int) -> np.ndarray:
    perm = to_reference_basis(n)
    return rho_ref[np.ix_(perm, perm)]


def random_rho(dim: int, rng, rank: int | None = None) -> np.ndarray:
    rank = rank or dim
    a = rng.standard_normal((dim, rank)) + 1j * rng.standard_normal((dim, rank))
    r = a @ a.conj().T
    return r / np.trace(r).real


def random_block_rho(n_p: int, n_a: int, rng) -> BlockDensityMatrix:
    lay = SpinLayers(n_p, n_a)
    blocks = {}
    for K in range(n_p + n_a + 1):
        size = lay.block(K).size
        a = rng.standard_normal((size, 2)) + 1j * rng.standard_normal((size, 2))
        blocks[K] = a @ a.conj().T
    tr = sum(np.trace(b).real for b in blocks.values())
    return BlockDensityMatrix.from_dense_blocks(lay, {K: b / tr for K, b in blocks.items()})


@pytest.mark.parametrize("n_p,n_a", [(2, 2), (3, 1), (1, 3), (2, 3)])
def test_dense_matches_block_functions(n_p, n_a):
    rng = np.random.default_rng([n_p, n_a])
    brho = random_block_rho(n_p, n_a, rng)
    rho = brho.to_dense()
    pos = np.arange(n_p + n_a, dtype=float) * 1.5 + 3
    assert np.allclose(dense.entropies(rho, n_p, n_a), entropies(brho), atol=1e-12)
    assert dense.log_negativity(rho, n_p, n_a) == pytest.approx(negativity(brho)[0], abs=1e-12)
    assert np.allclose(dense.magnon_probabilities(rho, n_p, n_a), magnon_probabilities(brho))
    assert dense.w_state_probability(rho, n_p, n_a) == pytest.approx(w_state_probability(brho), abs=1e-14)
    assert np.allclose(dense.qfi_bound(rho, n_p, n_a, pos, K_VALUES), qfi_bound(brho, pos, K_VALUES))
    assert np.allclose(dense.qfi_exact(rho, n_p, n_a, pos, K_VALUES), qfi_exact(brho, pos, K_VALUES),
                       atol=1e-10)
    mean, corr = sz_moments(brho)
    spin = dense.spin_expectations(rho, n_p + n_a)
    assert np.allclose(spin[:, 2], mean) and np.allclose(dense.sz_moments(rho, n_p + n_a)[1], corr)
    assert np.allclose(spin[:, :2], 0.0)  # S^z-conserving rho: no transverse moments
    assert dense.hermiticity_error(rho) < 1e-15


@pytest.mark.parametrize("n_p,n_a", [(2, 2), (1, 2), (3, 2)])
def test_dense_matches_reference_on_random_states(n_p, n_a):
    """Generic rho_FM (no S^z conservation): every observable against tests/reference.py."""
    rng = np.random.default_rng([7, n_p, n_a])
    geom = ref.Geometry(40, 10, n_p, 3, n_a)
    N = n_p + n_a
    for rank in (1, 3, 1 << N):
        rho_ref = random_rho(1 << N, rng, rank)
        rho = from_reference(rho_ref, N)
        rho_e = random_rho(2, rng)
        want = ref.observables_from_rho(rho_ref, geom, K_VALUES, rho_e)
        pos = np.array(geom.sites, dtype=float)
        got = dense.derived_observables(rho, n_p, n_a, pos, K_VALUES)
        for key in dense.DERIVED:
            assert np.allclose(got[key], want[key], atol=1e-10), key
        assert np.allclose(dense.spin_expectations(rho, N), want["spin_expectation"], atol=1e-12)
        assert np.allclose(dense.electron_spin(rho_e), want["electron_spin"], atol=1e-14)
        assert dense.hermiticity_error(rho) == pytest.approx(want["hermiticity"], abs=1e-15)
        if rank == 1:  # pure state: bound and exact QFI coincide
            assert np.allclose(got["qfi_bound"], got["qfi_exact"], atol=1e-8) or N == 0


def test_partial_trace_and_transpose_layout():
    """Product state rho_p (x) rho_a: traces recover the factors, negativity vanishes."""
    rng = np.random.default_rng(3)
    rp, ra = random_rho(4, rng), random_rho(8, rng)
    rho = np.kron(ra, rp)  # bit index c_p + 4 c_a
    assert np.allclose(dense.partial_trace(rho, 2, 3, "p"), rp)
    assert np.allclose(dense.partial_trace(rho, 2, 3, "a"), ra)
    assert np.allclose(dense.partial_transpose(rho, 2, 3), np.kron(ra.T, rp))
    assert abs(dense.log_negativity(rho, 2, 3)) < 1e-12
    s_p, s_a, s_pa = dense.entropies(rho, 2, 3)
    assert s_pa == pytest.approx(s_p + s_a, abs=1e-12)


def test_derived_stack_matches_single_evaluations():
    rng = np.random.default_rng(11)
    n_p, n_a = 2, 2
    pos = np.array([3.0, 4.0, 7.0, 8.0])
    rhos = np.array([random_rho(16, rng, r) for r in (1, 2, 16, 5)])
    stack = dense.derived_stack(rhos, n_p, n_a, pos, K_VALUES)
    for n, r in enumerate(rhos):
        one = dense.derived_observables(r, n_p, n_a, pos, K_VALUES)
        for key in dense.DERIVED:
            assert np.allclose(stack[key][n], one[key], atol=1e-10), key
