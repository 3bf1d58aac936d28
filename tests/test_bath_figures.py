"""The two bath figures: MLN lifetime vs T_bb and MLN vs the number of trajectories.

The lifetime definition is checked against analytic curves; the aggregation
against synthetic bath files whose trajectories are two-spin Werner states
rho_i(t) = p_i(t) |Phi+><Phi+| + (1 - p_i(t)) 1/4, written by the engine's own
``spinvalve.opensystem.bands.to_dataset``. The average of Werner states is the
Werner state of the mean p, whose MLN is known in closed form:
E_N = ln((1 + 3 p) / 2) for p > 1/3, else 0.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
from scipy.optimize import brentq

from spinvalve.figures import bath as bathfig
from spinvalve.figures.aggregate import aggregate, write_figure_data
from spinvalve.figures.plot import draw, save
from spinvalve.io import write_dataset
from spinvalve.opensystem.bands import N_BATCHES, TrajectorySums, to_dataset

DT = 0.25
TIMES = np.arange(0.0, 40.0 + DT / 2, DT)
T0 = 5.0          # MLN maximum of the synthetic lifetime runs
AMP = 0.9         # Werner weight at the maximum


def werner_mln(p):
    p = np.asarray(p, dtype=float)
    return np.where(p > 1 / 3, np.log((1 + 3 * np.clip(p, 1 / 3, None)) / 2), 0.0)


# ---------------------------------------------------------------------------
# the lifetime definition on analytic curves
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dt, tau", [(0.5, 17.3), (2.0, 7.7)])
def test_lifetime_of_an_exponential_is_its_time_constant(dt, tau):
    t = np.arange(0.0, 80.0 + dt / 2, dt)
    t_pk = 10.0
    e = np.where(t < t_pk, 0.3 * (t / t_pk) ** 2, 0.3 * np.exp(-(t - t_pk) / tau))
    # linear interpolation of exp(-t/tau) between samples dt apart misplaces the
    # crossing by at most dt^2 / (8 tau)
    bound = dt ** 2 / (8 * tau)
    lt = bathfig.mln_lifetime(t, e)
    assert not lt.lower_bound and lt.t_peak == t_pk and lt.peak == pytest.approx(0.3)
    assert abs(lt.tau - tau) <= bound * 1.01, (lt.tau, tau, bound)
    # the answer is interpolated, not the nearest sample
    assert min(abs(lt.tau - (s - t_pk)) for s in t) > bound


def test_curve_that_does_not_decay_in_the_window_gives_a_lower_bound():
    t = np.arange(0.0, 30.0 + DT / 2, DT)
    rising = 1 - np.exp(-t / 4)
    lt = bathfig.mln_lifetime(t, rising)
    assert lt.lower_bound and lt.tau == pytest.approx(t[-1] - lt.t_peak)
    slow = np.where(t < 5, t / 5, np.exp(-(t - 5) / 100))       # falls to 78 % by t_end
    lt = bathfig.mln_lifetime(t, slow)
    assert lt.lower_bound and lt.t_peak == 5.0 and lt.tau == pytest.approx(25.0)


def test_the_first_fall_below_peak_over_e_is_the_decay():
    """On clean leads nothing but decoherence lowers the MLN: its first fall below
    E_pk / e is the lifetime, even if the curve later rises again (noise, or a
    revival that the 1/e time does not describe)."""
    t = np.arange(0.0, 60.0 + DT / 2, DT)
    dip = 1 - 0.8 * np.exp(-((t - 30) / 3) ** 2)                # down to 0.2 < 1/e, then back
    e = np.where(t < 5, t / 5, dip)
    lt = bathfig.mln_lifetime(t, e)
    t_x = 30 - 3 * math.sqrt(-math.log((1 - 1 / math.e) / 0.8))
    assert not lt.lower_bound and lt.tau == pytest.approx(t_x - lt.t_peak, abs=0.01)


def test_samples_after_the_reflection_time_are_not_used():
    """A decay that would start after the chain-end reflection time is no decay: within
    the valid window the lifetime is a lower bound; the window's peak is the peak."""
    t = np.arange(0.0, 60.0 + DT / 2, DT)
    e = np.where(t < 5, t / 5, 1.0)
    e = np.where(t < 40, e, 1.5 * np.exp(-(t - 40) / 2))     # rises then falls after t = 40
    lt = bathfig.mln_lifetime(t, e, valid_until=38.0)
    assert lt.lower_bound and lt.peak == 1.0 and lt.tau == pytest.approx(38.0 - lt.t_peak)
    full = bathfig.mln_lifetime(t, e)
    assert not full.lower_bound and full.t_peak == 40.0 and full.tau == pytest.approx(2.0, abs=0.05)


