"""Aggregation: job NetCDF files -> one self-describing, figure-ready NetCDF per figure.

Job files are merged with :func:`xarray.combine_by_coords` along their sweep
dimensions (``n_spins``, ``temperature``, ``bath_temperature``,
``n_electrons``), read from each file's ``config`` attribute (the resolved job
config as YAML), never from file names. Observables are copied, not
recomputed: nothing here averages a nonlinear quantity (SPEC "Observables").

Every figure file carries ``units``/``long_name`` on every variable and, as
provenance, the aggregating package's version and git revision, the figure
settings of the workflow config, and the path, family and full job config of
every source file (variables ``source_file``, ``source_family``,
``source_config`` along dimension ``source``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr
import yaml

from .. import __version__
from ..io import git_revision, write_dataset
from .jobs import FAMILIES

#: Scalar of every job file carried into the figure files, so that plots can shade the times
#: after which chain-end reflections reach the layers (spinvalve.geometry).
REFLECTION = "reflection_time"

TITLES = {
    "fig2": "Fig. 2: electron spin and localized spins, T = 0",
    "fig3": "Fig. 3: entropies, mutual information and MLN (T = 0, Gibbs, baths)",
    "fig4": "Fig. 4: MLN for N/2 + N/2 localized spins",
    "fig5": "Fig. 5: magnon-sector probabilities and W-state probability",
    "fig6": "Fig. 6: multi-electron pulses (tDMRG): localized spins and half-chain entropy",
    "fig7": "Fig. 7: quantum Fisher information density",
    "fig_gibbs": "Peak MLN against the Gibbs temperature of the initial state",
    "fig_bath_lifetime": "MLN lifetime against the bath temperature T_bb",
    "fig_trajectory_count": "MLN with baths against the number of quantum trajectories",
    "fig_boundary": "The paper's literal 201-site chain beside clean leads: chain-end reflections",
    "fig_bath_coupling": "MLN lifetime and peak MLN against the bath coupling Gamma at fixed T_bb",
}

SWEEP_COORDS = {
    "n_spins": {"units": "1", "long_name": "number of localized spins N (N/2 per layer)"},
    "temperature": {"units": "K", "long_name": "Gibbs temperature T_Gibbs of the initial spins"},
    "bath_temperature": {"units": "K", "long_name": "bath temperature T_bb"},
    "n_electrons": {"units": "1", "long_name": "electrons in the current pulse N_e"},
    "batch": {"units": "1", "long_name": "trajectory batch index"},
    "bath_gamma": {"units": "eV", "long_name": "bath strength Gamma (Eq. 19)"},
    "bath_omega_max": {"units": "eV", "long_name": "bath spectral cutoff omega_max (Eq. 19)"},
}


class AggregationError(ValueError):
    """Job files do not fit together (missing variable, duplicate sweep point)."""


# ---------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------

def read_job(path: str | Path) -> xr.Dataset:
    """Load one job file into memory (the file is closed again)."""
    with xr.open_dataset(path, engine="netcdf4") as ds:
        ds = ds.load()
    ds.attrs["_source_file"] = str(path)
    return ds


def job_config(ds: xr.Dataset) -> dict:
    """The resolved job config stored in a job file's ``config`` attribute."""
    text = ds.attrs.get("config")
    if not text:
        raise AggregationError(f"{ds.attrs.get('_source_file', '?')}: no 'config' attribute")
    return yaml.safe_load(text) or {}


def sweep_point(ds: xr.Dataset) -> dict[str, Any]:
    """Sweep values of a job, read from its config through the package's own loader
    (so an omitted key means the package default, never a default of this module)."""
    from ..config import ConfigError, load_config
    try:
        cfg = load_config(job_config(ds))
    except ConfigError as exc:
        raise AggregationError(f"{ds.attrs.get('_source_file', '?')}: config attribute: {exc}")
    point: dict[str, Any] = {"n_spins": cfg.layers.n_spins, "spins_per_layer": cfg.layers.n_p,
                             "temperature": cfg.temperature.gibbs}
    if cfg.bath is not None:
        point.update(bath_temperature=cfg.bath.temperature, bath_gamma=cfg.bath.gamma,
                     bath_omega_max=cfg.bath.omega_max)
    if cfg.trajectories is not None:
        point["batch"] = cfg.trajectories.first // max(cfg.trajectories.count, 1)
    if cfg.multi_electron is not None:
        point["n_electrons"] = cfg.multi_electron.n_electrons
    return point


