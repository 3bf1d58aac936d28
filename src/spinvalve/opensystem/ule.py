"""Universal Lindblad equation jump operators (paper Eqs. 17-20, SPEC "Open system").

One jump operator per localized spin (Nathan and Rudner, PRB 102, 115109):

    L_i = sum_mn sqrt(2 pi J(E_m - E_n)) <m|X_i|n> |m><n|  =  f(ad_H)[X_i],
    f(omega) = sqrt(2 pi J(omega)),  ad_H[|m><n|] = (E_m - E_n) |m><n|,

with {|m>, E_m} the eigenpairs of the localized-spin Hamiltonian H_FM and
X_i = sum of the Pauli components of spin i listed in ``bath.components``.
J(omega) = Gamma (omega/omega_m) n_BE(omega) Theta(omega_m - |omega|) (Eq. 20)
is an energy, so L_i carries sqrt(eV) and the master equation reads
d rho/dt = -(i/hbar)[H, rho] + (1/hbar) sum_i (L_i rho L_i^dag - {L_i^dag L_i, rho}/2).

Layer factorisation. H_FM = H_p (x) 1 + 1 (x) H_a has no bond between the
layers, and X_i acts on one layer only, so every Bohr frequency E_m - E_n that
X_i connects is one of its own layer: L_i = L_i^(layer) (x) 1 exactly. The
jump operators are therefore 2^n_layer x 2^n_layer matrices (1024 x 1024 for a
10-spin layer), and the eigenbasis form is exact and cheap for any layer this
project simulates. The power series of Eq. 18 is the Taylor expansion of f
around omega = 0; it only converges where every Bohr frequency of the layer lies
inside the radius 2 pi k_B T_bb of n_BE's poles and below the hard cutoff omega_m
(:func:`series_radius`), i.e. for weak in-layer exchange. ``tests/test_ule.py``
shows both regimes.

Matrices here are in the *bit basis* of a layer: index c = sum_i u_i 2^i with
u_i = 1 when spin i of the layer points up (S^z = +1), as in
:meth:`spinvalve.reduced.BlockDensityMatrix.to_dense`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.special import bernoulli

from .. import K_B
from ..config import MAX_LAYER_SPINS, Bath
from ..errors import SeriesError
from ..hamiltonian import Model


# ---------------------------------------------------------------------------
# spectral function
# ---------------------------------------------------------------------------

def spectral_function(omega, temperature: float, gamma: float, omega_max: float) -> np.ndarray:
    """J(omega) = Gamma (omega/omega_m) n_BE(omega) Theta(omega_m - |omega|) in eV (Eq. 20).

    n_BE(omega) = 1/(exp(omega/k_B T) - 1); the product is positive for both signs
    (omega > 0: absorption by the spins, omega < 0: emission) and tends to
    Gamma k_B T / omega_m at omega = 0. At T = 0 only emission remains,
    J = Gamma |omega| / omega_m for omega < 0.
    """
    w = np.asarray(omega, dtype=float)
    if temperature == 0.0:
        out = np.where(w < 0, gamma * (-w) / omega_max, 0.0)
    else:
        kt = K_B * temperature
        x = w / kt
        small = np.abs(x) < 1e-8
        xs = np.where(small, 1.0, x)
        with np.errstate(over="ignore"):
            ratio = np.where(small, 1.0 - x / 2, xs / np.expm1(xs))
        out = gamma * kt / omega_max * ratio
    return np.where(np.abs(w) <= omega_max, out, 0.0)


def series_coefficients(temperature: float, gamma: float, omega_max: float, order: int) -> np.ndarray:
    """Taylor coefficients a_n of f(omega) = sqrt(2 pi J(omega)) at 0, n = 0 ... order.

    J = (Gamma k_B T / omega_m) x / (e^x - 1), x = omega / k_B T, and
    x/(e^x - 1) = sum_n B_n x^n / n! (Bernoulli numbers); the square root of the
    series follows from s_0 = 1, s_n = (b_n - sum_{k=1}^{n-1} s_k s_{n-k}) / 2.
    These are the c_n of Eq. 18 (the paper's (-1)^n is its opposite Fourier
    sign convention; with ad_H[|m><n|] = (E_m - E_n)|m><n| both agree).
    """
    if temperature <= 0.0:
        raise SeriesError("bath.jump_operators = series needs bath.temperature > 0: "
                          "sqrt(J(omega)) is not analytic at omega = 0 for T_bb = 0")
    b = np.array([float(bernoulli(order)[n]) / math.factorial(n) for n in range(order + 1)])
    s = np.zeros(order + 1)
    s[0] = 1.0
    for n in range(1, order + 1):
        s[n] = (b[n] - sum(s[k] * s[n - k] for k in range(1, n))) / 2.0
    kt = K_B * temperature
    return math.sqrt(2 * math.pi * gamma * kt / omega_max) * s / kt ** np.arange(order + 1)


def series_radius(temperature: float, omega_max: float) -> float:
    """Largest |omega| where the Eq. 18 series can converge to the exact f(omega).

    The Taylor series of sqrt(x/(e^x - 1)) converges for |x| < 2 pi (poles of
    n_BE at x = +-2 pi i); beyond the hard cutoff omega_m the exact f vanishes
    while the series does not.
    """
    return min(2 * math.pi * K_B * temperature, omega_max)


# ---------------------------------------------------------------------------
# operators in the bit basis of one layer
# ---------------------------------------------------------------------------

def pauli(n: int, i: int, component: str) -> np.ndarray:
    """Dense Pauli matrix ``component`` of spin i in the bit basis of n spins."""
    dim = 1 << n
    c = np.arange(dim)
    up = (c >> i) & 1
    m = np.zeros((dim, dim), complex)
    if component == "z":
        m[c, c] = 2 * up - 1
    elif component == "x":
        m[c ^ (1 << i), c] = 1.0
    elif component == "y":
        # sigma^y |up> = i |down>, sigma^y |down> = -i |up>
        m[c ^ (1 << i), c] = np.where(up == 1, 1j, -1j)
    else:
        raise ValueError(f"unknown Pauli component {component!r}")
    return m


def coupling_operator(n: int, i: int, components: str) -> np.ndarray:
    """X_i = sum of the listed Pauli components of spin i (Eq. 16; default x + y + z)."""
    return sum(pauli(n, i, a) for a in components)


def layer_hamiltonian(n: int, j: float, jz: float) -> np.ndarray:
    """Open XXZ chain of one layer, -sum_b [J (S^x S^x + S^y S^y) + J_z S^z S^z], bit basis."""
    dim = 1 << n
    h = np.zeros((dim, dim), complex)
    for b in range(n - 1):
        h -= j * (pauli(n, b, "x") @ pauli(n, b + 1, "x") + pauli(n, b, "y") @ pauli(n, b + 1, "y"))
        h -= jz * (pauli(n, b, "z") @ pauli(n, b + 1, "z"))
    return h


def exact_jumps(h: np.ndarray, xs: list[np.ndarray], bath: Bath) -> list[np.ndarray]:
    """L = V [sqrt(2 pi J(E_m - E_n)) * (V^dag X V)] V^dag for every X (eigenbasis form)."""
    e, v = np.linalg.eigh(h)
    f = np.sqrt(2 * np.pi * spectral_function(e[:, None] - e[None, :], bath.temperature,
                                               bath.gamma, bath.omega_max))
    return [v @ (f * (v.conj().T @ x @ v)) @ v.conj().T for x in xs]


def series_jumps(h: np.ndarray, xs: list[np.ndarray], bath: Bath, order: int) -> list[np.ndarray]:
    """L = sum_{n <= order} a_n ad_H^n [X] (Eq. 18), by repeated commutators."""
    a = series_coefficients(bath.temperature, bath.gamma, bath.omega_max, order)
    out = []
    for x in xs:
        term, acc = x.astype(complex), a[0] * x.astype(complex)
        for n in range(1, order + 1):
            term = h @ term - term @ h
            acc = acc + a[n] * term
        out.append(acc)
    return out


# ---------------------------------------------------------------------------
# the set of jump operators of a model
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class JumpOperators:
    """L_i = layer[i] (x) 1 for every localized spin i (FM_p first), in sqrt(eV).

    ``layer_ops[i]`` is a 2^n_layer matrix in the bit basis of spin i's layer;
    ``layer_of[i]`` is 'p' or 'a' and ``local_index[i]`` the spin's bit in it.
    """

    n_p: int
    n_a: int
    layer_ops: tuple[np.ndarray, ...]

    @property
    def n_spins(self) -> int:
        return self.n_p + self.n_a

    def layer_of(self, i: int) -> str:
        return "p" if i < self.n_p else "a"

    @cached_property
    def decay(self) -> dict[str, np.ndarray]:
        """Gamma_layer = sum_{i in layer} L_i^dag L_i; Gamma_tot = Gamma_p (x) 1 + 1 (x) Gamma_a."""
        out = {}
        for lay, n in (("p", self.n_p), ("a", self.n_a)):
            g = np.zeros((1 << n, 1 << n), complex)
            for i in range(self.n_spins):
                if self.layer_of(i) == lay:
                    g += self.layer_ops[i].conj().T @ self.layer_ops[i]
            out[lay] = 0.5 * (g + g.conj().T)
        return out

    @property
    def max_decay(self) -> float:
        """Largest eigenvalue of Gamma_tot (eV)."""
        return float(sum(np.linalg.eigvalsh(g)[-1] for g in self.decay.values() if g.size))

    def full(self, i: int) -> np.ndarray:
        """L_i on all localized spins, 2^N x 2^N in the bit basis c_p + 2^n_p c_a."""
        op = self.layer_ops[i]
        if self.layer_of(i) == "p":
            return np.kron(np.eye(1 << self.n_a), op)
        return np.kron(op, np.eye(1 << self.n_p))

    def full_decay(self) -> np.ndarray:
        """Gamma_tot = sum_i L_i^dag L_i on all localized spins (dense, small N only)."""
        return (np.kron(np.eye(1 << self.n_a), self.decay["p"])
                + np.kron(self.decay["a"], np.eye(1 << self.n_p)))


def jump_operators(model: Model, bath: Bath) -> JumpOperators:
    """The ULE jump operators of every localized spin, exact or by the Eq. 18 series."""
    ops = []
    for n, offset in ((model.n_p, 0), (model.n_a, model.n_p)):
        if n == 0:
            continue
        if n > MAX_LAYER_SPINS:
            raise ValueError(f"layer of {n} spins: jump operators are built for at most "
                             f"{MAX_LAYER_SPINS} spins per layer")
        h = layer_hamiltonian(n, model.j, model.jz)
        xs = [coupling_operator(n, i, bath.components) for i in range(n)]
        if bath.jump_operators == "exact":
            ops += exact_jumps(h, xs, bath)
        else:
            ops += series_jumps(h, xs, bath, bath.series_order)
    return JumpOperators(model.n_p, model.n_a, tuple(ops))
