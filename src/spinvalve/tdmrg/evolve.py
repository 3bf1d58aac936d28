"""Multi-electron current pulse: DMRG ground state, then real-time tDMRG (paper Sec. III C).

``run_tdmrg`` prepares the ground state of Eq. 7 + Eq. 21 (well and pinning fields on)
by two-site DMRG with N and S^z_tot conserved, switches both off and evolves
|Psi(t + dt)> = exp(-i H dt / hbar) |Psi(t)> (Eq. 22) with two-site TDVP or
fourth-order TEBD, recording every ``time.dt_out`` fs the localized spins, the
electron density and spin density, the half-chain entropy S_half (Eq. 6, natural
log), the bond dimension, the accumulated truncation error and the invariants.

Method choice (measured, L = 16, 2+2 spins, N_e = 2, to 10.5 fs against the exact
two-electron solver in ``tests/test_tdmrg.py``): fourth-order TEBD reaches max |d<S_i>|
~1e-6 and is ~3x faster than two-site TDVP (~6e-6); second-order TEBD at
dt = 0.1 hbar/gamma is off by ~1e-3, which is why ``tebd`` means order 4 here.

Units: H in eV and t in fs, so TeNPy's dimensionless step is dt_fs / hbar (1/eV);
the config step ``multi_electron.dt`` is in hbar/gamma, i.e. dt_fs = dt * hbar / gamma.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
import time as _time
from pathlib import Path
from typing import Callable

import numpy as np
import xarray as xr
from tenpy.algorithms.dmrg import TwoSiteDMRGEngine
from tenpy.algorithms.tdvp import TwoSiteTDVPEngine
from tenpy.algorithms.tebd import TEBDEngine
from tenpy.algorithms.truncation import TruncationError
from tenpy.networks.mps import MPS
from tenpy.tools.optimization import OptimizationFlag, temporary_level

from .. import HBAR
from ..config import JobConfig
from .model import ChainSpec, SpinValveChain

__all__ = ["run_tdmrg", "step_fs", "ConvergenceError", "InvariantError"]

logger = logging.getLogger(__name__)

#: Relative energy drift tolerated over a run (two-site TDVP/TEBD truncate, so energy
#: is not exactly conserved; N and S^z_tot are, through the conserved charges).
ENERGY_DRIFT_TOL = 1e-3

_CKPT_VERSION = 1


class ConvergenceError(RuntimeError):
    """The DMRG ground state did not converge."""


class InvariantError(RuntimeError):
    """N, S^z_tot or the energy drifted beyond tolerance during the evolution."""


def step_fs(cfg: JobConfig) -> float:
    """The tDMRG time step in fs: ``multi_electron.dt`` (hbar/gamma) * hbar / gamma."""
    return cfg.multi_electron.dt * HBAR / cfg.chain.hopping


def _steps_per_output(cfg: JobConfig) -> int:
    dt = step_fs(cfg)
    ratio = cfg.time.dt_out / dt
    n = int(round(ratio))
    if n < 1 or abs(ratio - n) > 1e-6 * max(1.0, ratio):
        n_sugg = max(1, n)
        raise ValueError(
            f"time.dt_out = {cfg.time.dt_out} fs is not a multiple of the tDMRG step "
            f"multi_electron.dt * hbar / gamma = {dt:.10g} fs; use e.g. "
            f"time.dt_out = {n_sugg * dt:.10g} ({n_sugg} steps)")
    return n


def _trunc_params(cfg: JobConfig, chi: int) -> dict:
    me = cfg.multi_electron
    return {"chi_max": int(chi), "trunc_cut": float(me.trunc_cut), "svd_min": 1e-14}


def ground_state(cfg: JobConfig, spec: ChainSpec) -> tuple[MPS, float]:
    """DMRG ground state of Eq. 7 + Eq. 21 in the sector N = N_e, S^z_tot = n_p - n_a.

    Bond dimension ``multi_electron.chi_start``; raises :class:`ConvergenceError` if the
    energy of the last two sweeps differs by more than 1e-9 eV.
    """
    model = SpinValveChain(spec, equilibrium=True)
    sites = model.lat.mps_sites()
    psi = MPS.from_product_state(sites, model.initial_product_state(), bc="finite",
                                 unit_cell_width=len(sites))
    options = {"mixer": True, "trunc_params": _trunc_params(cfg, cfg.multi_electron.chi_start),
               "max_E_err": 1e-12, "min_sweeps": 4, "max_sweeps": 60,
               "combine": True}
    engine = TwoSiteDMRGEngine(psi, model, options)
    energy, psi = engine.run()
    e_sweeps = engine.sweep_stats["E"]
    if len(e_sweeps) < 2 or abs(e_sweeps[-1] - e_sweeps[-2]) > 1e-9:
        raise ConvergenceError(
            f"DMRG ground state not converged after {len(e_sweeps)} sweeps "
            f"(last energies {e_sweeps[-2:]}); raise multi_electron.chi_start")
    psi.canonical_form()
    return psi, float(energy)


def _measure(psi: MPS, model: SpinValveChain, spec: ChainSpec) -> dict:
    """Observables of one state. Measures a re-canonicalized copy: after a two-site
    TDVP sweep the stored Schmidt values agree with the tensors only to ~1e-6, and the
    engine's environments must not see a gauge change."""
    psi = psi.copy()
    psi.canonical_form()
    spins = list(spec.spin_sites)
    rec = {
        "sz": np.real(psi.expectation_value("Tz", sites=spins)) if spins else np.zeros(0),
        "density": np.real(psi.expectation_value("Ntot")),
        "s_e": np.real(psi.expectation_value("sz")),
        "entropy": max(0.0, float(psi.entanglement_entropy(bonds=[spec.cut_bond])[0])),
        "chi": int(max(psi.chi)),
        "energy": float(np.real(model.H_MPO.expectation_value(psi))),
        "norm": float(np.sqrt(abs(psi.overlap(psi)))),
    }
    rec["n_total"] = float(rec["density"].sum())
    rec["sz_total"] = float(rec["s_e"].sum() + rec["sz"].sum())
    return rec