def _hbar_over_gamma(ds: xr.Dataset) -> float:
    from .. import HBAR
    gamma = float((job_config(ds).get("chain") or {}).get("hopping", 1.0))
    return HBAR / gamma


def _pick(ds: xr.Dataset, names: Sequence[str], *, optional: Sequence[str] = ()) -> xr.Dataset:
    missing = [n for n in names if n not in ds.variables]
    if missing:
        raise AggregationError(f"{ds.attrs.get('_source_file', '?')}: missing variable(s) "
                               f"{missing}")
    keep = list(names) + [n for n in [*optional, REFLECTION] if n in ds.variables]
    bands = [f"{n}{s}" for n in keep for s in ("_lower", "_upper") if f"{n}{s}" in ds.variables]
    return ds[keep + bands]


def _expand(ds: xr.Dataset, point: Mapping[str, Any], dims: Sequence[str]) -> xr.Dataset:
    out = ds
    for dim in dims:
        out = out.expand_dims({dim: [point[dim]]})
        out[dim].attrs.update(SWEEP_COORDS[dim])
    return out


def _combine(parts: list[xr.Dataset], dims: Sequence[str], what: str) -> xr.Dataset:
    seen: dict[tuple, str] = {}
    for p in parts:
        key = tuple(p[d].item() for d in dims)
        src = p.attrs.get("_source_file", "?")
        if key in seen:
            raise AggregationError(f"{what}: {src} and {seen[key]} are the same sweep point "
                                   f"{dict(zip(dims, key))}")
        seen[key] = src
    if len(parts) == 1:
        return parts[0]
    return xr.combine_by_coords(parts, combine_attrs="drop_conflicts",
                                data_vars="all", coords="different", compat="no_conflicts",
                                join="outer")


def _rename_time(ds: xr.Dataset, suffix: str) -> xr.Dataset:
    return ds.rename({"time": f"time_{suffix}"}) if "time" in ds.dims else ds


# ---------------------------------------------------------------------------
# bath batches
# ---------------------------------------------------------------------------

def combine_bath_batches(datasets: list[xr.Dataset]) -> xr.Dataset:
    """Merge the trajectory batches of one bath point.

    Sums the batches' rho_FM and computes every observable (and its error band)
    once from the total (:func:`spinvalve.opensystem.combine`; SPEC: never
    average an entropy or a negativity). The batches' common reflection time
    is kept.
    """
    from ..opensystem import combine
    order = sorted(datasets, key=lambda d: sweep_point(d).get("batch", 0))
    try:
        out = combine(order)
    except ValueError as exc:  # CombineError: slices that do not belong together
        raise AggregationError(f"bath batches: {exc}") from exc
    if REFLECTION in order[0]:
        times = {float(d[REFLECTION]) for d in order if REFLECTION in d}
        if len(times) > 1:
            raise AggregationError(f"bath batches: different chains (reflection times {sorted(times)})")
        out[REFLECTION] = order[0][REFLECTION]
    return out


# ---------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------

def _fig2(files: Mapping[str, list[xr.Dataset]]) -> tuple[xr.Dataset, list[str]]:
    (ds,) = files["closed"][:1] or [None]
    if ds is None:
        return xr.Dataset(), ["no closed-system job (family closed disabled?)"]
    out = _pick(ds, ["electron_spin", "spin_expectation"])
    return out.assign_attrs(reference_n_spins=sweep_point(ds)["n_spins"]), []


