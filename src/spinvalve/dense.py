"""Observables of a dense reduced density matrix rho_FM (open systems, small N).

Spin-flipping baths break the conservation of the total localized S^z, so
rho_FM is no longer block diagonal in the charge K and the block functions of
:mod:`spinvalve.entanglement`, :mod:`spinvalve.magnons` and :mod:`spinvalve.qfi`
do not apply. These pure functions take the dense 2^N x 2^N matrix in the bit
basis index c = c_p + 2^n_p c_a (bit i of c set when spin i points up, FM_p
first), as :meth:`spinvalve.reduced.BlockDensityMatrix.to_dense` writes it.
Reshaped C-order, rho[c, d] is R[c_a, c_p, d_a, d_p]. Pauli units throughout.
"""

from __future__ import annotations

import numpy as np

from .entanglement import EIG_FLOOR, hermitian_eigvalsh, von_neumann
from .qfi import fisher


def _dims(n_p: int, n_a: int) -> tuple[int, int]:
    return 1 << n_p, 1 << n_a


def _bits(n: int) -> np.ndarray:
    """u[c, i] = 1 when spin i is up in configuration c (shape (2^n, n))."""
    c = np.arange(1 << n)
    return ((c[:, None] >> np.arange(n)) & 1).astype(np.int64)


def partial_trace(rho: np.ndarray, n_p: int, n_a: int, keep: str) -> np.ndarray:
    """rho_p = Tr_a rho_FM (keep='p') or rho_a = Tr_p rho_FM (keep='a')."""
    dp, da = _dims(n_p, n_a)
    r = rho.reshape(da, dp, da, dp)
    if keep == "p":
        return np.einsum("apaq->pq", r)
    if keep == "a":
        return np.einsum("apbp->ab", r)
    raise ValueError(f"keep must be 'p' or 'a', got {keep!r}")


def partial_transpose(rho: np.ndarray, n_p: int, n_a: int) -> np.ndarray:
    """rho^{T_a}: element (i_p i_a, j_p j_a) of rho moves to (i_p j_a, j_p i_a) (Eq. 3)."""
    dp, da = _dims(n_p, n_a)
    return rho.reshape(da, dp, da, dp).transpose(2, 1, 0, 3).reshape(da * dp, da * dp)


def entropies(rho: np.ndarray, n_p: int, n_a: int,
              spectrum: np.ndarray | None = None) -> tuple[float, float, float]:
    """(S_p, S_a, S_pa), von Neumann entropies in nats (Eq. 6)."""
    if spectrum is None:
        spectrum = hermitian_eigvalsh(rho)
    s_p = von_neumann(hermitian_eigvalsh(partial_trace(rho, n_p, n_a, "p")))
    s_a = von_neumann(hermitian_eigvalsh(partial_trace(rho, n_p, n_a, "a")))
    return s_p, s_a, von_neumann(spectrum)


def log_negativity(rho: np.ndarray, n_p: int, n_a: int) -> float:
    """E_N = ln ||rho^{T_a}||_1 (Eq. 2), by a dense partial transpose."""
    total = float(np.abs(hermitian_eigvalsh(partial_transpose(rho, n_p, n_a))).sum())
    return float(np.log(total)) if total > 0 else 0.0


def log_negativity_stack(rhos: np.ndarray, n_p: int, n_a: int) -> np.ndarray:
    """:func:`log_negativity` (Eq. 2) of a stack rho[..., D, D], batched eigenvalues."""
    dp, da = _dims(n_p, n_a)
    h = 0.5 * (rhos + np.swapaxes(rhos, -1, -2).conj())
    lead = h.shape[:-2]
    nd = len(lead)
    pt = np.swapaxes(h.reshape(lead + (da, dp, da, dp)), nd, nd + 2).reshape(h.shape)
    tn = np.abs(np.linalg.eigvalsh(pt)).sum(axis=-1)
    return np.where(tn > 0, np.log(np.where(tn > 0, tn, 1.0)), 0.0)


def magnon_number(n_p: int, n_a: int) -> np.ndarray:
    """m(c) = spins flipped relative to FM_p all up, FM_a all down (Eq. 25)."""
    u = _bits(n_p + n_a)
    return (n_p - u[:, :n_p].sum(axis=1)) + u[:, n_p:].sum(axis=1)


def magnon_probabilities(rho: np.ndarray, n_p: int, n_a: int) -> np.ndarray:
    """P_m = Tr[P_m rho_FM], m = 0 ... N (Eq. 25)."""
    m = magnon_number(n_p, n_a)
    return np.bincount(m, weights=np.real(np.diagonal(rho)), minlength=n_p + n_a + 1)