def test_no_entanglement_has_no_lifetime():
    lt = bathfig.mln_lifetime(TIMES, np.zeros_like(TIMES))
    assert math.isnan(lt.tau) and not lt.lower_bound


def test_lifetime_band_is_the_percentile_interval_of_the_replicates():
    taus = np.linspace(6.0, 14.0, 41)
    reps = np.array([np.where(TIMES < T0, TIMES / T0, np.exp(-(TIMES - T0) / tau)) for tau in taus])
    lb = bathfig.lifetime_band(TIMES, reps)
    lo, hi = np.percentile(taus, (2.5, 97.5))
    bound = DT ** 2 / (8 * taus.min())
    assert abs(lb.lower - lo) < bound + 1e-9 and abs(lb.upper - hi) < bound + 1e-9
    assert lb.censored_fraction == 0 and not lb.upper_is_lower_bound
    # 3 of 41 replicates (7 %) never decay: the upper end is then only a lower bound
    reps[-3:] = np.where(TIMES < T0, TIMES / T0, 1.0)
    lb = bathfig.lifetime_band(TIMES, reps)
    assert lb.upper_is_lower_bound and lb.censored_fraction == pytest.approx(3 / 41)
    reps[-1:] = np.where(TIMES < T0, TIMES / T0, np.exp(-(TIMES - T0) / 10.0))  # 2 of 41: 4.9 %
    assert bathfig.lifetime_band(TIMES, reps).upper_is_lower_bound
    reps[-2:] = reps[0]                                                       # none
    assert not bathfig.lifetime_band(TIMES, reps).upper_is_lower_bound


def test_stacked_log_negativity_equals_the_single_matrix_one():
    from spinvalve import dense
    rng = np.random.default_rng(3)
    a = rng.normal(size=(5, 8, 8)) + 1j * rng.normal(size=(5, 8, 8))
    rhos = a @ np.swapaxes(a.conj(), -1, -2)
    rhos /= np.trace(rhos, axis1=-2, axis2=-1).real[:, None, None]
    want = [dense.log_negativity(r, 2, 1) for r in rhos]
    np.testing.assert_allclose(dense.log_negativity_stack(rhos, 2, 1), want, atol=1e-12)
    assert max(want) > 0.01                                     # random states are entangled


def test_subset_sizes():
    assert bathfig.subset_sizes(20) == [1, 2, 4, 8, 16, 20]
    assert bathfig.subset_sizes(4) == [1, 2, 4]
    assert bathfig.subset_sizes(1) == [1]


# ---------------------------------------------------------------------------
# synthetic bath files (Werner-state trajectories through the engine's to_dataset)
# ---------------------------------------------------------------------------

BELL = np.zeros((4, 4))
BELL[np.ix_([0, 3], [0, 3])] = 0.5          # |Phi+><Phi+| in the bit basis c_p + 2 c_a


