"""MLN with baths against the number of quantum trajectories."""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from ...pipeline import sweeps
from ..aggregate import (AggregationError, REFLECTION, SWEEP_COORDS, cf_var, pick, rename_time,
                         sweep_point)
from ..plot import (legend, no_data, notes_text, panel_label, plt, shade_reflections, spins_label,
                    time_label, time_scale, time_values)
from . import Figure


def inputs(config, jobs):
    """The merged bath file at (N, T_bb) of :func:`shown` (first coupling) and its closed job."""
    n, t_bb = sweeps.trajectory_count_point(config)
    merged = sorted({sweeps.merged_of(j) for j in sweeps.of_family(jobs, "bath")
                     if sweeps.reference_coupling(config, j)
                     and j.value("spins_per_layer") == n and float(j.value("T_bb")) == t_bb})
    return {"closed": sweeps.closed_at(jobs, {n}), "bath": merged}


def shown(config):
    n, t_bb = sweeps.trajectory_count_point(config)
    return {"spins_per_layer": n, "T_bb": t_bb}


COUNT_SEED_TAG = 0xC0DE


def _max_over(a: np.ndarray) -> np.ndarray:
    """Row maxima ignoring NaN; NaN for a row without finite values."""
    ok = np.isfinite(a)
    return np.where(ok.any(axis=1), np.where(ok, a, -np.inf).max(axis=1, initial=-np.inf), np.nan)


def _mean_over(a: np.ndarray) -> np.ndarray:
    """Row means ignoring NaN; NaN for a row without finite values."""
    ok = np.isfinite(a)
    n = ok.sum(axis=1)
    return np.where(n > 0, np.where(ok, a, 0.0).sum(axis=1) / np.maximum(n, 1), np.nan)


def build(files):
    from ...opensystem.bands import BAND_PERCENTILES
    from ..bath import ONSET_FRACTION, BatchSums, band, onset_time, subset_mln, subset_sizes
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
        "log_negativity": cf_var(dims, e, "1", "MLN E_N of rho_FM averaged over the n_trajectories "
                                 "trajectories of batches 0 .. n_batches - 1"),
        "log_negativity_lower": cf_var(dims, lo, "1", f"MLN: lower end of the {band_name} "
                                       "(NaN for one batch)"),
        "log_negativity_upper": cf_var(dims, hi, "1", f"MLN: upper end of the {band_name} "
                                       "(NaN for one batch)"),
        "n_batches": cf_var(("n_trajectories",), np.array(ks), "1",
                            "trajectory batches (trajectory index mod n) combined"),
        "pre_onset_excess": cf_var(("n_trajectories",), pre_excess, "1",
                                   "largest excess of the MLN over the closed-system (no bath) MLN "
                                   "before onset_time; > 0 is a spurious early rise"),
        "rms_deviation": cf_var(("n_trajectories",), rms, "1",
                                "root mean square over time of the MLN minus the MLN of all "
                                "trajectories"),
        "mean_band_width": cf_var(("n_trajectories",), width, "1",
                                  "mean over time of the width of the MLN band"),
        "onset_time": cf_var((), t_on, "fs", "MLN onset: first time the closed-system (T = 0) MLN "
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
        c = rename_time(pick(closed[0], ["log_negativity"]), "closed")
        ds["log_negativity_closed"] = c["log_negativity"].assign_attrs(
            units="1", long_name="MLN without baths (closed system, T = 0)")
        if REFLECTION in c:
            ds[REFLECTION + "_closed"] = c[REFLECTION]
    return ds, notes


def draw(ds: xr.Dataset, unit: str = "fs"):
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(13.5, 4.0), constrained_layout=True)
    if "log_negativity" in ds and "n_trajectories" in ds.dims:
        t = time_values(ds, "time", unit)
        counts = [int(n) for n in ds["n_trajectories"].values]
        cmap = plt.get_cmap("viridis")
        cols = [cmap(0.9 * i / max(len(counts) - 1, 1)) for i in range(len(counts))]
        scale = time_scale(ds, unit)
        t_on = float(ds["onset_time"]) * scale if "onset_time" in ds else np.nan
        early_end = 3 * t_on if np.isfinite(t_on) and t_on > 0 else t[-1] / 3
        have_closed = "log_negativity_closed" in ds
        for ax, early in ((a, False), (b, True)):
            sel = t <= early_end if early else np.ones(len(t), bool)
            for n, col in zip(counts, cols):
                y = ds["log_negativity"].sel(n_trajectories=n).values
                lo = ds["log_negativity_lower"].sel(n_trajectories=n).values
                hi = ds["log_negativity_upper"].sel(n_trajectories=n).values
                if np.isfinite(lo).any() and not early:
                    ax.fill_between(t[sel], lo[sel], hi[sel], color=col, alpha=0.12, lw=0)
                ax.plot(t[sel], y[sel], color=col, label=f"{n}")
            if have_closed:
                tc = time_values(ds, "time_closed", unit)
                cs = tc <= early_end if early else np.ones(len(tc), bool)
                ax.plot(tc[cs], ds["log_negativity_closed"].values[cs], "k--", lw=1,
                        label="no bath")
        top = max((float(np.nanmax(line.get_ydata())) for line in a.lines), default=0.0)
        a.set_ylim(bottom=0, top=1.45 * top if top > 0 else 1)
        b.set_yscale("log")
        b.set_ylim(1e-8, 3 * top if top > 0 else 1)
        if np.isfinite(t_on):
            b.axvspan(0, t_on, color="0.9", zorder=0, label="before onset")
        shade_reflections(a, ds, unit, t[-1], names=("reflection_time", "reflection_time_closed"))
        shade_reflections(b, ds, unit, t[t <= early_end][-1],
                          names=("reflection_time", "reflection_time_closed"))
        legend(a, title="trajectories", fontsize=7, loc="upper center", ncol=4)
        legend(b, fontsize=7, loc="lower right")
        _count_panel(c, ds, counts)
        temp = float(ds["bath_temperature"]) if "bath_temperature" in ds.coords else np.nan
        n_sp = int(ds["n_spins"]) if "n_spins" in ds.coords else 0
        a.set_title(f"{spins_label(n_sp)}, $T_{{bb}}$ = {temp:g} K (bands: bootstrap 95%)",
                    fontsize=9)
        b.set_title("early times, log scale", fontsize=9)
    else:
        for ax in (a, b, c):
            no_data(ax, notes_text(ds))
    for ax in (a, b):
        ax.set_xlabel(time_label(unit))
        ax.set_ylabel(r"$E_N$ (MLN)")
    c.set_xlabel("number of trajectories $n$")
    c.set_ylabel(r"$E_N$ difference (mean over $t$)")
    for ax, lab in zip((a, b, c), "abc"):
        panel_label(ax, lab)
    return fig


