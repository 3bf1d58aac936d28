"""MLN lifetime against the bath temperature T_bb."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ...pipeline import sweeps
from ..aggregate import REFLECTION, combine, expand, lifetime_sweep, pick, rename_time, sweep_point
from ..plot import (duration_label, legend, lifetime_axes, lifetime_points, no_data, notes_text,
                    panel_label, plt, shade_reflections, spins_label, time_label, time_scale,
                    time_values)
from . import Figure


def inputs(config, jobs):
    """The merged bath files of the first coupling and the closed jobs at the same N."""
    bath = [j for j in sweeps.of_family(jobs, "bath") if sweeps.reference_coupling(config, j)]
    spins = {j.value("spins_per_layer") for j in bath}
    return {"closed": sweeps.closed_at(jobs, spins),
            "bath": sorted({sweeps.merged_of(j) for j in bath})}


def build(files):
    notes = []
    ds = lifetime_sweep(files, ["n_spins", "bath_temperature"], "bath lifetime sweep")
    if ds is None:
        return xr.Dataset(), ["no bath jobs (family bath disabled?)"]
    closed = []
    for d in files["closed"]:
        x = expand(pick(d, ["log_negativity"]), sweep_point(d), ["n_spins"])
        x.attrs = {}
        closed.append(x)
    if closed:
        c = rename_time(combine(closed, ["n_spins"], "closed reference"), "closed")
        c = c.rename({n: f"{n}_closed" for n in ("log_negativity", REFLECTION) if n in c})
        c["log_negativity_closed"].attrs["long_name"] = "MLN without baths (closed system, T = 0)"
        ds = xr.merge([ds, c], combine_attrs="override", join="outer")
    else:
        notes.append("no closed-system job at the bath N: no reference curve without baths")
    return ds, notes


def draw(ds: xr.Dataset, unit: str = "fs"):
    fig, (a, b) = plt.subplots(1, 2, figsize=(10.0, 4.0), constrained_layout=True)
    if "lifetime" in ds:
        scale = time_scale(ds, unit)
        t = time_values(ds, "time", unit)
        temps = [float(x) for x in ds["bath_temperature"].values]
        ns = [int(n) for n in ds["n_spins"].values]
        n0 = ns[-1]
        cmap = plt.get_cmap("plasma")
        colors = [cmap(0.8 * i / max(len(temps) - 1, 1)) for i in range(len(temps))]
        if "log_negativity_closed" in ds and n0 in ds["log_negativity_closed"]["n_spins"].values:
            tc = time_values(ds, "time_closed", unit)
            a.plot(tc, ds["log_negativity_closed"].sel(n_spins=n0), "k--", lw=1,
                   label="no bath")
        for temp, col in zip(temps, colors):
            pt = ds.sel(n_spins=n0, bath_temperature=temp)
            y = pt["log_negativity"]
            if not bool(y.notnull().any()):
                continue
            if "log_negativity_lower" in pt and "log_negativity_upper" in pt:
                a.fill_between(t, pt["log_negativity_lower"], pt["log_negativity_upper"],
                               color=col, alpha=0.15, lw=0)
            a.plot(t, y, "-", color=col, label=f"$T_{{bb}}$ = {temp:g} K")
            tau, t_pk = float(pt["lifetime"]), float(pt["time_of_peak"])
            if np.isfinite(tau) and not int(pt["lifetime_is_lower_bound"]):
                a.plot([(t_pk + tau) * scale], [float(pt["peak_log_negativity"]) / np.e], "o",
                       color=col, mec="k", ms=5)
        top = max((float(np.nanmax(line.get_ydata())) for line in a.lines), default=0.0)
        a.set_ylim(bottom=0, top=1.45 * top if top > 0 else 1)
        shade_reflections(a, ds, unit, t[-1], names=("reflection_time", "reflection_time_closed"),
                          n_spins=n0)
        legend(a, title=spins_label(n0), fontsize=7, loc="upper center", ncol=3)
        _lifetime_panel(b, ds, ns, scale)
    else:
        no_data(a, notes_text(ds))
        no_data(b, notes_text(ds))
    a.set_xlabel(time_label(unit))
    a.set_ylabel(r"$E_N$ (MLN)")
    b.set_xlabel(r"$T_{bb}$ (K)")
    b.set_ylabel(duration_label(r"MLN lifetime $\tau$", unit))
    panel_label(a, "a")
    panel_label(b, "b")
    return fig


def _lifetime_panel(ax, ds: xr.Dataset, ns: list[int], scale: float) -> None:
    temps = np.array([float(x) for x in ds["bath_temperature"].values])
    for i, n in enumerate(ns):
        lifetime_points(ax, temps, ds.sel(n_spins=n), scale, f"C{i}", "osD^v"[i % 5],
                        spins_label(n))
    lifetime_axes(ax, temps, ds, scale)


FIGURE = Figure(
    name="fig_bath_lifetime",
    title="MLN lifetime against the bath temperature T_bb",
    inputs=inputs,
    build=build,
    draw=draw,
)
