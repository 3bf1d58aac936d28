"""Quantum Fisher information density of the localized spins (Eq. 29, SPEC "Observables").

Spin-1/2 operators S^z = sigma^z / 2 and positions r_i = chain site of spin i:

* bound:  f_Q(k) = (4/N) sum_ij cos(k (r_i - r_j)) (<S^z_i S^z_j> - <S^z_i><S^z_j>)
          = (4/N) [Var(O_c) + Var(O_s)],  O_c/s = sum_i cos/sin(k r_i) S^z_i;
* exact:  f_Q^exact(k) = [F_Q(O_c) + F_Q(O_s)] / N,
          F_Q(O) = 2 sum_ab (p_a - p_b)^2 / (p_a + p_b) |<a|O|b>|^2  (eigenpairs of rho_FM).

Both O_c and O_s are diagonal in the configuration basis, so they never couple
blocks of rho_FM and F_Q is a sum over blocks. For a pure state both coincide.
"""

from __future__ import annotations

import numpy as np

from .reduced import BlockDensityMatrix

PAIR_FLOOR = 1e-14


def sz_moments(rho: BlockDensityMatrix) -> tuple[np.ndarray, np.ndarray]:
    """(<sigma^z_i>, <sigma^z_i sigma^z_j>) from the diagonal of rho_FM (Pauli units)."""
    N = rho.layers.n_spins
    mean, corr = np.zeros(N), np.zeros((N, N))
    for block, p in rho.diagonal():
        s = block.spins.astype(float)
        mean += p @ s
        corr += (s * p[:, None]).T @ s
    return mean, corr


def qfi_bound(rho: BlockDensityMatrix, positions: np.ndarray, k_values) -> np.ndarray:
    """Eq. 29 with S^z = sigma^z/2: (1/N) sum_ij cos(k (r_i - r_j)) Cov(sigma_i, sigma_j)."""
    N = rho.layers.n_spins
    mean, corr = sz_moments(rho)
    cov = corr - np.outer(mean, mean)
    dr = positions[:, None] - positions[None, :]
    return np.array([(np.cos(k * dr) * cov).sum() / N for k in k_values])


def fisher(p: np.ndarray, u: np.ndarray, o_diag: np.ndarray) -> float:
    """F_Q(O) for rho = u diag(p) u^dag (u may be thin: the range of rho) and O = diag(o_diag).

    Pairs inside the range: 2 sum_ab (p_a - p_b)^2/(p_a + p_b) |O_ab|^2. Pairs with a
    null vector b contribute 2 * 2 p_a |O_ab|^2 summed over the null space, which is
    4 sum_a p_a (<a|O^2|a> - sum_{b in range} |O_ab|^2), so the null space is never formed.
    """
    p = np.clip(p, 0.0, None)
    ou = o_diag[:, None] * u
    o = u.conj().T @ ou
    ps = p[:, None] + p[None, :]
    pd = (p[:, None] - p[None, :]) ** 2
    mask = ps > PAIR_FLOOR
    inner = 2 * (pd[mask] / ps[mask] * np.abs(o[mask]) ** 2).sum()
    o2 = np.einsum("ca,ca->a", ou.conj(), ou).real  # <a|O^2|a>
    null = 4 * (p * (o2 - (np.abs(o) ** 2).sum(axis=0))).sum()
    return float(inner + max(null, 0.0))


def qfi_exact(rho: BlockDensityMatrix, positions: np.ndarray, k_values,
              max_dim: int = 1 << 30) -> np.ndarray:
    """[F_Q(O_c) + F_Q(O_s)] / N from the (thin) block eigen-decompositions of rho_FM.

    NaN where a block's range is larger than ``max_dim`` (too costly to diagonalise).
    """
    N = rho.layers.n_spins
    if any(min(f.shape) > max_dim for f in rho.factors.values()):
        return np.full(len(k_values), np.nan)
    out = np.zeros(len(k_values))
    for block, _ in rho.items():
        p, u = rho.eigh(block.K)
        s = block.spins.astype(float) / 2
        for n, k in enumerate(k_values):
            out[n] += fisher(p, u, s @ np.cos(k * positions)) + fisher(p, u, s @ np.sin(k * positions))
    return out / N


# -- fast path (the functions above are its tested reference) ------------------------

def fisher_many(p: np.ndarray, u: np.ndarray, o_diags: np.ndarray) -> np.ndarray:
    """:func:`fisher` for several diagonal operators at once, o_diags[c, j] = <c|O_j|c>.

    The same formula, F_Q(O_j) = 2 sum_ab (p_a - p_b)^2/(p_a + p_b) |(O_j)_ab|^2
    + 4 sum_a p_a (<a|O_j^2|a> - sum_b |(O_j)_ab|^2) over the (thin) range u, with
    the matrices (O_j)_ab = u^dag diag(o_j) u made in one batched product.
    """
    p = np.clip(p, 0.0, None)
    ps = p[:, None] + p[None, :]
    pd = (p[:, None] - p[None, :]) ** 2
    mask = ps > PAIR_FLOOR
    weight = np.zeros_like(ps)
    weight[mask] = 2 * pd[mask] / ps[mask]
    n_ops = o_diags.shape[1]
    chunk = max(1, (1 << 24) // max(u.size, 1))           # operators per batch (memory)
    out = np.empty(n_ops)
    uh = np.ascontiguousarray(u.conj().T)[None]
    for j0 in range(0, n_ops, chunk):
        ou = o_diags[:, j0:j0 + chunk].T[:, :, None] * u[None]   # (ops, n, m)
        o2 = np.abs(np.matmul(uh, ou)) ** 2                     # |(O_j)_ab|^2
        inner = np.einsum("ab,jab->j", weight, o2)
        oo = np.einsum("jca,jca->ja", ou.conj(), ou).real       # <a|O_j^2|a>
        null = 4 * ((oo - o2.sum(axis=1)) @ p)
        out[j0:j0 + chunk] = inner + np.maximum(null, 0.0)
    return out


def qfi_exact_fast(rho: BlockDensityMatrix, positions: np.ndarray, k_values,
                   max_dim: int = 1 << 30) -> np.ndarray:
    """:func:`qfi_exact` from the cached block eigenpairs (:meth:`BlockDensityMatrix.eig`,
    the r x r Gram side wherever the factor is narrow), all 2 len(k) operators per block
    at once (:func:`fisher_many`)."""
    N = rho.layers.n_spins
    if any(min(f.shape) > max_dim for f in rho.factors.values()):
        return np.full(len(k_values), np.nan)
    ks = np.asarray(k_values, dtype=float)
    phases = np.concatenate([np.cos(np.outer(positions, ks)), np.sin(np.outer(positions, ks))], axis=1)
    out = np.zeros(2 * len(ks))
    for block, _ in rho.items():
        p, u = rho.eig(block.K)
        out += fisher_many(p, u, (block.spins.astype(float) / 2) @ phases)
    return (out[:len(ks)] + out[len(ks):]) / N
