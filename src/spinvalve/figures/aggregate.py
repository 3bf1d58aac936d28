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
from ..errors import AggregationError
from ..io import git_revision, write_dataset
from ..pipeline.sweeps import FAMILIES

#: Scalar of every job file carried into the figure files, so that plots can shade the times
#: after which chain-end reflections reach the layers (spinvalve.geometry).
REFLECTION = "reflection_time"


SWEEP_COORDS = {
    "n_spins": {"units": "1", "long_name": "number of localized spins N (N/2 per layer)"},
    "temperature": {"units": "K", "long_name": "Gibbs temperature T_Gibbs of the initial spins"},
    "bath_temperature": {"units": "K", "long_name": "bath temperature T_bb"},
    "n_electrons": {"units": "1", "long_name": "electrons in the current pulse N_e"},
    "batch": {"units": "1", "long_name": "trajectory batch index"},
    "bath_gamma": {"units": "eV", "long_name": "bath strength Gamma (Eq. 19)"},
    "bath_omega_max": {"units": "eV", "long_name": "bath spectral cutoff omega_max (Eq. 19)"},
}


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
    from ..config import load_yaml
    return load_yaml(text) or {}


def loaded_config(ds: xr.Dataset):
    """The JobConfig a job file was computed with, through the package's own loader (an
    omitted key means the package default, never a default of this module)."""
    from ..config import ConfigError, load_config
    try:
        return load_config(job_config(ds))
    except ConfigError as exc:
        raise AggregationError(f"{ds.attrs.get('_source_file', '?')}: config attribute: {exc}")


def sweep_point(ds: xr.Dataset) -> dict[str, Any]:
    """Sweep values of a job (:func:`loaded_config`)."""
    cfg = loaded_config(ds)
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
    return HBAR / loaded_config(ds).chain.hopping


def pick(ds: xr.Dataset, names: Sequence[str], *, optional: Sequence[str] = ()) -> xr.Dataset:
    missing = [n for n in names if n not in ds.variables]
    if missing:
        raise AggregationError(f"{ds.attrs.get('_source_file', '?')}: missing variable(s) "
                               f"{missing}")
    keep = list(names) + [n for n in [*optional, REFLECTION] if n in ds.variables]
    bands = [f"{n}{s}" for n in keep for s in ("_lower", "_upper") if f"{n}{s}" in ds.variables]
    return ds[keep + bands]


def expand(ds: xr.Dataset, point: Mapping[str, Any], dims: Sequence[str]) -> xr.Dataset:
    out = ds
    for dim in dims:
        out = out.expand_dims({dim: [point[dim]]})
        out[dim].attrs.update(SWEEP_COORDS[dim])
    return out


def combine(parts: list[xr.Dataset], dims: Sequence[str], what: str) -> xr.Dataset:
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


def rename_time(ds: xr.Dataset, suffix: str) -> xr.Dataset:
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


def sweep_closed(files, names, optional=()) -> tuple[xr.Dataset, list[str]]:
    parts = []
    for d in files["closed"]:
        p = sweep_point(d)
        x = expand(pick(d, names, optional=optional), p, ["n_spins"])
        x = x.assign_coords(spins_per_layer=("n_spins", [p["spins_per_layer"]]))
        x["spins_per_layer"].attrs.update(units="1", long_name="localized spins per layer N/2")
        parts.append(x)
    if not parts:
        return xr.Dataset(), ["no closed-system jobs (family closed disabled?)"]
    for x in parts:  # spin-resolved variables differ in length between N: not needed here
        x.attrs = {}
    return combine(parts, ["n_spins"], "closed sweep"), []


# lifetime statistics shared by the bath figures (fig_bath_lifetime, fig_bath_coupling).
# The analysis (lifetime definition, bootstrap over trajectory batches) is in .bath.

LIFETIME_SEED_TAG = 0x11FE


def cf_var(dims, values, units: str, long_name: str, **attrs) -> tuple:
    return (dims, values, {"units": units, "long_name": long_name, **attrs})


def lifetime_point(ds: xr.Dataset) -> xr.Dataset:
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
    out = pick(ds, ["log_negativity"])
    out.attrs = {}
    defn = ("1/e time: time after the MLN maximum at which the MLN first falls below "
            "maximum/e (linear interpolation), within the window before reflection_time")
    out["lifetime"] = cf_var((), central.tau, "fs", "MLN lifetime tau: " + defn)
    out["lifetime_is_lower_bound"] = cf_var(
        (), np.int8(central.lower_bound), "1",
        "1: the MLN had not decayed by the end of the window (t_end or reflection_time, "
        "whichever is earlier): lifetime = window end - t_peak is a lower bound",
        flag_values=np.array([0, 1], np.int8), flag_meanings="measured lower_bound")
    pct = f"{BAND_PERCENTILES[1] - BAND_PERCENTILES[0]:g}%"
    out["lifetime_lower"] = cf_var((), lb.lower, "fs", f"MLN lifetime: lower end of the {pct} "
                                   "bootstrap interval over trajectory batches")
    out["lifetime_upper"] = cf_var((), lb.upper, "fs", f"MLN lifetime: upper end of the {pct} "
                                   "bootstrap interval over trajectory batches")
    out["lifetime_upper_is_lower_bound"] = cf_var(
        (), np.int8(lb.upper_is_lower_bound), "1",
        "1: more than 2.5% of the bootstrap replicates did not decay within the window, so "
        "lifetime_upper is only a lower bound", flag_values=np.array([0, 1], np.int8),
        flag_meanings="measured lower_bound")
    out["lifetime_censored_fraction"] = cf_var(
        (), lb.censored_fraction, "1",
        "fraction of bootstrap replicates whose MLN did not decay within the window")
    out["peak_log_negativity"] = cf_var((), central.peak, "1", "maximum over time of the MLN")
    out["time_of_peak"] = cf_var((), central.t_peak, "fs", "time of the MLN maximum")
    out["trajectory_count"] = cf_var((), int(ds.attrs.get("n_trajectories", sums.counts.sum())),
                                     "1", "quantum trajectories averaged")
    return out


def lifetime_sweep(files, dims: Sequence[str], what: str) -> xr.Dataset | None:
    """The lifetime points of every merged bath file, combined along ``dims``."""
    parts = []
    for u in files["bath"]:
        try:
            x = lifetime_point(u)
        except ValueError as exc:
            raise AggregationError(str(exc)) from exc
        parts.append(expand(x, sweep_point(u), dims))
    if not parts:
        return None
    return combine(parts, dims, what).transpose(*dims, ...)


def aggregate(figure: str, inputs: Mapping[str, Sequence[str | Path]],
              settings: Mapping | None = None) -> xr.Dataset:
    """Build the figure-ready dataset of ``figure`` from job files grouped by family."""
    from .catalog import get
    try:
        spec = get(figure)
    except KeyError as exc:
        raise AggregationError(exc.args[0]) from None
    files: dict[str, list[xr.Dataset]] = {f: [] for f in FAMILIES}
    for fam, paths in inputs.items():
        if fam not in files:
            raise AggregationError(f"unknown family {fam!r}")
        files[fam] = [read_job(p) for p in paths]
    ds, notes = spec.build(files)
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
    from .catalog import get as get_figure

    def uniq(key):
        vals = sorted({str(d.attrs[key]) for fam in files for d in files[fam] if key in d.attrs})
        return ", ".join(vals) if vals else "unknown"

    missing = [f for f in FAMILIES if not files[f]]
    attrs = {
        "Conventions": "CF-1.10",
        "title": get_figure(figure).title,
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
