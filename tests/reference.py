"""Brute-force reference implementation of the spin-valve model, for tests.

This module shares NO code with ``spinvalve``.  It builds everything in the
full tensor-product space with dense / ``scipy.sparse`` Kronecker products and
uses the most direct methods available (``expm_multiply``, dense partial
traces, dense diagonalisation, direct ODE integration of the Lindblad
equation).  It is slow but meant to be obviously correct; use it only on
small systems.

Conventions (``shared/SPEC.md``)
--------------------------------
* Units: eV, fs, K.  ``HBAR = 0.6582119569`` eV fs, ``KB = 8.617333262e-5`` eV/K.
* Open chain of ``L`` sites ``x = 0 .. L-1``; hopping ``-gamma`` between
  neighbours.  One electron (orbital ``x`` and spin).
* Localized spins: FM_p on sites ``p0 .. p0+n_p-1``, ``spacer`` empty sites,
  FM_a on the next ``n_a`` sites.  Spin index ``i = 0 .. N-1``: FM_p spins
  first (by site), then FM_a spins (by site).
* Electron spin and localized spins are both **Pauli** operators:
  ``H = -gamma sum_<xy>,s c+_x c_y - J_sd sum_i s_{x_i}.sigma_i
  - sum_<ij> same layer [J (sx sx + sy sy) + J_z sz sz]`` with
  ``J_z = jz_ratio * J`` and ``s_x = |x><x| (x) sigma_e``.

Basis ordering
--------------
Full space = orbital (L) (x) electron spin (2) (x) spin_0 (2) (x) ... (x)
spin_{N-1} (2), as ``np.kron`` orders it (leftmost factor most significant)::

    index = (x * 2 + e) * 2**N + s,   s = sum_i b_i 2**(N-1-i)

Every two-level factor uses **up = 0, down = 1**, so ``sigma^z = diag(+1, -1)``.
``b_i = 0`` means spin ``i`` is up; spin 0 is the most significant bit of
``s``.  The localized-spin space (2**N) is FM_p (x) FM_a with FM_p the most
significant part, so a 2**N x 2**N ``rho_FM`` reshapes to
``(2**n_p, 2**n_a, 2**n_p, 2**n_a)`` as ``(p, a, p', a')``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.integrate import solve_ivp
from scipy.sparse.linalg import expm_multiply

HBAR = 0.6582119569  # eV fs
KB = 8.617333262e-5  # eV / K

# Pauli matrices in the (up, down) = (0, 1) basis.
SX = np.array([[0, 1], [1, 0]], dtype=complex)
SY = np.array([[0, -1j], [1j, 0]], dtype=complex)
SZ = np.array([[1, 0], [0, -1]], dtype=complex)
ID2 = np.eye(2, dtype=complex)
PAULI = {"x": SX, "y": SY, "z": SZ}


# --------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Geometry:
    """Chain length and positions of the two ferromagnetic layers."""

    L: int
    p0: int
    n_p: int
    spacer: int
    n_a: int

    def __post_init__(self) -> None:
        if self.N > 0 and self.sites[-1] >= self.L:
            raise ValueError(f"FM_a does not fit on a chain of {self.L} sites")
        if self.p0 < 0 or min(self.n_p, self.n_a, self.spacer) < 0:
            raise ValueError("negative geometry parameter")

    @property
    def N(self) -> int:
        """Total number of localized spins."""
        return self.n_p + self.n_a

    @property
    def sites(self) -> list[int]:
        """Chain site r_i (0-based) of every localized spin i."""
        a0 = self.p0 + self.n_p + self.spacer
        return [self.p0 + q for q in range(self.n_p)] + [a0 + q for q in range(self.n_a)]

    @property
    def p_indices(self) -> list[int]:
        return list(range(self.n_p))

    @property
    def a_indices(self) -> list[int]:
        return list(range(self.n_p, self.N))

    @property
    def bonds(self) -> list[tuple[int, int]]:
        """Heisenberg bonds (spin-index pairs): neighbours inside one layer only."""
        return [(i, i + 1) for i in range(self.n_p - 1)] + [
            (i, i + 1) for i in range(self.n_p, self.N - 1)
        ]

    @property
    def dim(self) -> int:
        """Dimension of the full space L * 2 * 2**N."""
        return self.L * 2 * 2**self.N

    @property
    def reference_config(self) -> list[int]:
        """T = 0 configuration: FM_p up (+1), FM_a down (-1)."""
        return [1] * self.n_p + [-1] * self.n_a


# --------------------------------------------------------------------------
# Operators
# --------------------------------------------------------------------------
def _kron(*ops) -> sp.csr_matrix:
    out = sp.csr_matrix(np.ones((1, 1), dtype=complex))
    for op in ops:
        out = sp.kron(out, sp.csr_matrix(op), format="csr")
    return out


def spin_op(N: int, i: int, pauli: np.ndarray) -> sp.csr_matrix:
    """Pauli matrix ``pauli`` acting on localized spin i of N (2**N space)."""
    return _kron(*[pauli if q == i else ID2 for q in range(N)])


def spin_ops(N: int) -> dict[str, list[sp.csr_matrix]]:
    """All single-spin Pauli operators on the 2**N space, keyed 'x','y','z'."""
    return {a: [spin_op(N, i, PAULI[a]) for i in range(N)] for a in "xyz"}


def heisenberg_fm(geometry: Geometry, j: float = 0.1, jz_ratio: float = 1.005) -> np.ndarray:
    """Dense H_FM = - sum_<ij> [J (sx sx + sy sy) + J_z sz sz] on the 2**N space."""
    N = geometry.N
    ops = spin_ops(N)
    H = sp.csr_matrix((2**N, 2**N), dtype=complex)
    for i, k in geometry.bonds:
        H = H - j * (ops["x"][i] @ ops["x"][k] + ops["y"][i] @ ops["y"][k])
        H = H - jz_ratio * j * (ops["z"][i] @ ops["z"][k])
    return H.toarray()


def pinning_hamiltonian(geometry: Geometry, h_pin: float) -> np.ndarray:
    """Dense H_pin = h_pin (sum_{i in FM_a} sz_i - sum_{i in FM_p} sz_i) (Pauli)."""
    N = geometry.N
    d = np.zeros(2**N)
    for i in range(N):
        sign = 1.0 if i in geometry.a_indices else -1.0
        d += sign * _sz_diag(N, i)
    return np.diag(h_pin * d).astype(complex)


def _sz_diag(N: int, i: int) -> np.ndarray:
    """Diagonal of sigma^z_i on the 2**N space (+1 where bit i is 0 = up)."""
    s = np.arange(2**N)
    return 1.0 - 2.0 * ((s >> (N - 1 - i)) & 1)


def build_hamiltonian(
    L: int,
    p0: int,
    n_p: int,
    spacer: int,
    n_a: int,
    gamma: float = 1.0,
    j_sd: float = 0.5,
    j: float = 0.1,
    jz_ratio: float = 1.005,
) -> sp.csr_matrix:
    """Full-space Hamiltonian (paper Eq. 7, SPEC conventions) as CSR, in eV."""
    g = Geometry(L, p0, n_p, spacer, n_a)
    N = g.N
    nS = 2**N
    # hopping
    hop = sp.diags([np.ones(L - 1), np.ones(L - 1)], [1, -1], shape=(L, L), dtype=complex)
    H = -gamma * _kron(hop, ID2, sp.identity(nS, dtype=complex))
    # s-d exchange: - J_sd sum_i |r_i><r_i| (x) sum_a sigma^a_e (x) sigma^a_i
    ops = spin_ops(N)
    for i, r in enumerate(g.sites):
        P = sp.csr_matrix(([1.0], ([r], [r])), shape=(L, L), dtype=complex)
        for a in "xyz":
            H = H - j_sd * _kron(P, PAULI[a], ops[a][i])
    # Heisenberg part
    if N > 0:
        H = H + _kron(sp.identity(2 * L, dtype=complex), heisenberg_fm(g, j, jz_ratio))
    H = sp.csr_matrix(H)
    H.eliminate_zeros()
    return H


def hamiltonian(geometry: Geometry, **kw) -> sp.csr_matrix:
    """``build_hamiltonian`` for a Geometry; kw = gamma, j_sd, j, jz_ratio."""
    g = geometry
    return build_hamiltonian(g.L, g.p0, g.n_p, g.spacer, g.n_a, **kw)


# --------------------------------------------------------------------------
# States
# --------------------------------------------------------------------------
def gaussian_orbital(L: int, x0: float, k: float, dk: float) -> np.ndarray:
    """<x|Phi> = C exp(i k x - dk^2 (x - x0)^2 / 4), x = 0..L-1, normalized."""
    x = np.arange(L, dtype=float)
    phi = np.exp(1j * k * x - dk**2 * (x - x0) ** 2 / 4.0)
    return phi / np.linalg.norm(phi)


def spin_basis_state(spin_config: Sequence[int]) -> np.ndarray:
    """Product basis vector of the 2**N localized space, spin_config[i] = +1 (up) / -1 (down)."""
    v = np.ones(1, dtype=complex)
    for c in spin_config:
        if c not in (1, -1):
            raise ValueError("spin_config entries must be +1 or -1")
        v = np.kron(v, np.array([1, 0] if c == 1 else [0, 1], dtype=complex))
    return v


def full_state(orbital: np.ndarray, e_spin: int | np.ndarray, spin_vector: np.ndarray) -> np.ndarray:
    """orbital (x) electron spin (x) localized-spin vector.

    e_spin is +1 (up), -1 (down) or an explicit 2-vector.
    """
    if np.isscalar(e_spin):
        e = np.array([1, 0] if e_spin == 1 else [0, 1], dtype=complex)
    else:
        e = np.asarray(e_spin, dtype=complex)
    return np.kron(np.kron(orbital, e), spin_vector)


def product_state(
    L: int, x0: float, k: float, dk: float, e_spin: int, spin_config: Sequence[int]
) -> np.ndarray:
    """Gaussian packet (x) electron spin e_spin (+1/-1) (x) product spin configuration."""
    return full_state(gaussian_orbital(L, x0, k, dk), e_spin, spin_basis_state(spin_config))


def initial_ensemble(
    geometry: Geometry,
    x0: float = 20.0,
    k: float = np.pi / 2,
    dk: float = 0.2,
    spin_members: list[tuple[float, np.ndarray]] | None = None,
) -> tuple[list[np.ndarray], list[float]]:
    """Unpolarized electron (x) localized-spin ensemble.

    spin_members defaults to the T = 0 state (FM_p up, FM_a down).  Returns
    (psi_list, weights); each spin member yields two pure members (e up, e down)
    with half its weight.
    """
    if spin_members is None:
        spin_members = [(1.0, spin_basis_state(geometry.reference_config))]
    phi = gaussian_orbital(geometry.L, x0, k, dk)
    psis, ws = [], []
    for w, v in spin_members:
        for e in (1, -1):
            psis.append(full_state(phi, e, v))
            ws.append(0.5 * w)
    return psis, ws


# --------------------------------------------------------------------------
# Unitary evolution
# --------------------------------------------------------------------------
def evolve(H: sp.spmatrix, psi0: np.ndarray, times: Sequence[float]) -> np.ndarray:
    """psi(t) = exp(-i H t / hbar) psi0 for each t (fs), shape (len(times), dim).

    Steps from one requested time to the next with scipy's expm_multiply
    (times need not be uniform; they must be non-decreasing from any start).
    """
    A = sp.csr_matrix(H, dtype=complex) * (-1j / HBAR)
    out = np.empty((len(times), psi0.size), dtype=complex)
    psi = np.asarray(psi0, dtype=complex)
    t_prev = 0.0
    for n, t in enumerate(times):
        dt = float(t) - t_prev
        if dt != 0.0:
            psi = expm_multiply(A * dt, psi)
        out[n] = psi
        t_prev = float(t)
    return out


# --------------------------------------------------------------------------
# Reduced density matrices
# --------------------------------------------------------------------------
def reduced_fm(psi_list: Sequence[np.ndarray], weights: Sequence[float], L: int, N: int) -> np.ndarray:
    """rho_FM = sum_m w_m Tr_{orbital, e-spin} |psi_m><psi_m|, shape (2**N, 2**N)."""
    rho = np.zeros((2**N, 2**N), dtype=complex)
    for psi, w in zip(psi_list, weights):
        M = np.asarray(psi).reshape(2 * L, 2**N)  # rows: (x, e); cols: s
        rho += w * (M.T @ M.conj())
    return rho


def reduced_electron_spin(
    psi_list: Sequence[np.ndarray], weights: Sequence[float], L: int, N: int
) -> np.ndarray:
    """2x2 electron-spin density matrix (trace over orbital and localized spins)."""
    rho = np.zeros((2, 2), dtype=complex)
    for psi, w in zip(psi_list, weights):
        T = np.asarray(psi).reshape(L, 2, 2**N)
        rho += w * np.einsum("xes,xfs->ef", T, T.conj())
    return rho


def reduced_orbital_density(
    psi_list: Sequence[np.ndarray], weights: Sequence[float], L: int, N: int
) -> np.ndarray:
    """Site occupation n(x) of the electron, shape (L,)."""
    n = np.zeros(L)
    for psi, w in zip(psi_list, weights):
        n += w * np.sum(np.abs(np.asarray(psi).reshape(L, -1)) ** 2, axis=1)
    return n


def partial_trace_fm(rho_fm: np.ndarray, geometry: Geometry, keep: str) -> np.ndarray:
    """rho_p = Tr_a rho_FM (keep='p') or rho_a = Tr_p rho_FM (keep='a')."""
    dp, da = 2**geometry.n_p, 2**geometry.n_a
    R = rho_fm.reshape(dp, da, dp, da)
    if keep == "p":
        return np.einsum("iaja->ij", R)
    if keep == "a":
        return np.einsum("iaib->ab", R)
    raise ValueError(keep)


def partial_transpose_a(rho_fm: np.ndarray, geometry: Geometry) -> np.ndarray:
    """rho^{T_a}: (rho^{T_a})_{i a; j b} = rho_{i b; j a} (Eq. 3 with the roles of p and a swapped)."""
    dp, da = 2**geometry.n_p, 2**geometry.n_a
    R = rho_fm.reshape(dp, da, dp, da)
    return R.transpose(0, 3, 2, 1).reshape(dp * da, dp * da)


# --------------------------------------------------------------------------
# Scalar measures
# --------------------------------------------------------------------------
def von_neumann_entropy(rho: np.ndarray) -> float:
    """-Tr rho ln rho (natural log); eigenvalues below 1e-15 are dropped."""
    p = np.linalg.eigvalsh(0.5 * (rho + rho.conj().T))
    p = p[p > 1e-15]
    return float(-np.sum(p * np.log(p)))


def log_negativity(rho_fm: np.ndarray, geometry: Geometry) -> float:
    """E_N = ln || rho_FM^{T_a} ||_1 (dense partial transpose, Eqs. 2-3)."""
    pt = partial_transpose_a(rho_fm, geometry)
    lam = np.linalg.eigvalsh(0.5 * (pt + pt.conj().T))
    return float(np.log(np.sum(np.abs(lam))))


def negativity_blocks(rho_fm: np.ndarray, geometry: Geometry) -> dict[int, float]:
    """Trace norms of the imbalance blocks of rho_FM^{T_a}.

    rho^{T_a} is block diagonal in q = (sum_{p} sigma^z - sum_{a} sigma^z) of
    its row index (Pauli units) when rho_FM conserves total S^z.  Returns
    {q: ||block_q||_1}; ln of the sum equals ``log_negativity``.  The blocks are
    found by brute force from q; an assertion checks that the off-block part
    vanishes.
    """
    N = geometry.N
    pt = partial_transpose_a(rho_fm, geometry)
    q = np.zeros(2**N, dtype=int)
    for i in range(N):
        sgn = 1 if i in geometry.p_indices else -1
        q += sgn * _sz_diag(N, i).astype(int)
    off = np.abs(pt[q[:, None] != q[None, :]])
    if off.size and off.max() > 1e-10 * max(1.0, np.abs(pt).max()):
        raise ValueError("rho_FM^{T_a} is not block diagonal in the imbalance")
    out = {}
    for qq in np.unique(q):
        idx = np.where(q == qq)[0]
        blk = pt[np.ix_(idx, idx)]
        out[int(qq)] = float(np.sum(np.abs(np.linalg.eigvalsh(0.5 * (blk + blk.conj().T)))))
    return out


def magnon_number(geometry: Geometry) -> np.ndarray:
    """m(s) = number of spins flipped relative to the T=0 configuration, for every basis index s."""
    N = geometry.N
    ref = spin_basis_state(geometry.reference_config)
    s_ref = int(np.argmax(np.abs(ref)))
    s = np.arange(2**N)
    x = s ^ s_ref
    return np.array([bin(v).count("1") for v in x], dtype=int)


def w_state(geometry: Geometry) -> np.ndarray:
    """Normalized equal superposition of the N single-flip states (relative to T=0 config)."""
    N = geometry.N
    ref = geometry.reference_config
    v = np.zeros(2**N, dtype=complex)
    for i in range(N):
        c = list(ref)
        c[i] = -c[i]
        v += spin_basis_state(c)
    return v / np.sqrt(N)


def _fisher(p: np.ndarray, V: np.ndarray, O: np.ndarray) -> float:
    """F_Q(O) = 2 sum_ab (p_a - p_b)^2/(p_a + p_b) |<a|O|b>|^2 (pairs with p_a+p_b < 1e-14 skipped)."""
    Ob = V.conj().T @ O @ V
    P = p[:, None] + p[None, :]
    D = (p[:, None] - p[None, :]) ** 2
    mask = P >= 1e-14
    return float(2.0 * np.sum(D[mask] / P[mask] * np.abs(Ob[mask]) ** 2))


def qfi_bound(rho_fm: np.ndarray, geometry: Geometry, k_values: Sequence[float]) -> np.ndarray:
    """f_Q(k) = (4/N) sum_ij cos(k (r_i - r_j)) (<Sz_i Sz_j> - <Sz_i><Sz_j>), Sz = sigma^z/2."""
    N = geometry.N
    r = np.array(geometry.sites, dtype=float)
    d = np.real(np.diag(rho_fm))
    z = np.array([_sz_diag(N, i) / 2.0 for i in range(N)])  # (N, 2**N)
    mean = z @ d
    corr = (z * d) @ z.T - np.outer(mean, mean)
    out = []
    for k in k_values:
        C = np.cos(k * (r[:, None] - r[None, :]))
        out.append(4.0 / N * np.sum(C * corr))
    return np.array(out)


def qfi_exact(rho_fm: np.ndarray, geometry: Geometry, k_values: Sequence[float]) -> np.ndarray:
    """[F_Q(O_c) + F_Q(O_s)] / N, O_c,s = sum_i cos/sin(k r_i) sigma^z_i / 2, F_Q from the eigenpairs of rho_FM."""
    N = geometry.N
    r = np.array(geometry.sites, dtype=float)
    p, V = np.linalg.eigh(0.5 * (rho_fm + rho_fm.conj().T))
    z = np.array([_sz_diag(N, i) / 2.0 for i in range(N)])
    out = []
    for k in k_values:
        Oc = np.diag(np.cos(k * r) @ z)
        Os = np.diag(np.sin(k * r) @ z)
        out.append((_fisher(p, V, Oc) + _fisher(p, V, Os)) / N)
    return np.array(out)


# --------------------------------------------------------------------------
# Observables
# --------------------------------------------------------------------------
def observables_from_rho(
    rho_fm: np.ndarray,
    geometry: Geometry,
    k_values: Sequence[float] = (np.pi / 6, np.pi / 2),
    rho_e: np.ndarray | None = None,
) -> dict:
    """Observables computable from rho_FM (and optionally the 2x2 electron-spin rho_e).

    Keys: electron_spin (NaN if rho_e is None), spin_expectation, entropy_p,
    entropy_a, entropy_pa, mutual_information, log_negativity,
    magnon_probability, w_state_probability, qfi_bound, qfi_exact,
    norm (= Tr rho_FM), sz_total (NaN if rho_e is None), hermiticity
    (max |rho - rho^dag|).  No 'energy'.
    """
    g = geometry
    N = g.N
    ops = spin_ops(N)
    spin = np.array(
        [[np.real(np.trace(ops[a][i] @ rho_fm)) for a in "xyz"] for i in range(N)]
    ).reshape(N, 3)
    if rho_e is not None:
        es = np.array([np.real(np.trace(P @ rho_e)) for P in (SX, SY, SZ)])
    else:
        es = np.full(3, np.nan)
    rho_p = partial_trace_fm(rho_fm, g, "p")
    rho_a = partial_trace_fm(rho_fm, g, "a")
    S_p, S_a, S_pa = (von_neumann_entropy(x) for x in (rho_p, rho_a, rho_fm))
    m = magnon_number(g)
    diag = np.real(np.diag(rho_fm))
    P_m = np.array([diag[m == q].sum() for q in range(N + 1)])
    W = w_state(g)
    return {
        "electron_spin": es,
        "spin_expectation": spin,
        "entropy_p": S_p,
        "entropy_a": S_a,
        "entropy_pa": S_pa,
        "mutual_information": S_p + S_a - S_pa,
        "log_negativity": log_negativity(rho_fm, g),
        "magnon_probability": P_m,
        "w_state_probability": float(np.real(W.conj() @ rho_fm @ W)),
        "qfi_bound": qfi_bound(rho_fm, g, k_values),
        "qfi_exact": qfi_exact(rho_fm, g, k_values),
        "norm": float(np.real(np.trace(rho_fm))),
        "sz_total": float(es[2] + spin[:, 2].sum()),
        "hermiticity": float(np.abs(rho_fm - rho_fm.conj().T).max()),
    }


def observables(
    psi_list: Sequence[np.ndarray],
    weights: Sequence[float],
    H: sp.spmatrix | None,
    geometry: Geometry,
    k_values: Sequence[float] = (np.pi / 6, np.pi / 2),
) -> dict:
    """All observables of the ensemble {(w_m, psi_m)} at one time.

    Same keys as ``observables_from_rho`` plus 'energy' = sum_m w_m <psi_m|H|psi_m>
    (NaN if H is None); 'norm' here is sum_m w_m <psi_m|psi_m>.
    """
    g = geometry
    rho_fm = reduced_fm(psi_list, weights, g.L, g.N)
    rho_e = reduced_electron_spin(psi_list, weights, g.L, g.N)
    out = observables_from_rho(rho_fm, g, k_values, rho_e)
    out["norm"] = float(sum(w * np.vdot(p, p).real for p, w in zip(psi_list, weights)))
    if H is None:
        out["energy"] = float("nan")
    else:
        out["energy"] = float(sum(w * np.vdot(p, H @ p).real for p, w in zip(psi_list, weights)))
    return out


# --------------------------------------------------------------------------
# Finite temperature
# --------------------------------------------------------------------------
def _sector_labels(N: int) -> np.ndarray:
    """Total sigma^z (Pauli) of every basis configuration."""
    return sum(_sz_diag(N, i) for i in range(N)).astype(int) if N else np.zeros(1, int)


def gibbs_spectrum(
    geometry: Geometry, j: float, jz_ratio: float, h_pin: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigenpairs of H_FM + H_pin found sector by sector in total S^z.

    Returns (E, V, Sz): energies (ascending), eigenvectors as columns of the
    2**N x 2**N matrix V (each with definite total sigma^z Sz, and the phase
    fixed so that its largest component is real positive).
    """
    N = geometry.N
    H = heisenberg_fm(geometry, j, jz_ratio) + pinning_hamiltonian(geometry, h_pin)
    lab = _sector_labels(N)
    Es, Vs, Ss = [], [], []
    for q in np.unique(lab):
        idx = np.where(lab == q)[0]
        blk = H[np.ix_(idx, idx)]
        assert np.abs(H[np.ix_(idx, np.where(lab != q)[0])]).max(initial=0.0) == 0.0
        e, v = np.linalg.eigh(blk)
        for n in range(len(e)):
            vec = np.zeros(2**N, dtype=complex)
            vec[idx] = v[:, n]
            a = np.argmax(np.abs(vec))
            vec *= np.abs(vec[a]) / vec[a]
            Es.append(e[n])
            Vs.append(vec)
            Ss.append(q)
    order = np.argsort(Es, kind="stable")
    return np.array(Es)[order], np.array(Vs).T[:, order], np.array(Ss)[order]


