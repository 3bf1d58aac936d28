"""Fig. 5: magnon-sector probabilities and W-state probability."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ...pipeline import sweeps
from ..aggregate import pick, sweep_point
from ..plot import (legend, no_data, notes_text, panel_grid, panel_label, plt, shade_reflections,
                    spins_label, time_label, time_values)
from . import Figure


def inputs(config, jobs):
    """The closed-system job at the reference N."""
    return {"closed": sweeps.closed_selection(config, jobs, None)}


def build(files):
    (ds,) = files["closed"][:1] or [None]
    if ds is None:
        return xr.Dataset(), ["no closed-system job (family closed disabled?)"]
    out = pick(ds, ["magnon_probability", "w_state_probability"])
    return out.assign_attrs(reference_n_spins=sweep_point(ds)["n_spins"]), []


def magnon_groups(n_spins: int) -> list[list[int]]:
    """Paper Fig. 5 panels: (a) m = 0, 1, 2 (+ W); m >= 3 split over up to three more panels,
    as many as there are sectors (no empty panel: 2+2 has m = 3 and m = 4 only)."""
    rest = list(range(3, n_spins + 1))
    chunks = [list(map(int, c)) for c in np.array_split(np.array(rest, dtype=int),
                                                        min(3, len(rest)))] if rest else []
    return [[m for m in range(min(2, n_spins) + 1)]] + chunks


def draw(ds: xr.Dataset, unit: str = "fs"):
    if "magnon_probability" not in ds:
        fig, axes = panel_grid(1)
        no_data(axes[0], notes_text(ds))
        return fig
    t = time_values(ds, "time", unit)
    mags = [int(m) for m in ds["magnons"].values]
    groups = magnon_groups(max(mags))
    fig, axes = panel_grid(len(groups))
    cmap = plt.get_cmap("tab10")
    for ax, group, lab in zip(axes, groups, "abcd"):
        for m in group:
            ax.plot(t, ds["magnon_probability"].sel(magnons=m), color=cmap(m % 10),
                    label=f"m = {m}")
        if group[0] == 0 and "w_state_probability" in ds:
            ax.plot(t, ds["w_state_probability"], "k:", label="1-magnon W")
        shade_reflections(ax, ds, unit, t[-1])
        legend(ax, fontsize=8, loc="best")
        panel_label(ax, lab)
        ax.set_ylabel(r"Prob$_{m\text{-magnons}}$")
    n_last = 2 if len(axes) > 2 else 0
    for ax in axes[n_last:]:
        ax.set_xlabel(time_label(unit))
    if "reference_n_spins" in ds.attrs:
        fig.suptitle(f"{spins_label(int(ds.attrs['reference_n_spins']))} spins", fontsize=9)
    return fig


FIGURE = Figure(
    name="fig5",
    title="Fig. 5: magnon-sector probabilities and W-state probability",
    inputs=inputs,
    build=build,
    draw=draw,
    settings=("reference_spins_per_layer",),
)
