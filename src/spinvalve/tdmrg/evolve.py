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

import sys
import time as _time
from typing import Callable

import numpy as np
import xarray as xr
from tenpy.algorithms.dmrg import TwoSiteDMRGEngine
from tenpy.algorithms.tdvp import TwoSiteTDVPEngine
from tenpy.algorithms.tebd import TEBDEngine
from tenpy.algorithms.truncation import TruncationError
from tenpy.networks.mps import MPS
from tenpy.tools.misc import TenpyInconsistencyError
from tenpy.tools.optimization import OptimizationFlag, temporary_level

from .. import HBAR
from ..checkpoint import Checkpointer
from ..config import JobConfig
from ..driver import interrupted
from ..errors import ConfigError, ConvergenceError, InvariantError
from ..progress import Progress
from ..schema import variable
from .model import ChainSpec, SpinValveChain

__all__ = ["run_tdmrg", "step_fs", "steps_per_output", "ConvergenceError", "InvariantError"]

#: Relative energy drift tolerated over a run (two-site TDVP/TEBD truncate, so energy
#: is not exactly conserved; N and S^z_tot are, through the conserved charges).
ENERGY_DRIFT_TOL = 1e-3

def step_fs(cfg: JobConfig) -> float:
    """The tDMRG time step in fs: ``multi_electron.dt`` (hbar/gamma) * hbar / gamma."""
    return cfg.multi_electron.dt * HBAR / cfg.chain.hopping


def steps_per_output(cfg: JobConfig) -> int:
    """tDMRG steps per output interval (``load_config`` checked that ``time.dt_out`` is a
    whole number of steps)."""
    return int(round(cfg.time.dt_out / step_fs(cfg)))


def _trunc_params(cfg: JobConfig, chi: int) -> dict:
    me = cfg.multi_electron
    return {"chi_max": int(chi), "trunc_cut": float(me.trunc_cut), "svd_min": 1e-14}


def ground_state(cfg: JobConfig, spec: ChainSpec) -> tuple[MPS, float]:
    """DMRG ground state of Eq. 7 + Eq. 21 in the sector N = N_e, S^z_tot = n_p - n_a.

    Bond dimension ``multi_electron.chi_start``; raises :class:`ConvergenceError` if the
    energy of the last two sweeps differs by more than 1e-9 eV, or TeNPy finds the
    truncation error too large.
    """
    model = SpinValveChain(spec, equilibrium=True)
    sites = model.lat.mps_sites()
    psi = MPS.from_product_state(sites, model.initial_product_state(), bc="finite",
                                 unit_cell_width=len(sites))
    options = {"mixer": True, "trunc_params": _trunc_params(cfg, cfg.multi_electron.chi_start),
               "max_E_err": 1e-12, "min_sweeps": 4, "max_sweeps": 60,
               "combine": True}
    engine = TwoSiteDMRGEngine(psi, model, options)
    try:
        energy, psi = engine.run()
    except TenpyInconsistencyError as exc:
        raise ConvergenceError(f"multi_electron.chi_start: DMRG ground state at bond dimension "
                               f"{cfg.multi_electron.chi_start} failed ({exc}); raise "
                               "multi_electron.chi_start") from None
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


def _engine(cfg: JobConfig, psi: MPS, model: SpinValveChain, trunc_err: TruncationError,
            resume_data: dict | None = None):
    """The TDVP or TEBD engine; ``resume_data`` (TeNPy's ``get_resume_data()``: the MPS,
    the environments, the evolved time) continues a checkpointed run exactly."""
    me = cfg.multi_electron
    dt = step_fs(cfg) / HBAR  # TeNPy evolves exp(-i H dt) with H in eV: dt in 1/eV
    opts = {"dt": dt, "trunc_params": _trunc_params(cfg, me.chi_max),
            "start_trunc_err": trunc_err}
    if me.method == "tdvp":
        opts["lanczos_params"] = {"N_max": 40, "N_cache": 40, "P_tol": 1e-14}
        return TwoSiteTDVPEngine(psi, model, opts, resume_data=resume_data)
    opts["order"] = 4
    return TEBDEngine(psi, model, opts, resume_data=resume_data)


def run_tdmrg(cfg: JobConfig, progress: Callable[[float, dict], None] | None = None,
              checkpointer: Checkpointer | None = None, stop=None,
              log=sys.stderr) -> xr.Dataset:
    """Multi-electron pulse by tDMRG (paper Sec. III C, Eqs. 21-22, Fig. 6).

    Parameters
    ----------
    cfg : JobConfig
        Validated config with a ``multi_electron`` section; ``chain``, ``layers``,
        ``couplings`` and ``time`` apply. ``time.dt_out`` is a whole number of steps
        ``multi_electron.dt * hbar / gamma`` fs (``load_config`` checks it).
    progress : callable, optional
        Called as ``progress(t_fs, info)`` after every output time; ``info`` holds
        ``chi``, ``entropy_half``, ``truncation_error``, ``wall_time`` (s).
    checkpointer : spinvalve.checkpoint.Checkpointer, optional
        On one rank (``MPI.COMM_SELF``). A checkpoint of the same config found at start
        is resumed (TeNPy's resume data: MPS, environments, evolved time; the result
        equals an uninterrupted run's exactly); a stale one is moved aside. The state
        is saved after an output time every ``checkpoint.interval`` wall-clock
        seconds, and when ``stop`` is raised.
    stop : spinvalve.checkpoint.StopFlag, optional
        Polled after every output time: when raised (SIGTERM/SIGUSR1) the state is
        checkpointed and :class:`~spinvalve.errors.Interrupted` (exit 75) is raised.
    log : stream, optional
        Progress lines (time, largest bond dimension, truncation error, elapsed, ETA),
        at most every 10 s; None: silent.

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
    ConfigError
        No ``multi_electron`` section, or ``time.dt_out`` not a multiple of the step.
    ConvergenceError, InvariantError
        Ground state not converged; N, S^z_tot or energy drifted.
    Interrupted
        ``stop`` was raised; the checkpoint is written.
    """
    if cfg.multi_electron is None:
        raise ConfigError("multi_electron: section missing; run_tdmrg needs it")
    n_sub = steps_per_output(cfg)
    # TeNPy's per-call argument checks cost ~20% on small blocks; the model is fixed and tested.
    with temporary_level(OptimizationFlag.skip_arg_checks):
        return _run(cfg, n_sub, progress, checkpointer, stop, log)


