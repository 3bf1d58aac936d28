"""The Python API: spinvalve.run(config) -> the CLI's dataset, usable from a notebook."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import yaml

import spinvalve
from spinvalve.errors import ConfigError

JOB = {"chain": {"n_sites": 30}, "layers": {"n_p": 2, "n_a": 1, "fm_p_start": 12, "spacer": 2},
       "pulse": {"x0": 5.0}, "time": {"t_end": 4.0, "dt_out": 1.0}}

#: attributes that measure the run, not the result
TIMINGS = {"propagation_seconds", "observables_seconds"}


@pytest.fixture(scope="module")
def api_run():
    return spinvalve.run(JOB, ["couplings.j_sd=0.6"], log=None)


def test_run_equals_the_cli_file_values_and_attributes(api_run, cli, tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump(JOB))
    out = tmp_path / "cli.nc"
    cli(["simulate", "--config", str(job), "--set", "couplings.j_sd=0.6", "--output", str(out)])
    with xr.open_dataset(out) as f:
        ref = f.load()
    assert set(api_run.data_vars) == set(ref.data_vars)
    for name in ref.data_vars:
        np.testing.assert_array_equal(api_run[name].values, ref[name].values, err_msg=name)
    assert set(api_run.attrs) == set(ref.attrs)
    for key in set(ref.attrs) - TIMINGS:
        assert api_run.attrs[key] == ref.attrs[key], key
    assert spinvalve.load_config(yaml.safe_load(api_run.attrs["config"])).couplings.j_sd == 0.6


def test_saved_result_is_accepted_by_aggregate(api_run, cli, tmp_path):
    path = tmp_path / "api.nc"
    api_run.to_netcdf(path)
    out = tmp_path / "fig2.nc"
    cli(["aggregate", "fig2", "--closed", str(path), "-o", str(out)])
    with xr.open_dataset(out) as fig:
        np.testing.assert_array_equal(fig.time.values, api_run.time.values)


def test_run_writes_the_output_file_and_takes_a_jobconfig(tmp_path):
    cfg = spinvalve.load_config(JOB, ["time.t_end=2.0"])
    out = tmp_path / "x.nc"
    ds = spinvalve.run(cfg, output=out, log=None)
    with xr.open_dataset(out) as f:
        np.testing.assert_array_equal(f.log_negativity.values, ds.log_negativity.values)
        assert f.attrs["config"] == ds.attrs["config"] == cfg.to_yaml()
    assert not list(tmp_path.glob("x.nc.ckpt*"))


def test_bad_config_raises_the_cli_error_naming_the_key():
    with pytest.raises(ConfigError, match="layers.n_q"):
        spinvalve.run({"layers": {"n_q": 1}}, log=None)