def _fig3(files: Mapping[str, list[xr.Dataset]]) -> tuple[xr.Dataset, list[str]]:
    notes, parts = [], []
    closed = files["closed"][:1]
    if closed:
        ds = closed[0]
        parts.append(_pick(ds, ["entropy_pa", "entropy_p", "entropy_a", "mutual_information",
                                "log_negativity"]))
    else:
        notes.append("no closed-system job: panels (a)-(d) T = 0 empty")
    gibbs = files["gibbs"]
    if gibbs:
        g = [_expand(_pick(d, ["log_negativity"]), sweep_point(d), ["temperature"])
             for d in gibbs]
        g = _rename_time(_combine(g, ["temperature"], "fig3 gibbs"), "gibbs")
        parts.append(g.rename({n: f"{n}_gibbs" for n in ("log_negativity", REFLECTION)
                               if n in g.variables}))
    else:
        notes.append("no Gibbs job: the T_Gibbs line of panel (d) is missing")
    bath = [_expand(_pick(u, ["log_negativity"]), sweep_point(u), ["bath_temperature"])
            for u in files["bath"]]
    if bath:
        b = _rename_time(_combine(bath, ["bath_temperature"], "fig3 bath"), "bath")
        parts.append(b.rename({n: n.replace("log_negativity", "log_negativity_bath")
                               .replace(REFLECTION, REFLECTION + "_bath") for n in b.data_vars}))
    elif not files["bath"]:
        notes.append("no bath job: the T_bb lines of panel (d) are missing")
    if not parts:
        return xr.Dataset(), notes
    return xr.merge(parts, combine_attrs="override"), notes


def _sweep_closed(files, names, optional=()) -> tuple[xr.Dataset, list[str]]:
    parts = []
    for d in files["closed"]:
        p = sweep_point(d)
        x = _expand(_pick(d, names, optional=optional), p, ["n_spins"])
        x = x.assign_coords(spins_per_layer=("n_spins", [p["spins_per_layer"]]))
        x["spins_per_layer"].attrs.update(units="1", long_name="localized spins per layer N/2")
        parts.append(x)
    if not parts:
        return xr.Dataset(), ["no closed-system jobs (family closed disabled?)"]
    for x in parts:  # spin-resolved variables differ in length between N: not needed here
        x.attrs = {}
    return _combine(parts, ["n_spins"], "closed sweep"), []


def _fig4(files):
    return _sweep_closed(files, ["log_negativity"])


def _fig5(files):
    (ds,) = files["closed"][:1] or [None]
    if ds is None:
        return xr.Dataset(), ["no closed-system job (family closed disabled?)"]
    out = _pick(ds, ["magnon_probability", "w_state_probability"])
    return out.assign_attrs(reference_n_spins=sweep_point(ds)["n_spins"]), []


def _fig6(files):
    parts = []
    for d in files["multi_electron"]:
        x = _expand(_pick(d, ["spin_expectation", "entropy_half"],
                          optional=["bond_dimension", "truncation_error"]),
                    sweep_point(d), ["n_electrons"])
        x.attrs = {}
        parts.append(x)
    if not parts:
        return xr.Dataset(), ["no multi-electron jobs (family multi_electron disabled?)"]
    return _combine(parts, ["n_electrons"], "multi-electron sweep"), []


def _fig7(files):
    return _sweep_closed(files, ["qfi_bound"], optional=["qfi_exact"])


def _fig_gibbs(files):
    parts = []
    for fam in ("closed", "gibbs"):
        for d in files[fam]:
            p = sweep_point(d)
            x = _expand(_pick(d, ["log_negativity"]), p, ["n_spins", "temperature"])
            x.attrs = {}
            parts.append(x)
    if not [d for d in files["gibbs"]]:
        return xr.Dataset(), ["no Gibbs jobs (family gibbs disabled?)"]
    ds = _combine(parts, ["n_spins", "temperature"], "Gibbs sweep")
    mln = ds["log_negativity"]
    ds["peak_log_negativity"] = mln.max("time").assign_attrs(
        units=mln.attrs.get("units", "1"),
        long_name="maximum over time of the mutual logarithmic negativity")
    ds["time_of_peak"] = mln.fillna(-np.inf).idxmax("time").where(mln.notnull().any("time"))
    ds["time_of_peak"].attrs.update(units="fs", long_name="time of the MLN maximum")
    return ds, []


# bath figures (issue #9): lifetime against T_bb, convergence with the trajectory count.
# The analysis (lifetime definition, bootstrap over trajectory batches) is in .bath.

LIFETIME_SEED_TAG = 0x11FE
COUNT_SEED_TAG = 0xC0DE


def _var(dims, values, units: str, long_name: str, **attrs) -> tuple:
    return (dims, values, {"units": units, "long_name": long_name, **attrs})


