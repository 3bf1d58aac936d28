"""Ensemble members of the initial state (Eqs. 10 and 12, SPEC "Initial states").

rho(0) = |Phi><Phi| (x) (|up><up| + |down><down|)/2 (x) rho_spins, with rho_spins
either the T = 0 product state (FM_p all up, FM_a all down) or the Gibbs state
exp(-beta (H_FM + H_pin)) / Z. It is represented as pure members
(weight, electron spin, localized-spin vector in one charge block K): the two
electron spins times the eigenstates |n> of H_FM + H_pin, which conserves the
total localized S^z, so every member lies in one S^z_tot sector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import K_B
from .config import MAX_GIBBS_BLOCK, JobConfig
from .hamiltonian import Model



@dataclass(frozen=True)
class Member:
    weight: float
    e_up: bool
    K: int                    # localized up spins
    spins: np.ndarray         # amplitudes over the configurations of charge block K

    def sector(self, n_spins: int) -> int:
        return (1 if self.e_up else -1) + 2 * self.K - n_spins


@dataclass(frozen=True)
class Ensemble:
    members: tuple[Member, ...]
    discarded_weight: float   # Gibbs weight dropped by the cutoff (before renormalising)
    n_spin_states: int        # localized-spin states kept (members / 2)


def packet(cfg: JobConfig) -> np.ndarray:
    """<x|Phi> = C exp(i k x - dk^2 (x - x0)^2 / 4) on sites x = 0..L-1 (Eq. 11), normalized.

    L and x0 are those of the whole chain (:attr:`JobConfig.geometry`, leads included)."""
    geo, p = cfg.geometry, cfg.pulse
    x = np.arange(geo.n_sites, dtype=float)
    phi = np.exp(1j * p.k * x - p.dk ** 2 * (x - geo.x0) ** 2 / 4)
    return phi / np.linalg.norm(phi)


def pinning_diagonal(model: Model, K: int) -> np.ndarray:
    """H_pin = h (sum_{FM_a} S^z - sum_{FM_p} S^z) / h on the configurations of block K."""
    s = model.layers.block(K).spins.astype(float)
    return s[:, model.n_p:].sum(axis=1) - s[:, :model.n_p].sum(axis=1)


def spin_states(model: Model, cfg: JobConfig) -> tuple[list[tuple[float, int, np.ndarray]], float]:
    """[(weight, K, vector)] of the localized spins and the discarded Gibbs weight."""
    lay = model.layers
    T = cfg.temperature.gibbs
    if T == 0.0:
        K = lay.reference_charge
        block = lay.block(K)
        v = np.zeros(block.size, complex)
        full_p = (1 << lay.n_p) - 1
        v[block.index(np.array([full_p]), np.array([0]))[0]] = 1.0
        return [(1.0, K, v)], 0.0
    beta = 1.0 / (K_B * T)
    levels = []
    for K in range(lay.n_spins + 1):
        block = lay.block(K)
        if block.size > MAX_GIBBS_BLOCK:
            raise ValueError(f"temperature.gibbs: charge block of {block.size} states is too large "
                             f"to diagonalise (limit {MAX_GIBBS_BLOCK}); use fewer spins")
        h = model.block_hamiltonian(block).toarray() + cfg.temperature.h_pin * np.diag(
            pinning_diagonal(model, K))
        e, u = np.linalg.eigh(h)
        levels += [(e[n], K, u[:, n].astype(complex)) for n in range(len(e))]
    e0 = min(l[0] for l in levels)
    w = np.array([np.exp(-beta * (l[0] - e0)) for l in levels])
    w /= w.sum()
    keep = w >= cfg.temperature.weight_cutoff
    discarded = float(w[~keep].sum())
    kept = [(float(w[n] / w[keep].sum()), levels[n][1], levels[n][2])
            for n in np.nonzero(keep)[0]]
    return kept, discarded


def build_ensemble(model: Model, cfg: JobConfig) -> Ensemble:
    states, discarded = spin_states(model, cfg)
    members = tuple(Member(0.5 * w, e_up, K, v) for w, K, v in states for e_up in (True, False))
    return Ensemble(members, discarded, len(states))
