"""Fused compiled passes over a sector state (numba), with the numpy path as reference.

The local state of a rank is ``psi[s, x]`` (spin part major, chain site minor), so
every term of H = H_hop (x) 1 + sum_i P_{x_i} (x) V_i + 1 (x) H_spin streams whole
rows: H_spin (CSR over s) adds multiples of contiguous rows, hopping shifts a
row by one site (halo values from the neighbouring MPI ranks at the ends), and
V_i (a diagonal plus one spin-flip partner per configuration) touches one
column. The Chebyshev variant also forms T_{k+1} = s (H - a) T_k - T_{k-1} in
place of T_{k-1} and accumulates c_k T_{k+1}: one pass per recursion step.

Threads: one per MPI rank by default (``SPINVALVE_THREADS`` overrides); the
parallelism of the engine comes from MPI ranks.
"""

from __future__ import annotations

import os

import numpy as np

try:
    import numba
    from numba import njit, prange
    HAVE_NUMBA = os.environ.get("SPINVALVE_NO_NUMBA", "") == ""
except ImportError:  # pragma: no cover - numba is a declared dependency
    HAVE_NUMBA = False


if HAVE_NUMBA:
    @njit(cache=True)
    def _h_row(cur, r, out, gamma, indptr, indices, data, fm_cols, sd_diag, sd_partner,
               j_flip, lo, hi, has_lo, has_hi):
        """out[:] = (H cur)[r, :]."""
        nx = cur.shape[1]
        for x in range(nx):
            out[x] = 0.0
        for k in range(indptr[r], indptr[r + 1]):
            c, d = indices[k], data[k]
            for x in range(nx):
                out[x] += d * cur[c, x]
        for x in range(1, nx):
            out[x] -= gamma * cur[r, x - 1]
        for x in range(nx - 1):
            out[x] -= gamma * cur[r, x + 1]
        if has_lo:
            out[0] -= gamma * lo[r]
        if has_hi:
            out[nx - 1] -= gamma * hi[r]
        for n in range(fm_cols.shape[0]):
            x = fm_cols[n]
            out[x] += sd_diag[n, r] * cur[r, x]
            p = sd_partner[n, r]
            if p >= 0:
                out[x] += j_flip * cur[p, x]

    @njit(parallel=True, cache=True)
    def apply_fused(cur, out, gamma, indptr, indices, data, fm_cols, sd_diag, sd_partner,
                    j_flip, lo, hi, has_lo, has_hi):
        for r in prange(cur.shape[0]):
            _h_row(cur, r, out[r], gamma, indptr, indices, data, fm_cols, sd_diag, sd_partner,
                   j_flip, lo, hi, has_lo, has_hi)

    @njit(parallel=True, cache=True)
    def chebyshev_fused(cur, prev, acc, ck, a, s, gamma, indptr, indices, data, fm_cols,
                        sd_diag, sd_partner, j_flip, lo, hi, has_lo, has_hi):
        """prev <- s (H - a) cur - prev;  acc += ck * prev  (one pass)."""
        D, nx = cur.shape
        for r in prange(D):
            h = np.empty(nx, dtype=np.complex128)
            _h_row(cur, r, h, gamma, indptr, indices, data, fm_cols, sd_diag, sd_partner,
                   j_flip, lo, hi, has_lo, has_hi)
            for x in range(nx):
                new = s * (h[x] - a * cur[r, x]) - prev[r, x]
                prev[r, x] = new
                acc[r, x] += ck * new


def set_threads(n: int | None = None) -> None:
    """Threads of the compiled kernels (default: SPINVALVE_THREADS or 1)."""
    if HAVE_NUMBA:
        n = n if n is not None else int(os.environ.get("SPINVALVE_THREADS", "1"))
        numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
