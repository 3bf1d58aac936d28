"""Fig. 4: MLN for N/2 + N/2 localized spins."""

from __future__ import annotations

import xarray as xr

from ...pipeline import sweeps
from ..aggregate import sweep_closed
from ..plot import (legend, no_data, notes_text, plt, shade_reflections, spins_label, time_label,
                    time_values)
from . import Figure


def inputs(config, jobs):
    """The closed-system jobs at figures.fig4_spins_per_layer (all of them if null)."""
    return {"closed": sweeps.closed_selection(config, jobs, "fig4_spins_per_layer")}


def build(files):
    return sweep_closed(files, ["log_negativity"])


def draw(ds: xr.Dataset, unit: str = "fs"):
    fig, ax = plt.subplots(figsize=(5.5, 4.0), constrained_layout=True)
    if "log_negativity" in ds:
        t = time_values(ds, "time", unit)
        ns = list(ds["n_spins"].values)
        cmap = plt.get_cmap("viridis")
        for i, n in enumerate(ns):
            ax.plot(t, ds["log_negativity"].sel(n_spins=n), color=cmap(i / max(len(ns) - 1, 1)),
                    label=spins_label(int(n)))
        shade_reflections(ax, ds, unit, t[-1])
        legend(ax, title="N/2 + N/2", fontsize=8, loc="best")
    else:
        no_data(ax, notes_text(ds))
    ax.set_xlabel(time_label(unit))
    ax.set_ylabel(r"$E_N$ (MLN)")
    return fig


FIGURE = Figure(
    name="fig4",
    title="Fig. 4: MLN for N/2 + N/2 localized spins",
    inputs=inputs,
    build=build,
    draw=draw,
    settings=("fig4_spins_per_layer",),
)
