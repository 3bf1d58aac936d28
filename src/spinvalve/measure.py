"""Every observable of rho_FM at one output time (SPEC "Observables"), in one call.

:func:`derived` computes the entropies and mutual information (Eqs. 5-6), the
mutual logarithmic negativity and its charge-imbalance blocks (Eq. 2), the
magnon-sector and W-state probabilities (Eq. 25), the QFI bound and exact value
(Eq. 29), <sigma^z_i>, the trace, the hermiticity error and the number of
reachable configurations. ``reference=True`` runs the original block functions
one by one (:func:`spinvalve.entanglement.entropies`, :func:`~spinvalve.entanglement.negativity`,
:func:`~spinvalve.qfi.qfi_exact`, ...), the tested reference of the default fast
path, which shares one eigen-decomposition per charge block between the
entropies and the QFI (the r x r Gram side where the factor is narrow), batches
small blocks of equal size, gathers small partial-transpose blocks by cached
index arrays, skips the eigenvalues of charge-imbalance blocks whose certified
trace-norm bounds (Frobenius and Kronecker/nuclear-norm bounds from the
factors) agree to 2 x :data:`spinvalve.entanglement.NEGLIGIBLE` (the midpoint
is then within NEGLIGIBLE of the exact trace norm), and gives large eigenvalue
problems every BLAS thread. Both paths agree to 1e-10 (tests/test_measure.py).
"""

from __future__ import annotations

import contextlib

import numpy as np

from . import lapack
from .entanglement import (BlockProgress, MeasurementInterrupted, entropies, entropies_fast,
                           negativity, negativity_fast)
from .magnons import magnon_probabilities, reachable_configurations, w_state_probability
from .qfi import qfi_bound, qfi_exact, qfi_exact_fast, sz_moments
from .reduced import BlockDensityMatrix

__all__ = ["derived", "BlockProgress", "MeasurementInterrupted", "THREADED_MIN"]

#: The fast path runs with one BLAS thread when no charge block reaches this size.
THREADED_MIN = 1000


def derived(rho: BlockDensityMatrix, positions: np.ndarray, k_values, *, negativity_max_dim: int,
            qfi_exact_max_dim: int, with_negativity: bool = True, reference: bool = False,
            blocks: BlockProgress | None = None) -> dict:
    """Observables of rho_FM: entropy_p/_a/_pa, mutual_information, log_negativity,
    negativity_by_imbalance, magnon_probability, w_state_probability, qfi_bound,
    qfi_exact, sz (<sigma^z_i>, Pauli units), trace_rho, hermiticity_error, reachable.

    ``blocks`` (fast path): checked for the stop flag before the measurement and before
    every large charge-imbalance block of the negativity, which raises
    :class:`~spinvalve.entanglement.MeasurementInterrupted`; the blocks finished so far
    stay in ``blocks.done`` and a call with the same ``blocks`` continues from them.
    """
    if blocks is not None:
        blocks.check()
    if reference:
        small = max((min(f.shape) for f in rho.factors.values()), default=0) < 1000
        with lapack.blas_threads(1) if small else contextlib.nullcontext():
            return _derived(rho, positions, k_values, negativity_max_dim, qfi_exact_max_dim,
                            with_negativity, entropies, negativity, qfi_exact)
    big = max((f.shape[0] for f in rho.factors.values()), default=0) >= THREADED_MIN
    rho.diagonals()  # cached: magnons, moments and the QFI bound read it
    neg = negativity_fast if blocks is None else (
        lambda r, max_dim: negativity_fast(r, max_dim, blocks=blocks))
    with contextlib.nullcontext() if big else lapack.blas_threads(1):
        return _derived(rho, positions, k_values, negativity_max_dim, qfi_exact_max_dim,
                        with_negativity, entropies_fast, neg, qfi_exact_fast)


def _derived(rho, positions, k_values, neg_max, qfi_max, with_negativity, ent, neg, qfi) -> dict:
    N = rho.layers.n_spins
    n_k = len(k_values)
    s_p, s_a, s_pa = ent(rho)
    e_n, by_q = neg(rho, neg_max) if with_negativity else (float("nan"), {})
    return {
        "entropy_p": s_p, "entropy_a": s_a, "entropy_pa": s_pa,
        "mutual_information": s_p + s_a - s_pa,
        "log_negativity": e_n,
        "negativity_by_imbalance": by_q,
        "magnon_probability": magnon_probabilities(rho),
        "w_state_probability": w_state_probability(rho),
        "qfi_bound": qfi_bound(rho, positions, k_values) if N else np.zeros(n_k),
        "qfi_exact": qfi(rho, positions, k_values, qfi_max) if N else np.zeros(n_k),
        "sz": sz_moments(rho)[0] if N else np.zeros(0),
        "trace_rho": rho.trace,
        "hermiticity_error": rho.hermiticity_error,
        "reachable": reachable_configurations(rho),
    }
