"""spinvalve.ensemble: the initial members (Eqs. 10-12) against a dense diagonalisation of
H_FM + H_pin over all 2^N configurations (tests/reference.py)."""

from __future__ import annotations

import numpy as np
import pytest

import reference as ref
from spinvalve import K_B
from spinvalve.config import load_config
from spinvalve.ensemble import build_ensemble, packet, spin_states
from spinvalve.hamiltonian import Model


def case(n_p, n_a, T, cutoff=0.0, h_pin=0.01):
    cfg = load_config({"chain": {"n_sites": 14}, "layers": {"n_p": n_p, "n_a": n_a,
                       "fm_p_start": 4, "spacer": 2}, "pulse": {"x0": 2.0},
                       "temperature": {"gibbs": T, "weight_cutoff": cutoff, "h_pin": h_pin}})
    return cfg, Model.from_config(cfg)


def to_full(model, K, v):
    """Block-K amplitudes -> 2^N vector in the reference order (spin 0 first, bit set = down)."""
    N, n_p = model.n_spins, model.n_p
    cp, ca = model.layers.block(K).bits
    s = np.zeros(len(cp), np.int64)
    for i in range(N):
        up = ((cp >> i) & 1) if i < n_p else ((ca >> (i - n_p)) & 1)
        s |= (1 - up) << (N - 1 - i)
    out = np.zeros(2 ** N, complex)
    out[s] = v
    return out


@pytest.mark.parametrize("n_p,n_a,T", [(2, 2, 100.0), (2, 2, 1000.0), (3, 2, 300.0)])
def test_gibbs_weights_are_boltzmann_over_the_dense_spectrum(n_p, n_a, T):
    cfg, model = case(n_p, n_a, T)
    kept, discarded = spin_states(model, cfg)
    geo = ref.Geometry(14, 4, n_p, 2, n_a)
    E, _, _ = ref.gibbs_spectrum(geo, model.j, model.jz / model.j, cfg.temperature.h_pin)
    w_ref = np.exp(-(E - E[0]) / (K_B * T))
    w_ref /= w_ref.sum()
    assert discarded == 0.0 and len(kept) == 2 ** (n_p + n_a)
    w = np.array([k[0] for k in kept])
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(np.sort(w), np.sort(w_ref), atol=1e-12)
    # each kept vector is a normalised eigenvector of H_FM + H_pin whose energy gives its weight
    H = ref.heisenberg_fm(geo, model.j, model.jz / model.j) + ref.pinning_hamiltonian(
        geo, cfg.temperature.h_pin)
    Z = np.exp(-(E - E[0]) / (K_B * T)).sum()
    for weight, K, v in kept:
        f = to_full(model, K, v)
        assert np.linalg.norm(f) == pytest.approx(1.0, abs=1e-12)
        e = np.vdot(f, H @ f).real
        np.testing.assert_allclose(H @ f, e * f, atol=1e-10)
        assert weight == pytest.approx(np.exp(-(e - E[0]) / (K_B * T)) / Z, rel=1e-9, abs=1e-15)
    # rho_spins = sum w |v><v| is exp(-beta H) / Z
    rho = sum(w * np.outer(to_full(model, K, v), to_full(model, K, v).conj()) for w, K, v in kept)
    np.testing.assert_allclose(rho, ref.gibbs_rho(geo, model.j, model.jz / model.j,
                                                  cfg.temperature.h_pin, T), atol=1e-10)


def test_weight_cutoff_drops_members_and_records_the_discarded_weight():
    cfg, model = case(2, 2, 300.0, cutoff=1e-2)
    kept, discarded = spin_states(model, cfg)
    geo = ref.Geometry(14, 4, 2, 2, 2)
    E, _, _ = ref.gibbs_spectrum(geo, model.j, model.jz / model.j, 0.01)
    w = np.exp(-(E - E[0]) / (K_B * 300.0))
    w /= w.sum()
    assert len(kept) == (w >= 1e-2).sum() < 16
    assert discarded == pytest.approx(w[w < 1e-2].sum(), abs=1e-12)
    assert sum(k[0] for k in kept) == pytest.approx(1.0, abs=1e-12)


def test_zero_temperature_members_are_the_aligned_product_state_with_both_electron_spins():
    cfg, model = case(3, 2, 0.0)
    ens = build_ensemble(model, cfg)
    assert len(ens.members) == 2 and ens.n_spin_states == 1 and ens.discarded_weight == 0.0
    assert {m.e_up for m in ens.members} == {True, False}
    geo = ref.Geometry(14, 4, 3, 2, 2)
    want = ref.spin_basis_state(geo.reference_config)        # FM_p up, FM_a down
    for m in ens.members:
        assert m.weight == 0.5 and m.K == 3
        np.testing.assert_allclose(to_full(model, m.K, m.spins), want)
        assert m.sector(5) == (1 if m.e_up else -1) + 2 * 3 - 5


def test_gibbs_ensemble_members_pair_the_electron_spins():
    cfg, model = case(2, 2, 100.0, cutoff=1e-3)
    ens = build_ensemble(model, cfg)
    assert len(ens.members) == 2 * ens.n_spin_states
    assert sum(m.weight for m in ens.members) == pytest.approx(1.0, abs=1e-12)
    ups = [m for m in ens.members if m.e_up]
    downs = [m for m in ens.members if not m.e_up]
    for u, d in zip(ups, downs):
        assert u.weight == d.weight and u.K == d.K and np.array_equal(u.spins, d.spins)


def test_packet_is_the_normalised_gaussian_of_eq_11():
    cfg, _ = case(1, 1, 0.0)
    np.testing.assert_allclose(packet(cfg), ref.gaussian_orbital(14, cfg.geometry.x0, cfg.pulse.k,
                                                                 cfg.pulse.dk), atol=1e-15)
