"""ULE jump operators: spectral function, exact eigenbasis form, Eq. 18 series (spinvalve.opensystem.ule)."""

from __future__ import annotations

import numpy as np
import pytest

import reference as ref
from spinvalve import K_B
from spinvalve.config import Bath, load_config
from spinvalve.hamiltonian import Model
from spinvalve.opensystem import ule
from test_dense import to_reference_basis


def model_of(n_p=2, n_a=2, j=0.1):
    cfg = load_config({"chain": {"n_sites": 30}, "layers": {"n_p": n_p, "n_a": n_a, "fm_p_start": 10, "spacer": 3},
                       "couplings": {"j": j}})
    return Model.from_config(cfg)


def test_spectral_function_matches_reference_and_detailed_balance():
    w = np.linspace(-0.02, 0.02, 401)
    for T in (0.0, 10.0, 100.0):
        got = ule.spectral_function(w, T, 1.2e-4, 0.01)
        assert np.allclose(got, ref.bath_spectral_function(w, T, 1.2e-4, 0.01), rtol=1e-12, atol=1e-20)
    J = ule.spectral_function(np.array([0.004, -0.004, 0.0]), 100.0, 1.2e-4, 0.01)
    assert J[0] / J[1] == pytest.approx(np.exp(-0.004 / (K_B * 100.0)), rel=1e-12)
    assert J[2] == pytest.approx(1.2e-4 * K_B * 100.0 / 0.01, rel=1e-12)
    assert ule.spectral_function(np.array([0.011, -0.011]), 100.0, 1.2e-4, 0.01).max() == 0.0


@pytest.mark.parametrize("n_p,n_a,components,T", [(2, 2, "xyz", 100.0), (3, 1, "xz", 10.0), (1, 2, "z", 30.0)])
def test_exact_jumps_match_reference(n_p, n_a, components, T):
    """L_i = L_i^(layer) (x) 1 equals the reference built on all 2^N spins."""
    model = model_of(n_p, n_a)
    bath = Bath(temperature=T, gamma=1e-3, omega_max=0.3, components=components)
    jumps = ule.jump_operators(model, bath)
    geom = ref.Geometry(30, 10, n_p, 3, n_a)
    want = ref.ule_jump_operators(geom, model.j, model.jz / model.j, T, 1e-3, 0.3, components)
    perm = to_reference_basis(n_p + n_a)
    for i in range(n_p + n_a):
        assert np.allclose(jumps.full(i), want[i][np.ix_(perm, perm)], atol=1e-12), i
    gamma = sum(w.conj().T @ w for w in want)
    assert np.allclose(jumps.full_decay(), gamma[np.ix_(perm, perm)], atol=1e-12)
    assert jumps.max_decay == pytest.approx(np.linalg.eigvalsh(gamma)[-1], rel=1e-10)


def test_series_coefficients_are_taylor_coefficients():
    a = ule.series_coefficients(50.0, 1e-3, 0.05, 10)
    kt = K_B * 50.0
    w = kt * np.linspace(-0.5, 0.5, 11)
    exact = np.sqrt(2 * np.pi * ule.spectral_function(w, 50.0, 1e-3, 0.05))
    assert np.allclose(np.polyval(a[::-1], w), exact, rtol=1e-7)
    with pytest.raises(ule.SeriesError):
        ule.series_coefficients(0.0, 1e-3, 0.05, 4)


def series_error(j: float, T: float, omega_max: float, order: int) -> float:
    model = model_of(3, 2, j)
    exact = ule.jump_operators(model, Bath(temperature=T, gamma=1e-3, omega_max=omega_max))
    series = ule.jump_operators(model, Bath(temperature=T, gamma=1e-3, omega_max=omega_max,
                                            jump_operators="series", series_order=order))
    return max(np.abs(e - s).max() / np.abs(e).max() for e, s in zip(exact.layer_ops, series.layer_ops))


def test_series_converges_inside_its_radius():
    """Weak exchange (Bohr frequencies 8 meV < omega_m = 0.05 eV and < 2 pi k_B T = 54 meV): converges."""
    errs = [series_error(1e-3, 100.0, 0.05, n) for n in (0, 2, 4, 8)]
    assert errs[-1] < 1e-6
    assert all(b < a for a, b in zip(errs, errs[1:]))


def test_series_fails_outside_its_radius():
    """Paper exchange J = 0.1 eV: Bohr frequencies ~0.4 eV >> omega_m and 2 pi k_B T; the series diverges."""
    errs = [series_error(0.1, 100.0, 0.01, n) for n in (2, 4, 8)]
    assert errs[0] > 1 and errs[-1] > errs[0]
    assert ule.series_radius(100.0, 0.01) == 0.01
    # the default cutoff alone already breaks it: every Bohr frequency below omega_m is needed
    assert series_error(0.02, 100.0, 0.01, 8) > 0.1
