"""Entropies, mutual information and mutual logarithmic negativity of rho_FM.

All functions take the block-diagonal :class:`BlockDensityMatrix` and never form
the dense 2^N matrix.
"""

from __future__ import annotations

import numpy as np

from . import lapack
from .reduced import BlockDensityMatrix

EIG_FLOOR = 1e-14


def hermitian_eigvalsh(m: np.ndarray) -> np.ndarray:
    return np.linalg.eigvalsh(0.5 * (m + m.conj().T)) if m.size else np.zeros(0)


def von_neumann(eigenvalues: np.ndarray) -> float:
    """S = -sum p ln p (Eq. 6, natural log) over the positive eigenvalues."""
    p = eigenvalues[eigenvalues > EIG_FLOOR]
    return float(-(p * np.log(p)).sum())


def entropies(rho: BlockDensityMatrix) -> tuple[float, float, float]:
    """(S_p, S_a, S_pa) of FM_p, FM_a and FM_p u FM_a (Eq. 6).

    S_pa from the block spectra (smaller Gram side), S_p and S_a from the layer
    states, which are block diagonal in the layer's number of up spins.
    """
    spec = [rho.spectrum(K) for K in rho.factors]
    s_pa = von_neumann(np.concatenate(spec or [np.zeros(0)]))
    s_p = von_neumann(np.concatenate([hermitian_eigvalsh(m) for m in rho.layer_blocks("p").values()]
                                     or [np.zeros(0)]))
    s_a = von_neumann(np.concatenate([hermitian_eigvalsh(m) for m in rho.layer_blocks("a").values()]
                                     or [np.zeros(0)]))
    return s_p, s_a, s_pa


def imbalance_labels(layers) -> dict[int, list[tuple[int, int]]]:
    """Row labels (k_p, k_b) of every charge-imbalance block q = k_p - k_b of rho^{T_a}."""
    labels: dict[int, list[tuple[int, int]]] = {}
    for k_p in range(layers.n_p + 1):
        for k_b in range(layers.n_a + 1):
            labels.setdefault(k_p - k_b, []).append((k_p, k_b))
    return labels


def imbalance_block_size(layers, q: int) -> int:
    return sum(layers.p.size(kp) * layers.a.size(kb) for kp, kb in imbalance_labels(layers)[q])


def partial_transpose_blocks(rho: BlockDensityMatrix):
    """Blocks of rho^{T_a} labelled by the charge imbalance q = k_p - k_a' (Cornfeld et al. 2018).

    Element (i_p i_a, j_p j_a') of rho moves to (i_p j_a', j_p i_a). Its row then has
    charges (k_p, k_a') and its column (k_p', k_a); charge conservation
    k_p + k_a = k_p' + k_a' makes k_p - k_a' = k_p' - k_a, so rho^{T_a} is block
    diagonal in q. A PT block's rows are the layer-charge pairs (k_p, k_b) with
    k_p - k_b = q; the element block [(k_p, k_b), (k_q, k_c)] comes from the
    rho sub-block with rows (k_p, k_c) and columns (k_q, k_b) of charge block k_p + k_c.
    Yields (q, block) one at a time, so only one block is in memory.
    """
    lay = rho.layers
    for q, rows in imbalance_labels(lay).items():
        sizes = [lay.p.size(kp) * lay.a.size(kb) for kp, kb in rows]
        offs = np.concatenate([[0], np.cumsum(sizes)])
        pt = np.zeros((offs[-1], offs[-1]), complex)
        nonzero = False
        for r, (k_p, k_b) in enumerate(rows):
            for c, (k_q, k_c) in enumerate(rows):
                K = k_p + k_c
                if K not in rho.factors:
                    continue
                block = lay.block(K)
                row_sb = _find(block, k_p)
                col_sb = _find(block, k_q)
                if row_sb is None or col_sb is None:
                    continue
                t = rho.sub(K, row_sb, col_sb)  # [i_p, i_a(k_c), j_p, j_a(k_b)]
                n_pc, n_ac, n_qc, n_bc = t.shape
                pt[offs[r]:offs[r + 1], offs[c]:offs[c + 1]] = (
                    t.transpose(0, 3, 2, 1).reshape(n_pc * n_bc, n_qc * n_ac))
                nonzero = True
        if nonzero:
            yield q, pt


def _find(block, k_p: int) -> int | None:
    for n, sb in enumerate(block.subblocks):
        if sb.k_p == k_p:
            return n
    return None


def negativity(rho: BlockDensityMatrix, max_dim: int | None = None) -> tuple[float, dict[int, float]]:
    """Mutual logarithmic negativity E_N = ln ||rho^{T_a}||_1 (Eq. 2), block by block.

    Returns E_N and the trace norm of every charge-imbalance block; NaN (and no
    blocks) when a block larger than ``max_dim`` would be needed.
    """
    if max_dim is not None and any(imbalance_block_size(rho.layers, q) > max_dim
                                   for q in imbalance_labels(rho.layers)):
        return float("nan"), {}
    norms = {}
    for q, m in partial_transpose_blocks(rho):
        # m is Hermitian by construction; two-stage LAPACK for large blocks, in place
        norms[q] = float(np.abs(lapack.eigvalsh(m, overwrite=True)).sum())
        del m
    total = sum(norms.values())
    return (float(np.log(total)) if total > 0 else 0.0), norms