def _count_panel(ax, ds: xr.Dataset, counts: list[int]) -> None:
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter
    n = np.array(counts, dtype=float)
    rms = ds["rms_deviation"].values
    wid = ds["mean_band_width"].values
    n_all = n[-1]
    ok = np.isfinite(rms) & (rms > 0)
    ax.plot(n[ok], rms[ok], "o-", color="C3", label=f"rms($E_N^{{(n)}} - E_N^{{({n_all:g})}}$)")
    if ok.any():
        i = int(np.nonzero(ok)[0][0])
        guide = rms[i] * np.sqrt(np.clip(1 / n - 1 / n_all, 0, None) / (1 / n[i] - 1 / n_all))
        g = guide > 0
        ax.plot(n[g], guide[g], ":", color="C3", lw=1, label=r"$\propto\sqrt{1/n - 1/n_{all}}$")
    okw = np.isfinite(wid) & (wid > 0)
    ax.plot(n[okw], wid[okw], "s-", color="C0", label="band width")
    if okw.any():
        i = int(np.nonzero(okw)[0][0])
        ax.plot(n[okw], wid[i] * np.sqrt(n[i] / n[okw]), ":", color="C0", lw=1,
                label=r"$\propto 1/\sqrt{n}$")
    ax.set_xscale("log")
    ax.margins(x=0.12)
    if ok.any() or okw.any():
        ax.set_yscale("log")
        lo_y, hi_y = ax.get_ylim()
        ax.set_ylim(lo_y, hi_y * 3)
    ticks = [n[-1]]
    for x in n[-2::-1]:                  # from the largest count down, skip crowded labels
        if ticks[-1] / x >= 1.4:
            ticks.append(x)
    ax.xaxis.set_major_locator(FixedLocator(sorted(ticks)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_locator(NullLocator())
    if "pre_onset_excess" in ds and np.isfinite(ds["pre_onset_excess"].values).any():
        worst = float(np.nanmax(ds["pre_onset_excess"].values))
        ax.text(0.03, 0.03, "before onset, max over $n$ and $t$ of\n"
                rf"$E_N^{{(n)}} - E_N^{{\mathrm{{no\ bath}}}}$ = {worst:.1e}",
                transform=ax.transAxes, fontsize=7, ha="left", va="bottom")
    ax.legend(fontsize=7, loc="upper right")


FIGURE = Figure(
    name="fig_trajectory_count",
    title="MLN with baths against the number of quantum trajectories",
    inputs=inputs,
    build=build,
    draw=draw,
    settings=("reference_spins_per_layer", "fig_trajectory_count_temperature"),
    shown=shown,
)
