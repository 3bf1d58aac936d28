"""Entropies, mutual information and mutual logarithmic negativity of rho_FM.

All functions take the block-diagonal :class:`BlockDensityMatrix` and never form
the dense 2^N matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

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
    """Row labels (k_p, k_b) of every charge-imbalance block q = k_p - k_b of rho^{T_a}
    (cached per layer sizes; do not modify)."""
    key = (layers.n_p, layers.n_a)
    if key not in _LABELS:
        labels: dict[int, list[tuple[int, int]]] = {}
        for k_p in range(layers.n_p + 1):
            for k_b in range(layers.n_a + 1):
                labels.setdefault(k_p - k_b, []).append((k_p, k_b))
        _LABELS[key] = labels
    return _LABELS[key]


def imbalance_block_size(layers, q: int) -> int:
    return sum(layers.p.size(kp) * layers.a.size(kb) for kp, kb in imbalance_labels(layers)[q])


_LABELS: dict = {}


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


def trace_norm_bounds(m: np.ndarray) -> tuple[float, float]:
    """Certified bounds lo <= ||m||_1 <= hi of a Hermitian matrix from its trace and Frobenius norm.

    With s = tr m = sum_i l_i, F^2 = ||m||_F^2 = sum_i l_i^2 and n = dim m:
    lo = |s|; hi = min(sqrt(n) F, |s| + 2 sqrt(max(n F^2 - s^2, 0))). The first
    is Cauchy-Schwarz on sum |l_i|; the second writes ||m||_1 = s + 2 N with
    N = sum_{l_i < 0} |l_i| (for s >= 0; m -> -m otherwise), and bounds
    N <= sqrt(n sum_{l<0} l^2) with sum_{l<0} l^2 = F^2 - sum_{l>0} l^2 <= F^2 - s^2 / n
    (sum_{l>0} l >= s and Cauchy-Schwarz). Costs one pass over m, no eigenvalues.
    """
    n = m.shape[0]
    if n == 0:
        return 0.0, 0.0
    s = abs(float(np.trace(m).real))
    f2 = float(np.vdot(m, m).real)
    hi = min(np.sqrt(n * f2), s + 2.0 * np.sqrt(max(n * f2 - s * s, 0.0)))
    return s, float(max(hi, s))


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


# -- fast path (the functions above are its tested reference) ------------------------

#: A charge-imbalance block whose certified bounds (:func:`trace_norm_bounds`, and
#: for large layers :meth:`BlockDensityMatrix.imbalance_nuclear_bounds`) are closer
#: than 2 NEGLIGIBLE is not diagonalised: its trace norm is the midpoint, within
#: NEGLIGIBLE of the exact value (so E_N within (number of blocks) x NEGLIGIBLE,
#: since ||rho^{T_a}||_1 >= 1). Such blocks are bracketed, not resolved: their
#: negativity (||M_q||_1 - tr M_q) / 2 is known only to be below NEGLIGIBLE.
NEGLIGIBLE = 1e-12
#: Blocks from this size on are diagonalised one at a time with every BLAS thread;
#: smaller ones in batches of equal size with one thread.
BATCH_MAX = 512
#: From this size on the fast path uses the two-stage solver (it overtakes numpy's
#: one-stage zheevd between n = 500 and 800 with one thread, eigvalsh_2stage.py).
TWO_STAGE_FROM = 700
#: Gather plans (index arrays) are kept for layers whose rho^{T_a} has at most this many elements.
PLAN_MAX_ELEMENTS = 1 << 22

_PLANS: dict = {}


def _moment_bounds(trace: float, frob2: float, n: int) -> tuple[float, float]:
    """:func:`trace_norm_bounds` from (tr M, ||M||_F^2, dim M) alone."""
    s = abs(trace)
    hi = min(np.sqrt(n * max(frob2, 0.0)), s + 2.0 * np.sqrt(max(n * frob2 - s * s, 0.0)))
    return s, float(max(hi, s))


def _pt_layout(lay, q: int):
    """Rows (k_p, k_b) of block q, their offsets, and the (r, c, K, row sub-block, column
    sub-block) element blocks: the layout :func:`partial_transpose_blocks` fills."""
    rows = imbalance_labels(lay)[q]
    sizes = [lay.p.size(kp) * lay.a.size(kb) for kp, kb in rows]
    offs = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    pieces = []
    for r, (k_p, k_b) in enumerate(rows):
        for c, (k_q, k_c) in enumerate(rows):
            K = k_p + k_c
            block = lay.block(K) if 0 <= K <= lay.n_spins else None
            if block is None:
                continue
            rs, cs = _find(block, k_p), _find(block, k_q)
            if rs is None or cs is None:
                continue
            pieces.append((r, c, K, block.subblocks[rs], block.subblocks[cs]))
    return offs, pieces


def partial_transpose_block(rho: BlockDensityMatrix, q: int) -> np.ndarray:
    """Block q of rho^{T_a} alone (same elements as :func:`partial_transpose_blocks`)."""
    offs, pieces = _pt_layout(rho.layers, q)
    pt = np.zeros((offs[-1], offs[-1]), complex)
    for r, c, K, ra, rb in pieces:
        if K not in rho.factors:
            continue
        if K in rho.__dict__.get("_dense", {}):
            m = rho.dense(K)[ra.slice, rb.slice]
        else:
            f = rho.factors[K]
            m = f[ra.slice] @ f[rb.slice].conj().T
        pt[offs[r]:offs[r + 1], offs[c]:offs[c + 1]] = (
            m.reshape(ra.n_pc, ra.n_ac, rb.n_pc, rb.n_ac).transpose(0, 3, 2, 1)
            .reshape(ra.n_pc * rb.n_ac, rb.n_pc * ra.n_ac))
    return pt


def _plan(lay, charges: tuple[int, ...]):
    """Index arrays that gather every block q of rho^{T_a} from the concatenated dense
    blocks rho_K (K in ``charges``, ravelled, then one zero) in one fancy index each."""
    key = (lay.n_p, lay.n_a, charges)
    if key in _PLANS:
        return _PLANS[key]
    base, off = {}, 0
    for K in charges:
        base[K], off = off, off + lay.block(K).size ** 2
    zero = off
    plan = []
    for q in imbalance_labels(lay):
        offs, pieces = _pt_layout(lay, q)
        pieces = [p for p in pieces if p[2] in base]
        if not pieces:
            continue
        idx = np.full((offs[-1], offs[-1]), zero, dtype=np.int64)
        for r, c, K, ra, rb in pieces:
            nK = lay.block(K).size
            ip = np.arange(ra.n_pc)[:, None, None, None]
            jb = np.arange(rb.n_ac)[None, :, None, None]
            jp = np.arange(rb.n_pc)[None, None, :, None]
            ic = np.arange(ra.n_ac)[None, None, None, :]
            src = base[K] + (ra.offset + ip * ra.n_ac + ic) * nK + (rb.offset + jp * rb.n_ac + jb)
            idx[offs[r]:offs[r + 1], offs[c]:offs[c + 1]] = src.reshape(ra.n_pc * rb.n_ac,
                                                                        rb.n_pc * ra.n_ac)
        plan.append((q, idx))
    _PLANS[key] = plan
    return plan


def _batched_eigvalsh(mats: list[np.ndarray]) -> list[np.ndarray]:
    """Eigenvalues of Hermitian matrices: equal small sizes stacked into one LAPACK
    batch (one thread), large ones one by one with every thread (two-stage solver)."""
    out: list = [None] * len(mats)
    by_size: dict[int, list[int]] = {}
    for i, m in enumerate(mats):
        by_size.setdefault(m.shape[0], []).append(i)
    for n, ids in by_size.items():
        if n < BATCH_MAX:
            with lapack.blas_threads(1):
                w = np.linalg.eigvalsh(np.stack([mats[i] for i in ids]))
            for i, wi in zip(ids, w):
                out[i] = wi
        else:
            with lapack.blas_threads(None):
                for i in ids:
                    out[i] = lapack.eigvalsh(mats[i], overwrite=True, min_two_stage=TWO_STAGE_FROM)
    return out


class MeasurementInterrupted(Exception):
    """The stop flag was raised between two blocks of a measurement (:class:`BlockProgress`)."""


@dataclass
class BlockProgress:
    """Where a long measurement stands, so that a stop flag can interrupt it between
    charge-imbalance blocks and a later call can continue it.

    ``done`` holds the trace norm of every block diagonalised so far (a resumed
    measurement takes them instead of diagonalising again: the same numbers, bit for
    bit); ``stop()`` True makes :meth:`check` raise :class:`MeasurementInterrupted`.
    """

    done: dict[int, float] = field(default_factory=dict)
    stop: Callable[[], bool] | None = None

    def check(self) -> None:
        if self.stop is not None and self.stop():
            raise MeasurementInterrupted


def negativity_fast(rho: BlockDensityMatrix, max_dim: int | None = None,
                    tol: float = NEGLIGIBLE, blocks: BlockProgress | None = None
                    ) -> tuple[float, dict[int, float]]:
    """:func:`negativity` (E_N = ln ||rho^{T_a}||_1, Eq. 2, and every block's trace norm), faster.

    * A block whose certified bounds lo <= ||M_q||_1 <= hi (:func:`trace_norm_bounds`
      from tr M_q and ||M_q||_F) satisfy hi - lo <= 2 tol gets (lo + hi) / 2, within
      ``tol`` of the exact value (tol = 0: every block is diagonalised).
    * Small layers (all rho_K dense and rho^{T_a} below :data:`PLAN_MAX_ELEMENTS`
      elements): every block is gathered by one cached index array, its bounds
      taken from it, and blocks of equal size are diagonalised in one batch.
    * Otherwise the bounds come from the factors without assembling anything
      (:meth:`BlockDensityMatrix.imbalance_moments` and the tighter
      :meth:`BlockDensityMatrix.imbalance_nuclear_bounds`); the other blocks are assembled
      one at a time and diagonalised with the two-stage solver and every BLAS thread.
      With ``blocks``, the stop flag is checked before each of them (the costly part
      of a large measurement: minutes per block for 8+8) and every finished block's
      trace norm is kept in ``blocks.done``; blocks already there are not diagonalised.
    """
    lay = rho.layers
    if max_dim is not None and any(imbalance_block_size(lay, q) > max_dim
                                   for q in imbalance_labels(lay)):
        return float("nan"), {}
    charges = tuple(sorted(rho.factors))
    dense = rho.__dict__.get("_dense", {})
    small = (all(K in dense or rho.is_small(K) for K in charges)
             and sum(imbalance_block_size(lay, q) ** 2 for q in imbalance_labels(lay)) <= PLAN_MAX_ELEMENTS)
    norms: dict[int, float] = {}
    if small:
        # gather every block, bounds from the blocks themselves, batched eigenvalues
        buf = np.concatenate([rho.dense(K).ravel() for K in charges] + [np.zeros(1, complex)])
        mats = []
        for q, idx in _plan(lay, charges):
            m = buf[idx]
            lo, hi = _moment_bounds(float(np.trace(m).real), float(np.vdot(m, m).real), m.shape[0])
            if hi - lo <= 2 * tol:
                norms[q] = 0.5 * (lo + hi)
            else:
                mats.append((q, m))
        for (q, _), w in zip(mats, _batched_eigvalsh([m for _, m in mats])):
            norms[q] = float(np.abs(w).sum())
    else:
        # bounds from the factors (no assembly); blocks assembled one at a time
        nuclear = rho.imbalance_nuclear_bounds() if tol > 0 else {}
        for q, (tr, f2) in rho.imbalance_moments().items():
            lo, hi = _moment_bounds(tr, f2, imbalance_block_size(lay, q))
            hi = max(lo, min(hi, nuclear.get(q, hi)))
            if hi - lo <= 2 * tol:
                norms[q] = 0.5 * (lo + hi)
                continue
            if blocks is not None:
                if q in blocks.done:
                    norms[q] = blocks.done[q]
                    continue
                blocks.check()
            m = partial_transpose_block(rho, q)
            norms[q] = float(np.abs(_batched_eigvalsh([m])[0]).sum())
            del m
            if blocks is not None:
                blocks.done[q] = norms[q]
    norms = {q: norms[q] for q in imbalance_labels(lay) if q in norms}
    total = sum(norms.values())
    return (float(np.log(total)) if total > 0 else 0.0), norms


def entropies_fast(rho: BlockDensityMatrix) -> tuple[float, float, float]:
    """:func:`entropies` (S_p, S_a, S_pa, Eq. 6) from the cached block eigenvalues
    (:meth:`BlockDensityMatrix.eig`) and layer states from dense blocks where cached,
    their eigenvalues in batches of equal size."""
    s_pa = von_neumann(np.concatenate([rho.eig(K)[0] for K in rho.factors] or [np.zeros(0)]))
    dense = rho.__dict__.get("_dense", {})
    lp: dict[int, np.ndarray] = {}
    la: dict[int, np.ndarray] = {}
    for block, f in rho.items():
        K = block.K
        for n, sb in enumerate(block.subblocks):
            if K in dense:
                d = dense[K][sb.slice, sb.slice].reshape(sb.n_pc, sb.n_ac, sb.n_pc, sb.n_ac)
                mp, ma = np.einsum("iaja->ij", d), np.einsum("iaib->ab", d)
            else:
                t = f[sb.slice].reshape(sb.n_pc, sb.n_ac, -1)
                t2 = t.reshape(sb.n_pc, -1)
                mp = t2 @ t2.conj().T
                ma = np.tensordot(t, t.conj(), axes=([0, 2], [0, 2]))
            lp[sb.k_p] = lp[sb.k_p] + mp if sb.k_p in lp else mp
            la[sb.k_a] = la[sb.k_a] + ma if sb.k_a in la else ma
    out = []
    for blocks in (lp, la):
        mats = [0.5 * (m + m.conj().T) for m in blocks.values() if m.size]
        out.append(von_neumann(np.concatenate(_batched_eigvalsh(mats) or [np.zeros(0)])))
    return out[0], out[1], s_pa
