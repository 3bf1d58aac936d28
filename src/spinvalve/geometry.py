"""Chain geometry: lead sites, positions on the whole chain, chain-end reflection times.

The chain's ends are not physics (SPEC "Finite chain"): the paper's leads are
semi-infinite. Electron amplitude moves at most at the largest group velocity
of the tight-binding band, v_max = 2 gamma a / hbar (3.04 sites/fs for
gamma = 1 eV), so amplitude reflected by a chain end cannot reach a layer
before a time fixed by the geometry alone: :func:`reflection_time`. Up to then
a finite chain and semi-infinite leads give the same dynamics (up to the
packet's tails beyond its front, below :data:`FRONT_WIDTHS` widths, and the
lattice light cone's super-exponentially small leakage).

``chain.leads`` chooses the chain a job runs on:

* ``none``: the chain is exactly ``chain.n_sites`` long (the paper's literal
  geometry, L = 201, FM_p from site 43, packet at x0 = 20);
* ``auto``: lead sites are added at the ends that need them, so that
  reflected amplitude cannot reach a layer before ``time.t_end``. Added left
  sites shift the layers and the packet together, keeping the paper's layers,
  spacer and packet-to-FM_p distance. Multi-electron (tDMRG) jobs keep their
  chain: the well sits against the left end and S_half cuts the chain in the
  middle; their reflection time is recorded and marked.

Positions in job files (``site``, the packet centre) count sites on the whole chain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import HBAR

#: The packet's front lies this many widths 1/dk ahead of its centre x0 (and its rear as
#: far behind): beyond it |Phi(x)|^2 < exp(-12.5) = 4e-6 of its peak, 3e-7 of the weight.
FRONT_WIDTHS = 5.0


def max_group_velocity(hopping: float) -> float:
    """v_max = 2 gamma / hbar in sites per fs (band -2 gamma cos k, at k = pi/2)."""
    return 2.0 * abs(hopping) / HBAR


def reflection_time(n_sites: int, first_spin: int, last_spin: int, front: float,
                    hopping: float, rear: float | None = None) -> float:
    """Earliest time (fs) at which amplitude reflected by a chain end can reach a layer.

    Paths at the largest group velocity :func:`max_group_velocity`, from the
    electron cloud's front (the packet's front, or the edge of the tDMRG well):

    * left end: front -> first localized spin (reflected by FM_p) -> site 0 ->
      first localized spin: ``(first - front) + 2 first`` sites;
    * right end: front -> site L-1 (transmitted through both layers) -> last
      localized spin: ``(L-1 - front) + (L-1 - last)`` sites;
    * if the cloud also moves left (``rear`` given: the rear edge of a packet
      with negative-velocity momenta), rear -> site 0 -> first spin:
      ``rear + first`` sites.

    Parameters
    ----------
    n_sites : chain length L (sites 0 .. L-1).
    first_spin, last_spin : chain sites of the first FM_p and the last FM_a spin.
    front : right edge of the electron cloud at t = 0 (site, may be fractional).
    hopping : gamma (eV).
    rear : left edge of the left-moving part of the cloud, or None if it has none.

    Returns
    -------
    float
        The time in fs; ``inf`` without localized spins.
    """
    if last_spin < first_spin:
        return math.inf
    paths = [max(first_spin - front, 0.0) + 2.0 * first_spin,
             max(n_sites - 1 - front, 0.0) + (n_sites - 1 - last_spin)]
    if rear is not None:
        paths.append(max(rear, 0.0) + first_spin)
    return min(paths) / max_group_velocity(hopping)


def packet_edges(x0: float, k: float, dk: float) -> tuple[float, float | None]:
    """(front, rear) of the Gaussian packet of Eq. 11 for :func:`reflection_time`.

    The front is :data:`FRONT_WIDTHS` position widths 1/dk ahead of x0. The
    momentum amplitude is exp(-(q - k)^2 / dk^2), of width dk/2 in |.|^2; the
    rear (as far behind x0) counts only if the momenta within
    :data:`FRONT_WIDTHS` of those widths include negative group velocities
    (sin q < 0), i.e. a packet not moving right as a whole (k far from pi/2).
    """
    front = x0 + FRONT_WIDTHS / dk
    q = np.linspace(k - FRONT_WIDTHS * dk / 2, k + FRONT_WIDTHS * dk / 2, 65)
    moves_left = bool((np.sin(q) < 0).any())
    return front, (x0 - FRONT_WIDTHS / dk if moves_left else None)


@dataclass(frozen=True)
class Geometry:
    """Where everything sits on the whole chain (leads included), 0-based sites."""

    n_sites: int                    #: L of the whole chain
    lead_left: int                  #: sites added before the configured chain
    lead_right: int                 #: sites added after it
    spin_sites: tuple[int, ...]     #: every localized spin, FM_p first
    x0: float                       #: packet centre
    reflection_time: float          #: fs, :func:`reflection_time` of this chain

    @property
    def fm_p_start(self) -> int:
        return self.spin_sites[0] if self.spin_sites else self.lead_left

    @property
    def lead_sites(self) -> tuple[int, int]:
        return self.lead_left, self.lead_right


def _edges(cfg, x0: float) -> tuple[float, float | None]:
    """Front and rear of the electron cloud: the packet, or the tDMRG well (no rear:
    its left movers start against site 0)."""
    me = cfg.multi_electron
    if me is not None:
        return float(me.n_conf - 1), None
    return packet_edges(x0, cfg.pulse.k, cfg.pulse.dk)


def leads_needed(cfg) -> tuple[int, int]:
    """(left, right) lead sites that put :func:`reflection_time` beyond ``time.t_end``
    and the whole packet on the chain.

    Shifting the device by s sites lengthens the left path by 2 s; adding r
    sites on the right lengthens the right path by 2 r. One site of margin
    makes the inequality strict. The left lead also holds the packet's tail:
    x0 - :data:`FRONT_WIDTHS` / dk >= 0, so the initial state is the Gaussian
    of Eq. 11, not one cut off by site 0.
    """
    lay, chain = cfg.layers, cfg.chain
    if lay.n_spins == 0 or cfg.multi_electron is not None:
        return 0, 0
    reach = max_group_velocity(chain.hopping) * cfg.time.t_end     # sites
    sites = lay.sites
    front, rear = _edges(cfg, cfg.pulse.x0)
    left_paths = [max(sites[0] - front, 0.0) + 2.0 * sites[0]]
    if rear is not None:
        left_paths.append(max(rear, 0.0) + sites[0])
    right_path = max(chain.n_sites - 1 - front, 0.0) + (chain.n_sites - 1 - sites[-1])
    # the rear path grows by 2 s too (rear and first spin both move by s)
    left = max(0, math.floor((reach - min(left_paths)) / 2) + 1,
               math.ceil(FRONT_WIDTHS / cfg.pulse.dk - cfg.pulse.x0))
    right = max(0, math.floor((reach - right_path) / 2) + 1)
    return left, right


def geometry(cfg) -> Geometry:
    """The whole chain of a job config (``chain.leads`` applied)."""
    lay, chain = cfg.layers, cfg.chain
    left, right = leads_needed(cfg) if chain.leads == "auto" else (0, 0)
    n_sites = chain.n_sites + left + right
    spin_sites = tuple(s + left for s in lay.sites)
    x0 = cfg.pulse.x0 + left
    front, rear = _edges(cfg, x0)
    t_r = (reflection_time(n_sites, spin_sites[0], spin_sites[-1], front, chain.hopping, rear)
           if spin_sites else math.inf)
    return Geometry(n_sites, left, right, spin_sites, x0, t_r)
