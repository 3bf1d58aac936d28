"""Plots of paper Figs. 2-7 (and the Gibbs figure) from the aggregated NetCDF files only.

Each ``plot_<figure>`` takes the figure-ready dataset written by
:mod:`spinvalve.figures.aggregate` and returns a matplotlib figure in the
paper's layout (panels, axes, legends). Times are stored in fs; every time axis
is drawn in fs (default) or in hbar/gamma (``time_unit="hbar_over_gamma"``),
and the axis label says which (SPEC "Time axis"). A panel whose family has no
data yet says so instead of failing.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from .. import HBAR  # noqa: E402

TIME_UNITS = ("fs", "hbar_over_gamma")


class PlotError(ValueError):
    """The dataset cannot be drawn (unknown figure or time unit)."""


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def time_values(ds: xr.Dataset, dim: str, unit: str) -> np.ndarray:
    t = np.asarray(ds[dim].values, dtype=float)
    if unit == "fs":
        return t
    if unit == "hbar_over_gamma":
        return t * _time_scale(ds, unit)
    raise PlotError(f"time_unit: must be one of {list(TIME_UNITS)}, got {unit!r}")


def time_label(unit: str) -> str:
    return r"$t$ (fs)" if unit == "fs" else r"$t$ ($\hbar/\gamma$)"


def _time_dim(var: xr.DataArray) -> str:
    return next(d for d in var.dims if str(d).startswith("time"))


def _no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center",
            fontsize=8, color="0.4", wrap=True)


def _notes(ds: xr.Dataset) -> str:
    notes = ds.attrs.get("notes", "none")
    return "no data yet" if notes in ("none", "") else notes


def _panel_label(ax, label: str) -> None:
    ax.text(0.02, 0.95, f"({label})", transform=ax.transAxes, ha="left", va="top",
            fontweight="bold")


def _layers(ds: xr.Dataset) -> list[str]:
    if "layer" in ds.coords:
        return [str(v) for v in ds["layer"].values]
    n = ds.sizes.get("spin", 0)
    return ["p"] * (n // 2) + ["a"] * (n - n // 2)


def _spins_label(n_spins: int) -> str:
    return f"{n_spins // 2}+{n_spins - n_spins // 2}"


#: gid of the span marking t > reflection_time (the plot tests find it by this).
REFLECTION_GID = "chain_end_reflection"
REFLECTION_LABEL = "chain-end reflections reach the layers"


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
    window, with a legend entry; returns the span or None."""
    t_r = reflection_start(ds, names, **sel) * _time_scale(ds, unit)
    if not t_r < t_max:
        return None
    return ax.axvspan(t_r, t_max, color="0.85", alpha=0.6, lw=0, zorder=0, gid=REFLECTION_GID,
                      label=REFLECTION_LABEL)


