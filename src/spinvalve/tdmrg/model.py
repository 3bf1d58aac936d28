"""TeNPy model of the spin valve with a multi-electron pulse (paper Eqs. 7 and 21).

Lattice
-------
One MPS site per chain site, in chain order. A chain site without a localized
spin is a spinful-fermion site (states empty, up, down, full: dimension 4); a
chain site that hosts a localized spin is the *grouped* site fermion (x) spin-1/2
(dimension 8). Grouping keeps every term of Eq. 7 nearest-neighbour or on-site
(hopping i -> i+1, in-layer exchange i -> i+1, sd exchange on-site), so

* TEBD applies directly (:class:`~tenpy.models.model.NearestNeighborModel`),
* two-site TDVP has no projection error from longer-range terms, which matters
  when the pulse enters a region that is still a product state (bond dimension 1),
* the half-chain cut after chain site ``L//2 - 1`` is simply MPS bond ``L//2``,
  with each localized spin on the same side as its chain site.

Both particle number ``N`` and ``2*S^z_tot`` (electrons plus localized spins) are
conserved charges.

Operators (Pauli convention of SPEC.md)
---------------------------------------
``Cu, Cdu, Cd, Cdd`` fermions (TeNPy's Jordan-Wigner conventions), ``Ntot``,
``sz = n_up - n_down`` and ``sp = c+_up c_down`` (so s^x = sp + sm, s^y = -i (sp - sm)),
``Tz = sigma^z`` and ``Tp = sigma^+ = (sigma^x + i sigma^y)/2`` of the localized spin,
``sd = s . S = 2 (sp Tm + sm Tp) + sz Tz``.

Hamiltonian (energies in eV)
----------------------------
H = -gamma sum_{i,sigma} (c+_{i sigma} c_{i+1 sigma} + h.c.) - J_sd sum_i s_i . S_i
    - sum_<ij> in a layer [2 J (S+_i S-_j + S-_i S+_j) + J_z S^z_i S^z_j]
and for t <= 0 (Eq. 21) additionally
    -V sum_{i < n_conf} n_i + h (sum_{i in FM_a} S^z_i - sum_{i in FM_p} S^z_i).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tenpy.linalg import np_conserved as npc
from tenpy.models.lattice import TrivialLattice
from tenpy.models.model import CouplingModel, MPOModel, NearestNeighborModel
from tenpy.networks.site import Site

from ..config import JobConfig

__all__ = ["ChainSpec", "ChainSite", "SpinValveChain", "CHARGE_INFO"]

#: Conserved charges of every site: electron number and twice the total S^z (spin-1/2 units).
CHARGE_INFO = npc.ChargeInfo([1, 1], ["N", "2*Sz"])


@dataclass(frozen=True)
class ChainSpec:
    """Declarative description of the multi-electron spin valve (Eq. 7 + Eq. 21).

    Attributes
    ----------
    n_sites : chain length L.
    hopping, j_sd, j, jz : gamma, J_sd, J, J_z (eV).
    spin_sites : chain site of every localized spin, FM_p first, increasing.
    spin_layers : 'p' or 'a' for every entry of ``spin_sites``.
    n_electrons, n_conf : electrons in the pulse; sites 0 .. n_conf-1 form the well.
    well_depth, pin_field : V and h (eV) of Eq. 21, active for t <= 0 only.
    """

    n_sites: int
    hopping: float
    j_sd: float
    j: float
    jz: float
    spin_sites: tuple[int, ...]
    spin_layers: tuple[str, ...]
    n_electrons: int
    n_conf: int
    well_depth: float
    pin_field: float

    @classmethod
    def from_config(cls, cfg: JobConfig) -> "ChainSpec":
        """Read the chain, layers, couplings and multi_electron sections of a job config."""
        me = cfg.multi_electron
        if me is None:
            raise ValueError("multi_electron: section missing; a tDMRG job needs it")
        lay, geo = cfg.layers, cfg.geometry
        return cls(n_sites=geo.n_sites, hopping=cfg.chain.hopping,
                   j_sd=cfg.couplings.j_sd, j=cfg.couplings.j, jz=cfg.couplings.jz,
                   spin_sites=geo.spin_sites,
                   spin_layers=("p",) * lay.n_p + ("a",) * lay.n_a,
                   n_electrons=me.n_electrons, n_conf=me.n_conf,
                   well_depth=me.well_depth, pin_field=me.pin_field)

    @property
    def cut_bond(self) -> int:
        """MPS bond of the half-chain cut: chain sites 0 .. L//2-1 on the left."""
        return self.n_sites // 2

    @property
    def layer_bonds(self) -> list[tuple[int, int]]:
        """Nearest-neighbour pairs (chain sites) of localized spins inside one layer."""
        pairs = []
        for k in range(len(self.spin_sites) - 1):
            if (self.spin_layers[k] == self.spin_layers[k + 1]
                    and self.spin_sites[k + 1] == self.spin_sites[k] + 1):
                pairs.append((self.spin_sites[k], self.spin_sites[k + 1]))
        return pairs

    @property
    def sz_total(self) -> float:
        """Total S^z (Pauli units) of the pulse (half up, half down) plus pinned layers."""
        return float(self.spin_layers.count("p") - self.spin_layers.count("a"))


