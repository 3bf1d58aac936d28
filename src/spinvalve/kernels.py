"""Fused compiled passes over a sector state (numba), with the numpy path as reference.

The local state of a rank is ``psi[s, x]`` (spin part major, chain site minor), so
every term of H = H_hop (x) 1 + sum_i P_{x_i} (x) V_i + 1 (x) H_spin streams whole
rows: H_spin (CSR over s) adds multiples of contiguous rows, hopping shifts a
row by one site (halo values from the neighbouring MPI ranks at the ends), and
V_i (a diagonal plus one spin-flip partner per configuration) touches one
column. The Chebyshev variant also forms T_{k+1} = s (H - a) T_k - T_{k-1} in
place of T_{k-1} and accumulates c_k T_{k+1}: one pass per recursion step.

Every coefficient of H is real, so the kernels work on the float64 view of the
complex rows (re, im interleaved): H acts on both halves alike, and each term
is a plain multiply-add over 2 L contiguous floats that the compiler turns into
SIMD instructions (``fastmath``). Only the accumulation ``acc += c_k T_{k+1}``
needs complex arithmetic, and the optional complex spin term K of open systems
(H_eff = H - (i/2) Gamma_tot, :meth:`HamiltonianShell.add_spin_term`): its real
part is a multiply-add like H's terms, its imaginary part is accumulated in a
scratch row and added as i times it in one swap pass. Row passes with and
without K are separate functions (with the K call present the compiler slowed
the closed-system pass by about 7% even for an empty K).

Zero rows: a configuration that the evolution has not reached (or whose
amplitudes underflowed) has an exactly zero row. Each pass first marks the
rows of ``cur`` with a nonzero entry (the scan stops at the first one, so it
costs one cache line per live row) and skips every output row whose inputs are
all zero. The Chebyshev pass also sets entries of T_{k+1} below ``TINY``
(1e-100) to zero: without it the recursion vectors fill every row with
amplitudes of 1e-300 or less (which underflow to zero in the state itself) and
nothing could be skipped.

Threads: one per MPI rank by default (``SPINVALVE_THREADS`` overrides); the
parallelism of the engine comes from MPI ranks. With one thread the serial
kernels run (no thread-pool launch per call), otherwise the ``prange`` ones.

Subnormal floats: amplitudes of configurations many flips away from the initial
one underflow into subnormal numbers, on which x86 arithmetic is many times
slower. :func:`flush_denormals` sets the flush-to-zero and denormals-are-zero
bits of the calling thread's MXCSR (glibc ``fesetenv``); ``SPINVALVE_FTZ=1``
makes :func:`set_threads` (called by every shell) switch it on. The change of
any amplitude is below 2.2e-308. It is off by default: on the 10+10 run no
subnormal amplitude appeared in the first steps and the time per step did not
change (benchmarks/README.md), and the mode would apply to all of the
process's floating-point code.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

import numpy as np

try:
    import numba
    from numba import njit, prange
    HAVE_NUMBA = os.environ.get("SPINVALVE_NO_NUMBA", "") == ""
except ImportError:  # pragma: no cover - numba is a declared dependency
    HAVE_NUMBA = False

_THREADS = 1
# Recursion vectors T_k((H - a)/b) psi of a normalised psi have norm <= 1; their
# entries below TINY are set to zero, so that rows the state has (physically)
# not reached stay exactly zero and are skipped. The change per term is below
# TINY * sqrt(size), far under any propagation tolerance.
TINY = 1e-100


if HAVE_NUMBA:
    _jit = dict(cache=True, fastmath=True, boundscheck=False)

    @njit(cache=True)
    def _initialise_numba(x):
        """The first call of any compiled function in a process sets up numba's
        code generator (0.1-0.3 s); the shells make it at set-up (:func:`set_threads`)."""
        return x

    @njit(**_jit)
    def _h_row(cf, r, h, s, sa, gamma, indptr, indices, data, fm_cols, sd_diag, sd_partner,
               j_flip, lo, hi, has_lo, has_hi):
        """h[:] = s (H - a) cur [r, :] on float views (re, im interleaved), sa = s a."""
        n2 = cf.shape[1]
        row = cf[r]
        g = s * gamma
        for x in range(n2):
            h[x] = -sa * row[x]
        for k in range(indptr[r], indptr[r + 1]):
            d = s * data[k]
            other = cf[indices[k]]
            for x in range(n2):
                h[x] += d * other[x]
        for x in range(2, n2):
            h[x] -= g * row[x - 2]
        for x in range(n2 - 2):
            h[x] -= g * row[x + 2]
        if has_lo:
            h[0] -= g * lo[r].real
            h[1] -= g * lo[r].imag
        if has_hi:
            h[n2 - 2] -= g * hi[r].real
            h[n2 - 1] -= g * hi[r].imag
        sj = s * j_flip
        for n in range(fm_cols.shape[0]):
            x = 2 * fm_cols[n]
            dd = s * sd_diag[n, r]
            h[x] += dd * row[x]
            h[x + 1] += dd * row[x + 1]
            p = sd_partner[n, r]
            if p >= 0:
                h[x] += sj * cf[p, x]
                h[x + 1] += sj * cf[p, x + 1]

    @njit(**_jit)
    def _k_row(cf, r, h, t, s, kptr, kidx, kre, kim):
        """h[:] += s (K cur)[r, :] for the complex spin term K (open systems).

        Re K as a real multiply-add; Im K accumulated in the scratch row t, then
        h += i t in one swap pass."""
        n2 = cf.shape[1]
        for x in range(n2):
            t[x] = 0.0
        for k in range(kptr[r], kptr[r + 1]):
            cre, cim = s * kre[k], s * kim[k]
            other = cf[kidx[k]]
            for x in range(n2):
                h[x] += cre * other[x]
                t[x] += cim * other[x]
        for x in range(0, n2, 2):
            h[x] -= t[x + 1]
            h[x + 1] += t[x]

    @njit(**_jit)
    def _row_is_zero(f, r):
        row = f[r]
        for x in range(row.shape[0]):
            if row[x] != 0.0:
                return False
        return True

    @njit(**_jit)
    def _live_rows(cf):
        """live[r]: row r of the state has a nonzero amplitude (exits at the first one)."""
        live = np.empty(cf.shape[0], dtype=np.bool_)
        for r in range(cf.shape[0]):
            live[r] = not _row_is_zero(cf, r)
        return live

    @njit(**_jit)
    def _h_row_is_zero(r, live, indptr, indices, sd_partner, kptr, kidx, lo, hi, has_lo, has_hi):
        """Whether (H cur)[r] vanishes because every row it reads is exactly zero."""
        if live[r]:
            return False
        for k in range(indptr[r], indptr[r + 1]):
            if live[indices[k]]:
                return False
        for k in range(kptr[r], kptr[r + 1]):
            if live[kidx[k]]:
                return False
        for n in range(sd_partner.shape[0]):
            p = sd_partner[n, r]
            if p >= 0 and live[p]:
                return False
        if has_lo and lo[r] != 0:
            return False
        if has_hi and hi[r] != 0:
            return False
        return True

    @njit(**_jit)
    def _cheb_zero_row(pf, of, r, h):
        """A row whose H-part vanishes: True if out[r] is final (prev[r] = 0 too)."""
        if _row_is_zero(pf, r):
            orow = of[r]
            for x in range(orow.shape[0]):  # no-op when out is prev
                orow[x] = 0.0
            return True
        for x in range(h.shape[0]):
            h[x] = 0.0
        return False

    @njit(**_jit)
    def _cheb_store(h, pr, orow, ar, cr, ci, accumulate):
        """out = h - prev (entries below TINY set to zero); acc += ck out.

        With ``accumulate`` in place (out is prev): the closed-system pass."""
        if accumulate:
            for x in range(0, h.shape[0], 2):
                re = h[x] - pr[x]
                im = h[x + 1] - pr[x + 1]
                if abs(re) < TINY:
                    re = 0.0
                if abs(im) < TINY:
                    im = 0.0
                pr[x] = re
                pr[x + 1] = im
                ar[x] += cr * re - ci * im
                ar[x + 1] += cr * im + ci * re
        else:
            for x in range(h.shape[0]):
                v = h[x] - pr[x]
                orow[x] = 0.0 if abs(v) < TINY else v

    @njit(**_jit)
    def _cheb_row(cf, pf, of, af, r, h, t, live, cr, ci, accumulate, s, sa, gamma, indptr, indices,
                  data, fm_cols, sd_diag, sd_partner, j_flip, kptr, kidx, kre, kim, lo, hi,
                  has_lo, has_hi):
        """out[r] = s (H - a) cur[r] - prev[r]; with ``accumulate`` in place (out is prev)
        and acc[r] += ck out[r]. H alone: kept free of the spin-term call, which costs
        the closed-system pass about 7% even when K is empty (compiler inlining)."""
        if _h_row_is_zero(r, live, indptr, indices, sd_partner, kptr, kidx, lo, hi, has_lo, has_hi):
            if _cheb_zero_row(pf, of, r, h):
                return
        else:
            _h_row(cf, r, h, s, sa, gamma, indptr, indices, data, fm_cols, sd_diag, sd_partner,
                   j_flip, lo, hi, has_lo, has_hi)
        _cheb_store(h, pf[r], of[r], af[r], cr, ci, accumulate)

    @njit(**_jit)
    def _cheb_row_k(cf, pf, of, af, r, h, t, live, cr, ci, accumulate, s, sa, gamma, indptr,
                    indices, data, fm_cols, sd_diag, sd_partner, j_flip, kptr, kidx, kre, kim, lo,
                    hi, has_lo, has_hi):
        """:func:`_cheb_row` for H + 1 (x) K (open systems)."""
        if _h_row_is_zero(r, live, indptr, indices, sd_partner, kptr, kidx, lo, hi, has_lo, has_hi):
            if _cheb_zero_row(pf, of, r, h):
                return
        else:
            _h_row(cf, r, h, s, sa, gamma, indptr, indices, data, fm_cols, sd_diag, sd_partner,
                   j_flip, lo, hi, has_lo, has_hi)
            _k_row(cf, r, h, t, s, kptr, kidx, kre, kim)
        _cheb_store(h, pf[r], of[r], af[r], cr, ci, accumulate)

    @njit(**_jit)
    def _apply_row(cf, of, r, t, live, gamma, indptr, indices, data, fm_cols, sd_diag, sd_partner,
                   j_flip, kptr, kidx, kre, kim, lo, hi, has_lo, has_hi):
        if _h_row_is_zero(r, live, indptr, indices, sd_partner, kptr, kidx, lo, hi, has_lo, has_hi):
            o = of[r]
            for x in range(o.shape[0]):
                o[x] = 0.0
        else:
            _h_row(cf, r, of[r], 1.0, 0.0, gamma, indptr, indices, data, fm_cols, sd_diag,
                   sd_partner, j_flip, lo, hi, has_lo, has_hi)
            if kptr[r + 1] > kptr[r]:
                _k_row(cf, r, of[r], t, 1.0, kptr, kidx, kre, kim)

    @njit(**_jit)
    def _apply_serial(cur, out, gamma, indptr, indices, data, fm_cols, sd_diag, sd_partner,
                      j_flip, kptr, kidx, kre, kim, lo, hi, has_lo, has_hi):
        cf, of = cur.view(np.float64), out.view(np.float64)
        t = np.empty(cf.shape[1])
        live = _live_rows(cf)
        for r in range(cf.shape[0]):
            _apply_row(cf, of, r, t, live, gamma, indptr, indices, data, fm_cols, sd_diag,
                       sd_partner, j_flip, kptr, kidx, kre, kim, lo, hi, has_lo, has_hi)

    @njit(parallel=True, **_jit)
    def _apply_parallel(cur, out, gamma, indptr, indices, data, fm_cols, sd_diag, sd_partner,
                        j_flip, kptr, kidx, kre, kim, lo, hi, has_lo, has_hi):
        cf, of = cur.view(np.float64), out.view(np.float64)
        live = np.empty(cf.shape[0], dtype=np.bool_)
        for r in prange(cf.shape[0]):
            live[r] = not _row_is_zero(cf, r)
        for r in prange(cf.shape[0]):
            t = np.empty(cf.shape[1])
            _apply_row(cf, of, r, t, live, gamma, indptr, indices, data, fm_cols, sd_diag,
                       sd_partner, j_flip, kptr, kidx, kre, kim, lo, hi, has_lo, has_hi)

    @njit(**_jit)
    def _cheb_serial(cur, prev, out, acc, ck, accumulate, a, s, gamma, indptr, indices, data,
                     fm_cols, sd_diag, sd_partner, j_flip, kptr, kidx, kre, kim, lo, hi, has_lo,
                     has_hi):
        cf, pf = cur.view(np.float64), prev.view(np.float64)
        of, af = out.view(np.float64), acc.view(np.float64)
        h, t = np.empty(cf.shape[1]), np.empty(cf.shape[1])
        live = _live_rows(cf)
        if kidx.shape[0]:
            for r in range(cf.shape[0]):
                _cheb_row_k(cf, pf, of, af, r, h, t, live, ck.real, ck.imag, accumulate, s, s * a,
                            gamma, indptr, indices, data, fm_cols, sd_diag, sd_partner, j_flip,
                            kptr, kidx, kre, kim, lo, hi, has_lo, has_hi)
            return
        for r in range(cf.shape[0]):
            _cheb_row(cf, pf, of, af, r, h, t, live, ck.real, ck.imag, accumulate, s, s * a, gamma,
                      indptr, indices, data, fm_cols, sd_diag, sd_partner, j_flip, kptr, kidx,
                      kre, kim, lo, hi, has_lo, has_hi)

    @njit(parallel=True, **_jit)
    def _cheb_parallel(cur, prev, out, acc, ck, accumulate, a, s, gamma, indptr, indices, data,
                       fm_cols, sd_diag, sd_partner, j_flip, kptr, kidx, kre, kim, lo, hi, has_lo,
                       has_hi):
        cf, pf = cur.view(np.float64), prev.view(np.float64)
        of, af = out.view(np.float64), acc.view(np.float64)
        live = np.empty(cf.shape[0], dtype=np.bool_)
        for r in prange(cf.shape[0]):
            live[r] = not _row_is_zero(cf, r)
        with_k = kidx.shape[0] > 0
        for r in prange(cf.shape[0]):
            h, t = np.empty(cf.shape[1]), np.empty(cf.shape[1])
            if with_k:
                _cheb_row_k(cf, pf, of, af, r, h, t, live, ck.real, ck.imag, accumulate, s, s * a,
                            gamma, indptr, indices, data, fm_cols, sd_diag, sd_partner, j_flip,
                            kptr, kidx, kre, kim, lo, hi, has_lo, has_hi)
                continue
            _cheb_row(cf, pf, of, af, r, h, t, live, ck.real, ck.imag, accumulate, s, s * a, gamma,
                      indptr, indices, data, fm_cols, sd_diag, sd_partner, j_flip, kptr, kidx,
                      kre, kim, lo, hi, has_lo, has_hi)


def apply_fused(cur, out, gamma, indptr, indices, data, fm_cols, sd_diag, sd_partner,
                j_flip, kptr, kidx, kre, kim, lo, hi, has_lo, has_hi):
    """out = H cur, one compiled pass (cur, out: C-contiguous complex128 [s, x])."""
    kern = _apply_serial if _THREADS == 1 else _apply_parallel
    kern(cur, out, gamma, indptr, indices, data, fm_cols, sd_diag, sd_partner, j_flip,
         kptr, kidx, kre, kim, lo, hi, has_lo, has_hi)


def chebyshev_fused(cur, prev, out, acc, ck, a, s, gamma, indptr, indices, data, fm_cols,
                    sd_diag, sd_partner, j_flip, kptr, kidx, kre, kim, lo, hi, has_lo, has_hi):
    """out <- s (H - a) cur - prev;  acc += ck * out unless acc is None (one pass).

    With an accumulation the update is in place (out must be prev): the closed-system
    recursion, whose inner loop then touches two arrays only."""
    kern = _cheb_serial if _THREADS == 1 else _cheb_parallel
    accumulate = acc is not None
    if accumulate and out is not prev:
        raise ValueError("chebyshev_fused: accumulating into acc needs out = prev (in place)")
    kern(cur, prev, out, acc if accumulate else out, complex(ck), accumulate, float(a), float(s),
         gamma, indptr, indices, data, fm_cols, sd_diag, sd_partner, j_flip, kptr, kidx, kre, kim,
         lo, hi, has_lo, has_hi)


def set_threads(n: int | None = None) -> None:
    """Threads of the compiled kernels (default: SPINVALVE_THREADS or 1); initialises
    numba's code generator (once per process).

    Also sets flush-to-zero for the calling thread when ``SPINVALVE_FTZ=1``.
    """
    global _THREADS
    if HAVE_NUMBA:
        n = n if n is not None else int(os.environ.get("SPINVALVE_THREADS", "1"))
        _THREADS = max(1, min(n, numba.config.NUMBA_NUM_THREADS))
        numba.set_num_threads(_THREADS)
        _initialise_numba(0)
    if os.environ.get("SPINVALVE_FTZ", "0") == "1":
        flush_denormals(True)


class _FEnv(ctypes.Structure):
    """glibc's x86-64 fenv_t: the x87 environment, then the SSE control word MXCSR."""
    _fields_ = [("x87", ctypes.c_uint16 * 14), ("mxcsr", ctypes.c_uint32)]