def w_state(n_p: int, n_a: int) -> np.ndarray:
    """|W> = N^{-1/2} sum_i |T = 0 configuration with spin i flipped>."""
    N = n_p + n_a
    ref = (1 << n_p) - 1
    v = np.zeros(1 << N, complex)
    if N:
        v[[ref ^ (1 << i) for i in range(N)]] = 1 / np.sqrt(N)
    return v


def w_state_probability(rho: np.ndarray, n_p: int, n_a: int) -> float:
    """P_W = <W|rho_FM|W>."""
    w = w_state(n_p, n_a)
    return float(np.real(w.conj() @ rho @ w))


def spin_expectations(rho: np.ndarray, n: int) -> np.ndarray:
    """<S_i^alpha> (Pauli), shape (N, 3) for alpha = x, y, z.

    Tr(sigma^x_i rho) = sum_c rho[c^i, c]; Tr(sigma^y_i rho) = sum_c Y[c, c^i] rho[c^i, c]
    with Y[c, c^i] = -i if spin i is up in c, +i if down; sigma^z is diagonal.
    """
    c = np.arange(1 << n)
    out = np.zeros((n, 3))
    diag = np.real(np.diagonal(rho))
    for i in range(n):
        flip = c ^ (1 << i)
        up = (c >> i) & 1
        off = rho[flip, c]
        out[i, 0] = off.sum().real
        out[i, 1] = (np.where(up == 1, -1j, 1j) * off).sum().real
        out[i, 2] = ((2 * up - 1) * diag).sum()
    return out


