"""Fig. 3: entropies, mutual information and MLN (T = 0, Gibbs, baths)."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import xarray as xr

from ...pipeline import sweeps
from ..aggregate import REFLECTION, combine, expand, pick, rename_time, sweep_point
from ..plot import (legend, no_data, notes_text, panel_label, plt, shade_reflections, time_dim,
                    time_label, time_values)
from . import Figure


def inputs(config, jobs):
    """The closed job at the reference N, the Gibbs job at figures.fig3_gibbs_temperature and
    the merged bath files at figures.fig3_bath_temperatures (first coupling), same N."""
    figs = config.get("figures") or {}
    ref = sweeps.reference_spins(config)
    t_g = figs.get("fig3_gibbs_temperature")
    gibbs = [j.output for j in sweeps.of_family(jobs, "gibbs")
             if j.value("spins_per_layer") == ref and t_g is not None
             and float(j.value("T_gibbs")) == float(t_g)]
    t_bb = {float(t) for t in figs.get("fig3_bath_temperatures") or []}
    bath = sorted({sweeps.merged_of(j) for j in sweeps.of_family(jobs, "bath")
                   if j.value("spins_per_layer") == ref and sweeps.reference_coupling(config, j)
                   and float(j.value("T_bb")) in t_bb})
    return {"closed": sweeps.closed_selection(config, jobs, None), "gibbs": gibbs, "bath": bath}


def build(files: Mapping[str, list[xr.Dataset]]) -> tuple[xr.Dataset, list[str]]:
    notes, parts = [], []
    closed = files["closed"][:1]
    if closed:
        ds = closed[0]
        parts.append(pick(ds, ["entropy_pa", "entropy_p", "entropy_a", "mutual_information",
                               "log_negativity"]))
    else:
        notes.append("no closed-system job: panels (a)-(d) T = 0 empty")
    gibbs = files["gibbs"]
    if gibbs:
        g = [expand(pick(d, ["log_negativity"]), sweep_point(d), ["temperature"])
             for d in gibbs]
        g = rename_time(combine(g, ["temperature"], "fig3 gibbs"), "gibbs")
        parts.append(g.rename({n: f"{n}_gibbs" for n in ("log_negativity", REFLECTION)
                               if n in g.variables}))
    else:
        notes.append("no Gibbs job: the T_Gibbs line of panel (d) is missing")
    bath = [expand(pick(u, ["log_negativity"]), sweep_point(u), ["bath_temperature"])
            for u in files["bath"]]
    if bath:
        b = rename_time(combine(bath, ["bath_temperature"], "fig3 bath"), "bath")
        parts.append(b.rename({n: n.replace("log_negativity", "log_negativity_bath")
                               .replace(REFLECTION, REFLECTION + "_bath") for n in b.data_vars}))
    elif not files["bath"]:
        notes.append("no bath job: the T_bb lines of panel (d) are missing")
    if not parts:
        return xr.Dataset(), notes
    return xr.merge(parts, combine_attrs="override"), notes


def draw(ds: xr.Dataset, unit: str = "fs"):
    fig, axes = plt.subplots(2, 2, figsize=(8.0, 6.0), sharex=True, constrained_layout=True)
    (a, b), (c, d) = axes
    have_closed = "entropy_pa" in ds
    if have_closed:
        t = time_values(ds, "time", unit)
        a.plot(t, ds["entropy_pa"], "k-")
        b.plot(t, ds["entropy_p"], "k-.", label=r"FM$_p$")
        b.plot(t, ds["entropy_a"], "k:", label=r"FM$_a$")
        c.plot(t, ds["mutual_information"], "k-")
        d.plot(t, ds["log_negativity"], "k-", label="T = 0 K")
        for ax in (a, b, c):
            shade_reflections(ax, ds, unit, t[-1])
            legend(ax, loc="best", fontsize=8)
    else:
        for ax in (a, b, c):
            no_data(ax, notes_text(ds))
    if "log_negativity_gibbs" in ds:
        var = ds["log_negativity_gibbs"]
        tg = time_values(ds, time_dim(var), unit)
        for temp in var["temperature"].values:
            d.plot(tg, var.sel(temperature=temp), "r:", label=f"$T_{{Gibbs}}$ = {temp:g} K")
    if "log_negativity_bath" in ds:
        var = ds["log_negativity_bath"]
        tb = time_values(ds, time_dim(var), unit)
        temps = list(var["bath_temperature"].values)
        colors = _bath_colors(temps)
        for temp, col in zip(temps, colors):
            if "log_negativity_bath_lower" in ds and "log_negativity_bath_upper" in ds:
                d.fill_between(tb, ds["log_negativity_bath_lower"].sel(bath_temperature=temp),
                               ds["log_negativity_bath_upper"].sel(bath_temperature=temp),
                               color="0.75", alpha=0.7, lw=0)
            d.plot(tb, var.sel(bath_temperature=temp), "-", color=col,
                   label=f"$T_{{bb}}$ = {temp:g} K")
    if d.lines:
        t_max = max(float(np.max(line.get_xdata())) for line in d.lines)
        shade_reflections(d, ds, unit, t_max, names=("reflection_time", "reflection_time_gibbs",
                                                     "reflection_time_bath"))
        legend(d, loc="best", fontsize=8)
    else:
        no_data(d, notes_text(ds))
    a.set_ylabel(r"$S_{\mathrm{FM}_p \cup \mathrm{FM}_a}$")
    b.set_ylabel(r"$S_{\mathrm{FM}_p}$, $S_{\mathrm{FM}_a}$")
    c.set_ylabel(r"$I(\mathrm{FM}_p{:}\mathrm{FM}_a)$")
    d.set_ylabel(r"$E_N$ (MLN)")
    for ax, lab in zip((a, b, c, d), "abcd"):
        panel_label(ax, lab)
    for ax in (c, d):
        ax.set_xlabel(time_label(unit))
    return fig


def _bath_colors(temps: Sequence[float]) -> list:
    fixed = {10.0: "orange", 100.0: "red"}
    cmap = plt.get_cmap("autumn_r")
    out = []
    for i, temp in enumerate(temps):
        out.append(fixed.get(float(temp), cmap(0.3 + 0.7 * i / max(len(temps) - 1, 1))))
    return out


FIGURE = Figure(
    name="fig3",
    title="Fig. 3: entropies, mutual information and MLN (T = 0, Gibbs, baths)",
    inputs=inputs,
    build=build,
    draw=draw,
    settings=("reference_spins_per_layer", "fig3_gibbs_temperature", "fig3_bath_temperatures"),
)