def bath_file(path: Path, p_of, n_traj: int, temperature: float, seed: int = 5,
              gamma: float | None = None) -> Path:
    """A merged-like bath file of n_traj Werner trajectories with weights p_of(i, t)."""
    band_idx = np.arange(len(TIMES))
    sums = TrajectorySums.empty(1, 1, TIMES, band_idx)
    rho_e = np.tile(np.eye(2) / 2, (len(TIMES), 1, 1)).astype(complex)
    for i in range(n_traj):
        p = p_of(i, TIMES)[:, None, None]
        sums.add_trajectory(i, (p * BELL + (1 - p) * np.eye(4) / 4).astype(complex), rho_e,
                            np.zeros(len(TIMES)), 0)
    ds = to_dataset(sums, {"positions": np.array([12.0, 15.0]), "k_values": [math.pi / 2],
                           "seed": seed, "hopping": 1.0}, n_boot=20)
    ds.attrs["config"] = yaml.safe_dump({
        "layers": {"n_p": 1, "n_a": 1},
        "bath": {"temperature": float(temperature),
                 **({} if gamma is None else {"gamma": float(gamma)})},
        "trajectories": {"count": n_traj, "first": 0, "seed": seed},
        "time": {"t_end": float(TIMES[-1]), "dt_out": DT}})
    return write_dataset(ds, path)


def closed_file(path: Path, mln: np.ndarray) -> Path:
    ds = xr.Dataset({"log_negativity": ("time", mln, {"units": "1", "long_name": "MLN"})},
                    coords={"time": ("time", TIMES, {"units": "fs", "long_name": "time"})},
                    attrs={"config": yaml.safe_dump({"layers": {"n_p": 1, "n_a": 1}})})
    return write_dataset(ds, path)


def decaying(taus):
    """p_i(t): linear rise to AMP at T0, then exp(-(t - T0) / tau_i)."""
    def p_of(i, t):
        return AMP * np.where(t < T0, t / T0, np.exp(-(t - T0) / taus[i]))
    return p_of


def analytic_lifetime(taus) -> float:
    """Root of E(p_mean(t)) = E_peak / e for continuous t."""
    taus = np.asarray(taus, dtype=float)
    e_pk = float(werner_mln(AMP))

    def f(t):
        return float(werner_mln(AMP * np.exp(-(t - T0) / taus).mean())) - e_pk / math.e
    return brentq(f, T0, T0 + 50 * taus.max(), xtol=1e-12) - T0


@pytest.fixture(scope="module")
def lifetime_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bath")
    spread = 1 + 0.4 * np.sin(np.arange(40))            # tau_i spread, mean ~1
    runs = {10.0: np.full(40, 1000.0), 100.0: 8.0 * spread, 300.0: 3.0 * spread,
            30.0: np.full(40, 12.0)}                       # 30 K: all trajectories alike
    return runs, [bath_file(tmp / f"T{t:g}.nc", decaying(taus), 40, t) for t, taus in runs.items()]


def test_lifetime_figure_matches_the_analytic_lifetimes(lifetime_files, tmp_path):
    runs, files = lifetime_files
    out = write_figure_data("fig_bath_lifetime", {"bath": files}, tmp_path / "lt.nc",
                            {"figure": "fig_bath_lifetime"})
    with xr.open_dataset(out) as ds:
        ds = ds.load()
    assert ds.attrs["figure"] == "fig_bath_lifetime"
    assert list(ds["bath_temperature"].values) == [10.0, 30.0, 100.0, 300.0]
    assert ds["lifetime"].dims == ("n_spins", "bath_temperature")
    assert ds["log_negativity"].dims == ("n_spins", "bath_temperature", "time")
    for name, var in ds.variables.items():
        assert var.attrs.get("long_name") and (var.attrs.get("units") or var.dtype.kind in "OSU"), name
    assert ds["lifetime"].attrs["units"] == "fs"
    pt = ds.sel(n_spins=2)
    for temp in (30.0, 100.0, 300.0):
        want = analytic_lifetime(runs[temp])
        got = float(pt["lifetime"].sel(bath_temperature=temp))
        assert abs(got - want) < 0.01, (temp, got, want)
        assert int(pt["lifetime_is_lower_bound"].sel(bath_temperature=temp)) == 0
        assert float(pt["time_of_peak"].sel(bath_temperature=temp)) == T0
    # 10 K: the MLN stays above peak / e up to t_end: a lower bound, flagged
    assert int(pt["lifetime_is_lower_bound"].sel(bath_temperature=10.0)) == 1
    assert float(pt["lifetime"].sel(bath_temperature=10.0)) == pytest.approx(TIMES[-1] - T0)
    assert float(pt["lifetime_censored_fraction"].sel(bath_temperature=10.0)) == 1.0
    # identical trajectories: every bootstrap replicate is the central curve, zero-width band
    same = pt.sel(bath_temperature=30.0)
    assert float(same["lifetime_upper"] - same["lifetime_lower"]) < 1e-3
    assert abs(float(same["lifetime_lower"] - same["lifetime"])) < 1e-3
    # spread trajectories: a band of finite width around the central value
    for temp in (100.0, 300.0):
        x = pt.sel(bath_temperature=temp)
        assert float(x["lifetime_lower"]) < float(x["lifetime"]) < float(x["lifetime_upper"])