def _fermion_ops() -> dict[str, np.ndarray]:
    """Dense operators of one spinful-fermion site, basis (empty, up, down, full).

    Same matrices and Jordan-Wigner convention as TeNPy's ``SpinHalfFermionSite``:
    ``Cd`` contains the on-site string (-1)^{n_up}.
    """
    nu = np.diag([0.0, 1.0, 0.0, 1.0])
    nd = np.diag([0.0, 0.0, 1.0, 1.0])
    jwu = np.diag(1.0 - 2.0 * np.diag(nu))
    jwd = np.diag(1.0 - 2.0 * np.diag(nd))
    cu = np.zeros((4, 4))
    cu[0, 1] = cu[2, 3] = 1.0
    cd_nojw = np.zeros((4, 4))
    cd_nojw[0, 2] = cd_nojw[1, 3] = 1.0
    cd = jwu @ cd_nojw
    sp = cu.T @ cd  # c+_up c_down
    return {"Cu": cu, "Cdu": cu.T.copy(), "Cd": cd, "Cdd": cd.T.copy(), "JW": jwu @ jwd,
            "Nu": nu, "Nd": nd, "Ntot": nu + nd, "sz": nu - nd, "sp": sp, "sm": sp.T.copy()}


class ChainSite(Site):
    """One chain site: a spinful fermion, grouped with a localized spin-1/2 if ``has_spin``.

    Basis: fermion states (empty, up, down, full), times (up, down) of the
    localized spin when present (fermion index major). Charges ``N``, ``2*Sz``
    where Sz counts electrons and the localized spin.
    """

    def __init__(self, has_spin: bool):
        self.has_spin = bool(has_spin)
        f = _fermion_ops()
        n_f = [0, 1, 1, 2]
        s2_f = [0, 1, -1, 0]
        f_labels = ["empty", "up", "down", "full"]
        if has_spin:
            i2 = np.eye(2)
            ops = {name: np.kron(op, i2) for name, op in f.items()}
            tz = np.diag([1.0, -1.0])
            tp = np.array([[0.0, 1.0], [0.0, 0.0]])
            i4 = np.eye(4)
            ops["Tz"] = np.kron(i4, tz)
            ops["Tp"] = np.kron(i4, tp)
            ops["Tm"] = np.kron(i4, tp.T)
            ops["sd"] = (2.0 * (ops["sp"] @ ops["Tm"] + ops["sm"] @ ops["Tp"])
                         + ops["sz"] @ ops["Tz"])
            charges = [[n, s2 + t] for n, s2 in zip(n_f, s2_f) for t in (1, -1)]
            labels = [f"{fl}_{sl}" for fl in f_labels for sl in ("up", "down")]
        else:
            ops = f
            charges = [[n, s2] for n, s2 in zip(n_f, s2_f)]
            labels = f_labels
        leg = npc.LegCharge.from_qflat(CHARGE_INFO, charges)
        jw = ops.pop("JW")
        Site.__init__(self, leg, labels, sort_charge=True, JW=jw, **ops)
        self.need_JW_string |= {"Cu", "Cdu", "Cd", "Cdd", "JW"}
        self.charge_to_JW_parity = np.array([1, 0])

    def __repr__(self) -> str:
        return f"ChainSite(has_spin={self.has_spin})"


