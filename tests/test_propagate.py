"""spinvalve.propagate: every integrator's step against scipy.linalg.expm of the dense H,
and the Chebyshev coefficients against the Bessel functions' integral representation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg as sla
from conftest import dense_matrix
from mpi4py import MPI
from petsc4py import PETSc

from spinvalve import HBAR
from spinvalve.basis import Sector
from spinvalve.config import load_config
from spinvalve.hamiltonian import HamiltonianShell, Model
from spinvalve.propagate import INTEGRATORS, chebyshev_coefficients, make_propagator


def bessel_j(k: int, z: float, n: int = 4000) -> float:
    """J_k(z) = (1/pi) int_0^pi cos(k t - z sin t) dt (trapezoidal rule: spectrally accurate
    for this periodic integrand)."""
    t = np.linspace(0.0, np.pi, n + 1)
    f = np.cos(k * t - z * np.sin(t))
    return float((f.sum() - 0.5 * (f[0] + f[-1])) * (np.pi / n) / np.pi)


@pytest.mark.parametrize("z", [0.5, 7.0, 30.0])
def test_chebyshev_coefficients_are_the_bessel_expansion_of_exp(z):
    tol = 1e-12
    c = chebyshev_coefficients(z, tol)
    for k in range(len(c)):
        want = (1.0 if k == 0 else 2.0) * (-1j) ** k * bessel_j(k, z)
        assert abs(c[k] - want) < 1e-11          # the quadrature is good to ~1e-12
    # truncation: the dropped tail is below tol, the last kept term is not negligible
    tail = sum(2 * abs(bessel_j(k, z)) for k in range(len(c), len(c) + 40))
    assert tail < 2 * tol                           # tol, up to the quadrature's rounding
    assert len(c) >= 2 and len(c) > z
    # sum_k c_k T_k(x) = exp(-i z x) on [-1, 1]
    x = np.linspace(-1, 1, 41)
    T = np.polynomial.chebyshev.chebvander(x, len(c) - 1)
    np.testing.assert_allclose(T @ c, np.exp(-1j * z * x), atol=10 * tol)


def small_case(**numerics):
    cfg = load_config({"chain": {"n_sites": 12}, "layers": {"n_p": 2, "n_a": 1, "fm_p_start": 3,
                       "spacer": 2}, "pulse": {"x0": 2.0}, "numerics": numerics})
    model = Model.from_config(cfg)
    shell = HamiltonianShell(model, Sector(model.layers, 0), MPI.COMM_SELF)   # 3 spins: M even
    return cfg, shell, dense_matrix(shell)


@pytest.mark.parametrize("integrator,numerics,atol", [
    ("chebyshev", {}, 1e-11),
    ("chebyshev", {"chebyshev": {"spectral_bounds": "lanczos"}}, 1e-11),
    ("krylov", {"krylov": {"tolerance": 1e-10}}, 1e-8),
    ("rk4", {"rk4": {"dt": 0.002}}, 1e-7),
])
def test_step_matches_the_dense_exponential(integrator, numerics, atol):
    assert integrator in INTEGRATORS
    cfg, shell, H = small_case(integrator=integrator, **numerics)
    rng = np.random.default_rng(3)
    psi = rng.standard_normal(shell.local_size) + 1j * rng.standard_normal(shell.local_size)
    psi /= np.linalg.norm(psi)
    dt = 0.5
    want = sla.expm(-1j * H * dt / HBAR) @ psi
    mat = shell.create_mat(PETSc.COMM_SELF)
    vec = mat.createVecRight()
    vec.array[:] = psi
    prop = make_propagator(shell, mat, dt, cfg.numerics)
    prop.step(vec)
    got = vec.array.copy()
    assert np.abs(got - want).max() < atol
    assert np.linalg.norm(got) == pytest.approx(1.0, abs=10 * atol)
    # a second step continues from the first
    prop.step(vec)
    assert np.abs(vec.array - sla.expm(-1j * H * 2 * dt / HBAR) @ psi).max() < 2 * atol


def test_long_step_uses_substeps_and_stays_accurate():
    cfg, shell, H = small_case()
    prop = make_propagator(shell, None, 60.0, cfg.numerics)
    assert prop.n_sub == math.ceil(prop.b * 60.0 / HBAR / 100.0) > 1
    rng = np.random.default_rng(5)
    psi = rng.standard_normal(shell.local_size) + 0j
    psi /= np.linalg.norm(psi)

    class V:
        array = psi.copy()

    prop.step(V)
    assert np.abs(V.array - sla.expm(-1j * H * 60.0 / HBAR) @ psi).max() < 1e-10


def test_unknown_integrator_is_refused():
    cfg, shell, _ = small_case()
    with pytest.raises(ValueError, match="unknown integrator"):
        make_propagator(shell, None, 0.5, _Numerics("euler"))


class _Numerics:
    def __init__(self, integrator):
        self.integrator = integrator