def sz_moments(rho: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(<sigma^z_i>, <sigma^z_i sigma^z_j>) from the diagonal of rho_FM."""
    s = 2.0 * _bits(n) - 1
    p = np.real(np.diagonal(rho))
    return p @ s, (s * p[:, None]).T @ s


def qfi_bound(rho: np.ndarray, n_p: int, n_a: int, positions: np.ndarray, k_values) -> np.ndarray:
    """Eq. 29 with S^z = sigma^z/2: (1/N) sum_ij cos(k (r_i - r_j)) Cov(sigma_i, sigma_j)."""
    N = n_p + n_a
    if N == 0:
        return np.zeros(len(k_values))
    mean, corr = sz_moments(rho, N)
    cov = corr - np.outer(mean, mean)
    dr = positions[:, None] - positions[None, :]
    return np.array([(np.cos(k * dr) * cov).sum() / N for k in k_values])


def qfi_exact(rho: np.ndarray, n_p: int, n_a: int, positions: np.ndarray, k_values,
              eig: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """[F_Q(O_c) + F_Q(O_s)] / N from the eigenpairs of rho_FM (SPEC "Observables")."""
    N = n_p + n_a
    if N == 0:
        return np.zeros(len(k_values))
    p, u = eig if eig is not None else np.linalg.eigh(0.5 * (rho + rho.conj().T))
    s = (2.0 * _bits(N) - 1) / 2
    return np.array([(fisher(p, u, s @ np.cos(k * positions)) + fisher(p, u, s @ np.sin(k * positions))) / N
                     for k in k_values])


def hermiticity_error(rho: np.ndarray) -> float:
    """max |rho - rho^dag|."""
    return float(np.abs(rho - rho.conj().T).max()) if rho.size else 0.0


def electron_spin(rho_e: np.ndarray) -> np.ndarray:
    """<s_e^x>, <s_e^y>, <s_e^z> (Pauli, Eq. 23) of a 2x2 rho_e, index 0 = up."""
    return np.array([2 * rho_e[0, 1].real, -2 * rho_e[0, 1].imag,
                     (rho_e[0, 0] - rho_e[1, 1]).real])


DERIVED = ("entropy_p", "entropy_a", "entropy_pa", "mutual_information", "log_negativity",
           "w_state_probability", "magnon_probability", "qfi_bound", "qfi_exact")


def derived_observables(rho: np.ndarray, n_p: int, n_a: int, positions: np.ndarray,
                        k_values) -> dict[str, np.ndarray | float]:
    """Every nonlinear (derived) observable of rho_FM, keyed as in the job files."""
    h = 0.5 * (rho + rho.conj().T)
    p, u = np.linalg.eigh(h)
    s_p, s_a, s_pa = entropies(h, n_p, n_a, p)
    return {
        "entropy_p": s_p, "entropy_a": s_a, "entropy_pa": s_pa,
        "mutual_information": s_p + s_a - s_pa,
        "log_negativity": log_negativity(h, n_p, n_a),
        "w_state_probability": w_state_probability(h, n_p, n_a),
        "magnon_probability": magnon_probabilities(h, n_p, n_a),
        "qfi_bound": qfi_bound(h, n_p, n_a, positions, k_values),
        "qfi_exact": qfi_exact(h, n_p, n_a, positions, k_values, (p, u)),
    }


def _entropy_stack(p: np.ndarray) -> np.ndarray:
    q = np.where(p > EIG_FLOOR, p, 1.0)
    return -(np.where(p > EIG_FLOOR, p * np.log(q), 0.0)).sum(axis=-1)


def derived_stack(rhos: np.ndarray, n_p: int, n_a: int, positions: np.ndarray,
                  k_values) -> dict[str, np.ndarray]:
    """:func:`derived_observables` of a stack rho[..., D, D] with batched linear algebra.

    The bootstrap evaluates hundreds of replicates per time; batching the
    eigen-decompositions is an order of magnitude faster than a Python loop.
    """
    N = n_p + n_a
    dp, da = _dims(n_p, n_a)
    h = 0.5 * (rhos + np.swapaxes(rhos, -1, -2).conj())
    lead = h.shape[:-2]
    p, u = np.linalg.eigh(h)
    r4 = h.reshape(lead + (da, dp, da, dp))
    rho_p = np.einsum("...apaq->...pq", r4)
    rho_a = np.einsum("...apbp->...ab", r4)
    s_p = _entropy_stack(np.linalg.eigvalsh(rho_p))
    s_a = _entropy_stack(np.linalg.eigvalsh(rho_a))
    s_pa = _entropy_stack(p)
    nd = len(lead)
    pt = np.swapaxes(r4, nd, nd + 2).reshape(h.shape)
    tn = np.abs(np.linalg.eigvalsh(pt)).sum(axis=-1)
    e_n = np.where(tn > 0, np.log(np.where(tn > 0, tn, 1.0)), 0.0)
    w = w_state(n_p, n_a)
    diag = np.real(np.diagonal(h, axis1=-2, axis2=-1))
    m = magnon_number(n_p, n_a)
    onehot = (m[:, None] == np.arange(N + 1)[None, :]).astype(float)
    out = {"entropy_p": s_p, "entropy_a": s_a, "entropy_pa": s_pa,
           "mutual_information": s_p + s_a - s_pa, "log_negativity": e_n,
           "w_state_probability": np.real(np.einsum("i,...ij,j->...", w.conj(), h, w)),
           "magnon_probability": diag @ onehot}
    if N == 0:
        out["qfi_bound"] = np.zeros(lead + (len(k_values),))
        out["qfi_exact"] = np.zeros(lead + (len(k_values),))
        return out
    sz = 2.0 * _bits(N) - 1                                  # (D, N) Pauli
    mean = diag @ sz
    corr = (diag[..., :, None] * sz).reshape(lead + sz.shape)
    corr = np.swapaxes(corr, -1, -2) @ sz
    cov = corr - mean[..., :, None] * mean[..., None, :]
    dr = positions[:, None] - positions[None, :]
    out["qfi_bound"] = np.stack([(np.cos(k * dr) * cov).sum(axis=(-1, -2)) / N for k in k_values], axis=-1)
    ps = p[..., :, None] + p[..., None, :]
    pd = (p[..., :, None] - p[..., None, :]) ** 2
    wgt = np.where(ps > 1e-14, pd / np.where(ps > 1e-14, ps, 1.0), 0.0)
    # F = 2 sum_ij w_ij (|<i|O_c|j>|^2 + |<i|O_s|j>|^2) with O_c, O_s the cos and sin parts
    # (diagonal, real). w is symmetric, so this equals 2 sum_ij w_ij |<i|O_c + i O_s|j>|^2:
    # one matrix product per k instead of two.
    uh = np.swapaxes(u.conj(), -1, -2)
    exact = []
    for k in k_values:
        o = (sz / 2) @ np.exp(1j * k * positions)
        ob = uh @ (o[:, None] * u)
        exact.append(2 * (wgt * (ob.real ** 2 + ob.imag ** 2)).sum(axis=(-1, -2)) / N)
    out["qfi_exact"] = np.stack(exact, axis=-1)
    return out


__all__ = ["derived_stack", "partial_trace", "partial_transpose", "entropies", "log_negativity", "magnon_number",
           "magnon_probabilities", "w_state", "w_state_probability", "spin_expectations",
           "sz_moments", "qfi_bound", "qfi_exact", "hermiticity_error", "electron_spin",
           "derived_observables", "DERIVED", "EIG_FLOOR"]
