"""Configuration bases of the localized spins and S^z_tot sectors (SPEC "Model").

A localized configuration is a pair of bit patterns ``(c_p, c_a)``, bit ``i`` set
when spin ``i`` of the layer points up (Pauli S^z = +1). Configurations with ``K``
up spins in total form a *charge block*; inside it they are grouped by layer into
*sub-blocks* ``(k_p, k_a)``, ``k_p + k_a = K``, and ordered ``i_p``-major, so that a
sub-block of any amplitude array reshapes to ``[..., i_p, i_a]``.

One ensemble member lives in one sector of fixed S^z_tot = s^z_e + sum_i S^z_i
(Eq. 28, Pauli units). Its spin part is the direct sum
``(e up) x block(K_up)  +  (e down) x block(K_up + 1)`` and its state is the
array ``psi[x, s]`` over chain sites ``x`` and spin-part index ``s``. For 10+10
spins on L = 201 sites that is 201 x C(21, 11) = 70.9 million amplitudes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from math import comb

import numpy as np


class LayerBasis:
    """All bit patterns of ``n`` spins, grouped by the number ``k`` of up spins.

    ``patterns[k]`` lists the patterns with ``k`` bits in increasing order and
    ``rank[c]`` is the position of pattern ``c`` inside its list (combinatorial
    number system), so ranking and unranking are single array look-ups.
    """

    def __init__(self, n: int):
        if not 0 <= n <= 16:
            raise ValueError(f"layer of {n} spins is outside 0..16")
        self.n = n
        allc = np.arange(1 << n, dtype=np.int64)
        pop = np.zeros(1 << n, dtype=np.int64)
        for i in range(n):
            pop += (allc >> i) & 1
        self.patterns = [allc[pop == k] for k in range(n + 1)]
        self.rank = np.empty(1 << n, dtype=np.int64)
        for pats in self.patterns:
            self.rank[pats] = np.arange(len(pats))

    def size(self, k: int) -> int:
        return comb(self.n, k) if 0 <= k <= self.n else 0


@dataclass(frozen=True)
class SubBlock:
    k_p: int
    k_a: int
    offset: int
    n_pc: int  # configurations of FM_p with k_p ups
    n_ac: int  # configurations of FM_a with k_a ups

    @property
    def size(self) -> int:
        return self.n_pc * self.n_ac

    @property
    def slice(self) -> slice:
        return slice(self.offset, self.offset + self.size)


@dataclass(frozen=True)
class ChargeBlock:
    """Localized configurations with ``K`` up spins, grouped by layer."""

    layers: "SpinLayers"
    K: int
    subblocks: tuple[SubBlock, ...] = field(repr=False)

    @property
    def size(self) -> int:
        return sum(sb.size for sb in self.subblocks)

    @cached_property
    def bits(self) -> tuple[np.ndarray, np.ndarray]:
        """(c_p, c_a) bit patterns of every configuration in block order."""
        lp, la = self.layers.p, self.layers.a
        cp, ca = [], []
        for sb in self.subblocks:
            pp, aa = lp.patterns[sb.k_p], la.patterns[sb.k_a]
            cp.append(np.repeat(pp, len(aa)))
            ca.append(np.tile(aa, len(pp)))
        if not cp:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(cp), np.concatenate(ca)

    @cached_property
    def spins(self) -> np.ndarray:
        """Pauli S^z of every spin (FM_p first), shape (size, N)."""
        cp, ca = self.bits
        n_p, n_a = self.layers.n_p, self.layers.n_a
        sp = ((cp[:, None] >> np.arange(n_p)) & 1) if n_p else np.zeros((len(cp), 0), np.int64)
        sa = ((ca[:, None] >> np.arange(n_a)) & 1) if n_a else np.zeros((len(ca), 0), np.int64)
        return (2 * np.concatenate([sp, sa], axis=1) - 1).astype(np.int8)

    def index(self, c_p: np.ndarray, c_a: np.ndarray) -> np.ndarray:
        """Block index of configurations (must have K ups in total)."""
        lp, la = self.layers.p, self.layers.a
        c_p, c_a = np.asarray(c_p), np.asarray(c_a)
        k_p = _popcount(c_p)
        offsets = np.full(self.layers.n_p + 1, -1, dtype=np.int64)
        n_ac = np.zeros(self.layers.n_p + 1, dtype=np.int64)
        for sb in self.subblocks:
            offsets[sb.k_p], n_ac[sb.k_p] = sb.offset, sb.n_ac
        if np.any(k_p + _popcount(c_a) != self.K) or np.any(offsets[k_p] < 0):
            raise ValueError("configuration outside charge block")
        return offsets[k_p] + lp.rank[c_p] * n_ac[k_p] + la.rank[c_a]


def _popcount(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, dtype=np.int64)
    out = np.zeros_like(c)
    for i in range(32):
        out += (c >> i) & 1
    return out


class SpinLayers:
    """The two layers FM_p (n_p spins) and FM_a (n_a spins) and their charge blocks."""

    def __init__(self, n_p: int, n_a: int):
        self.n_p, self.n_a = n_p, n_a
        self.p, self.a = LayerBasis(n_p), LayerBasis(n_a)
        self._blocks: dict[int, ChargeBlock] = {}

    @property
    def n_spins(self) -> int:
        return self.n_p + self.n_a

    def block(self, K: int) -> ChargeBlock:
        if K not in self._blocks:
            subs, off = [], 0
            for k_p in range(max(0, K - self.n_a), min(self.n_p, K) + 1):
                sb = SubBlock(k_p, K - k_p, off, self.p.size(k_p), self.a.size(K - k_p))
                subs.append(sb)
                off += sb.size
            self._blocks[K] = ChargeBlock(self, K, tuple(subs))
        return self._blocks[K]

    @property
    def reference_charge(self) -> int:
        """K of the T = 0 configuration (FM_p all up, FM_a all down)."""
        return self.n_p


class SpinSpace:
    """Spin part of a member's state: a direct sum of parts (electron spin, charge block K).

    The part ``(e_up, K)`` holds the configurations of :class:`ChargeBlock` ``K`` with
    the electron spin up (``e_up``) or down; parts are stored one after another.
    A closed-system member needs one S^z_tot sector (:class:`Sector`, two parts);
    a state driven by spin-flipping baths needs every part (:meth:`full`).
    """

    def __init__(self, layers: SpinLayers, parts: tuple[tuple[bool, int], ...]):
        self.layers = layers
        self.parts = tuple((bool(e), int(K)) for e, K in parts
                           if 0 <= K <= layers.n_spins)
        self.offsets: dict[tuple[bool, int], int] = {}
        off = 0
        for key in self.parts:
            self.offsets[key] = off
            off += layers.block(key[1]).size
        self.dim = off

    @classmethod
    def full(cls, layers: SpinLayers) -> "SpinSpace":
        """Every part: electron up and down times all charge blocks (2^(N+1) states)."""
        return cls(layers, tuple((e, K) for e in (True, False) for K in range(layers.n_spins + 1)))

    def block(self, e_up: bool, K: int) -> ChargeBlock | None:
        return self.layers.block(K) if (e_up, K) in self.offsets else None

    def slice(self, e_up: bool, K: int) -> slice:
        off = self.offsets[(e_up, K)]
        return slice(off, off + self.layers.block(K).size)

    def iter_parts(self):
        """(e_up, block, slice) of every part, in storage order."""
        for e_up, K in self.parts:
            yield e_up, self.layers.block(K), self.slice(e_up, K)

    def __eq__(self, other):
        return (isinstance(other, SpinSpace) and self.layers is other.layers
                and self.parts == other.parts)

    def __hash__(self):
        return hash((id(self.layers), self.parts))


class Sector(SpinSpace):
    """One S^z_tot sector: (e up) x block(K_up) + (e down) x block(K_up + 1).

    ``sz_total`` is the Pauli eigenvalue M = s^z_e + sum_i S^z_i; the e-up part has
    K_up = (M - 1 + N) / 2 localized up spins. Parts out of range are left out.
    """

    def __init__(self, layers: SpinLayers, sz_total: int):
        if (sz_total - 1 + layers.n_spins) % 2:
            raise ValueError(f"S^z_tot = {sz_total} has the wrong parity for "
                             f"{layers.n_spins} localized spins plus one electron")
        self.sz_total = sz_total
        k_up = (sz_total - 1 + layers.n_spins) // 2
        super().__init__(layers, ((True, k_up), (False, k_up + 1)))


def sector_of(n_spins: int, e_up: bool, K: int) -> int:
    """S^z_tot (Pauli) of electron spin ``e_up`` with ``K`` of ``n_spins`` spins up."""
    return (1 if e_up else -1) + 2 * K - n_spins


def sector_dimension(n_sites: int, n_p: int, n_a: int, sz_total: int | None = None) -> int:
    """Number of amplitudes of one member's state (orbital x spin part).

    Default sector: electron up on the T = 0 configuration.
    """
    layers = SpinLayers(n_p, n_a)
    if sz_total is None:
        sz_total = sector_of(n_p + n_a, True, layers.reference_charge)
    return n_sites * Sector(layers, sz_total).dim
