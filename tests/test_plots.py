"""What every figure draws: its lines are the figure file's variables, its shading starts at
the chain-end reflection time, its legend says what each artist is.

Job files come from ``spinvalve simulate`` on tiny chains whose ends reflect the electron
back into the layers inside the window (``chain.leads: none``), so the shading is drawn;
the bath figures are covered in tests/test_bath_figures.py.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from spinvalve.pipeline import sweeps
from spinvalve.figures.aggregate import aggregate
from spinvalve.figures.catalog.fig5 import magnon_groups
from spinvalve.figures.catalog.fig7 import QFI_PANELS, WITNESS_GID
from spinvalve.figures.plot import REFLECTION_GID, REFLECTION_LABEL, draw, save, time_values
from conftest import simulate_job

matplotlib.use("Agg")

# the right end reflects from 7.6 fs; the packet (x0 - 5 / dk = 0) fits on the chain
TINY = {"chain": {"n_sites": 36}, "layers": {"fm_p_start": 22, "spacer": 2},
        "pulse": {"x0": 10.0, "dk": 0.5}, "time": {"t_end": 10.0, "dt_out": 0.5}}
TDMRG = {"chain": {"n_sites": 12}, "layers": {"n_p": 1, "n_a": 1, "fm_p_start": 5, "spacer": 1},
         "pulse": {"x0": 1.0}, "time": {"t_end": 5.9239076121, "dt_out": 0.6582119569},
         "multi_electron": {"n_electrons": 2, "n_conf": 2, "chi_start": 16, "chi_max": 16}}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    pytest.importorskip("petsc4py")
    tmp = tmp_path_factory.mktemp("plotjobs")
    out = {}
    for n in (1, 2):
        out[f"closed{n}"] = simulate_job(tmp, f"closed{n}", sweeps.deep_merge(
            TINY, {"layers": {"n_p": n, "n_a": n}}))
    out["clean2"] = simulate_job(tmp, "clean2", sweeps.deep_merge(
        TINY, {"layers": {"n_p": 2, "n_a": 2}, "chain": {"leads": "auto"}}))
    out["gibbs2"] = simulate_job(tmp, "gibbs2", sweeps.deep_merge(
        TINY, {"layers": {"n_p": 2, "n_a": 2}, "temperature": {"gibbs": 300.0}}))
    out["tdmrg2"] = simulate_job(tmp, "tdmrg2", TDMRG)
    return out


def lines(ax) -> list:
    """The data lines of a panel (not the witness threshold)."""
    return [ln for ln in ax.lines if ln.get_gid() != WITNESS_GID]


def span_start(ax) -> float | None:
    spans = [p for p in ax.patches if p.get_gid() == REFLECTION_GID]
    assert len(spans) <= 1
    return float(spans[0].get_x()) if spans else None


def legend_texts(ax) -> list[str]:
    leg = ax.get_legend()
    return [t.get_text() for t in leg.get_texts()] if leg else []


def assert_shaded(ax, t_r: float, t_end: float) -> None:
    """Shaded from t_r to the window's end, with a legend entry."""
    assert span_start(ax) == pytest.approx(t_r, rel=1e-12)
    span = [p for p in ax.patches if p.get_gid() == REFLECTION_GID][0]
    assert span.get_x() + span.get_width() == pytest.approx(t_end)
    assert REFLECTION_LABEL in legend_texts(ax)


def assert_line(line, x, y) -> None:
    np.testing.assert_array_equal(line.get_xdata(), x)
    np.testing.assert_array_equal(line.get_ydata(), y)


@pytest.mark.parametrize("unit", ["fs", "hbar_over_gamma"])
def test_fig2_draws_the_spins_and_shades_the_reflections(files, unit):
    ds = aggregate("fig2", {"closed": [files["closed2"]]})
    t_r = float(ds["reflection_time"])
    assert 0 < t_r < 10.0                          # the tiny chain reflects inside the window
    fig = draw("fig2", ds, unit)
    t = time_values(ds, "time", unit)
    scale = t[-1] / 10.0
    a, b = fig.axes
    assert len(lines(a)) == 3 and len(lines(b)) == 4
    for line, comp in zip(lines(a), "xyz"):
        assert_line(line, t, ds["electron_spin"].sel(component=comp).values)
    for i, line in enumerate(lines(b)):
        assert_line(line, t, ds["spin_expectation"].sel(component="z").isel(spin=i).values)
    for ax in (a, b):
        assert_shaded(ax, t_r * scale, t[-1])