def gibbs_ensemble(
    geometry: Geometry,
    j: float = 0.1,
    jz_ratio: float = 1.005,
    h_pin: float = 0.01,
    temperature_K: float = 0.0,
    cutoff: float = 0.0,
    return_discarded: bool = False,
):
    """Gibbs ensemble of H_FM + H_pin as a list of (weight, 2**N eigenvector).

    Weights exp(-(E - E0)/k_B T) / Z.  Members with weight < cutoff are dropped
    and the remaining weights renormalized to 1; with return_discarded=True the
    result is (members, discarded_weight).  T = 0 gives the ground state(s)
    with equal weights (the T -> 0 limit); for h_pin > 0 that is the single
    product state FM_p up / FM_a down with weight 1.
    """
    E, V, _ = gibbs_spectrum(geometry, j, jz_ratio, h_pin)
    if temperature_K == 0.0:
        w = np.where(E - E[0] < 1e-12, 1.0, 0.0)
    else:
        w = np.exp(-(E - E[0]) / (KB * temperature_K))
    w = w / w.sum()
    keep = (w >= cutoff) & (w > 0)
    discarded = float(w[~keep].sum())
    wk = w[keep] / w[keep].sum()
    members = [(float(wi), V[:, n].copy()) for wi, n in zip(wk, np.where(keep)[0])]
    return (members, discarded) if return_discarded else members