def _run(cfg: JobConfig, n_sub: int, progress, checkpointer, stop, log) -> xr.Dataset:
    n_out, dt_out = cfg.time.n_out, cfg.time.dt_out
    spec = ChainSpec.from_config(cfg)
    quench = SpinValveChain(spec, equilibrium=False)
    wall0 = _time.perf_counter()

    saved = checkpointer.load() if checkpointer is not None else None
    if saved is None:
        psi, e_gs = ground_state(cfg, spec)
        records = [_measure(psi, quench, spec)]
        records[0]["trunc_err"] = 0.0
        trunc_err = TruncationError()
        wall_before = 0.0
        engine = _engine(cfg, psi, quench, trunc_err)
        if log is not None:
            print(f"spinvalve: tDMRG ground state E = {e_gs:.10g} eV, bond dimension "
                  f"{records[0]['chi']}, {_time.perf_counter() - wall0:.1f} s", file=log, flush=True)
    else:
        state = saved.records
        e_gs, records = state["e_gs"], state["records"]
        trunc_err = TruncationError(*state["trunc_err"])
        wall_before = state["wall_time"]
        engine = _engine(cfg, state["resume_data"]["psi"], quench, trunc_err,
                         resume_data=state["resume_data"])
        if log is not None:
            print(f"spinvalve: resuming from checkpoint at t = {saved.step * dt_out} fs",
                  file=log, flush=True)
    ref = records[0]
    start = len(records) - 1
    tol = cfg.numerics.invariant_tolerance
    last_ckpt = _time.perf_counter()
    lines = Progress(n_out, dt_out, log)
    for k in range(start + 1, n_out + 1):
        try:
            engine.run_evolution(n_sub, engine.options["dt"])
        except TenpyInconsistencyError as exc:
            raise ConvergenceError(f"multi_electron.chi_max: the evolution to t = {k * dt_out:.4g} fs "
                                   f"failed at bond dimension {cfg.multi_electron.chi_max} ({exc}); "
                                   "raise multi_electron.chi_max or multi_electron.trunc_cut") from None
        rec = _measure(engine.psi, quench, spec)
        rec["trunc_err"] = float(engine.trunc_err.eps)
        records.append(rec)
        t_fs = k * dt_out
        _check_invariants(rec, ref, spec, tol, t_fs)
        wall = wall_before + _time.perf_counter() - wall0
        lines.update(k, start, f"bond dimension {rec['chi']}, truncation error "
                               f"{rec['trunc_err']:.2e}")
        if progress is not None:
            progress(t_fs, {"chi": rec["chi"], "entropy_half": rec["entropy"],
                            "truncation_error": rec["trunc_err"], "wall_time": wall})
        stopped = stop is not None and stop.raised is not None
        if checkpointer is not None and k < n_out and (
                stopped or _time.perf_counter() - last_ckpt >= checkpointer.interval):
            checkpointer.save(k, {"e_gs": e_gs, "records": records, "wall_time": wall,
                                  "trunc_err": (engine.trunc_err.eps, engine.trunc_err.ov),
                                  "resume_data": engine.get_resume_data()}, [])
            last_ckpt = _time.perf_counter()
            if stopped:
                raise interrupted(t_fs)
    wall = wall_before + _time.perf_counter() - wall0
    return _dataset(cfg, spec, records, e_gs, wall)


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
            "spin_expectation": variable("tdmrg", "spin_expectation", spin),
            "density": variable("tdmrg", "density", np.array([r["density"] for r in records])),
            "electron_spin_density": variable("tdmrg", "electron_spin_density",
                                              np.array([r["s_e"] for r in records])),
            "entropy_half": variable("tdmrg", "entropy_half", col("entropy"),
                                     cut=f"after chain site {spec.cut_bond - 1} (0-based)"),
            "bond_dimension": variable("tdmrg", "bond_dimension", col("chi").astype(np.int64)),
            "truncation_error": variable("tdmrg", "truncation_error", col("trunc_err")),
            "energy": variable("tdmrg", "energy", col("energy")),
            "norm": variable("tdmrg", "norm", col("norm")),
            "n_electrons_total": variable("tdmrg", "n_electrons_total", col("n_total")),
            "sz_total": variable("tdmrg", "sz_total", col("sz_total")),
        },
        coords={
            "time": variable("tdmrg", "time", times),
            "spin": variable("tdmrg", "spin", np.arange(n_spin)),
            "spin_site": variable("tdmrg", "spin_site", np.array(spec.spin_sites, dtype=np.int64)),
            "layer": variable("tdmrg", "layer", np.array(spec.spin_layers, dtype=str)),
            "component": variable("tdmrg", "component", np.array(["x", "y", "z"])),
            "site": variable("tdmrg", "site", np.arange(spec.n_sites)),
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
