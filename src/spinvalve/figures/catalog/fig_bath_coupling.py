"""MLN lifetime and peak MLN against the bath coupling Gamma at fixed T_bb."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ...pipeline import sweeps
from ..aggregate import (AggregationError, REFLECTION, SWEEP_COORDS, lifetime_sweep, pick,
                         rename_time, sweep_point)
from ..plot import (duration_label, legend, lifetime_axes, lifetime_points, no_data, notes_text,
                    panel_label, plt, shade_reflections, spins_label, time_label, time_scale,
                    time_values)
from . import Figure


def inputs(config, jobs):
    """The merged bath files of every coupling at (N, T_bb) of :func:`shown`, and the closed
    job at that N."""
    n, t_bb = sweeps.bath_coupling_point(config)
    merged = sorted({sweeps.merged_of(j) for j in sweeps.of_family(jobs, "bath")
                     if j.value("spins_per_layer") == n and float(j.value("T_bb")) == t_bb})
    return {"closed": sweeps.closed_at(jobs, {n}), "bath": merged}


def shown(config):
    n, t_bb = sweeps.bath_coupling_point(config)
    bath = config.get("bath") or {}
    return {"spins_per_layer": n, "T_bb": t_bb, "couplings": bath.get("couplings"),
            "cutoffs": bath.get("cutoffs")}


def build(files):
    """Lifetime, its interval and the peak MLN of every merged bath file at one (N, T_bb),
    along the couplings ``bath_gamma`` and ``bath_omega_max``; the closed MLN as reference."""
    notes = []
    ds = lifetime_sweep(files, ["bath_omega_max", "bath_gamma"], "bath coupling sweep")
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
        c = rename_time(pick(files["closed"][0], ["log_negativity"]), "closed")
        ds["log_negativity_closed"] = c["log_negativity"].assign_attrs(
            long_name="MLN without baths (closed system, T = 0)")
        if REFLECTION in c:
            ds[REFLECTION + "_closed"] = c[REFLECTION]
    else:
        notes.append("no closed-system job at this N: no reference curve without baths")
    return ds, notes


def draw(ds: xr.Dataset, unit: str = "fs"):
    """(a) MLN(t) for every Gamma (first cutoff) with its band and the no-bath curve,
    (b) the MLN lifetime and (c) the peak MLN against Gamma, one line per cutoff."""
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(13.5, 4.0), constrained_layout=True)
    if "lifetime" not in ds:
        for ax in (a, b, c):
            no_data(ax, notes_text(ds))
    else:
        scale = time_scale(ds, unit)
        t = time_values(ds, "time", unit)
        gammas = np.array([float(g) for g in ds["bath_gamma"].values])
        cutoffs = [float(w) for w in ds["bath_omega_max"].values]
        cmap = plt.get_cmap("viridis")
        cols = [cmap(0.85 * i / max(len(gammas) - 1, 1)) for i in range(len(gammas))]
        if "log_negativity_closed" in ds:
            a.plot(time_values(ds, "time_closed", unit), ds["log_negativity_closed"], "k--", lw=1,
                   label="no bath")
        first = ds.sel(bath_omega_max=cutoffs[0])
        for g, col in zip(gammas, cols):
            pt = first.sel(bath_gamma=g)
            if "log_negativity_lower" in pt:
                a.fill_between(t, pt["log_negativity_lower"], pt["log_negativity_upper"],
                               color=col, alpha=0.15, lw=0)
            a.plot(t, pt["log_negativity"], "-", color=col, label=rf"$\Gamma$ = {g:g} eV")
        top = max((float(np.nanmax(line.get_ydata())) for line in a.lines), default=0.0)
        a.set_ylim(bottom=0, top=1.45 * top if top > 0 else 1)  # room for the legend
        shade_reflections(a, ds, unit, t[-1], names=("reflection_time", "reflection_time_closed"))
        legend(a, fontsize=7, loc="upper center", ncol=3, title=rf"$\omega_m$ = {cutoffs[0]:g} eV")
        for i, w in enumerate(cutoffs):
            pt = ds.sel(bath_omega_max=w)
            lifetime_points(b, gammas, pt, scale, f"C{i}", "osD^v"[i % 5],
                            rf"$\omega_m$ = {w:g} eV")
            peak = pt["peak_log_negativity"].values
            c.plot(gammas, peak, "osD^v"[i % 5] + "-", color=f"C{i}", label=rf"$\omega_m$ = {w:g} eV")
        lifetime_axes(b, gammas, ds, scale)
        if len(gammas) and (gammas > 0).all() and gammas.max() / gammas.min() > 5:
            c.set_xscale("log")
        c.set_ylim(bottom=0)
        c.margins(x=0.1)
        legend(c, fontsize=7, loc="best")
        n = int(ds["n_spins"]) if "n_spins" in ds.coords else 0
        temp = float(ds["bath_temperature"]) if "bath_temperature" in ds.coords else np.nan
        a.set_title(f"{spins_label(n)}, $T_{{bb}}$ = {temp:g} K (bands: bootstrap 95%)",
                    fontsize=9)
    a.set_xlabel(time_label(unit))
    a.set_ylabel(r"$E_N$ (MLN)")
    for ax in (b, c):
        ax.set_xlabel(r"bath strength $\Gamma$ (eV)")
    b.set_ylabel(duration_label(r"MLN lifetime $\tau$", unit))
    c.set_ylabel(r"max$_t\, E_N$")
    for ax, lab in zip((a, b, c), "abc"):
        panel_label(ax, lab)
    return fig


FIGURE = Figure(
    name="fig_bath_coupling",
    title="MLN lifetime and peak MLN against the bath coupling Gamma at fixed T_bb",
    inputs=inputs,
    build=build,
    draw=draw,
    settings=("reference_spins_per_layer", "fig_bath_coupling_temperature"),
    shown=shown,
)
