"""The paper's literal 201-site chain beside clean leads: chain-end reflections."""

from __future__ import annotations

import xarray as xr

from ...pipeline import sweeps
from ..aggregate import REFLECTION, cf_var, combine, expand, pick, sweep_point
from ..plot import (legend, no_data, notes_text, panel_label, plt, shade_reflections, spins_label,
                    time_label, time_values)
from . import Figure


def inputs(config, jobs):
    """Every boundary job (the paper's literal chain) and the clean-lead closed jobs at the
    same N."""
    literal = sweeps.of_family(jobs, "boundary")
    spins = {j.value("spins_per_layer") for j in literal}
    return {"closed": sweeps.closed_at(jobs, spins), "boundary": [j.output for j in literal]}


def build(files):
    """The paper's literal chain (family boundary) beside clean leads (closed, same N):
    MLN, MI and <s_e^z>, each with the reflection time of its chain."""
    names = ["log_negativity", "mutual_information", "electron_spin"]
    if not files["boundary"]:
        return xr.Dataset(), ["no boundary jobs (family boundary disabled?)"]
    parts, notes = [], []
    for fam, suffix in (("boundary", "literal"), ("closed", "clean")):
        runs = []
        for d in files[fam]:
            x = pick(d, names)
            x["chain_sites"] = cf_var((), int(d.attrs.get("chain_sites", -1)), "1",
                                      "sites of the whole chain (leads included)")
            x = expand(x, sweep_point(d), ["n_spins"])
            x.attrs = {}
            runs.append(x)
        if not runs:
            notes.append(f"no {fam} job at the boundary N: no {suffix}-chain curves")
            continue
        x = combine(runs, ["n_spins"], f"fig_boundary {fam}")
        x = x.rename({n: f"{n}_{suffix}" for n in [*names, REFLECTION, "chain_sites", "time"]
                      if n in x.variables})
        for n in names:
            x[f"{n}_{suffix}"].attrs["long_name"] += (" on the paper's literal chain (chain.leads: "
                                                      "none)" if suffix == "literal" else
                                                      " on clean leads (chain.leads: auto)")
        parts.append(x)
    return xr.merge(parts, combine_attrs="override", join="outer"), notes


BOUNDARY_PANELS = (("log_negativity", r"$E_N$ (MLN)"),
                   ("mutual_information", r"$I(\mathrm{FM}_p{:}\mathrm{FM}_a)$"),
                   ("electron_spin", r"$\langle \hat s^z_e \rangle$"))


def draw(ds: xr.Dataset, unit: str = "fs"):
    """MLN, MI and <s_e^z> on the paper's literal chain (solid) and on clean leads (dashed)
    for the first N of the data; t > reflection_time of the literal chain shaded."""
    fig, axes = plt.subplots(1, 3, figsize=(13.0, 3.8), constrained_layout=True)
    if "log_negativity_literal" not in ds:
        for ax in axes:
            no_data(ax, notes_text(ds))
    else:
        n0 = int(ds["n_spins"].values[0])
        for ax, (name, ylabel) in zip(axes, BOUNDARY_PANELS):
            for suffix, style, label in (("literal", "-", "paper's chain, L = {L}"),
                                         ("clean", "--", "clean leads, L = {L}")):
                var = f"{name}_{suffix}"
                if var not in ds:
                    continue
                y = ds[var].sel(n_spins=n0)
                if "component" in y.dims:
                    y = y.sel(component="z")
                t = time_values(ds, f"time_{suffix}", unit)
                L = (int(ds[f"chain_sites_{suffix}"].sel(n_spins=n0))
                     if f"chain_sites_{suffix}" in ds else "?")
                ax.plot(t, y, style, color="k" if suffix == "literal" else "C0",
                        label=label.format(L=L))
            t_lit = time_values(ds, "time_literal", unit)
            shade_reflections(ax, ds, unit, t_lit[-1], names=("reflection_time_literal",),
                              n_spins=n0)
            legend(ax, fontsize=7, loc="best")
        axes[0].set_title(f"{spins_label(n0)} spins", fontsize=9)
    for ax, lab, (_, ylabel) in zip(axes, "abc", BOUNDARY_PANELS):
        panel_label(ax, lab)
        ax.set_ylabel(ylabel)
        ax.set_xlabel(time_label(unit))
    return fig


FIGURE = Figure(
    name="fig_boundary",
    title="The paper's literal 201-site chain beside clean leads: chain-end reflections",
    inputs=inputs,
    build=build,
    draw=draw,
)
