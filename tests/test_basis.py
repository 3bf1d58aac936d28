"""spinvalve.basis against counting from first principles (binomials, explicit bit patterns)."""

from __future__ import annotations

from itertools import product
from math import comb

import numpy as np
import pytest

from spinvalve.basis import (LayerBasis, Sector, SpinLayers, SpinSpace, sector_dimension,
                             sector_of)


@pytest.mark.parametrize("n", [0, 1, 3, 5])
def test_layer_patterns_are_every_bit_pattern_once_ranked_in_order(n):
    lay = LayerBasis(n)
    seen = np.concatenate(lay.patterns) if n else np.array([0])
    assert sorted(seen.tolist()) == list(range(1 << n))
    for k, pats in enumerate(lay.patterns):
        assert len(pats) == comb(n, k) == lay.size(k)
        assert all(bin(int(c)).count("1") == k for c in pats)
        assert list(pats) == sorted(pats)
        assert lay.rank[pats].tolist() == list(range(len(pats)))
    assert lay.size(-1) == lay.size(n + 1) == 0


@pytest.mark.parametrize("n_p,n_a", [(1, 1), (2, 3), (3, 3), (4, 2)])
def test_charge_blocks_partition_all_configurations_and_index_is_a_bijection(n_p, n_a):
    layers = SpinLayers(n_p, n_a)
    N = n_p + n_a
    total = 0
    for K in range(N + 1):
        blk = layers.block(K)
        assert blk.size == comb(N, K)                    # Vandermonde: sum_kp C(n_p,kp)C(n_a,K-kp)
        cp, ca = blk.bits
        # every configuration with K ups, once
        pairs = set(zip(cp.tolist(), ca.tolist()))
        expect = {(p, a) for p, a in product(range(1 << n_p), range(1 << n_a))
                  if bin(p).count("1") + bin(a).count("1") == K}
        assert pairs == expect and len(pairs) == blk.size
        # index inverts the enumeration
        assert blk.index(cp, ca).tolist() == list(range(blk.size))
        # spins: Pauli S^z = +1 where the bit is set, FM_p first
        s = blk.spins
        assert s.shape == (blk.size, N)
        assert (s.sum(axis=1) == 2 * K - N).all()
        for row, p, a in zip(s, cp, ca):
            bits = [(p >> i) & 1 for i in range(n_p)] + [(a >> i) & 1 for i in range(n_a)]
            assert row.tolist() == [2 * b - 1 for b in bits]
        # sub-blocks are contiguous, i_p-major
        off = 0
        for sb in blk.subblocks:
            assert sb.offset == off and sb.size == comb(n_p, sb.k_p) * comb(n_a, sb.k_a)
            sub_p = cp[sb.slice].reshape(sb.n_pc, sb.n_ac)
            assert (sub_p == sub_p[:, :1]).all()
            off += sb.size
        total += blk.size
    assert total == 2 ** N
    with pytest.raises(ValueError):
        layers.block(1).index(np.array([0]), np.array([0]))


@pytest.mark.parametrize("n_p,n_a", [(1, 1), (2, 2), (3, 2), (4, 4)])
def test_sector_dimensions_are_binomial_counts_and_parts_cover_the_sector(n_p, n_a):
    layers = SpinLayers(n_p, n_a)
    N = n_p + n_a
    dims = 0
    for M in range(-N - 1, N + 2, 2):
        sec = Sector(layers, M)
        # S^z_tot = M: electron up with K ups, or down with K + 1 ups
        k_up = (M - 1 + N) // 2
        expect = (comb(N, k_up) if 0 <= k_up <= N else 0) + (comb(N, k_up + 1) if k_up + 1 <= N else 0)
        assert sec.dim == expect
        covered = np.zeros(sec.dim, int)
        for e_up, blk, sl in sec.iter_parts():
            assert sector_of(N, e_up, blk.K) == M
            assert sl.stop - sl.start == blk.size
            covered[sl] += 1
        assert (covered == 1).all()
        dims += sec.dim
    assert dims == 2 ** (N + 1)                         # electron spin x 2^N configurations
    with pytest.raises(ValueError):
        Sector(layers, -N)                              # wrong parity
    full = SpinSpace.full(layers)
    assert full.dim == 2 ** (N + 1)


def test_sector_dimension_of_the_paper_and_the_reference_sector():
    # SPEC: 10+10 spins on L = 201: 201 x C(21, 11) = 70.9 million amplitudes
    assert sector_dimension(201, 10, 10) == 201 * comb(21, 11) == 70_895_916
    layers = SpinLayers(4, 4)
    K = layers.reference_charge
    assert K == 4
    assert sector_dimension(201, 4, 4) == 201 * (comb(8, 4) + comb(8, 5))