def _fingerprint(cfg: JobConfig) -> str:
    return hashlib.sha256(cfg.to_yaml().encode()).hexdigest()


def _checkpoint_file(cfg: JobConfig, checkpoint_path: str | os.PathLike | None) -> Path | None:
    if cfg.checkpoint.path:
        return Path(cfg.checkpoint.path)
    return None if checkpoint_path is None else Path(checkpoint_path)


def _save_checkpoint(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(state, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _load_checkpoint(path: Path | None, fingerprint: str) -> dict | None:
    if path is None or not path.exists():
        return None
    with open(path, "rb") as fh:
        state = pickle.load(fh)
    if state.get("version") != _CKPT_VERSION or state.get("fingerprint") != fingerprint:
        raise ValueError(f"{path}: checkpoint belongs to a different configuration; "
                         "delete it or set checkpoint.path")
    return state


def _engine(cfg: JobConfig, psi: MPS, model: SpinValveChain, trunc_err: TruncationError):
    me = cfg.multi_electron
    dt = step_fs(cfg) / HBAR  # TeNPy evolves exp(-i H dt) with H in eV: dt in 1/eV
    opts = {"dt": dt, "trunc_params": _trunc_params(cfg, me.chi_max),
            "start_trunc_err": trunc_err}
    if me.method == "tdvp":
        opts["lanczos_params"] = {"N_max": 40, "N_cache": 40, "P_tol": 1e-14}
        return TwoSiteTDVPEngine(psi, model, opts)
    opts["order"] = 4
    return TEBDEngine(psi, model, opts)


def run_tdmrg(cfg: JobConfig, progress: Callable[[float, dict], None] | None = None,
              checkpoint_path: str | os.PathLike | None = None) -> xr.Dataset:
    """Multi-electron pulse by tDMRG (paper Sec. III C, Eqs. 21-22, Fig. 6).

    Parameters
    ----------
    cfg : JobConfig
        Validated config with a ``multi_electron`` section; ``chain``, ``layers``,
        ``couplings`` and ``time`` apply. ``time.dt_out`` must be a multiple of the
        step ``multi_electron.dt * hbar / gamma`` fs.
    progress : callable, optional
        Called as ``progress(t_fs, info)`` after every output time; ``info`` holds
        ``chi``, ``entropy_half``, ``truncation_error``, ``wall_time`` (s).
    checkpoint_path : path, optional
        Where to checkpoint (``checkpoint.path`` in the config wins). The state is
        saved every ``checkpoint.interval`` wall-clock seconds; a matching checkpoint
        found at start is resumed; it is removed after a successful run.

    Returns
    -------
    xarray.Dataset
        Coordinates ``time`` (fs), ``spin`` (with ``site``, ``layer``), ``component``,
        ``site``; variables ``spin_expectation`` (time, spin, component; Pauli),
        ``density``, ``electron_spin_density`` (time, site), ``entropy_half``,
        ``bond_dimension``, ``truncation_error``, ``energy``, ``norm``,
        ``n_electrons_total``, ``sz_total`` (time).

    Raises
    ------
    ValueError
        No ``multi_electron`` section, or ``time.dt_out`` not a multiple of the step.
    ConvergenceError, InvariantError
        Ground state not converged; N, S^z_tot or energy drifted.
    """
    if cfg.multi_electron is None:
        raise ValueError("multi_electron: section missing; run_tdmrg needs it")
    n_sub = _steps_per_output(cfg)
    # TeNPy's per-call argument checks cost ~20% on small blocks; the model is fixed and tested.
    with temporary_level(OptimizationFlag.skip_arg_checks):
        return _run(cfg, n_sub, progress, checkpoint_path)


def _run(cfg: JobConfig, n_sub: int, progress, checkpoint_path) -> xr.Dataset:
    n_out = cfg.time.n_out
    spec = ChainSpec.from_config(cfg)
    quench = SpinValveChain(spec, equilibrium=False)
    ckpt = _checkpoint_file(cfg, checkpoint_path)
    fingerprint = _fingerprint(cfg)
    wall0 = _time.perf_counter()

    state = _load_checkpoint(ckpt, fingerprint)
    if state is None:
        psi, e_gs = ground_state(cfg, spec)
        records = [_measure(psi, quench, spec)]
        records[0]["trunc_err"] = 0.0
        trunc_err = TruncationError()
        wall_before = 0.0
    else:
        psi, e_gs, records = state["psi"], state["e_gs"], state["records"]
        trunc_err = TruncationError(state["trunc_eps"], state["trunc_ov"])
        wall_before = state["wall_time"]
        logger.info("resuming tDMRG from %s at step %d", ckpt, len(records) - 1)
    ref = records[0]
    engine = _engine(cfg, psi, quench, trunc_err)
    tol = cfg.numerics.invariant_tolerance
    last_ckpt = _time.perf_counter()
    for k in range(len(records), n_out + 1):
        engine.run_evolution(n_sub, engine.options["dt"])
        rec = _measure(engine.psi, quench, spec)
        rec["trunc_err"] = float(engine.trunc_err.eps)
        records.append(rec)
        t_fs = k * cfg.time.dt_out
        _check_invariants(rec, ref, spec, tol, t_fs)
        wall = wall_before + _time.perf_counter() - wall0
        if progress is not None:
            progress(t_fs, {"chi": rec["chi"], "entropy_half": rec["entropy"],
                            "truncation_error": rec["trunc_err"], "wall_time": wall})
        if ckpt is not None and (_time.perf_counter() - last_ckpt >= cfg.checkpoint.interval
                                 and k < n_out):
            _save_checkpoint(ckpt, {"version": _CKPT_VERSION, "fingerprint": fingerprint,
                                    "psi": engine.psi, "e_gs": e_gs, "records": records,
                                    "trunc_eps": engine.trunc_err.eps,
                                    "trunc_ov": engine.trunc_err.ov, "wall_time": wall})
            last_ckpt = _time.perf_counter()
    wall = wall_before + _time.perf_counter() - wall0
    ds = _dataset(cfg, spec, records, e_gs, wall)
    if ckpt is not None and ckpt.exists():
        ckpt.unlink()
    return ds


def _check_invariants(rec: dict, ref: dict, spec: ChainSpec, tol: float, t_fs: float) -> None:
    dn = abs(rec["n_total"] - spec.n_electrons)
    dsz = abs(rec["sz_total"] - ref["sz_total"])
    de = abs(rec["energy"] - ref["energy"])
    e_tol = max(tol, ENERGY_DRIFT_TOL * max(1.0, abs(ref["energy"])))
    if dn > max(tol, 1e-8) or dsz > max(tol, 1e-8) or de > e_tol:
        raise InvariantError(
            f"t = {t_fs:.4g} fs: invariant drift beyond tolerance (|dN| = {dn:.3g}, "
            f"|dS^z_tot| = {dsz:.3g}, |dE| = {de:.3g} eV, energy tolerance {e_tol:.3g} eV)")


def _dataset(cfg: JobConfig, spec: ChainSpec, records: list[dict], e_gs: float,
             wall: float) -> xr.Dataset:
    n_t = len(records)
    times = np.arange(n_t) * cfg.time.dt_out
    n_spin = len(spec.spin_sites)
    spin = np.zeros((n_t, n_spin, 3))
    spin[:, :, 2] = np.array([r["sz"] for r in records]).reshape(n_t, n_spin)

    def col(key):
        return np.array([r[key] for r in records])

    me = cfg.multi_electron
    ds = xr.Dataset(
        data_vars={
            "spin_expectation": (("time", "spin", "component"), spin, {
                "units": "1", "long_name": "localized spin <S_i> (Pauli)",
                "note": "x and y vanish identically: the state is an S^z_tot eigenstate"}),
            "density": (("time", "site"), np.array([r["density"] for r in records]), {
                "units": "1", "long_name": "electron density <n_i>"}),
            "electron_spin_density": (("time", "site"),
                                      np.array([r["s_e"] for r in records]), {
                "units": "1", "long_name": "electron spin density <s^z_i> (Pauli)"}),
            "entropy_half": (("time",), col("entropy"), {
                "units": "1", "long_name": "half-chain von Neumann entropy S_half (natural log, nats)",
                "cut": f"after chain site {spec.cut_bond - 1} (0-based)"}),
            "bond_dimension": (("time",), col("chi").astype(np.int64), {
                "units": "1", "long_name": "largest MPS bond dimension"}),
            "truncation_error": (("time",), col("trunc_err"), {
                "units": "1", "long_name": "accumulated truncation error"}),
            "energy": (("time",), col("energy"), {
                "units": "eV", "long_name": "energy <H> (t > 0 Hamiltonian)"}),
            "norm": (("time",), col("norm"), {"units": "1", "long_name": "norm of the MPS"}),
            "n_electrons_total": (("time",), col("n_total"), {
                "units": "1", "long_name": "total electron number"}),
            "sz_total": (("time",), col("sz_total"), {
                "units": "1", "long_name": "total S^z, electrons plus localized spins (Pauli)"}),
        },
        coords={
            "time": ("time", times, {"units": "fs", "long_name": "time"}),
            "spin": ("spin", np.arange(n_spin), {"units": "1",
                                                   "long_name": "localized spin index"}),
            "spin_site": ("spin", np.array(spec.spin_sites, dtype=np.int64), {
                "units": "1", "long_name": "chain site of the localized spin (0-based)"}),
            "layer": ("spin", np.array(spec.spin_layers, dtype=str), {
                "units": "1", "long_name": "layer (p: polarizer, a: analyzer)"}),
            "component": ("component", np.array(["x", "y", "z"]), {
                "units": "1", "long_name": "spin component"}),
            "site": ("site", np.arange(spec.n_sites), {
                "units": "1", "long_name": "chain site (0-based)"}),
        },
        attrs={
            "engine": f"tdmrg-{me.method}",
            "n_electrons": me.n_electrons,
            "ground_state_energy_eV": e_gs,
            "time_step_fs": step_fs(cfg),
            "wall_time_s": wall,
        },
    )
    return ds