def test_no_shading_on_clean_leads(files):
    ds = aggregate("fig2", {"closed": [files["clean2"]]})
    assert float(ds["reflection_time"]) > 10.0
    fig = draw("fig2", ds)
    assert all(span_start(ax) is None for ax in fig.axes)
    assert all(REFLECTION_LABEL not in legend_texts(ax) for ax in fig.axes)


def test_no_shading_when_the_window_ends_at_the_reflection_time(files):
    """A window whose last output time equals reflection_time up to the rounding of the
    config's times (the quick Fig. 6) has nothing to shade and no legend entry for it;
    one output interval earlier it is shaded."""
    ds = aggregate("fig2", {"closed": [files["closed2"]]})
    t_end = float(ds["time"][-1])
    for t_r, shaded in ((t_end * (1 - 1e-9), False), (t_end - 0.5, True)):
        fig = draw("fig2", ds.assign(reflection_time=ds["reflection_time"].copy(data=t_r)))
        for ax in fig.axes:
            assert (span_start(ax) is not None) == shaded
            assert (REFLECTION_LABEL in legend_texts(ax)) == shaded


def test_fig3_panels_and_the_earliest_reflection_of_panel_d(files):
    ds = aggregate("fig3", {"closed": [files["closed2"]], "gibbs": [files["gibbs2"]]})
    fig = draw("fig3", ds)
    a, b, c, d = fig.axes
    t = ds["time"].values
    assert_line(lines(a)[0], t, ds["entropy_pa"].values)
    assert [ln.get_ydata().tolist() for ln in lines(b)] == [ds["entropy_p"].values.tolist(),
                                                            ds["entropy_a"].values.tolist()]
    assert_line(lines(c)[0], t, ds["mutual_information"].values)
    assert len(lines(d)) == 2                      # T = 0 and T_Gibbs = 300 K
    assert_line(lines(d)[1], ds["time_gibbs"].values,
                ds["log_negativity_gibbs"].sel(temperature=300.0).values)
    t_r = min(float(ds["reflection_time"]), float(ds["reflection_time_gibbs"].min()))
    for ax in (a, b, c, d):
        assert_shaded(ax, t_r, t[-1])


def test_fig4_one_line_per_spin_count(files):
    ds = aggregate("fig4", {"closed": [files["closed1"], files["closed2"]]})
    ax = draw("fig4", ds).axes[0]
    assert len(lines(ax)) == 2
    for line, n in zip(lines(ax), ds["n_spins"].values):
        assert_line(line, ds["time"].values, ds["log_negativity"].sel(n_spins=n).values)
    assert_shaded(ax, float(ds["reflection_time"].min()), ds["time"].values[-1])


def test_fig5_has_one_panel_per_magnon_group_and_no_empty_panel(files):
    ds = aggregate("fig5", {"closed": [files["closed2"]]})
    fig = draw("fig5", ds)
    groups = magnon_groups(4)
    assert groups == [[0, 1, 2], [3], [4]]
    assert len(fig.axes) == 3
    for ax, group in zip(fig.axes, groups):
        drawn = lines(ax)
        want = [ds["magnon_probability"].sel(magnons=m).values for m in group]
        if group[0] == 0:
            want.append(ds["w_state_probability"].values)
        assert len(drawn) == len(want)
        for line, y in zip(drawn, want):
            assert_line(line, ds["time"].values, y)
        assert_shaded(ax, float(ds["reflection_time"]), ds["time"].values[-1])
    assert magnon_groups(8) == [[0, 1, 2], [3, 4], [5, 6], [7, 8]]


