"""Peak MLN against the Gibbs temperature of the initial state."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ...pipeline import sweeps
from ..aggregate import combine, expand, pick, sweep_point
from ..plot import (legend, no_data, notes_text, panel_label, plt, shade_reflections, spins_label,
                    time_label, time_values)
from . import Figure


def inputs(config, jobs):
    """Every Gibbs job and the T = 0 closed jobs at the same N."""
    gibbs = sweeps.of_family(jobs, "gibbs")
    spins = {j.value("spins_per_layer") for j in gibbs}
    return {"closed": sweeps.closed_at(jobs, spins), "gibbs": [j.output for j in gibbs]}


def build(files):
    parts = []
    for fam in ("closed", "gibbs"):
        for d in files[fam]:
            p = sweep_point(d)
            x = expand(pick(d, ["log_negativity"]), p, ["n_spins", "temperature"])
            x.attrs = {}
            parts.append(x)
    if not [d for d in files["gibbs"]]:
        return xr.Dataset(), ["no Gibbs jobs (family gibbs disabled?)"]
    ds = combine(parts, ["n_spins", "temperature"], "Gibbs sweep")
    mln = ds["log_negativity"]
    ds["peak_log_negativity"] = mln.max("time").assign_attrs(
        units=mln.attrs.get("units", "1"),
        long_name="maximum over time of the mutual logarithmic negativity")
    ds["time_of_peak"] = mln.fillna(-np.inf).idxmax("time").where(mln.notnull().any("time"))
    ds["time_of_peak"].attrs.update(units="fs", long_name="time of the MLN maximum")
    return ds, []


def draw(ds: xr.Dataset, unit: str = "fs"):
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.0, 3.8), constrained_layout=True)
    if "peak_log_negativity" in ds:
        t = time_values(ds, "time", unit)
        temps = [float(x) for x in ds["temperature"].values]
        ns = [int(n) for n in ds["n_spins"].values]
        cmap = plt.get_cmap("coolwarm")
        n0 = ns[-1]
        for i, temp in enumerate(temps):
            y = ds["log_negativity"].sel(n_spins=n0, temperature=temp)
            if bool(y.notnull().any()):
                a.plot(t, y, color=cmap(i / max(len(temps) - 1, 1)), label=f"{temp:g} K")
        shade_reflections(a, ds, unit, t[-1], n_spins=n0)
        legend(a, title=f"$T_{{Gibbs}}$ ({spins_label(n0)})", fontsize=7)
        for n in ns:
            peak = ds["peak_log_negativity"].sel(n_spins=n)
            ok = peak.notnull()
            b.plot(np.asarray(temps)[ok.values], peak.values[ok.values], "o-",
                   label=spins_label(n))
        top = max((float(np.nanmax(line.get_ydata())) for line in b.lines), default=0.0)
        b.set_ylim(bottom=-0.04 * top, top=1.15 * top if top > 0 else 1)   # room for the label
        b.legend(title="N/2 + N/2", fontsize=8)
    else:
        no_data(a, notes_text(ds))
        no_data(b, notes_text(ds))
    a.set_xlabel(time_label(unit))
    a.set_ylabel(r"$E_N$ (MLN)")
    b.set_xlabel(r"$T_{Gibbs}$ (K)")
    b.set_ylabel(r"max$_t\, E_N$")
    panel_label(a, "a")
    panel_label(b, "b")
    return fig


FIGURE = Figure(
    name="fig_gibbs",
    title="Peak MLN against the Gibbs temperature of the initial state",
    inputs=inputs,
    build=build,
    draw=draw,
)