class SpinValveChain(CouplingModel, MPOModel, NearestNeighborModel):
    """The spin valve of Eq. 7, with the confining well and pinning fields of Eq. 21 if
    ``equilibrium`` (the t <= 0 Hamiltonian whose ground state starts the pulse).

    Parameters
    ----------
    spec : ChainSpec
    equilibrium : bool
        Include the well ``-V sum_{i<n_conf} n_i`` and the pinning fields (t <= 0).
    """

    def __init__(self, spec: ChainSpec, equilibrium: bool):
        self.spec = spec
        self.equilibrium = bool(equilibrium)
        spin_of = dict(zip(spec.spin_sites, spec.spin_layers))
        self.spin_layer_of = spin_of
        sites = [ChainSite(i in spin_of) for i in range(spec.n_sites)]
        lat = TrivialLattice(sites, bc="open", bc_MPS="finite")
        # A 1D chain: every site is its own "ring" (TeNPy's sanity check for 2D-like
        # unit cells would otherwise refuse more than 18 sites in the single unit cell).
        lat.N_sites_per_ring = 1
        CouplingModel.__init__(self, lat)
        self._add_terms(spec, spin_of)
        MPOModel.__init__(self, lat, self.calc_H_MPO())
        NearestNeighborModel.__init__(self, lat, self.calc_H_bond())

    def _add_terms(self, spec: ChainSpec, spin_of: dict[int, str]) -> None:
        L = spec.n_sites
        for i in range(L - 1):
            for cdag, c in (("Cdu", "Cu"), ("Cdd", "Cd")):
                self.add_local_term(-spec.hopping, [(cdag, [0, i]), (c, [0, i + 1])],
                                    category=f"hop {cdag}")
                self.add_local_term(-spec.hopping, [(cdag, [0, i + 1]), (c, [0, i])],
                                    category=f"hop {cdag}")
        for i in spin_of:
            self.add_onsite_term(-spec.j_sd, i, "sd", category="sd")
        for i, j in spec.layer_bonds:
            self.add_coupling_term(-2.0 * spec.j, i, j, "Tp", "Tm", category="XY")
            self.add_coupling_term(-2.0 * spec.j, i, j, "Tm", "Tp", category="XY")
            self.add_coupling_term(-spec.jz, i, j, "Tz", "Tz", category="ZZ")
        if self.equilibrium:
            for i in range(min(spec.n_conf, L)):
                self.add_onsite_term(-spec.well_depth, i, "Ntot", category="well")
            for i, layer in spin_of.items():
                sign = 1.0 if layer == "a" else -1.0
                self.add_onsite_term(sign * spec.pin_field, i, "Tz", category="pin")

    def initial_product_state(self) -> list[str]:
        """Product state in the target charge sector: electrons in the well, alternating
        up and down (doubly occupied if they do not fit singly), FM_p up, FM_a down."""
        spec = self.spec
        n_up = spec.n_electrons // 2
        occ = ["empty"] * spec.n_sites
        if spec.n_electrons <= spec.n_conf:
            for k in range(spec.n_electrons):
                occ[k] = "up" if k % 2 == 0 else "down"
        else:
            n_full = spec.n_electrons - spec.n_conf
            for k in range(spec.n_conf):
                occ[k] = "full" if k < n_full else ("up" if (k - n_full) % 2 == 0 else "down")
        n_u = sum(o in ("up", "full") for o in occ)
        if n_u != n_up or sum(o in ("down", "full") for o in occ) != n_up:
            raise ValueError("multi_electron.n_electrons: cannot place half up, half down "
                             "electrons in the well")
        labels = []
        for i, o in enumerate(occ):
            layer = self.spin_layer_of.get(i)
            labels.append(o if layer is None else f"{o}_{'up' if layer == 'p' else 'down'}")
        return labels
