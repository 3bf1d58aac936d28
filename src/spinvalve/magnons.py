"""Magnon-sector probabilities (Eq. 25) and the W-state weight (Sec. IV B).

m counts the localized spins flipped relative to the T = 0 configuration
(FM_p all up, FM_a all down): a configuration with k_p up spins in FM_p and k_a in
FM_a has m = (n_p - k_p) + k_a, so P_m sums whole sub-blocks of the diagonal.
"""

from __future__ import annotations

import numpy as np

from .reduced import BlockDensityMatrix


def magnon_probabilities(rho: BlockDensityMatrix) -> np.ndarray:
    """P_m = Tr[P_m rho_FM], m = 0 ... N."""
    lay = rho.layers
    out = np.zeros(lay.n_spins + 1)
    for block, p in rho.diagonal():
        for sb in block.subblocks:
            out[lay.n_p - sb.k_p + sb.k_a] += p[sb.slice].sum()
    return out


def reachable_configurations(rho: BlockDensityMatrix, floor: float = 0.0) -> int:
    """Number of configurations whose block is present (floor = 0) or whose weight exceeds floor."""
    return int(sum((p > floor).sum() if floor > 0 else p.size for _, p in rho.diagonal()))


def w_state_probability(rho: BlockDensityMatrix) -> float:
    """<W|rho_FM|W>, W = N^{-1/2} sum_i |config with spin i flipped> (T = 0 reference).

    Flipping a FM_p spin gives K = n_p - 1, flipping a FM_a spin K = n_p + 1, so the
    two halves of W live in different blocks and do not interfere.
    """
    lay = rho.layers
    N, n_p = lay.n_spins, lay.n_p
    full_p = (1 << n_p) - 1
    total = 0.0
    for K, cps, cas in (
            (n_p - 1, [full_p ^ (1 << i) for i in range(n_p)], [0] * n_p),
            (n_p + 1, [full_p] * lay.n_a, [1 << j for j in range(lay.n_a)])):
        if not cps or K not in rho.factors:
            continue
        idx = lay.block(K).index(np.array(cps), np.array(cas))
        total += float((np.abs(rho.factors[K][idx].sum(axis=0)) ** 2).sum())
    return float(total / N) if N else 0.0
