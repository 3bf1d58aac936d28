"""Every variable every writer emits is in spinvalve.schema, with the table's dims and attributes."""

from __future__ import annotations

import pytest

from spinvalve.config import load_config
from spinvalve.schema import SCHEMA
from spinvalve.simulate import Engine, with_geometry

CLOSED = {"chain": {"n_sites": 24}, "layers": {"n_p": 2, "n_a": 1, "fm_p_start": 10, "spacer": 1},
          "pulse": {"x0": 4.0}, "time": {"t_end": 2.0, "dt_out": 1.0}}


def assert_described(ds, family):
    table = {**SCHEMA["every"], **SCHEMA[family]}
    for name, var in ds.variables.items():
        assert name in table, f"{family}: {name} is not in spinvalve.schema"
        want = table[name]
        assert var.dims == want.dims, f"{family}: {name} dims {var.dims} != {want.dims}"
        assert set(want.dynamic) <= set(var.attrs), f"{family}: {name} lacks {want.dynamic}"
        assert var.attrs == want.attrs(**{k: var.attrs[k] for k in want.dynamic}), name


def test_closed_and_gibbs_files():
    for extra in ({}, {"temperature": {"gibbs": 300.0}}):
        cfg = load_config({**CLOSED, **extra})
        assert_described(with_geometry(Engine(cfg).run(log=None), cfg), "closed")


def test_bath_file():
    from spinvalve.opensystem import run_open
    cfg = load_config({**CLOSED, "bath": {"temperature": 100.0, "gamma": 0.01},
                       "trajectories": {"count": 4, "seed": 3}})
    ds = run_open(cfg, log=None)
    assert "log_negativity_lower" in ds
    assert_described(with_geometry(ds, cfg), "bath")


def test_tdmrg_file():
    pytest.importorskip("tenpy")
    from spinvalve import HBAR
    from spinvalve.tdmrg import run_tdmrg
    cfg = load_config({"chain": {"n_sites": 16, "hopping": 1.0},
                       "layers": {"n_p": 2, "n_a": 2, "fm_p_start": 6, "spacer": 2},
                       "pulse": {"x0": 2.0}, "time": {"t_end": HBAR, "dt_out": HBAR},
                       "multi_electron": {"n_electrons": 2, "n_conf": 3}})
    assert_described(with_geometry(run_tdmrg(cfg, log=None), cfg), "tdmrg")
