"""Chain geometry: lead sites and the chain-end reflection time (spinvalve.geometry).

The reflection time is checked against brute-force full-space evolution
(tests/reference.py): the same device on the finite chain and on a chain with
200 more sites at each end agree at the layers until amplitude reflected by an
end of the finite chain arrives, and differ soon after. On leads long enough,
the entanglement between the layers freezes once the packet has left them:
the spins then evolve under H_p + H_a, a product of local unitaries.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import reference as ref
from spinvalve import HBAR
from spinvalve.config import load_config
from spinvalve.geometry import FRONT_WIDTHS, packet_edges, reflection_time
from spinvalve.simulate import Engine, with_geometry


def test_paper_geometry_by_hand():
    """L = 201, FM_p from 43, packet at 20 with dk = 0.2: the front 20 + 5 / 0.2 = 45 is
    already past site 43, so the left path is 2 * 43 = 86 sites, at 2 sites per hbar/gamma."""
    geo = load_config({}).geometry
    assert geo.n_sites == 201 and geo.spin_sites[0] == 43 and geo.x0 == 20
    assert FRONT_WIDTHS == 5.0
    assert geo.reflection_time == pytest.approx(86 / 2 * HBAR, rel=1e-14)
    # right path: (200 - 45) + (200 - 54) = 301 sites: later
    assert reflection_time(201, 43, 54, 45.0, 1.0) == pytest.approx(86 / 2 * HBAR)
    assert reflection_time(201, 43, 54, 45.0, 2.0) == pytest.approx(86 / 4 * HBAR)
    assert reflection_time(201, 43, 54, 40.0, 1.0) == pytest.approx((3 + 86) / 2 * HBAR)
    assert reflection_time(80, 43, 54, 45.0, 1.0) == pytest.approx((34 + 25) / 2 * HBAR)
    assert math.isinf(load_config({"layers": {"n_p": 0, "n_a": 0}}).geometry.reflection_time)


def test_rear_counts_only_for_left_moving_packets():
    assert packet_edges(20.0, math.pi / 2, 0.2) == (45.0, None)
    front, rear = packet_edges(20.0, 0.1, 0.2)      # momenta on both sides of 0
    assert (front, rear) == (45.0, -5.0)


@pytest.mark.parametrize("t_end", [5.0, 40.0, 60.0, 100.0, 250.0])
def test_auto_leads_are_the_fewest_that_clear_t_end(t_end):
    raw = {"time": {"t_end": t_end, "dt_out": 0.5}, "chain": {"leads": "auto"}}
    geo = load_config(raw).geometry
    base = load_config({**raw, "chain": {"leads": "none"}})
    assert geo.reflection_time > t_end
    # the device, the packet-to-FM_p distance and the spacer are unchanged, only shifted
    shift = geo.lead_left
    assert geo.spin_sites == tuple(s + shift for s in base.layers.sites)
    assert geo.x0 == base.pulse.x0 + shift
    assert geo.n_sites == 201 + geo.lead_left + geo.lead_right
    front, _ = packet_edges(geo.x0, math.pi / 2, 0.2)
    first, last = geo.spin_sites[0], geo.spin_sites[-1]
    # one lead site fewer on a side that has some would not be enough
    if geo.lead_left > 5:
        t = reflection_time(geo.n_sites - 1, first - 1, last - 1, front - 1, 1.0)
        assert t <= t_end + 2 / (2 / HBAR)
    if geo.lead_right:
        assert reflection_time(geo.n_sites - 1, first, last, front, 1.0) <= t_end + 2 / (2 / HBAR)
    if t_end < 28.0:   # the paper's 201 sites are clean up to 28.3 fs; the packet's tail
        assert geo.lead_sites == (5, 0)      # (5 widths behind x0 = 20) needs 5 more sites
    assert geo.x0 - FRONT_WIDTHS / 0.2 >= 0


def test_multi_electron_jobs_keep_their_chain():
    raw = {"chain": {"n_sites": 40, "leads": "auto"},
           "layers": {"n_p": 1, "n_a": 1, "fm_p_start": 20, "spacer": 1},
           "time": {"t_end": 76 * HBAR, "dt_out": HBAR},  # whole tDMRG steps
           "multi_electron": {"n_conf": 4}}
    geo = load_config(raw).geometry
    assert geo.n_sites == 40 and geo.lead_sites == (0, 0)
    # from the well's edge (site 3): left (20 - 3) + 2 * 20 = 57, right 36 + 17 = 53 sites
    assert geo.reflection_time == pytest.approx(53 / 2 * HBAR)


def _layer_difference(L, p0, x0, dk, times, pad=200):
    """Weight at the layer sites of psi(finite chain) - psi(chain with ``pad`` more sites
    at both ends), brute force, 1+1 spins, electron up; and the reflection time."""
    out = []
    for g, shift in ((ref.Geometry(L, p0, 1, 2, 1), 0),
                     (ref.Geometry(L + 2 * pad, p0 + pad, 1, 2, 1), pad)):
        psi0 = ref.product_state(g.L, x0 + shift, math.pi / 2, dk, 1, g.reference_config)
        psi = ref.evolve(ref.hamiltonian(g), psi0, times).reshape(len(times), g.L, -1)
        out.append(psi[:, shift:shift + L])
    sites = ref.Geometry(L, p0, 1, 2, 1).sites
    weight = (np.abs(out[0] - out[1]) ** 2).sum(axis=2)[:, sites].sum(axis=1)
    front, rear = packet_edges(x0, math.pi / 2, dk)
    return weight, reflection_time(L, sites[0], sites[-1], front, 1.0, rear)


@pytest.mark.parametrize("L,p0,x0", [(140, 60, 30.0),    # left end first
                                     (130, 90, 60.0)])   # right end first
def test_reflected_weight_reaches_the_layers_at_the_reflection_time(L, p0, x0):
    times = np.arange(0.0, 60.0, 0.25)
    weight, t_r = _layer_difference(L, p0, x0, 0.2, times)
    assert 20 < t_r < 50
    # packet 6 widths from site 0: its truncation by the finite chain is negligible
    assert weight[times < t_r].max() < 1e-6
    assert weight[times < t_r + 5.0].max() > 1e-4


def test_job_output_carries_the_reflection_time():
    cfg = load_config({"chain": {"n_sites": 36}, "layers": {"n_p": 1, "n_a": 1, "fm_p_start": 14},
                       "pulse": {"x0": 6.0}, "time": {"t_end": 1.0, "dt_out": 0.5}})
    ds = with_geometry(Engine(cfg).run(log=None), cfg)
    var = ds["reflection_time"]
    assert var.dims == () and var.attrs["units"] == "fs" and "reflect" in var.attrs["long_name"]
    assert float(var) == cfg.geometry.reflection_time
    assert ds.attrs["chain_sites"] == 36


def test_entanglement_freezes_once_the_packet_has_left_both_layers():
    """Clean leads: after the packet's slowest significant momenta (k -/+ 6 widths dk/2)
    have carried its rear (6 widths 1/dk behind x0) past FM_a, MLN, MI, S_p and S_a stay
    constant while the spins inside each layer keep moving (H_p + H_a is a product of
    local unitaries). The packet starts 8 widths before FM_p: its initial overlap with the
    layers (and so with states bound to them, which never leave) is negligible."""
    cfg = load_config({"chain": {"n_sites": 80, "leads": "auto"},
                       "layers": {"n_p": 2, "n_a": 2, "fm_p_start": 50, "spacer": 2},
                       "pulse": {"x0": 10.0}, "time": {"t_end": 70.0, "dt_out": 1.0}})
    geo = cfg.geometry
    assert geo.reflection_time > 70.0
    rear = geo.x0 - 6 / cfg.pulse.dk
    v_slow = 2 / HBAR * math.cos(6 * cfg.pulse.dk / 2)   # sites per fs
    t_gone = (geo.spin_sites[-1] - rear) / v_slow
    ds = Engine(cfg).run(log=None)
    late = ds.sel(time=slice(t_gone, None))
    assert late.sizes["time"] >= 20
    for name in ("log_negativity", "mutual_information", "entropy_p", "entropy_a"):
        v = late[name].values
        assert np.ptp(v) < 1e-6, f"{name} changes by {np.ptp(v):.2e} after the packet left"
        assert ds[name].max() > 1e-3          # there is entanglement to keep
    sz = late["spin_expectation"].sel(component="z").values
    assert np.ptp(sz, axis=0).max() > 1e-3    # the layers precess meanwhile