def _lifetime_point(ds: xr.Dataset) -> xr.Dataset:
    """MLN curve of one merged bath file, its lifetime and the lifetime's bootstrap band."""
    from ..opensystem.bands import BAND_PERCENTILES
    from .bath import BatchSums, lifetime_band, mln_lifetime, subset_mln
    t = ds["time"].values
    t_valid = float(ds[REFLECTION]) if REFLECTION in ds else math.inf
    central = mln_lifetime(t, ds["log_negativity"].values, t_valid)
    sums = BatchSums.from_dataset(ds)
    rng = np.random.default_rng([sums.seed, LIFETIME_SEED_TAG])
    _, reps = subset_mln(sums, sums.nonempty, rng)
    lb = lifetime_band(sums.band_times, reps, t_valid)
    out = _pick(ds, ["log_negativity"])
    out.attrs = {}
    defn = ("1/e time: time after the MLN maximum at which the MLN first falls below "
            "maximum/e (linear interpolation), within the window before reflection_time")
    out["lifetime"] = _var((), central.tau, "fs", "MLN lifetime tau: " + defn)
    out["lifetime_is_lower_bound"] = _var(
        (), np.int8(central.lower_bound), "1",
        "1: the MLN had not decayed by the end of the window (t_end or reflection_time, "
        "whichever is earlier): lifetime = window end - t_peak is a lower bound",
        flag_values=np.array([0, 1], np.int8), flag_meanings="measured lower_bound")
    pct = f"{BAND_PERCENTILES[1] - BAND_PERCENTILES[0]:g}%"
    out["lifetime_lower"] = _var((), lb.lower, "fs", f"MLN lifetime: lower end of the {pct} "
                                 "bootstrap interval over trajectory batches")
    out["lifetime_upper"] = _var((), lb.upper, "fs", f"MLN lifetime: upper end of the {pct} "
                                 "bootstrap interval over trajectory batches")
    out["lifetime_upper_is_lower_bound"] = _var(
        (), np.int8(lb.upper_is_lower_bound), "1",
        "1: more than 2.5% of the bootstrap replicates did not decay within the window, so "
        "lifetime_upper is only a lower bound", flag_values=np.array([0, 1], np.int8),
        flag_meanings="measured lower_bound")
    out["lifetime_censored_fraction"] = _var(
        (), lb.censored_fraction, "1",
        "fraction of bootstrap replicates whose MLN did not decay within the window")
    out["peak_log_negativity"] = _var((), central.peak, "1", "maximum over time of the MLN")
    out["time_of_peak"] = _var((), central.t_peak, "fs", "time of the MLN maximum")
    out["trajectory_count"] = _var((), int(ds.attrs.get("n_trajectories", sums.counts.sum())),
                                   "1", "quantum trajectories averaged")
    return out


def _lifetime_sweep(files, dims: Sequence[str], what: str) -> xr.Dataset | None:
    """The lifetime points of every merged bath file, combined along ``dims``."""
    parts = []
    for u in files["bath"]:
        try:
            x = _lifetime_point(u)
        except ValueError as exc:
            raise AggregationError(str(exc)) from exc
        parts.append(_expand(x, sweep_point(u), dims))
    if not parts:
        return None
    return _combine(parts, dims, what).transpose(*dims, ...)


def _fig_bath_lifetime(files):
    notes = []
    ds = _lifetime_sweep(files, ["n_spins", "bath_temperature"], "bath lifetime sweep")
    if ds is None:
        return xr.Dataset(), ["no bath jobs (family bath disabled?)"]
    closed = []
    for d in files["closed"]:
        x = _expand(_pick(d, ["log_negativity"]), sweep_point(d), ["n_spins"])
        x.attrs = {}
        closed.append(x)
    if closed:
        c = _rename_time(_combine(closed, ["n_spins"], "closed reference"), "closed")
        c = c.rename({n: f"{n}_closed" for n in ("log_negativity", REFLECTION) if n in c})
        c["log_negativity_closed"].attrs["long_name"] = "MLN without baths (closed system, T = 0)"
        ds = xr.merge([ds, c], combine_attrs="override", join="outer")
    else:
        notes.append("no closed-system job at the bath N: no reference curve without baths")
    return ds, notes


def _max_over(a: np.ndarray) -> np.ndarray:
    """Row maxima ignoring NaN; NaN for a row without finite values."""
    ok = np.isfinite(a)
    return np.where(ok.any(axis=1), np.where(ok, a, -np.inf).max(axis=1, initial=-np.inf), np.nan)