_FTZ_DAZ = 0x8040  # MXCSR bits: flush to zero (15), denormals are zero (6)


def flush_denormals(enable: bool = True) -> bool:
    """Set (or clear) FTZ/DAZ in this thread's MXCSR; False where unsupported."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return False
    try:
        libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
        env = _FEnv()
        if libm.fegetenv(ctypes.byref(env)) != 0:
            return False
        env.mxcsr = (env.mxcsr | _FTZ_DAZ) if enable else (env.mxcsr & ~_FTZ_DAZ)
        return libm.fesetenv(ctypes.byref(env)) == 0
    except (OSError, AttributeError):  # pragma: no cover - non-glibc platforms
        return False


def denormals_flushed() -> bool:
    """Whether FTZ and DAZ are set in this thread's MXCSR."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return False
    try:
        libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
        env = _FEnv()
        libm.fegetenv(ctypes.byref(env))
        return (env.mxcsr & _FTZ_DAZ) == _FTZ_DAZ
    except (OSError, AttributeError):  # pragma: no cover
        return False


_M_MMAP_MAX = -4  # glibc mallopt parameter


def allow_mmap_malloc() -> bool:
    """Let glibc serve large allocations by mmap again; False where unsupported.

    PETSc's initialisation sets M_MMAP_MAX = 0, so afterwards every numpy array
    comes from the heap and a freed state-sized array (rho_FM factors, work
    vectors of the measurement: GBs for 10+10) stays resident for the rest of
    the run. Called after PETSc is imported.
    """
    if platform.system() != "Linux":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_MAX, 65536))
    except (OSError, AttributeError):  # pragma: no cover - non-glibc platforms
        return False