def test_lifetime_figure_draws_lower_bounds_and_both_time_units(lifetime_files, tmp_path):
    _, files = lifetime_files
    ds = aggregate("fig_bath_lifetime", {"bath": files})
    for unit, sym in (("fs", "fs"), ("hbar_over_gamma", r"\hbar")):
        fig = draw("fig_bath_lifetime", ds, unit)
        assert sym in fig.axes[0].get_xlabel() and sym in fig.axes[1].get_ylabel()
        # one upward arrow per lower bound (10 K) on the lifetime panel
        arrows = [c for c in fig.axes[1].texts if getattr(c, "arrow_patch", None) is not None]
        assert len(arrows) >= 1
        out = save(fig, [tmp_path / f"lt_{unit}.png"], dpi=40)
        assert out[0].stat().st_size > 1000


# ---------------------------------------------------------------------------
# trajectory count
# ---------------------------------------------------------------------------

T_ON = 4.0


def spurious_then_decay(i, t):
    """Before T_ON, trajectories 0, 20, 40, ... alone are maximally entangled (a spurious
    early MLN of a small sample); afterwards all rise and decay with tau_i."""
    tau = 6.0 * (1 + 0.5 * math.sin(i))
    early = 1.0 if i % N_BATCHES == 0 else 0.0
    return np.where(t < T_ON, early, AMP * np.exp(-(t - T_ON) / tau))


@pytest.fixture(scope="module")
def count_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("count")
    n_traj = 2 * N_BATCHES
    bath = bath_file(tmp / "bath.nc", spurious_then_decay, n_traj, 100.0)
    closed = closed_file(tmp / "closed.nc", np.where(TIMES < T_ON, 0.0, werner_mln(AMP)))
    return {"bath": bath, "closed": closed, "n_traj": n_traj}


