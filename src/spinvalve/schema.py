"""The job files' variables: name -> dims, units, long_name (and further attributes), per family.

Every writer of a job file takes its variables' dims and attributes from here
(:func:`variable`): the closed-system engine (``closed``: T = 0 and Gibbs), the
bath trajectories (``bath``) and tDMRG (``tdmrg``); every family's file also
carries ``reflection_time`` (:func:`spinvalve.simulate.with_geometry`).

The families share names whose meaning differs (``norm``: of the ensemble state,
the trajectory-averaged state or the MPS), so each has its own table. ``site``
is the chain site of each localized spin (dimension ``spin``) in the closed and
bath files; a tDMRG file also has per-site profiles and names the chain site
``site`` (its own dimension) and the spins' sites ``spin_site``. The figure files'
description check (:mod:`spinvalve.figures.aggregate`) still asks only for units and
long_name on every variable; it does not look names up here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .dense import DERIVED

#: percentiles of the bath files' bootstrap bands over trajectory batches
BAND_PERCENTILES = (2.5, 97.5)


@dataclass(frozen=True)
class Var:
    """One variable or coordinate of a job file."""
    dims: tuple[str, ...]
    units: str | None
    long_name: str | None
    extra: dict = field(default_factory=dict)   # further fixed attributes (comment, note)
    dynamic: tuple[str, ...] = ()               # attributes the writer adds per job

    def attrs(self, **dynamic) -> dict:
        """The attributes as written: units, long_name, the fixed extras, then ``dynamic``."""
        if set(dynamic) != set(self.dynamic):
            raise ValueError(f"attributes {sorted(dynamic)} given, {sorted(self.dynamic)} declared")
        out = {} if self.units is None else {"units": self.units}
        if self.long_name is not None:
            out["long_name"] = self.long_name
        return {**out, **self.extra, **dynamic}


T = ("time",)

#: every family: the chain-end reflection time (with_geometry)
EVERY = {
    "reflection_time": Var((), "fs", "earliest time at which amplitude reflected by a chain end "
                           "can reach a layer", {
                               "comment": "spinvalve.geometry.reflection_time: paths at the largest "
                                          "group velocity 2 gamma / hbar from the electron cloud's "
                                          "front; later, the finite chain's ends, not the device, "
                                          "can change the observables"}),
    "time": Var(T, "fs", "time"),
}

#: observables of rho_FM, the same in the closed and the bath files
RHO_FM = {
    "electron_spin": Var(("time", "component"), "1", "electron spin <s_e> (Pauli), Eq. 23"),
    "spin_expectation": Var(("time", "spin", "component"), "1", "localized spin <S_i> (Pauli)"),
    "entropy_p": Var(T, "1", "von Neumann entropy of FM_p (natural log, nats)"),
    "entropy_a": Var(T, "1", "von Neumann entropy of FM_a (natural log, nats)"),
    "entropy_pa": Var(T, "1", "von Neumann entropy of FM_p u FM_a (natural log, nats)"),
    "mutual_information": Var(T, "1", "mutual information I(FM_p|FM_a), Eq. 5 (nats)"),
    "log_negativity": Var(T, "1", "mutual logarithmic negativity E_N, Eq. 2"),
    "magnon_probability": Var(("time", "magnons"), "1", "probability of m flipped spins, Eq. 25"),
    "w_state_probability": Var(T, "1", "W-state weight <W|rho_FM|W>"),
    "qfi_bound": Var(("time", "k"), "1", "QFI density bound f_Q, Eq. 29"),
    "qfi_exact": Var(("time", "k"), "1", "exact mixed-state QFI density"),
    "trace_rho": Var(T, "1", "trace of rho_FM"),
    "hermiticity_error": Var(T, "1", "max |rho_FM - rho_FM^dag|"),
    "k": Var(("k",), "1", "momentum transfer k (radians per lattice site)"),
}

CLOSED = {
    **EVERY, **RHO_FM,
    "trace_norm_by_imbalance": Var(("time", "charge_imbalance"), "1",
                                   "trace norm of the charge-imbalance block of rho_FM^{T_a}"),
    "norm": Var(T, "1", "norm of the ensemble state"),
    "sz_total": Var(T, "1", "total S^z (Pauli), Eq. 28"),
    "energy": Var(T, "eV", "energy <H>"),
    "spin": Var(("spin",), "1", "localized spin index (FM_p first)"),
    "site": Var(("spin",), "1", "chain site (0-based)"),
    "layer": Var(("spin",), None, "layer (p: FM_p, a: FM_a)"),
    "component": Var(("component",), None, "spin component"),
    "magnons": Var(("magnons",), "1", "number of flipped spins m"),
    "charge_imbalance": Var(("charge_imbalance",), "1", "k_p - k_a' of the rho^{T_a} block"),
}

_BAND = f"{BAND_PERCENTILES[1] - BAND_PERCENTILES[0]:g}% bootstrap band"
_CONFIG = "localized configuration c_p + 2^n_p c_a (bit set: up)"

BATH = {
    **EVERY, **RHO_FM,
    **{f"{name}_{end}": Var(RHO_FM[name].dims, RHO_FM[name].units,
                            f"{RHO_FM[name].long_name}: {end} end of the {_BAND}")
       for name in DERIVED for end in ("lower", "upper")},
    "norm": Var(T, "1", "trace of the trajectory-averaged state"),
    "sz_total": Var(T, "1", "total S^z (Pauli), not conserved with baths"),
    "energy": Var(T, "eV", "energy <H> (trajectory average)"),
    "rho_fm_sum_real": Var(("time", "config_row", "config_col"), "1",
                           "rho_FM summed over trajectories (real part), bit basis c_p + 2^n_p c_a"),
    "rho_fm_sum_imag": Var(("time", "config_row", "config_col"), "1",
                           "rho_FM summed over trajectories (imaginary part)"),
    "rho_e_sum_real": Var(("time", "e_row", "e_col"), "1",
                          "electron-spin rho summed over trajectories (real part), index 0 = up"),
    "rho_e_sum_imag": Var(("time", "e_row", "e_col"), "1",
                          "electron-spin rho summed over trajectories (imaginary part)"),
    "energy_sum": Var(T, "eV", "<H> summed over trajectories"),
    "rho_fm_batch_packed": Var(("trajectory_batch", "band_time", "config_row", "config_col"), "1",
                               "rho_FM summed per trajectory batch (i % n_batches) at band times, "
                               "packed: Re on/above the diagonal, Im below"),
    "batch_count": Var(("trajectory_batch",), "1", "trajectories per batch"),
    "trajectory_index": Var(("trajectory",), "1", "indices of the trajectories in the sums"),
    "jumps_per_spin": Var(("spin",), "1", "quantum jumps of L_i, all trajectories"),
    "spin": Var(("spin",), None, "localized spin index (FM_p first)"),
    "site": Var(("spin",), None, "chain site (0-based)"),
    "layer": Var(("spin",), None, None),
    "component": Var(("component",), None, None),
    "magnons": Var(("magnons",), None, "number of flipped spins m"),
    "config_row": Var(("config_row",), None, _CONFIG),
    "config_col": Var(("config_col",), None, _CONFIG),
    "band_time": Var(("band_time",), "fs", "times of the stored batch sums"),
    "trajectory_batch": Var(("trajectory_batch",), None, "batch = trajectory index mod n_batches"),
}

TDMRG = {
    **EVERY,
    "spin_expectation": Var(("time", "spin", "component"), "1", "localized spin <S_i> (Pauli)", {
        "note": "x and y vanish identically: the state is an S^z_tot eigenstate"}),
    "density": Var(("time", "site"), "1", "electron density <n_i>"),
    "electron_spin_density": Var(("time", "site"), "1", "electron spin density <s^z_i> (Pauli)"),
    "entropy_half": Var(T, "1", "half-chain von Neumann entropy S_half (natural log, nats)",
                        dynamic=("cut",)),
    "bond_dimension": Var(T, "1", "largest MPS bond dimension"),
    "truncation_error": Var(T, "1", "accumulated truncation error"),
    "energy": Var(T, "eV", "energy <H> (t > 0 Hamiltonian)"),
    "norm": Var(T, "1", "norm of the MPS"),
    "n_electrons_total": Var(T, "1", "total electron number"),
    "sz_total": Var(T, "1", "total S^z, electrons plus localized spins (Pauli)"),
    "spin": Var(("spin",), "1", "localized spin index"),
    "spin_site": Var(("spin",), "1", "chain site of the localized spin (0-based)"),
    "layer": Var(("spin",), "1", "layer (p: polarizer, a: analyzer)"),
    "component": Var(("component",), "1", "spin component"),
    "site": Var(("site",), "1", "chain site (0-based)"),
}

SCHEMA = {"every": EVERY, "closed": CLOSED, "bath": BATH, "tdmrg": TDMRG}


def variable(family: str, name: str, values, **dynamic) -> tuple:
    """``(dims, values, attrs)`` of variable ``name`` of a ``family`` file (``every``: of
    every family's), for xarray."""
    var = SCHEMA[family][name]
    return var.dims, values, var.attrs(**dynamic)