def gibbs_rho(
    geometry: Geometry, j: float = 0.1, jz_ratio: float = 1.005, h_pin: float = 0.01, temperature_K: float = 0.0
) -> np.ndarray:
    """Dense exp(-beta (H_FM + H_pin)) / Z via scipy.linalg.expm (T = 0: ground-state projector)."""
    H = heisenberg_fm(geometry, j, jz_ratio) + pinning_hamiltonian(geometry, h_pin)
    if temperature_K == 0.0:
        E, V = np.linalg.eigh(H)
        P = V[:, E - E[0] < 1e-12]
        return P @ P.conj().T / P.shape[1]
    E0 = np.linalg.eigvalsh(H)[0]
    R = sla.expm(-(H - E0 * np.eye(len(H))) / (KB * temperature_K))
    return R / np.trace(R)


# --------------------------------------------------------------------------
# Open system (universal Lindblad equation)
# --------------------------------------------------------------------------
def bath_spectral_function(w, T_bb: float, Gamma: float, omega_m: float) -> np.ndarray:
    """J(w) = Gamma (w/omega_m) n_BE(w) Theta(omega_m - |w|), n_BE = 1/(exp(w/k_B T) - 1).

    J(0) = Gamma k_B T / omega_m.  At T_bb = 0: J(w) = Gamma |w|/omega_m for
    w < 0 and 0 for w >= 0.  Theta(x) = 1 for x >= 0.  Positive for both signs
    of w; J(w)/J(-w) = exp(-w / k_B T) (w > 0 is absorption by the system).
    """
    w = np.asarray(w, dtype=float)
    out = np.zeros_like(w)
    if T_bb == 0.0:
        out = np.where(w < 0, Gamma * (-w) / omega_m, 0.0)
    else:
        kT = KB * T_bb
        x = w / kT
        small = np.abs(x) < 1e-8
        xs = np.where(small, 1.0, x)
        with np.errstate(over="ignore"):
            ratio = xs / np.expm1(xs)  # -> 0 for x >> 1 (expm1 overflows to inf)
        # (w/omega_m) / (exp(w/kT) - 1) = (kT/omega_m) * x / expm1(x)
        out = np.where(small, Gamma * kT / omega_m * (1 - x / 2), Gamma * kT / omega_m * ratio)
    return np.where(np.abs(w) <= omega_m, out, 0.0)