def test_fig6_spins_and_entropy_per_electron_number(files):
    ds = aggregate("fig6", {"multi_electron": [files["tdmrg2"]]})
    t_r = float(ds["reflection_time"].sel(n_electrons=2))
    t = ds["time"].values
    assert t_r < t[-1]
    fig = draw("fig6", ds)
    assert len(fig.axes) == 2                     # one column per electron number
    top, bottom = fig.axes
    assert len(lines(top)) == 2 and len(lines(bottom)) == 1
    for i, line in enumerate(lines(top)):
        assert_line(line, t, ds["spin_expectation"].sel(n_electrons=2, component="z")
                    .isel(spin=i).values)
    assert_line(lines(bottom)[0], t, ds["entropy_half"].sel(n_electrons=2).values)
    for ax in (top, bottom):
        assert span_start(ax) == pytest.approx(t_r)
    assert REFLECTION_LABEL in legend_texts(bottom)


def test_fig7_draws_bound_and_exact_qfi_with_the_witness_threshold(files):
    ds = aggregate("fig7", {"closed": [files["closed1"], files["closed2"]]})
    assert "qfi_exact" in ds and "qfi_bound" in ds
    fig = draw("fig7", ds)
    assert len(fig.axes) == 2
    for ax, (name, title) in zip(fig.axes, QFI_PANELS):
        assert ax.get_title() == title
        drawn = lines(ax)
        assert len(drawn) == ds.sizes["n_spins"] * ds.sizes["k"]
        want = [ds[name].sel(n_spins=n, k=k).values
                for n in ds["n_spins"].values for k in ds["k"].values]
        for line, y in zip(drawn, want):
            assert_line(line, ds["time"].values, y)
        witness = [ln for ln in ax.lines if ln.get_gid() == WITNESS_GID]
        assert len(witness) == 1 and set(witness[0].get_ydata()) == {1.0}
        assert any("f_Q = 1" in s for s in legend_texts(ax))
        assert_shaded(ax, float(ds["reflection_time"].min()), ds["time"].values[-1])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any(r"\sigma^z_i / 2" in s for s in texts)
    # the exact QFI of a mixed state lies below the bound
    assert (ds["qfi_exact"] <= ds["qfi_bound"] + 1e-12).all()


def test_fig_gibbs_lines_per_temperature(files):
    ds = aggregate("fig_gibbs", {"closed": [files["closed2"]], "gibbs": [files["gibbs2"]]})
    a, b = draw("fig_gibbs", ds).axes
    assert len(lines(a)) == 2                      # T = 0 (closed) and 300 K
    for line, temp in zip(lines(a), ds["temperature"].values):
        assert_line(line, ds["time"].values,
                    ds["log_negativity"].sel(n_spins=4, temperature=temp).values)
    assert_shaded(a, float(ds["reflection_time"].sel(n_spins=4).min()), ds["time"].values[-1])
    assert span_start(b) is None                   # a temperature axis is not shaded


def test_fig_boundary_literal_chain_beside_clean_leads(files, tmp_path):
    ds = aggregate("fig_boundary", {"boundary": [files["closed2"]], "closed": [files["clean2"]]})
    t_lit = float(ds["reflection_time_literal"].sel(n_spins=4))
    assert t_lit < 10.0 < float(ds["reflection_time_clean"].sel(n_spins=4))
    assert int(ds["chain_sites_literal"].sel(n_spins=4)) == 36
    assert int(ds["chain_sites_clean"].sel(n_spins=4)) > 36
    fig = draw("fig_boundary", ds)
    for ax, name in zip(fig.axes, ("log_negativity", "mutual_information", "electron_spin")):
        literal, clean = lines(ax)
        for line, suffix in ((literal, "literal"), (clean, "clean")):
            y = ds[f"{name}_{suffix}"].sel(n_spins=4)
            y = y.sel(component="z") if "component" in y.dims else y
            assert_line(line, ds[f"time_{suffix}"].values, y.values)
        assert_shaded(ax, t_lit, 10.0)
    # before the reflection time the two chains give the same physics (up to the packet's
    # tails beyond its 5-width front, which arrive up to ~1 fs earlier for this narrow packet)
    before = ds["time_literal"].values < t_lit - 1.0
    np.testing.assert_allclose(ds["log_negativity_literal"].sel(n_spins=4).values[before],
                               ds["log_negativity_clean"].sel(n_spins=4).values[before],
                               atol=1e-6)
    outs = save(fig, [tmp_path / "b.png", tmp_path / "b.pdf"], dpi=40)
    assert outs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert outs[1].read_bytes()[:5] == b"%PDF-"