def test_trajectory_count_figure_averages_the_first_batches(count_files, tmp_path):
    out = write_figure_data("fig_trajectory_count", {"bath": [count_files["bath"]],
                                                      "closed": [count_files["closed"]]},
                            tmp_path / "tc.nc", {"figure": "fig_trajectory_count"})
    with xr.open_dataset(out) as ds:
        ds = ds.load()
    for name, var in ds.variables.items():
        assert var.attrs.get("long_name") and (var.attrs.get("units") or var.dtype.kind in "OSU"), name
    assert ds["log_negativity"].dims == ("n_trajectories", "time")
    assert ds["n_trajectories"].attrs["long_name"].startswith("number of quantum trajectories")
    ks = [1, 2, 4, 8, 16, 20]
    assert list(ds["n_batches"].values) == ks
    # trajectory i is in batch i mod 20: the first k batches hold 2 k of the 40 trajectories
    assert list(ds["n_trajectories"].values) == [2 * k for k in ks]
    for k in ks:
        members = [i for i in range(count_files["n_traj"]) if i % N_BATCHES < k]
        p_mean = np.mean([spurious_then_decay(i, TIMES) for i in members], axis=0)
        got = ds["log_negativity"].sel(n_trajectories=2 * k).values
        np.testing.assert_allclose(got, werner_mln(p_mean), atol=2e-6)   # float32 batch sums
    lo, hi = ds["log_negativity_lower"].values, ds["log_negativity_upper"].values
    assert np.isnan(lo[0]).all() and np.isnan(hi[0]).all()      # one batch: no band
    assert np.isfinite(lo[1:]).all() and (lo[1:] <= hi[1:] + 1e-12).all()
    # all batches: the file's own MLN at every output time
    with xr.open_dataset(count_files["bath"]) as job:
        np.testing.assert_allclose(ds["log_negativity"].values[-1], job["log_negativity"].values,
                                   atol=2e-6)
    # the spurious early MLN over the no-bath curve: ln 2 from 2 trajectories (both
    # entangled), ln(5/4) from 4 (half), none from 8 or more (p = 1/4 < 1/3)
    assert float(ds["onset_time"]) == T_ON
    np.testing.assert_allclose(ds["pre_onset_excess"].values,
                               [math.log(2), math.log(1.25), 0, 0, 0, 0], atol=2e-6)
    assert ds["rms_deviation"].values[-1] == 0 and (ds["rms_deviation"].values[:-1] > 0).all()


def test_trajectory_count_figure_draws_in_both_time_units(count_files, tmp_path):
    ds = aggregate("fig_trajectory_count", {"bath": [count_files["bath"]],
                                            "closed": [count_files["closed"]]})
    for unit, sym in (("fs", "fs"), ("hbar_over_gamma", r"\hbar")):
        fig = draw("fig_trajectory_count", ds, unit)
        assert sym in fig.axes[0].get_xlabel() and sym in fig.axes[1].get_xlabel()
        assert len(fig.axes[0].lines) == ds.sizes["n_trajectories"] + 1   # + no-bath curve
        out = save(fig, [tmp_path / f"tc_{unit}.png"], dpi=40)
        assert out[0].stat().st_size > 1000


def test_bath_figures_without_bath_data_are_partial_not_errors():
    for fig in ("fig_bath_lifetime", "fig_trajectory_count"):
        ds = aggregate(fig, {"bath": []})
        assert ds.attrs["status"] == "partial" and "bath" in ds.attrs["notes"]
        save(draw(fig, ds), [])


# ---------------------------------------------------------------------------
# the bath-coupling sweep
# ---------------------------------------------------------------------------