def ule_jump_operators(
    geometry: Geometry,
    j: float = 0.1,
    jz_ratio: float = 1.005,
    T_bb: float = 10.0,
    Gamma: float = 1.2e-4,
    omega_m: float = 0.01,
    components: str = "xyz",
) -> list[np.ndarray]:
    """One ULE jump operator per localized spin (SPEC 'Open system'), dense 2**N x 2**N.

    L_i = sum_mn sqrt(2 pi J(E_m - E_n)) <m|X_i|n> |m><n| in the eigenbasis of
    H_FM (Heisenberg part only), X_i = sum of the Pauli components listed.
    L_i is in sqrt(eV).
    """
    N = geometry.N
    H = heisenberg_fm(geometry, j, jz_ratio)
    E, V = np.linalg.eigh(H)
    G = np.sqrt(2 * np.pi * bath_spectral_function(E[:, None] - E[None, :], T_bb, Gamma, omega_m))
    ops = spin_ops(N)
    jumps = []
    for i in range(N):
        X = sum(ops[c][i].toarray() for c in components)
        Xe = V.conj().T @ X @ V
        jumps.append(V @ (G * Xe) @ V.conj().T)
    return jumps


def lindblad_superoperator(H: np.ndarray, jumps: Sequence[np.ndarray]) -> np.ndarray:
    """Dense superoperator S with d vec(rho)/dt = S vec(rho), vec = row-major flatten.

    d rho/dt = -(i/hbar)[H, rho] + (1/hbar) sum (L rho L^dag - 1/2 {L^dag L, rho}).
    For row-major vec: vec(A rho B) = kron(A, B^T) vec(rho).
    """
    H = np.asarray(H.toarray() if sp.issparse(H) else H, dtype=complex)
    n = H.shape[0]
    I = np.eye(n)
    S = -1j * (np.kron(H, I) - np.kron(I, H.T))
    for Lj in jumps:
        LdL = Lj.conj().T @ Lj
        S += np.kron(Lj, Lj.conj()) - 0.5 * np.kron(LdL, I) - 0.5 * np.kron(I, LdL.T)
    return S / HBAR


