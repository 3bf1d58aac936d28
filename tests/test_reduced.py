"""Block (Gram-factor) observables of rho_FM against dense reference formulas.

Random block-diagonal states, in both code paths: dense blocks (small) and thin
factors (forced by lowering DENSE_LIMIT), compared with tests/reference.py applied
to the dense 2^N matrix.
"""

from __future__ import annotations

import numpy as np
import pytest

import reference as ref
from spinvalve import reduced
from spinvalve.basis import SpinLayers
from spinvalve.entanglement import entropies, negativity
from spinvalve.magnons import magnon_probabilities, w_state_probability
from spinvalve.qfi import qfi_bound, qfi_exact


def to_reference_order(rho: np.ndarray, N: int) -> np.ndarray:
    """Bit basis (bit i set = spin i up) -> reference basis (spin 0 most significant, up = 0)."""
    m = np.arange(1 << N)
    ref_index = sum((1 - ((m >> i) & 1)) << (N - 1 - i) for i in range(N))
    out = np.empty_like(rho)
    out[np.ix_(ref_index, ref_index)] = rho
    return out


def random_state(n_p, n_a, charges, rank, seed):
    rng = np.random.default_rng(seed)
    lay = SpinLayers(n_p, n_a)
    factors = {K: rng.standard_normal((lay.block(K).size, rank)) +
               1j * rng.standard_normal((lay.block(K).size, rank)) for K in charges}
    norm = sum(np.vdot(f, f).real for f in factors.values())
    return reduced.BlockDensityMatrix(lay, {K: f / np.sqrt(norm) for K, f in factors.items()})


@pytest.mark.parametrize("thin", [False, True])
@pytest.mark.parametrize("n_p,n_a,charges,rank", [(3, 3, (2, 3, 4), 3), (3, 2, (2, 3), 4),
                                                   (2, 3, (1, 2, 3, 4), 1), (5, 5, (4, 5, 6), 3)])
def test_block_observables_match_dense_formulas(monkeypatch, thin, n_p, n_a, charges, rank):
    if thin:
        monkeypatch.setattr(reduced, "DENSE_LIMIT", 0)
    rho = random_state(n_p, n_a, charges, rank, seed=n_p * 10 + n_a)
    N = n_p + n_a
    geom = ref.Geometry(30, 3, n_p, 2, n_a)
    dense = to_reference_order(rho.to_dense(), N)
    want = ref.observables_from_rho(dense, geom, (np.pi / 6, np.pi / 2))
    s_p, s_a, s_pa = entropies(rho)
    assert s_p == pytest.approx(want["entropy_p"], abs=1e-10)
    assert s_a == pytest.approx(want["entropy_a"], abs=1e-10)
    assert s_pa == pytest.approx(want["entropy_pa"], abs=1e-10)
    e_n, by_q = negativity(rho)
    assert e_n == pytest.approx(want["log_negativity"], abs=1e-10)
    assert e_n > 1e-3  # random states are entangled: the test is not trivially zero
    assert np.log(sum(by_q.values())) == pytest.approx(e_n, abs=1e-12)
    np.testing.assert_allclose(magnon_probabilities(rho), want["magnon_probability"], atol=1e-12)
    assert w_state_probability(rho) == pytest.approx(want["w_state_probability"], abs=1e-12)
    positions = np.array(geom.sites, dtype=float)
    ks = (np.pi / 6, np.pi / 2)
    np.testing.assert_allclose(qfi_bound(rho, positions, ks), want["qfi_bound"], atol=1e-10)
    np.testing.assert_allclose(qfi_exact(rho, positions, ks), want["qfi_exact"], atol=1e-9)
    assert rho.trace == pytest.approx(1.0)


def test_negativity_refuses_oversized_blocks():
    rho = random_state(3, 3, (3,), 2, seed=1)
    e_n, by_q = negativity(rho, max_dim=10)
    assert np.isnan(e_n) and by_q == {}


@pytest.mark.parametrize("two_stage", [False, True])
@pytest.mark.parametrize("n_p,n_a,charges,rank,seed", [(3, 3, (2, 3, 4), 2, 5), (4, 3, (3, 4, 5), 3, 11)])
def test_negativity_blocks_are_those_of_the_reference(monkeypatch, two_stage, n_p, n_a, charges, rank, seed):
    """Block trace norms equal the reference's dense partial transpose, with numpy's
    eigensolver and with LAPACK's two-stage one (used for large blocks)."""
    from spinvalve import lapack
    if two_stage and not lapack.have_two_stage():
        pytest.skip("no LAPACKE zheevd_2stage found")
    monkeypatch.setattr(lapack, "TWO_STAGE_MIN", 0 if two_stage else 1 << 30)
    rho = random_state(n_p, n_a, charges, rank, seed=seed)
    geom = ref.Geometry(30, 3, n_p, 2, n_a)
    want = ref.negativity_blocks(to_reference_order(rho.to_dense(), n_p + n_a), geom)
    e_n, got = negativity(rho)
    # reference labels blocks by q' = sum_p sigma^z - sum_a sigma^z of the row = 2 (k_p - k_b) - n_p + n_a
    got_ref_labels = {2 * q - n_p + n_a: v for q, v in got.items()}
    for q, v in want.items():
        assert got_ref_labels.get(q, 0.0) == pytest.approx(v, abs=1e-10)
    assert e_n == pytest.approx(np.log(sum(want.values())), abs=1e-10)


def test_wide_factors_are_compressed_exactly():
    """Parts with more columns than configurations (a Gibbs ensemble) leave an n_K x rank
    factor with the same rho_K = sum_parts w A A^dag."""
    layers = SpinLayers(3, 2)
    rng = np.random.default_rng(5)
    parts, want = [], {}
    for K, width, w in ((2, 40, 0.3), (2, 25, 0.5), (3, 4, 0.2), (5, 7, 1.0)):
        n = layers.block(K).size
        amp = rng.standard_normal((n, width)) + 1j * rng.standard_normal((n, width))
        parts.append((K, w, amp))
        want[K] = want.get(K, 0) + w * amp @ amp.conj().T
    rho = reduced.BlockDensityMatrix.from_parts(layers, parts)
    for K, block in want.items():
        n, r = rho.factors[K].shape
        assert r <= n
        f = rho.factors[K]
        np.testing.assert_allclose(f @ f.conj().T, block, atol=1e-12 * np.abs(block).max())
    assert rho.factors[3].shape[1] == 4                  # narrow factors stay as they are