def _mean_over(a: np.ndarray) -> np.ndarray:
    """Row means ignoring NaN; NaN for a row without finite values."""
    ok = np.isfinite(a)
    n = ok.sum(axis=1)
    return np.where(n > 0, np.where(ok, a, 0.0).sum(axis=1) / np.maximum(n, 1), np.nan)


def _fig_trajectory_count(files):
    from ..opensystem.bands import BAND_PERCENTILES
    from .bath import ONSET_FRACTION, BatchSums, band, onset_time, subset_mln, subset_sizes
    notes: list[str] = []
    usable = files["bath"]
    if not usable:
        return xr.Dataset(), ["no bath job at the chosen T_bb (family bath disabled?)"]
    if len(usable) > 1:
        notes.append(f"{len(usable)} bath files given; the first is shown")
    d = usable[0]
    point = sweep_point(d)
    try:
        sums = BatchSums.from_dataset(d)
    except ValueError as exc:
        raise AggregationError(str(exc)) from exc
    batches = sums.nonempty
    ks = subset_sizes(len(batches))
    rng = np.random.default_rng([sums.seed, COUNT_SEED_TAG])
    t = sums.band_times
    curves, lows, highs, counts = [], [], [], []
    for k in ks:
        central, reps = subset_mln(sums, batches[:k], rng)
        lo, hi = band(reps, len(t))
        curves.append(central)
        lows.append(lo)
        highs.append(hi)
        counts.append(int(sums.counts[batches[:k]].sum()))
    e = np.array(curves)
    lo, hi = np.array(lows), np.array(highs)
    closed = files["closed"][:1]
    if closed:
        tc, ec = closed[0]["time"].values, closed[0]["log_negativity"].values
        t_on = onset_time(tc, ec)
        pre = t < t_on if np.isfinite(t_on) else np.zeros(len(t), bool)
        pre_excess = (_max_over(e[:, pre] - np.interp(t[pre], tc, ec)) if pre.any()
                      else np.full(len(ks), np.nan))
    else:
        t_on, pre_excess = math.nan, np.full(len(ks), np.nan)
        notes.append("no closed-system job at this N: no onset time, no pre-onset excess")
    dev = e - e[-1]
    ok = np.isfinite(dev)
    rms = np.sqrt(_mean_over(np.where(ok, dev, np.nan) ** 2))
    width = _mean_over(hi - lo)
    band_name = (f"{BAND_PERCENTILES[1] - BAND_PERCENTILES[0]:g}% bootstrap band over the "
                 "trajectory batches used")
    dims = ("n_trajectories", "time")
    ds = xr.Dataset({
        "log_negativity": _var(dims, e, "1", "MLN E_N of rho_FM averaged over the n_trajectories "
                               "trajectories of batches 0 .. n_batches - 1"),
        "log_negativity_lower": _var(dims, lo, "1", f"MLN: lower end of the {band_name} "
                                     "(NaN for one batch)"),
        "log_negativity_upper": _var(dims, hi, "1", f"MLN: upper end of the {band_name} "
                                     "(NaN for one batch)"),
        "n_batches": _var(("n_trajectories",), np.array(ks), "1",
                          "trajectory batches (trajectory index mod n) combined"),
        "pre_onset_excess": _var(("n_trajectories",), pre_excess, "1",
                                 "largest excess of the MLN over the closed-system (no bath) MLN "
                                 "before onset_time; > 0 is a spurious early rise"),
        "rms_deviation": _var(("n_trajectories",), rms, "1",
                              "root mean square over time of the MLN minus the MLN of all "
                              "trajectories"),
        "mean_band_width": _var(("n_trajectories",), width, "1",
                                "mean over time of the width of the MLN band"),
        "onset_time": _var((), t_on, "fs", "MLN onset: first time the closed-system (T = 0) MLN "
                           f"exceeds {100 * ONSET_FRACTION:g}% of its maximum"),
    }, coords={
        "n_trajectories": ("n_trajectories", np.array(counts),
                           {"units": "1", "long_name": "number of quantum trajectories averaged"}),
        "time": ("time", t, {"units": "fs", "long_name": "time (band times of the batch sums)"}),
        "n_spins": ((), point["n_spins"], SWEEP_COORDS["n_spins"]),
        "bath_temperature": ((), point["bath_temperature"], SWEEP_COORDS["bath_temperature"]),
    })
    if REFLECTION in d:
        ds[REFLECTION] = d[REFLECTION]
    if closed:
        c = _rename_time(_pick(closed[0], ["log_negativity"]), "closed")
        ds["log_negativity_closed"] = c["log_negativity"].assign_attrs(
            units="1", long_name="MLN without baths (closed system, T = 0)")
        if REFLECTION in c:
            ds[REFLECTION + "_closed"] = c[REFLECTION]
    return ds, notes