def _legend(ax, **kw) -> None:
    """A legend of every labelled artist (lines and the reflection span), if there is one."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        kw.setdefault("fontsize", 7)
        ax.legend(handles, labels, **kw)


# ---------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------

def plot_fig2(ds: xr.Dataset, unit: str = "fs"):
    fig, axes = plt.subplots(2, 1, figsize=(5.0, 6.0), sharex=True, constrained_layout=True)
    ax = axes[0]
    if "electron_spin" in ds:
        t = time_values(ds, "time", unit)
        for comp, style in zip(("x", "y", "z"), ("--", ":", "-")):
            ax.plot(t, ds["electron_spin"].sel(component=comp), style,
                    label=rf"$\langle \hat s^{comp}_e \rangle$")
        shade_reflections(ax, ds, unit, t[-1])
        _legend(ax, loc="best", fontsize=8)
    else:
        _no_data(ax, _notes(ds))
    ax.set_ylabel(r"$\langle \hat{\mathbf{s}}_e \rangle$")
    _panel_label(ax, "a")
    ax = axes[1]
    if "spin_expectation" in ds:
        t = time_values(ds, "time", unit)
        sz = ds["spin_expectation"].sel(component="z")
        layers = _layers(ds)
        cmap = plt.get_cmap("tab10" if sz.sizes["spin"] <= 10 else "tab20")
        for i in range(sz.sizes["spin"]):
            style = "-" if layers[i] == "p" else "--"
            ax.plot(t, sz.isel(spin=i), style, color=cmap(i % cmap.N),
                    label=f"i = {i + 1} (FM$_{layers[i]}$)")
        shade_reflections(ax, ds, unit, t[-1])
        _legend(ax, loc="center right", fontsize=7, ncol=2)
    else:
        _no_data(ax, _notes(ds))
    ax.set_ylabel(r"$\langle \hat S^z_i \rangle$")
    ax.set_xlabel(time_label(unit))
    _panel_label(ax, "b")
    return fig


def plot_fig3(ds: xr.Dataset, unit: str = "fs"):
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
            _legend(ax, loc="best", fontsize=8)
    else:
        for ax in (a, b, c):
            _no_data(ax, _notes(ds))
    if "log_negativity_gibbs" in ds:
        var = ds["log_negativity_gibbs"]
        tg = time_values(ds, _time_dim(var), unit)
        for temp in var["temperature"].values:
            d.plot(tg, var.sel(temperature=temp), "r:", label=f"$T_{{Gibbs}}$ = {temp:g} K")
    if "log_negativity_bath" in ds:
        var = ds["log_negativity_bath"]
        tb = time_values(ds, _time_dim(var), unit)
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
        _legend(d, loc="best", fontsize=8)
    else:
        _no_data(d, _notes(ds))
    a.set_ylabel(r"$S_{\mathrm{FM}_p \cup \mathrm{FM}_a}$")
    b.set_ylabel(r"$S_{\mathrm{FM}_p}$, $S_{\mathrm{FM}_a}$")
    c.set_ylabel(r"$I(\mathrm{FM}_p{:}\mathrm{FM}_a)$")
    d.set_ylabel(r"$E_N$ (MLN)")
    for ax, lab in zip((a, b, c, d), "abcd"):
        _panel_label(ax, lab)
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


def plot_fig4(ds: xr.Dataset, unit: str = "fs"):
    fig, ax = plt.subplots(figsize=(5.5, 4.0), constrained_layout=True)
    if "log_negativity" in ds:
        t = time_values(ds, "time", unit)
        ns = list(ds["n_spins"].values)
        cmap = plt.get_cmap("viridis")
        for i, n in enumerate(ns):
            ax.plot(t, ds["log_negativity"].sel(n_spins=n), color=cmap(i / max(len(ns) - 1, 1)),
                    label=_spins_label(int(n)))
        shade_reflections(ax, ds, unit, t[-1])
        _legend(ax, title="N/2 + N/2", fontsize=8, loc="best")
    else:
        _no_data(ax, _notes(ds))
    ax.set_xlabel(time_label(unit))
    ax.set_ylabel(r"$E_N$ (MLN)")
    return fig


def magnon_groups(n_spins: int) -> list[list[int]]:
    """Paper Fig. 5 panels: (a) m = 0, 1, 2 (+ W); m >= 3 split over up to three more panels,
    as many as there are sectors (no empty panel: 2+2 has m = 3 and m = 4 only)."""
    rest = list(range(3, n_spins + 1))
    chunks = [list(map(int, c)) for c in np.array_split(np.array(rest, dtype=int),
                                                         min(3, len(rest)))] if rest else []
    return [[m for m in range(min(2, n_spins) + 1)]] + chunks


def _panel_grid(n: int, width: float = 4.0, height: float = 3.0):
    """1, 2 (1 x 2) or 3-4 (2 x 2) panels; an unused fourth axis is removed."""
    rows, cols = (1, n) if n <= 2 else (2, 2)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), sharex=True,
                             constrained_layout=True, squeeze=False)
    axes = list(axes.ravel())
    for ax in axes[n:]:
        fig.delaxes(ax)
    return fig, axes[:n]


def plot_fig5(ds: xr.Dataset, unit: str = "fs"):
    if "magnon_probability" not in ds:
        fig, axes = _panel_grid(1)
        _no_data(axes[0], _notes(ds))
        return fig
    t = time_values(ds, "time", unit)
    mags = [int(m) for m in ds["magnons"].values]
    groups = magnon_groups(max(mags))
    fig, axes = _panel_grid(len(groups))
    cmap = plt.get_cmap("tab10")
    for ax, group, lab in zip(axes, groups, "abcd"):
        for m in group:
            ax.plot(t, ds["magnon_probability"].sel(magnons=m), color=cmap(m % 10),
                    label=f"m = {m}")
        if group[0] == 0 and "w_state_probability" in ds:
            ax.plot(t, ds["w_state_probability"], "k:", label="1-magnon W")
        shade_reflections(ax, ds, unit, t[-1])
        _legend(ax, fontsize=8, loc="best")
        _panel_label(ax, lab)
        ax.set_ylabel(r"Prob$_{m\text{-magnons}}$")
    n_last = 2 if len(axes) > 2 else 0
    for ax in axes[n_last:]:
        ax.set_xlabel(time_label(unit))
    if "reference_n_spins" in ds.attrs:
        fig.suptitle(f"{_spins_label(int(ds.attrs['reference_n_spins']))} spins", fontsize=9)
    return fig


def plot_fig6(ds: xr.Dataset, unit: str = "fs"):
    fig, axes = plt.subplots(2, 3, figsize=(11.0, 6.0), sharex=True, constrained_layout=True)
    if "spin_expectation" in ds:
        t = time_values(ds, "time", unit)
        nes = [int(n) for n in ds["n_electrons"].values][:3]
        layers = _layers(ds)
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
            _legend(axes[1, j], fontsize=7, loc="lower right")
        if nes:
            _legend(axes[0, 0], fontsize=7, ncol=2, loc="center right")
        for j in range(len(nes), 3):
            _no_data(axes[0, j], "no job")
            _no_data(axes[1, j], "no job")
    else:
        for ax in axes.ravel():
            _no_data(ax, _notes(ds))
    for j, (top, bottom) in enumerate(zip("abc", "def")):
        _panel_label(axes[0, j], top)
        _panel_label(axes[1, j], bottom)
        axes[1, j].set_xlabel(time_label(unit))
    axes[0, 0].set_ylabel(r"$\langle \hat S^z_i \rangle$")
    axes[1, 0].set_ylabel(r"$S_{half}$")
    return fig


def _k_style(k: float) -> str:
    """Line style of a QFI momentum (paper Fig. 7: k = pi/6 dotted, k = pi/2 solid)."""
    return ":" if np.isclose(k, np.pi / 6) else ("-" if np.isclose(k, np.pi / 2) else "--")


QFI_PANELS = (("qfi_bound", "Eq. 29 bound (the paper's $f_Q$)"),
              ("qfi_exact", "exact mixed-state QFI"))
WITNESS_GID = "multipartite_witness"


def plot_fig7(ds: xr.Dataset, unit: str = "fs"):
    """(a) the Eq. 29 bound, which the paper plots, (b) the exact mixed-state QFI density,
    both with S^z = sigma^z / 2 and the witness threshold f_Q = 1 (above it: multipartite
    entanglement)."""
    fig, axes = plt.subplots(1, 2, figsize=(10.0, 4.0), sharey=True, constrained_layout=True)
    if "qfi_bound" not in ds:
        for ax in axes:
            _no_data(ax, _notes(ds))
    else:
        t = time_values(ds, "time", unit)
        ns = list(ds["n_spins"].values)
        cmap = plt.get_cmap("plasma")
        ks = [float(k) for k in ds["k"].values]
        for ax, (name, title) in zip(axes, QFI_PANELS):
            ax.set_title(title, fontsize=9)
            if name not in ds:
                _no_data(ax, f"no {name} in the data")
                continue
            for i, n in enumerate(ns):
                col = cmap(0.85 * i / max(len(ns) - 1, 1))
                for k in ks:
                    ax.plot(t, ds[name].sel(n_spins=n, k=k), _k_style(k), color=col,
                            label=f"{_spins_label(int(n))}, k = {_k_label(k)}")
            ax.axhline(1.0, color="0.3", lw=0.8, ls="--", gid=WITNESS_GID,
                       label=r"$f_Q = 1$: above, multipartite entanglement")
            shade_reflections(ax, ds, unit, t[-1])
            _legend(ax, fontsize=7, loc="best", ncol=2)
        axes[0].text(0.98, 0.02, r"$\hat S^z_i = \hat\sigma^z_i / 2$", transform=axes[0].transAxes,
                     ha="right", va="bottom", fontsize=8)
    for ax, lab in zip(axes, "ab"):
        ax.set_xlabel(time_label(unit))
        _panel_label(ax, lab)
    axes[0].set_ylabel(r"$f_Q$ (QFI density)")
    return fig


def _k_label(k: float) -> str:
    for den in (2, 3, 4, 6, 8, 12):
        if np.isclose(k * den / np.pi, round(k * den / np.pi)):
            num = int(round(k * den / np.pi))
            return (r"$\pi$" if num == 1 else rf"${num}\pi$") + f"/{den}"
    return f"{k:.3g}"


def plot_fig_gibbs(ds: xr.Dataset, unit: str = "fs"):
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
        _legend(a, title=f"$T_{{Gibbs}}$ ({_spins_label(n0)})", fontsize=7)
        for n in ns:
            peak = ds["peak_log_negativity"].sel(n_spins=n)
            ok = peak.notnull()
            b.plot(np.asarray(temps)[ok.values], peak.values[ok.values], "o-",
                   label=_spins_label(n))
        b.legend(title="N/2 + N/2", fontsize=8)
    else:
        _no_data(a, _notes(ds))
        _no_data(b, _notes(ds))
    a.set_xlabel(time_label(unit))
    a.set_ylabel(r"$E_N$ (MLN)")
    b.set_xlabel(r"$T_{Gibbs}$ (K)")
    b.set_ylabel(r"max$_t\, E_N$")
    _panel_label(a, "a")
    _panel_label(b, "b")
    return fig


def _time_scale(ds: xr.Dataset, unit: str) -> float:
    """Factor turning a duration in fs into ``unit``."""
    if unit == "fs":
        return 1.0
    return 1.0 / float(ds.attrs.get("hbar_over_gamma_fs", HBAR))  # gamma = 1 eV if unrecorded


def _duration_label(symbol: str, unit: str) -> str:
    return rf"{symbol} (fs)" if unit == "fs" else rf"{symbol} ($\hbar/\gamma$)"


def _up_arrow(ax, x: float, y: float, color, length: float = 16.0) -> None:
    """An arrow pointing up from (x, y) (data), ``length`` points long: a lower bound."""
    from matplotlib.transforms import offset_copy
    head = offset_copy(ax.transData, fig=ax.figure, x=0, y=length, units="points")
    ax.annotate("", xy=(x, y), xycoords=head, xytext=(x, y), textcoords="data",
                arrowprops={"arrowstyle": "-|>", "color": color, "lw": 1.2,
                            "shrinkA": 0, "shrinkB": 0})


def plot_fig_bath_lifetime(ds: xr.Dataset, unit: str = "fs"):
    fig, (a, b) = plt.subplots(1, 2, figsize=(10.0, 4.0), constrained_layout=True)
    if "lifetime" in ds:
        scale = _time_scale(ds, unit)
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
        _legend(a, title=_spins_label(n0), fontsize=7, loc="upper center", ncol=3)
        _lifetime_panel(b, ds, ns, scale)
    else:
        _no_data(a, _notes(ds))
        _no_data(b, _notes(ds))
    a.set_xlabel(time_label(unit))
    a.set_ylabel(r"$E_N$ (MLN)")
    b.set_xlabel(r"$T_{bb}$ (K)")
    b.set_ylabel(_duration_label(r"MLN lifetime $\tau$", unit))
    _panel_label(a, "a")
    _panel_label(b, "b")
    return fig


def _lifetime_points(ax, x: np.ndarray, pt: xr.Dataset, scale: float, color, marker: str,
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
                _up_arrow(ax, xi, y, color, 10)
    lb = np.isfinite(tau) & bound
    if lb.any():
        ax.plot(x[lb], tau[lb], marker, mfc="none", color=color,
                label=f"{label}: lower bound (no decay in window)")
        for xi, y in zip(x[lb], tau[lb]):
            _up_arrow(ax, xi, y, color)


def _lifetime_axes(ax, x: np.ndarray, ds: xr.Dataset, scale: float) -> None:
    if len(x) and (x > 0).all() and x.max() / x.min() > 5:
        ax.set_xscale("log")
    vals = np.concatenate([ds["lifetime"].values.ravel(), ds["lifetime_upper"].values.ravel()])
    top = float(np.nanmax(vals)) * scale if np.isfinite(vals).any() else 1.0
    ax.set_ylim(0, 1.35 * top if top > 0 else 1.0)
    ax.margins(x=0.1)
    ax.legend(fontsize=7, loc="upper right")


def _lifetime_panel(ax, ds: xr.Dataset, ns: list[int], scale: float) -> None:
    temps = np.array([float(x) for x in ds["bath_temperature"].values])
    for i, n in enumerate(ns):
        _lifetime_points(ax, temps, ds.sel(n_spins=n), scale, f"C{i}", "osD^v"[i % 5],
                         _spins_label(n))
    _lifetime_axes(ax, temps, ds, scale)


def plot_fig_bath_coupling(ds: xr.Dataset, unit: str = "fs"):
    """(a) MLN(t) for every Gamma (first cutoff) with its band and the no-bath curve,
    (b) the MLN lifetime and (c) the peak MLN against Gamma, one line per cutoff."""
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(13.5, 4.0), constrained_layout=True)
    if "lifetime" not in ds:
        for ax in (a, b, c):
            _no_data(ax, _notes(ds))
    else:
        scale = _time_scale(ds, unit)
        t = time_values(ds, "time", unit)
        gammas = np.array([float(g) for g in ds["bath_gamma"].values])
        cutoffs = [float(w) for w in ds["bath_omega_max"].values]
        cmap = plt.get_cmap("viridis")
        cols = [cmap(0.85 * i / max(len(gammas) - 1, 1)) for i in range(len(gammas))]
        if "log_negativity_closed" in ds:
            a.plot(time_values(ds, "time_closed", unit), ds["log_negativity_closed"], "k--", lw=1,
                   label="no bath")
        first = ds.sel(bath_omega_max=cutoffs[0])
        for g, col in zip(gammas, cols):
            pt = first.sel(bath_gamma=g)
            if "log_negativity_lower" in pt:
                a.fill_between(t, pt["log_negativity_lower"], pt["log_negativity_upper"],
                               color=col, alpha=0.15, lw=0)
            a.plot(t, pt["log_negativity"], "-", color=col, label=rf"$\Gamma$ = {g:g} eV")
        shade_reflections(a, ds, unit, t[-1], names=("reflection_time", "reflection_time_closed"))
        _legend(a, fontsize=7, loc="upper right", title=rf"$\omega_m$ = {cutoffs[0]:g} eV")
        for i, w in enumerate(cutoffs):
            pt = ds.sel(bath_omega_max=w)
            _lifetime_points(b, gammas, pt, scale, f"C{i}", "osD^v"[i % 5],
                             rf"$\omega_m$ = {w:g} eV")
            peak = pt["peak_log_negativity"].values
            c.plot(gammas, peak, "osD^v"[i % 5] + "-", color=f"C{i}", label=rf"$\omega_m$ = {w:g} eV")
        _lifetime_axes(b, gammas, ds, scale)
        if len(gammas) and (gammas > 0).all() and gammas.max() / gammas.min() > 5:
            c.set_xscale("log")
        c.set_ylim(bottom=0)
        c.margins(x=0.1)
        _legend(c, fontsize=7, loc="best")
        n = int(ds["n_spins"]) if "n_spins" in ds.coords else 0
        temp = float(ds["bath_temperature"]) if "bath_temperature" in ds.coords else np.nan
        a.set_title(f"{_spins_label(n)}, $T_{{bb}}$ = {temp:g} K (bands: bootstrap 95%)",
                    fontsize=9)
    a.set_xlabel(time_label(unit))
    a.set_ylabel(r"$E_N$ (MLN)")
    for ax in (b, c):
        ax.set_xlabel(r"bath strength $\Gamma$ (eV)")
    b.set_ylabel(_duration_label(r"MLN lifetime $\tau$", unit))
    c.set_ylabel(r"max$_t\, E_N$")
    for ax, lab in zip((a, b, c), "abc"):
        _panel_label(ax, lab)
    return fig


def plot_fig_trajectory_count(ds: xr.Dataset, unit: str = "fs"):
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(13.5, 4.0), constrained_layout=True)
    if "log_negativity" in ds and "n_trajectories" in ds.dims:
        t = time_values(ds, "time", unit)
        counts = [int(n) for n in ds["n_trajectories"].values]
        cmap = plt.get_cmap("viridis")
        cols = [cmap(0.9 * i / max(len(counts) - 1, 1)) for i in range(len(counts))]
        scale = _time_scale(ds, unit)
        t_on = float(ds["onset_time"]) * scale if "onset_time" in ds else np.nan
        early_end = 3 * t_on if np.isfinite(t_on) and t_on > 0 else t[-1] / 3
        have_closed = "log_negativity_closed" in ds
        for ax, early in ((a, False), (b, True)):
            sel = t <= early_end if early else np.ones(len(t), bool)
            for n, col in zip(counts, cols):
                y = ds["log_negativity"].sel(n_trajectories=n).values
                lo = ds["log_negativity_lower"].sel(n_trajectories=n).values
                hi = ds["log_negativity_upper"].sel(n_trajectories=n).values
                if np.isfinite(lo).any() and not early:
                    ax.fill_between(t[sel], lo[sel], hi[sel], color=col, alpha=0.12, lw=0)
                ax.plot(t[sel], y[sel], color=col, label=f"{n}")
            if have_closed:
                tc = time_values(ds, "time_closed", unit)
                cs = tc <= early_end if early else np.ones(len(tc), bool)
                ax.plot(tc[cs], ds["log_negativity_closed"].values[cs], "k--", lw=1,
                        label="no bath")
        top = max((float(np.nanmax(line.get_ydata())) for line in a.lines), default=0.0)
        a.set_ylim(bottom=0, top=1.45 * top if top > 0 else 1)
        b.set_yscale("log")
        b.set_ylim(1e-8, 3 * top if top > 0 else 1)
        if np.isfinite(t_on):
            b.axvspan(0, t_on, color="0.9", zorder=0, label="before onset")
        shade_reflections(a, ds, unit, t[-1], names=("reflection_time", "reflection_time_closed"))
        shade_reflections(b, ds, unit, t[t <= early_end][-1],
                          names=("reflection_time", "reflection_time_closed"))
        _legend(a, title="trajectories", fontsize=7, loc="upper center", ncol=4)
        _legend(b, fontsize=7, loc="lower right")
        _count_panel(c, ds, counts)
        temp = float(ds["bath_temperature"]) if "bath_temperature" in ds.coords else np.nan
        n_sp = int(ds["n_spins"]) if "n_spins" in ds.coords else 0
        a.set_title(f"{_spins_label(n_sp)}, $T_{{bb}}$ = {temp:g} K (bands: bootstrap 95%)",
                    fontsize=9)
        b.set_title("early times, log scale", fontsize=9)
    else:
        for ax in (a, b, c):
            _no_data(ax, _notes(ds))
    for ax in (a, b):
        ax.set_xlabel(time_label(unit))
        ax.set_ylabel(r"$E_N$ (MLN)")
    c.set_xlabel("number of trajectories $n$")
    c.set_ylabel(r"$E_N$ difference (mean over $t$)")
    for ax, lab in zip((a, b, c), "abc"):
        _panel_label(ax, lab)
    return fig


def _count_panel(ax, ds: xr.Dataset, counts: list[int]) -> None:
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter
    n = np.array(counts, dtype=float)
    rms = ds["rms_deviation"].values
    wid = ds["mean_band_width"].values
    n_all = n[-1]
    ok = np.isfinite(rms) & (rms > 0)
    ax.plot(n[ok], rms[ok], "o-", color="C3", label=f"rms($E_N^{{(n)}} - E_N^{{({n_all:g})}}$)")
    if ok.any():
        i = int(np.nonzero(ok)[0][0])
        guide = rms[i] * np.sqrt(np.clip(1 / n - 1 / n_all, 0, None) / (1 / n[i] - 1 / n_all))
        g = guide > 0
        ax.plot(n[g], guide[g], ":", color="C3", lw=1, label=r"$\propto\sqrt{1/n - 1/n_{all}}$")
    okw = np.isfinite(wid) & (wid > 0)
    ax.plot(n[okw], wid[okw], "s-", color="C0", label="band width")
    if okw.any():
        i = int(np.nonzero(okw)[0][0])
        ax.plot(n[okw], wid[i] * np.sqrt(n[i] / n[okw]), ":", color="C0", lw=1,
                label=r"$\propto 1/\sqrt{n}$")
    ax.set_xscale("log")
    ax.margins(x=0.12)
    if ok.any() or okw.any():
        ax.set_yscale("log")
        lo_y, hi_y = ax.get_ylim()
        ax.set_ylim(lo_y, hi_y * 3)
    ticks = [n[-1]]
    for x in n[-2::-1]:                  # from the largest count down, skip crowded labels
        if ticks[-1] / x >= 1.4:
            ticks.append(x)
    ax.xaxis.set_major_locator(FixedLocator(sorted(ticks)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_locator(NullLocator())
    if "pre_onset_excess" in ds and np.isfinite(ds["pre_onset_excess"].values).any():
        worst = float(np.nanmax(ds["pre_onset_excess"].values))
        ax.text(0.03, 0.03, "before onset, max over $n$ and $t$ of\n"
                rf"$E_N^{{(n)}} - E_N^{{\mathrm{{no\ bath}}}}$ = {worst:.1e}",
                transform=ax.transAxes, fontsize=7, ha="left", va="bottom")
    ax.legend(fontsize=7, loc="upper right")


BOUNDARY_PANELS = (("log_negativity", r"$E_N$ (MLN)"),
                   ("mutual_information", r"$I(\mathrm{FM}_p{:}\mathrm{FM}_a)$"),
                   ("electron_spin", r"$\langle \hat s^z_e \rangle$"))


def plot_fig_boundary(ds: xr.Dataset, unit: str = "fs"):
    """MLN, MI and <s_e^z> on the paper's literal chain (solid) and on clean leads (dashed)
    for the first N of the data; t > reflection_time of the literal chain shaded."""
    fig, axes = plt.subplots(1, 3, figsize=(13.0, 3.8), constrained_layout=True)
    if "log_negativity_literal" not in ds:
        for ax in axes:
            _no_data(ax, _notes(ds))
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
            _legend(ax, fontsize=7, loc="best")
        axes[0].set_title(f"{_spins_label(n0)} spins", fontsize=9)
    for ax, lab, (_, ylabel) in zip(axes, "abc", BOUNDARY_PANELS):
        _panel_label(ax, lab)
        ax.set_ylabel(ylabel)
        ax.set_xlabel(time_label(unit))
    return fig


PLOTTERS: dict[str, Callable] = {"fig2": plot_fig2, "fig3": plot_fig3, "fig4": plot_fig4,
                                 "fig5": plot_fig5, "fig6": plot_fig6, "fig7": plot_fig7,
                                 "fig_gibbs": plot_fig_gibbs,
                                 "fig_bath_lifetime": plot_fig_bath_lifetime,
                                 "fig_trajectory_count": plot_fig_trajectory_count,
                                 "fig_boundary": plot_fig_boundary,
                                 "fig_bath_coupling": plot_fig_bath_coupling}


def draw(figure: str, data: str | Path | xr.Dataset, unit: str = "fs"):
    """The matplotlib figure of ``figure`` drawn from its aggregated file or dataset."""
    if figure not in PLOTTERS:
        raise PlotError(f"unknown figure {figure!r}; known: {sorted(PLOTTERS)}")
    if unit not in TIME_UNITS:
        raise PlotError(f"time_unit: must be one of {list(TIME_UNITS)}, got {unit!r}")
    if isinstance(data, xr.Dataset):
        return PLOTTERS[figure](data, unit)
    with xr.open_dataset(data, engine="netcdf4") as ds:
        return PLOTTERS[figure](ds.load(), unit)


def save(fig, outputs: Sequence[str | Path], dpi: int = 150) -> list[Path]:
    """Write ``fig`` to every output (format from the suffix), each atomically."""
    done = []
    for out in outputs:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=out.suffix, dir=out.parent)
        os.close(fd)
        try:
            fig.savefig(tmp, dpi=dpi, format=out.suffix.lstrip(".") or None)
            os.replace(tmp, out)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        done.append(out)
    plt.close(fig)
    return done
