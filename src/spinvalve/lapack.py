"""Eigenvalues of large Hermitian matrices by LAPACK's two-stage tridiagonal reduction.

The trace norm of a partially transposed block of rho_FM needs all eigenvalues of
a dense Hermitian matrix (12870 x 12870 for 8+8 spins). ``numpy.linalg.eigvalsh``
(LAPACK zheevd) reduces it to tridiagonal form with memory-bound level-2 BLAS;
the two-stage reduction of LAPACK >= 3.7 (``zheevd_2stage``, eigenvalues only)
goes through a band matrix with level-3 BLAS and is several times faster on
large matrices (benchmarks/negativity_8p8.py measures the ratio).

The routine is called through LAPACKE from the OpenBLAS that ships with numpy
(ILP64 symbols ``*64_``) or from a system ``liblapacke``; where neither is found,
:func:`eigvalsh` falls back to numpy. A Hermitian matrix stored in C order and
read as column-major is its complex conjugate, which has the same eigenvalues,
so the matrix is passed without a transposed copy.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import glob
import os

import numpy as np

#: Below this size numpy's one-stage routine is as fast.
TWO_STAGE_MIN = 1024
_COL_MAJOR = 102


def _load():
    """(function, integer type) of LAPACKE_zheevd_2stage, or None."""
    cands = []
    libdir = os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libdir, "libopenblas64*.so*"))):
        cands.append((path, "LAPACKE_zheevd_2stage64_", ctypes.c_int64))
    for path in sorted(glob.glob(os.path.join(libdir, "libopenblas*.so*"))):
        cands.append((path, "LAPACKE_zheevd_2stage", ctypes.c_int32))
    for name in ("lapacke", "openblas"):
        found = ctypes.util.find_library(name)
        if found:
            cands.append((found, "LAPACKE_zheevd_2stage", ctypes.c_int32))
    for path, symbol, itype in cands:
        try:
            fn = getattr(ctypes.CDLL(path), symbol)
        except (OSError, AttributeError):
            continue
        fn.restype = itype
        fn.argtypes = [ctypes.c_int, ctypes.c_char, ctypes.c_char, itype, ctypes.c_void_p, itype,
                       ctypes.c_void_p]
        return fn
    return None


_ZHEEVD_2STAGE = _load()


_CONTROLLER = []
_LIMITS: list[int] = []   # the limits of the blas_threads contexts entered, innermost last


@contextlib.contextmanager
def blas_threads(n: int | None):
    """Context: at most ``n`` BLAS/LAPACK threads (None: the configured default, e.g.
    OPENBLAS_NUM_THREADS). The controller is built once (a fresh one rescans the
    loaded libraries, about 2 ms), and a context that asks for the limit already
    in force costs nothing (threadpoolctl's own is 0.1 ms)."""
    n = n if n is not None else _default_threads()
    if _LIMITS and _LIMITS[-1] == n:
        yield
        return
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController
        _CONTROLLER.append(ThreadpoolController())
    _LIMITS.append(n)
    try:
        with _CONTROLLER[0].limit(limits=n, user_api="blas"):
            yield
    finally:
        _LIMITS.pop()


def limit_blas_threads(n: int) -> bool:
    """At most ``n`` BLAS threads in this process from now on (where the ranks are the
    parallelism), unless OPENBLAS_NUM_THREADS / OMP_NUM_THREADS set a limit explicitly;
    whether a limit is in force. The one thread limiter of the package, with
    :func:`blas_threads` for a context."""
    if any(os.environ.get(k, "").isdigit() for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")):
        return True
    from threadpoolctl import ThreadpoolController
    _CONTROLLER[:] = [ThreadpoolController()]   # a fresh scan: every BLAS loaded by now
    blas = _CONTROLLER[0].select(user_api="blas")
    blas.limit(limits=n)   # kept: the returned context is not exited
    return bool(blas.lib_controllers)


def _default_threads() -> int:
    """Threads the BLAS was started with (its environment variables, else every core)."""
    for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        v = os.environ.get(k, "")
        if v.isdigit() and int(v) > 0:
            return int(v)
    return os.cpu_count() or 1


def have_two_stage() -> bool:
    return _ZHEEVD_2STAGE is not None


def eigvalsh(a: np.ndarray, overwrite: bool = False, min_two_stage: int | None = None) -> np.ndarray:
    """Ascending eigenvalues of the Hermitian matrix ``a`` (its lower triangle is read).

    With ``overwrite`` the contents of ``a`` are destroyed (no copy is made when
    ``a`` is a C-contiguous complex128 array). Matrices smaller than
    ``min_two_stage`` (default :data:`TWO_STAGE_MIN`) go to numpy.
    """
    n = a.shape[0]
    if n < (TWO_STAGE_MIN if min_two_stage is None else min_two_stage) or _ZHEEVD_2STAGE is None:
        return np.linalg.eigvalsh(a)
    work = a if (overwrite and a.dtype == np.complex128 and a.flags.c_contiguous) \
        else np.array(a, dtype=np.complex128, order="C")
    w = np.empty(n)
    # C-order lower triangle = column-major upper triangle of conj(a): same eigenvalues
    info = _ZHEEVD_2STAGE(_COL_MAJOR, b"N", b"U", n, work.ctypes.data, n, w.ctypes.data)
    if info != 0:
        raise np.linalg.LinAlgError(f"zheevd_2stage failed (info = {info})")
    return w