def _fig_boundary(files):
    """The paper's literal chain (family boundary) beside clean leads (closed, same N):
    MLN, MI and <s_e^z>, each with the reflection time of its chain."""
    names = ["log_negativity", "mutual_information", "electron_spin"]
    if not files["boundary"]:
        return xr.Dataset(), ["no boundary jobs (family boundary disabled?)"]
    parts, notes = [], []
    for fam, suffix in (("boundary", "literal"), ("closed", "clean")):
        runs = []
        for d in files[fam]:
            x = _pick(d, names)
            x["chain_sites"] = _var((), int(d.attrs.get("chain_sites", -1)), "1",
                                    "sites of the whole chain (leads included)")
            x = _expand(x, sweep_point(d), ["n_spins"])
            x.attrs = {}
            runs.append(x)
        if not runs:
            notes.append(f"no {fam} job at the boundary N: no {suffix}-chain curves")
            continue
        x = _combine(runs, ["n_spins"], f"fig_boundary {fam}")
        x = x.rename({n: f"{n}_{suffix}" for n in [*names, REFLECTION, "chain_sites", "time"]
                      if n in x.variables})
        for n in names:
            x[f"{n}_{suffix}"].attrs["long_name"] += (" on the paper's literal chain (chain.leads: "
                                                     "none)" if suffix == "literal" else
                                                     " on clean leads (chain.leads: auto)")
        parts.append(x)
    return xr.merge(parts, combine_attrs="override", join="outer"), notes


def _fig_bath_coupling(files):
    """Lifetime, its interval and the peak MLN of every merged bath file at one (N, T_bb),
    along the couplings ``bath_gamma`` and ``bath_omega_max``; the closed MLN as reference."""
    notes = []
    ds = _lifetime_sweep(files, ["bath_omega_max", "bath_gamma"], "bath coupling sweep")
    if ds is None:
        return xr.Dataset(), ["no bath jobs (family bath disabled?)"]
    point = sweep_point(files["bath"][0])
    ds = ds.assign_coords(
        n_spins=((), point["n_spins"], SWEEP_COORDS["n_spins"]),
        bath_temperature=((), point["bath_temperature"], SWEEP_COORDS["bath_temperature"]))
    temps = {sweep_point(d)["bath_temperature"] for d in files["bath"]}
    if len(temps) > 1:
        raise AggregationError(f"fig_bath_coupling: bath files at several T_bb {sorted(temps)}")
    if files["closed"]:
        c = _rename_time(_pick(files["closed"][0], ["log_negativity"]), "closed")
        ds["log_negativity_closed"] = c["log_negativity"].assign_attrs(
            long_name="MLN without baths (closed system, T = 0)")
        if REFLECTION in c:
            ds[REFLECTION + "_closed"] = c[REFLECTION]
    else:
        notes.append("no closed-system job at this N: no reference curve without baths")
    return ds, notes


BUILDERS = {"fig2": _fig2, "fig3": _fig3, "fig4": _fig4, "fig5": _fig5, "fig6": _fig6,
            "fig7": _fig7, "fig_gibbs": _fig_gibbs, "fig_bath_lifetime": _fig_bath_lifetime,
            "fig_trajectory_count": _fig_trajectory_count, "fig_boundary": _fig_boundary,
            "fig_bath_coupling": _fig_bath_coupling}


