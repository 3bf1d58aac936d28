"""Fig. 7: quantum Fisher information density."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ...pipeline import sweeps
from ..aggregate import sweep_closed
from ..plot import (legend, no_data, notes_text, panel_label, plt, shade_reflections, spins_label,
                    time_label, time_values)
from . import Figure


def inputs(config, jobs):
    """The closed-system jobs at figures.fig7_spins_per_layer (all of them if null)."""
    return {"closed": sweeps.closed_selection(config, jobs, "fig7_spins_per_layer")}


def build(files):
    return sweep_closed(files, ["qfi_bound"], optional=["qfi_exact"])


def _k_style(k: float) -> str:
    """Line style of a QFI momentum (paper Fig. 7: k = pi/6 dotted, k = pi/2 solid)."""
    return ":" if np.isclose(k, np.pi / 6) else ("-" if np.isclose(k, np.pi / 2) else "--")


QFI_PANELS = (("qfi_bound", "Eq. 29 bound (the paper's $f_Q$)"),
              ("qfi_exact", "exact mixed-state QFI"))


WITNESS_GID = "multipartite_witness"


def draw(ds: xr.Dataset, unit: str = "fs"):
    """(a) the Eq. 29 bound, which the paper plots, (b) the exact mixed-state QFI density,
    both with S^z = sigma^z / 2 and the witness threshold f_Q = 1 (above it: multipartite
    entanglement)."""
    fig, axes = plt.subplots(1, 2, figsize=(10.0, 4.0), sharey=True, constrained_layout=True)
    if "qfi_bound" not in ds:
        for ax in axes:
            no_data(ax, notes_text(ds))
    else:
        t = time_values(ds, "time", unit)
        ns = list(ds["n_spins"].values)
        cmap = plt.get_cmap("plasma")
        ks = [float(k) for k in ds["k"].values]
        for ax, (name, title) in zip(axes, QFI_PANELS):
            ax.set_title(title, fontsize=9)
            if name not in ds:
                no_data(ax, f"no {name} in the data")
                continue
            for i, n in enumerate(ns):
                col = cmap(0.85 * i / max(len(ns) - 1, 1))
                for k in ks:
                    ax.plot(t, ds[name].sel(n_spins=n, k=k), _k_style(k), color=col,
                            label=f"{spins_label(int(n))}, k = {_k_label(k)}")
            ax.axhline(1.0, color="0.3", lw=0.8, ls="--", gid=WITNESS_GID,
                       label=r"$f_Q = 1$: above, multipartite entanglement")
            shade_reflections(ax, ds, unit, t[-1])
            legend(ax, fontsize=7, loc="best", ncol=2)
        axes[0].text(0.98, 0.02, r"$\hat S^z_i = \hat\sigma^z_i / 2$", transform=axes[0].transAxes,
                     ha="right", va="bottom", fontsize=8)
    for ax, lab in zip(axes, "ab"):
        ax.set_xlabel(time_label(unit))
        panel_label(ax, lab)
    axes[0].set_ylabel(r"$f_Q$ (QFI density)")
    return fig


def _k_label(k: float) -> str:
    for den in (2, 3, 4, 6, 8, 12):
        if np.isclose(k * den / np.pi, round(k * den / np.pi)):
            num = int(round(k * den / np.pi))
            return (r"$\pi$" if num == 1 else rf"${num}\pi$") + f"/{den}"
    return f"{k:.3g}"


FIGURE = Figure(
    name="fig7",
    title="Fig. 7: quantum Fisher information density",
    inputs=inputs,
    build=build,
    draw=draw,
    settings=("fig7_spins_per_layer",),
)