def test_coupling_sweep_paths_configs_and_figure_inputs():
    from spinvalve.config import load_config
    from spinvalve.pipeline import sweeps
    repo = Path(__file__).resolve().parents[1]
    cfg = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    cfg["bath"].update(temperatures=[10, 100], couplings=[1.2e-4, 3e-4], batches=[0, 1])
    cfg["figures"].update(fig_bath_coupling_temperature=100)
    on = {f: (True, "test") for f in sweeps.FAMILIES}
    sweeps.validate(cfg, on)
    jobs = sweeps.all_jobs(cfg, on)
    bath = {k[1]: j for k, j in jobs.items() if k[0] == "bath"}
    assert len(bath) == 2 * 2 * 2
    job = bath["spins_per_layer~2/T_bb~100/Gamma~0.0003/omega_max~0.01/batch~1"]
    resolved = load_config(job.mapping)
    assert resolved.bath.gamma == 3e-4 and resolved.bath.temperature == 100.0
    assert resolved.bath.omega_max == 0.01                       # not swept: the default
    groups = sweeps.bath_groups(jobs)
    assert sweeps.bath_merged_path(2, 100, 3e-4) in groups
    assert all(len(v) == 2 for v in groups.values()) and len(groups) == 4
    # the other bath figures show the first coupling only
    fig3 = sweeps.figure_inputs(cfg, jobs, "fig3")["bath"]
    assert fig3 and all("Gamma~0.00012" in p for p in fig3)
    life = sweeps.figure_inputs(cfg, jobs, "fig_bath_lifetime")["bath"]
    assert sorted(life) == [sweeps.bath_merged_path(2, t, 1.2e-4) for t in (10, 100)]
    coupling = sweeps.figure_inputs(cfg, jobs, "fig_bath_coupling")["bath"]
    assert sorted(coupling) == [sweeps.bath_merged_path(2, 100, g) for g in (1.2e-4, 3e-4)]
    assert coupling[0].endswith("/T_bb~100/Gamma~0.00012/omega_max~0.01.nc")
    # without the list: the job config's one coupling, in the same paths, so that
    # switching the axis on later reruns only the new couplings
    del cfg["bath"]["couplings"]
    plain = [k[1] for k in sweeps.all_jobs(cfg, on) if k[0] == "bath"]
    assert "spins_per_layer~2/T_bb~100/Gamma~0.00012/omega_max~0.01/batch~1" in plain
    assert len(plain) == 4
    cfg["bath"]["job"] = {"bath": {"gamma": 5e-5}}
    assert "spins_per_layer~2/T_bb~100/Gamma~5e-05/omega_max~0.01/batch~1" in [
        k[1] for k in sweeps.all_jobs(cfg, on) if k[0] == "bath"]
    cfg["figures"]["fig_bath_coupling_temperature"] = 30
    with pytest.raises(sweeps.PipelineConfigError,
                       match=r"^figures.fig_bath_coupling_temperature: 30 is not in"):
        sweeps.validate(cfg, on)


def test_coupling_figure_matches_the_analytic_lifetimes(tmp_path):
    """Werner trajectories whose decay time scales as 1 / Gamma: the figure's lifetime
    at every Gamma is the analytic one, and the drawn points are the file's values."""
    spread = 1 + 0.4 * np.sin(np.arange(40))
    gammas = (1e-4, 2e-4, 4e-4)
    taus = {g: 1.6e-3 / g * spread for g in gammas}         # 16, 8, 4 fs on average
    files = [bath_file(tmp_path / f"G{g:g}.nc", decaying(taus[g]), 40, 100.0, gamma=g)
             for g in gammas]
    closed = closed_file(tmp_path / "closed.nc", werner_mln(AMP * np.minimum(TIMES / T0, 1)))
    out = tmp_path / "fig_bath_coupling.nc"
    write_figure_data("fig_bath_coupling", {"bath": files, "closed": [closed]}, out)
    with xr.open_dataset(out) as ds:
        ds = ds.load()
    assert list(ds["bath_gamma"].values) == list(gammas)
    assert ds["bath_gamma"].attrs["units"] == "eV"
    for g in gammas:
        pt = ds.sel(bath_omega_max=0.01, bath_gamma=g)
        want = analytic_lifetime(taus[g])
        assert float(pt["lifetime"]) == pytest.approx(want, abs=DT ** 2 / (8 * want) + 0.02)
        assert float(pt["lifetime_lower"]) <= float(pt["lifetime"]) <= float(pt["lifetime_upper"])
    lt = ds["lifetime"].sel(bath_omega_max=0.01).values
    assert (np.diff(lt) < 0).all()                        # stronger coupling, shorter life
    fig = draw("fig_bath_coupling", ds)
    a, b, c = fig.axes[:3]
    assert len([ln for ln in a.lines if ln.get_linestyle() == "-"]) == 3   # one MLN per Gamma
    assert len(a.collections) == 3                        # their bands
    drawn = [ln for ln in b.lines if len(ln.get_xdata()) == 3]
    np.testing.assert_allclose(drawn[0].get_xdata(), gammas)
    np.testing.assert_allclose(drawn[0].get_ydata(), lt)
    np.testing.assert_allclose(c.lines[0].get_ydata(),
                               ds["peak_log_negativity"].sel(bath_omega_max=0.01).values)
    save(fig, [tmp_path / "c.png"], dpi=40)
