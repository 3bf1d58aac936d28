"""Plots of paper Figs. 2-7 (and the Gibbs figure) from the aggregated NetCDF files only.

Each ``plot_<figure>`` takes the figure-ready dataset written by
:mod:`spinvalve.figures.aggregate` and returns a matplotlib figure in the
paper's layout (panels, axes, legends). Times are stored in fs; every time axis
is drawn in fs (default) or in hbar/gamma (``time_unit="hbar_over_gamma"``),
and the axis label says which (SPEC "Time axis"). A panel whose family has no
data yet says so instead of failing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from .. import HBAR  # noqa: E402
from ..errors import PlotError  # noqa: E402
from ..io import atomic_output  # noqa: E402

TIME_UNITS = ("fs", "hbar_over_gamma")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def time_values(ds: xr.Dataset, dim: str, unit: str) -> np.ndarray:
    t = np.asarray(ds[dim].values, dtype=float)
    if unit == "fs":
        return t
    if unit == "hbar_over_gamma":
        return t * time_scale(ds, unit)
    raise PlotError(f"time_unit: must be one of {list(TIME_UNITS)}, got {unit!r}")


def time_label(unit: str) -> str:
    return r"$t$ (fs)" if unit == "fs" else r"$t$ ($\hbar/\gamma$)"


def time_dim(var: xr.DataArray) -> str:
    return next(d for d in var.dims if str(d).startswith("time"))


def no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center",
            fontsize=8, color="0.4", wrap=True)


def notes_text(ds: xr.Dataset) -> str:
    notes = ds.attrs.get("notes", "none")
    return "no data yet" if notes in ("none", "") else notes


def panel_label(ax, label: str) -> None:
    ax.text(0.02, 0.95, f"({label})", transform=ax.transAxes, ha="left", va="top",
            fontweight="bold")


def layers_of(ds: xr.Dataset) -> list[str]:
    if "layer" in ds.coords:
        return [str(v) for v in ds["layer"].values]
    n = ds.sizes.get("spin", 0)
    return ["p"] * (n // 2) + ["a"] * (n - n // 2)


def spins_label(n_spins: int) -> str:
    return f"{n_spins // 2}+{n_spins - n_spins // 2}"


#: gid of the span marking t > reflection_time (the plot tests find it by this).
REFLECTION_GID = "chain_end_reflection"
REFLECTION_LABEL = "chain-end reflections reach the layers"
#: Relative margin below which a reflection time counts as the window's end (rounding of the
#: times given in a config, ~1e-10 relative).
REFLECTION_ROUNDING = 1e-8


def reflection_start(ds: xr.Dataset, names: Sequence[str] = ("reflection_time",),
                     **sel) -> float:
    """Earliest reflection time (fs) among the variables ``names`` (optionally ``.sel``-ed);
    inf when none is recorded."""
    vals = []
    for n in names:
        if n in ds:
            v = ds[n]
            v = v.sel({k: x for k, x in sel.items() if k in v.dims})
            vals.append(np.asarray(v.values, dtype=float).ravel())
    v = np.concatenate(vals) if vals else np.array([])
    v = v[np.isfinite(v)]
    return float(v.min()) if v.size else np.inf


def shade_reflections(ax, ds: xr.Dataset, unit: str, t_max: float,
                      names: Sequence[str] = ("reflection_time",), **sel):
    """Shade t > reflection_time up to ``t_max`` (in ``unit``) where that lies inside the
    window, with a legend entry; returns the span or None.

    A window that ends at its reflection time (a config whose t_end is the reflection time,
    both rounded in the last digits) gets no span: nothing drawn lies after it, and a
    legend entry for an invisible span would say otherwise."""
    t_r = reflection_start(ds, names, **sel) * time_scale(ds, unit)
    if not t_r < t_max - REFLECTION_ROUNDING * abs(t_max):
        return None
    return ax.axvspan(t_r, t_max, color="0.85", alpha=0.6, lw=0, zorder=0, gid=REFLECTION_GID,
                      label=REFLECTION_LABEL)


def legend(ax, **kw) -> None:
    """A legend of every labelled artist (lines and the reflection span), if there is one."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        kw.setdefault("fontsize", 7)
        ax.legend(handles, labels, **kw)


# ---------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------


