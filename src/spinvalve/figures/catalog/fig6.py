"""Fig. 6: multi-electron pulses (tDMRG): localized spins and half-chain entropy."""

from __future__ import annotations

import xarray as xr

from ...pipeline import sweeps
from ..aggregate import combine, expand, pick, sweep_point
from ..plot import (layers_of, legend, no_data, notes_text, panel_label, plt, shade_reflections,
                    time_label, time_values)
from . import Figure


def inputs(config, jobs):
    """Every multi-electron (tDMRG) job."""
    return {"multi_electron": [j.output for j in sweeps.of_family(jobs, "multi_electron")]}


def build(files):
    parts = []
    for d in files["multi_electron"]:
        x = expand(pick(d, ["spin_expectation", "entropy_half"],
                        optional=["bond_dimension", "truncation_error"]),
                   sweep_point(d), ["n_electrons"])
        x.attrs = {}
        parts.append(x)
    if not parts:
        return xr.Dataset(), ["no multi-electron jobs (family multi_electron disabled?)"]
    return combine(parts, ["n_electrons"], "multi-electron sweep"), []


def draw(ds: xr.Dataset, unit: str = "fs"):
    """One column per electron number (at most three, as in the paper): localized spins on
    top, the half-chain entropy below, rows on a common y scale so the N_e dependence reads
    across; t > reflection_time shaded per column."""
    nes = [int(n) for n in ds["n_electrons"].values][:3] if "spin_expectation" in ds else []
    cols = max(1, len(nes))
    fig, axes = plt.subplots(2, cols, figsize=(3.7 * cols, 6.0), sharex=True, sharey="row",
                             constrained_layout=True, squeeze=False)
    if nes:
        t = time_values(ds, "time", unit)
        layers = layers_of(ds)
        cmap = plt.get_cmap("tab10")
        for j, ne in enumerate(nes):
            sz = ds["spin_expectation"].sel(n_electrons=ne, component="z")
            for i in range(sz.sizes["spin"]):
                style = "-" if layers[i] == "p" else "--"
                axes[0, j].plot(t, sz.isel(spin=i), style, color=cmap(i % 10), label=f"i = {i + 1}")
            axes[0, j].set_title(f"$N_e$ = {ne}")
            axes[1, j].plot(t, ds["entropy_half"].sel(n_electrons=ne), "k-",
                            label=f"$N_e$ = {ne}")
            for ax in axes[:, j]:
                shade_reflections(ax, ds, unit, t[-1], n_electrons=ne)
            legend(axes[1, j], fontsize=7, loc="lower right")
        legend(axes[0, 0], fontsize=7, ncol=2, loc="center right")
    else:
        for ax in axes.ravel():
            no_data(ax, notes_text(ds))
    for j in range(cols):
        panel_label(axes[0, j], "abcdef"[j])
        panel_label(axes[1, j], "abcdef"[cols + j])
        axes[1, j].set_xlabel(time_label(unit))
    axes[0, 0].set_ylabel(r"$\langle \hat S^z_i \rangle$")
    axes[1, 0].set_ylabel(r"$S_{half}$")
    return fig


FIGURE = Figure(
    name="fig6",
    title="Fig. 6: multi-electron pulses (tDMRG): localized spins and half-chain entropy",
    inputs=inputs,
    build=build,
    draw=draw,
)