def steady_state(S: np.ndarray) -> np.ndarray:
    """Unit-trace steady state of a (small) dense superoperator from ``lindblad_superoperator``."""
    n2 = S.shape[0]
    n = int(round(np.sqrt(n2)))
    A = S.copy()
    b = np.zeros(n2, dtype=complex)
    A[0, :] = np.eye(n).reshape(-1)  # replace one equation by Tr rho = 1
    b[0] = 1.0
    rho = np.linalg.solve(A, b).reshape(n, n)
    return 0.5 * (rho + rho.conj().T)


def embed_spin_operator(op: np.ndarray, L: int) -> sp.csr_matrix:
    """1_{orbital} (x) 1_{e-spin} (x) op, as sparse full-space matrix."""
    return _kron(sp.identity(2 * L, dtype=complex), op)


_SUPEROP_MAX_NS = 64  # above this, lindblad_evolve applies the jumps one by one


def lindblad_evolve(
    H_full: sp.spmatrix,
    jumps: Sequence[np.ndarray],
    rho0: np.ndarray,
    times: Sequence[float],
    L: int | None = None,
    N: int | None = None,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    return_full: bool = False,
) -> dict:
    """Direct integration of the Lindblad equation in the full space.

    d rho/dt = -(i/hbar)[H, rho] + (1/hbar) sum_i (L_i rho L_i^dag - 1/2 {L_i^dag L_i, rho})

    jumps: either 2**N x 2**N operators on the localized spins (acting as the
    identity on orbital and electron spin; N then defaults to log2 of their
    size) or full-space dim x dim operators.  L defaults to dim / (2 * 2**N).
    rho0 is the full-space density matrix at t = 0 (e.g. ``ensemble_density``).
    Integrated with solve_ivp DOP853 on the flattened rho; times in fs, >= 0,
    non-decreasing.

    Returns dict with 'times', 'rho_fm' (nt, 2**N, 2**N), 'rho_e' (nt, 2, 2),
    'trace' (nt,), and 'rho' (nt, dim, dim) if return_full.
    """
    H = sp.csr_matrix(H_full, dtype=complex)
    D = H.shape[0]
    Ls = [np.asarray(Lj, dtype=complex) for Lj in jumps]
    full_jumps = bool(Ls) and Ls[0].shape[0] == D
    if N is None:
        if Ls and not full_jumps:
            N = int(round(np.log2(Ls[0].shape[0])))
        else:
            raise ValueError("give N when the jumps are full-space operators or absent")
    nS = 2**N
    if L is None:
        L = D // (2 * nS)
    if 2 * L * nS != D:
        raise ValueError("H dimension does not match L * 2 * 2**N")
    Lds = [Lj.conj().T for Lj in Ls]
    if full_jumps:
        Heff = H - 0.5j * sp.csr_matrix(sum(Ld @ Lj for Lj, Ld in zip(Ls, Lds)))
    else:
        K = sum((Ld @ Lj for Lj, Ld in zip(Ls, Lds)), np.zeros((nS, nS), dtype=complex))
        Heff = H - 0.5j * embed_spin_operator(K, L)
        # sum_i L_i B L_i^dag on every nS x nS block B of rho, as one matrix on
        # the row-major vec of the block (when that matrix is small enough)
        sup = sum(np.kron(Lj, Lj.conj()) for Lj in Ls) if (Ls and nS <= _SUPEROP_MAX_NS) else None

    def rhs(_t, y):
        rho = y.view(complex).reshape(D, D)
        A = Heff @ rho  # H_eff rho, H_eff = H - (i/2) sum L^dag L
        drho = -1j * (A - A.conj().T)  # -i (H_eff rho - rho H_eff^dag), rho hermitian
        if full_jumps:
            for Lj, Ld in zip(Ls, Lds):
                drho += Lj @ rho @ Ld
        elif sup is not None:
            B = np.ascontiguousarray(rho.reshape(2 * L, nS, 2 * L, nS).transpose(0, 2, 1, 3))
            B = (B.reshape(-1, nS * nS) @ sup.T).reshape(2 * L, 2 * L, nS, nS)
            drho += B.transpose(0, 2, 1, 3).reshape(D, D)
        else:
            R4 = rho.reshape(2 * L, nS, 2 * L, nS)
            for Lj, Ld in zip(Ls, Lds):
                drho += np.einsum("ij,ajbk,kl->aibl", Lj, R4, Ld, optimize=True).reshape(D, D)
        return (drho / HBAR).reshape(-1).view(float)

    times = np.asarray(times, dtype=float)
    y0 = np.ascontiguousarray(np.asarray(rho0, dtype=complex)).reshape(-1).view(float).copy()
    t_end = float(times[-1]) if len(times) else 0.0
    if t_end > 0:
        sol = solve_ivp(rhs, (0.0, t_end), y0, method="DOP853", t_eval=times, rtol=rtol, atol=atol)
        if not sol.success:
            raise RuntimeError(sol.message)
        ys = sol.y.T
    else:
        ys = np.tile(y0, (len(times), 1))
    out = {"times": times, "rho_fm": [], "rho_e": [], "trace": []}
    full = []
    for y in ys:
        rho = np.ascontiguousarray(y).view(complex).reshape(D, D)
        R6 = rho.reshape(L, 2, nS, L, 2, nS)
        out["rho_fm"].append(np.einsum("xeaxeb->ab", R6))
        out["rho_e"].append(np.einsum("xesxfs->ef", R6))
        out["trace"].append(float(np.real(np.trace(rho))))
        if return_full:
            full.append(rho.copy())
    for key in ("rho_fm", "rho_e", "trace"):
        out[key] = np.array(out[key])
    if return_full:
        out["rho"] = np.array(full)
    return out


def ensemble_density(psi_list: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Dense sum_m w_m |psi_m><psi_m|."""
    D = len(psi_list[0])
    rho = np.zeros((D, D), dtype=complex)
    for psi, w in zip(psi_list, weights):
        rho += w * np.outer(psi, np.conj(psi))
    return rho