def panel_grid(n: int, width: float = 4.0, height: float = 3.0):
    """1, 2 (1 x 2) or 3-4 (2 x 2) panels; an unused fourth axis is removed."""
    rows, cols = (1, n) if n <= 2 else (2, 2)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), sharex=True,
                             constrained_layout=True, squeeze=False)
    axes = list(axes.ravel())
    for ax in axes[n:]:
        fig.delaxes(ax)
    return fig, axes[:n]


def time_scale(ds: xr.Dataset, unit: str) -> float:
    """Factor turning a duration in fs into ``unit``."""
    if unit == "fs":
        return 1.0
    return 1.0 / float(ds.attrs.get("hbar_over_gamma_fs", HBAR))  # gamma = 1 eV if unrecorded


def duration_label(symbol: str, unit: str) -> str:
    return rf"{symbol} (fs)" if unit == "fs" else rf"{symbol} ($\hbar/\gamma$)"


def up_arrow(ax, x: float, y: float, color, length: float = 16.0) -> None:
    """An arrow pointing up from (x, y) (data), ``length`` points long: a lower bound."""
    from matplotlib.transforms import offset_copy
    head = offset_copy(ax.transData, fig=ax.figure, x=0, y=length, units="points")
    ax.annotate("", xy=(x, y), xycoords=head, xytext=(x, y), textcoords="data",
                arrowprops={"arrowstyle": "-|>", "color": color, "lw": 1.2,
                            "shrinkA": 0, "shrinkB": 0})


def lifetime_points(ax, x: np.ndarray, pt: xr.Dataset, scale: float, color, marker: str,
                    label: str) -> None:
    """Lifetimes against ``x`` with their bootstrap intervals; lower bounds (no decay in the
    window) as open symbols with an arrow, an interval whose upper end is a bound with one."""
    tau = pt["lifetime"].values * scale
    lo, hi = pt["lifetime_lower"].values * scale, pt["lifetime_upper"].values * scale
    bound = pt["lifetime_is_lower_bound"].values.astype(bool)
    open_hi = pt["lifetime_upper_is_lower_bound"].values.astype(bool)
    ok = np.isfinite(tau) & ~bound
    if ok.any():
        yerr = np.array([np.clip(tau - lo, 0, None), np.clip(hi - tau, 0, None)])[:, ok]
        ax.errorbar(x[ok], tau[ok], yerr=np.nan_to_num(yerr), fmt=marker + "-", color=color,
                    capsize=3, label=label)
        for xi, y, o in zip(x[ok], hi[ok], open_hi[ok]):
            if o and np.isfinite(y):
                up_arrow(ax, xi, y, color, 10)
    lb = np.isfinite(tau) & bound
    if lb.any():
        ax.plot(x[lb], tau[lb], marker, mfc="none", color=color,
                label=f"{label}: lower bound (no decay in window)")
        for xi, y in zip(x[lb], tau[lb]):
            up_arrow(ax, xi, y, color)


def lifetime_axes(ax, x: np.ndarray, ds: xr.Dataset, scale: float) -> None:
    if len(x) and (x > 0).all() and x.max() / x.min() > 5:
        ax.set_xscale("log")
    vals = np.concatenate([ds["lifetime"].values.ravel(), ds["lifetime_upper"].values.ravel()])
    top = float(np.nanmax(vals)) * scale if np.isfinite(vals).any() else 1.0
    ax.set_ylim(0, 1.35 * top if top > 0 else 1.0)
    ax.margins(x=0.1)
    ax.legend(fontsize=7, loc="upper right")


def draw(figure: str, data: str | Path | xr.Dataset, unit: str = "fs"):
    """The matplotlib figure of ``figure`` drawn from its aggregated file or dataset."""
    from .catalog import get
    try:
        draw_figure = get(figure).draw
    except KeyError as exc:
        raise PlotError(exc.args[0]) from None
    if unit not in TIME_UNITS:
        raise PlotError(f"time_unit: must be one of {list(TIME_UNITS)}, got {unit!r}")
    if isinstance(data, xr.Dataset):
        return draw_figure(data, unit)
    with xr.open_dataset(data, engine="netcdf4") as ds:
        return draw_figure(ds.load(), unit)


def save(fig, outputs: Sequence[str | Path], dpi: int = 150) -> list[Path]:
    """Write ``fig`` to every output (format from the suffix), each atomically."""
    done = []
    for out in outputs:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(out) as tmp:  # mode from the umask, renamed when complete
            fig.savefig(tmp, dpi=dpi, format=out.suffix.lstrip(".") or None)
        done.append(out)
    plt.close(fig)
    return done