def aggregate(figure: str, inputs: Mapping[str, Sequence[str | Path]],
              settings: Mapping | None = None) -> xr.Dataset:
    """Build the figure-ready dataset of ``figure`` from job files grouped by family."""
    if figure not in BUILDERS:
        raise AggregationError(f"unknown figure {figure!r}; known: {sorted(BUILDERS)}")
    files: dict[str, list[xr.Dataset]] = {f: [] for f in FAMILIES}
    for fam, paths in inputs.items():
        if fam not in files:
            raise AggregationError(f"unknown family {fam!r}")
        files[fam] = [read_job(p) for p in paths]
    ds, notes = BUILDERS[figure](files)
    all_ds = [d for fam in FAMILIES for d in files[fam]]
    ds = ds.copy()
    ds.attrs = {}
    if all_ds:
        ds.attrs["hbar_over_gamma_fs"] = _hbar_over_gamma(all_ds[0])
    ds.attrs.update(provenance_attrs(figure, files, settings, notes))
    src = [(fam, d) for fam in FAMILIES for d in files[fam]]
    if src:
        ds["source_file"] = ("source", [d.attrs["_source_file"] for _, d in src])
        ds["source_family"] = ("source", [fam for fam, _ in src])
        ds["source_config"] = ("source", [d.attrs.get("config", "") for _, d in src])
        ds["source_file"].attrs.update(long_name="job file aggregated here")
        ds["source_family"].attrs.update(long_name="simulation family of the job")
        ds["source_config"].attrs.update(long_name="resolved job config (YAML)")
    _check_described(ds)
    return ds


def provenance_attrs(figure: str, files: Mapping[str, list[xr.Dataset]],
                     settings: Mapping | None, notes: list[str]) -> dict:
    def uniq(key):
        vals = sorted({str(d.attrs[key]) for fam in files for d in files[fam] if key in d.attrs})
        return ", ".join(vals) if vals else "unknown"

    missing = [f for f in FAMILIES if not files[f]]
    attrs = {
        "Conventions": "CF-1.10",
        "title": TITLES[figure],
        "figure": figure,
        "institution": "spinvalve pipeline",
        "source": "spinvalve aggregate (Suresh et al., arXiv:2210.06634)",
        "references": "A. Suresh, U. Bajpai, M. D. Petrovic, H. Yang, B. K. Nikolic, "
                      "Electron-mediated entanglement of two distant macroscopic ferromagnets "
                      "within a nonequilibrium spintronic device, arXiv:2210.06634",
        "history": f"{_utc_now()}: spinvalve aggregate {figure} (spinvalve {__version__}) from "
                   f"{sum(len(v) for v in files.values())} job file(s)",
        "spinvalve_version": __version__,
        "git_revision": git_revision(),
        "engine_spinvalve_version": uniq("spinvalve_version"),
        "engine_git_revision": uniq("git_revision"),
        "petsc_version": uniq("petsc_version"),
        "slepc_version": uniq("slepc_version"),
        "mpi_ranks": uniq("mpi_ranks"),
        "xarray_version": xr.__version__,
        "settings": yaml.safe_dump(dict(settings or {}), sort_keys=True),
        "families_without_data": ", ".join(missing) or "none",
        "notes": "\n".join(notes) or "none",
        "status": "complete" if not notes else "partial",
        "time_units": "fs",
    }
    return attrs


def _utc_now() -> str:
    from datetime import datetime, timezone
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_described(ds: xr.Dataset) -> None:
    """Every variable carries a long_name and (if numeric) units, copied from its source job
    file or set here: a missing description is an error, never filled in."""
    bad = [str(name) for name, var in ds.variables.items()
           if "long_name" not in var.attrs
           or (var.dtype.kind not in "OSU" and "units" not in var.attrs)]
    if bad:
        raise AggregationError(f"{ds.attrs.get('figure', '?')}: variables without units or "
                               f"long_name: {sorted(bad)} (describe them where they are written)")


def write_figure_data(figure: str, inputs: Mapping[str, Sequence[str | Path]],
                      output: str | Path, settings: Mapping | None = None) -> Path:
    """:func:`aggregate` and write atomically."""
    ds = aggregate(figure, inputs, settings)
    return write_dataset(ds, output)


def write_bath_merge(inputs: Sequence[str | Path], output: str | Path) -> Path:
    """Merge the trajectory batches of one (N, T_bb) point (see :func:`combine_bath_batches`)."""
    datasets = [read_job(p) for p in inputs]
    ds = combine_bath_batches(datasets)
    ds.attrs.pop("_source_file", None)
    ds.attrs["source_files"] = "\n".join(str(p) for p in inputs)
    return write_dataset(ds, output)
