"""Fig. 2: electron spin and localized spins, T = 0."""

from __future__ import annotations

from typing import Mapping

import xarray as xr

from ...pipeline import sweeps
from ..aggregate import pick, sweep_point
from ..plot import (layers_of, legend, no_data, notes_text, panel_label, plt, shade_reflections,
                    time_label, time_values)
from . import Figure


def inputs(config, jobs):
    """The closed-system job at the reference N."""
    return {"closed": sweeps.closed_selection(config, jobs, None)}


def build(files: Mapping[str, list[xr.Dataset]]) -> tuple[xr.Dataset, list[str]]:
    (ds,) = files["closed"][:1] or [None]
    if ds is None:
        return xr.Dataset(), ["no closed-system job (family closed disabled?)"]
    out = pick(ds, ["electron_spin", "spin_expectation"])
    return out.assign_attrs(reference_n_spins=sweep_point(ds)["n_spins"]), []


def draw(ds: xr.Dataset, unit: str = "fs"):
    fig, axes = plt.subplots(2, 1, figsize=(5.0, 6.0), sharex=True, constrained_layout=True)
    ax = axes[0]
    if "electron_spin" in ds:
        t = time_values(ds, "time", unit)
        for comp, style in zip(("x", "y", "z"), ("--", ":", "-")):
            ax.plot(t, ds["electron_spin"].sel(component=comp), style,
                    label=rf"$\langle \hat s^{comp}_e \rangle$")
        shade_reflections(ax, ds, unit, t[-1])
        legend(ax, loc="best", fontsize=8)
    else:
        no_data(ax, notes_text(ds))
    ax.set_ylabel(r"$\langle \hat{\mathbf{s}}_e \rangle$")
    panel_label(ax, "a")
    ax = axes[1]
    if "spin_expectation" in ds:
        t = time_values(ds, "time", unit)
        sz = ds["spin_expectation"].sel(component="z")
        layers = layers_of(ds)
        cmap = plt.get_cmap("tab10" if sz.sizes["spin"] <= 10 else "tab20")
        for i in range(sz.sizes["spin"]):
            style = "-" if layers[i] == "p" else "--"
            ax.plot(t, sz.isel(spin=i), style, color=cmap(i % cmap.N),
                    label=f"i = {i + 1} (FM$_{layers[i]}$)")
        shade_reflections(ax, ds, unit, t[-1])
        legend(ax, loc="center right", fontsize=7, ncol=2)
    else:
        no_data(ax, notes_text(ds))
    ax.set_ylabel(r"$\langle \hat S^z_i \rangle$")
    ax.set_xlabel(time_label(unit))
    panel_label(ax, "b")
    return fig


FIGURE = Figure(
    name="fig2",
    title="Fig. 2: electron spin and localized spins, T = 0",
    inputs=inputs,
    build=build,
    draw=draw,
    settings=("reference_spins_per_layer",),
)
