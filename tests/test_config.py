"""Property-based tests of config validation: every malformed config is rejected naming the
key, before any computation; no valid config is rejected."""

from __future__ import annotations

import dataclasses
import math
import re
import typing

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spinvalve import config as C
from spinvalve.config import ConfigError, JobConfig, load_config

SECTIONS = {f.name: (typing.get_type_hints(JobConfig)[f.name]) for f in dataclasses.fields(JobConfig)}
SECTIONS.update(C._OPTIONAL_SECTIONS)


def numeric_fields():
    """(section, key, type, metadata) of every numeric field with a lower bound."""
    out = []
    for sec, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if hints[f.name] in (int, float):
                out.append((sec, f.name, hints[f.name], f.metadata))
    return out


NUMERIC = numeric_fields()
BOUNDED = [x for x in NUMERIC if x[3].get("lo") is not None]


@st.composite
def valid_configs(draw):
    L = draw(st.integers(4, 300))
    n_p = draw(st.integers(0, 4))
    n_a = draw(st.integers(0, 4))
    spacer = draw(st.integers(0, 3))
    room = L - (n_p + spacer + n_a)
    if room < 0:
        n_p = n_a = spacer = 0
        room = L
    start = draw(st.integers(0, max(room, 0)))
    dt = draw(st.sampled_from([0.1, 0.25, 0.5, 1.0]))
    return {
        "chain": {"n_sites": L, "hopping": draw(st.floats(0.1, 3.0))},
        "layers": {"n_p": n_p, "n_a": n_a, "fm_p_start": start, "spacer": spacer},
        "couplings": {"j_sd": draw(st.floats(-2, 2)), "j": draw(st.floats(-1, 1)),
                      "jz_ratio": draw(st.floats(0, 2))},
        "pulse": {"x0": draw(st.floats(0, L - 1)), "k": draw(st.floats(0, math.pi)),
                  "dk": draw(st.floats(0.01, 1.0))},
        "time": {"t_end": dt * draw(st.integers(1, 400)), "dt_out": dt},
        "numerics": {"integrator": draw(st.sampled_from(["chebyshev", "krylov", "rk4"])),
                     "chebyshev": {"tolerance": draw(st.floats(1e-14, 1e-4))},
                     "krylov": {"tolerance": draw(st.floats(1e-14, 1e-4))}},
        "temperature": {"gibbs": draw(st.floats(0, 1000)), "h_pin": draw(st.floats(0, 0.1))},
    }


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_configs())
def test_valid_configs_are_accepted(raw):
    cfg = load_config(raw)
    assert cfg.layers.fm_a_start + cfg.layers.n_a <= cfg.chain.n_sites or cfg.layers.n_spins == 0
    # the resolved config round-trips
    assert load_config(cfg.to_dict()) == cfg


@settings(max_examples=150, deadline=None)
@given(valid_configs(), st.sampled_from(sorted(SECTIONS)), st.text("abcdefghij_", min_size=1, max_size=8))
def test_unknown_keys_are_named(raw, section, key):
    cls = SECTIONS[section]
    if key in {f.name for f in dataclasses.fields(cls)}:
        return
    raw.setdefault(section, {})[key] = 1
    with pytest.raises(ConfigError, match=f"{section}.{key}"):
        load_config(raw)


@settings(max_examples=200, deadline=None)
@given(valid_configs(), st.sampled_from(NUMERIC),
       st.one_of(st.text(max_size=5), st.lists(st.integers(), max_size=2), st.just(None),
                 st.just(float("nan")), st.just(float("inf")), st.just(True)))
def test_wrong_types_and_non_finite_values_are_named(raw, field, value):
    section, key, typ, _ = field
    if value is None or (typ is int and isinstance(value, float) and math.isfinite(value)):
        return
    raw.setdefault(section, {})[key] = value
    with pytest.raises(ConfigError, match=f"{section}.{key}"):
        load_config(raw)


@settings(max_examples=200, deadline=None)
@given(valid_configs(), st.sampled_from(BOUNDED), st.floats(1e-9, 1e6))
def test_values_below_their_bound_are_named(raw, field, below):
    section, key, typ, meta = field
    value = meta["lo"] - below
    if typ is int:
        value = math.floor(value) if not meta.get("lo_open") else math.floor(value)
        if value >= meta["lo"]:
            value = meta["lo"] - 1
    raw.setdefault(section, {})[key] = value
    with pytest.raises(ConfigError, match=f"{section}.{key}"):
        load_config(raw)


@settings(max_examples=100, deadline=None)
@given(valid_configs(), st.integers(1, 50))
def test_layers_off_the_chain_are_rejected(raw, overhang):
    lay = raw["layers"]
    lay["n_p"] = max(lay["n_p"], 1)
    lay["fm_p_start"] = raw["chain"]["n_sites"] - lay["n_p"] - lay["spacer"] - lay["n_a"] + overhang
    with pytest.raises(ConfigError, match="layers"):
        load_config(raw)


def test_too_little_memory_is_rejected_before_computation(cli, tmp_path):
    out = tmp_path / "o.nc"
    proc = cli(["simulate", "--set", "layers.n_p=10", "--set", "layers.n_a=10",
                "--set", "parallel.memory_limit_gb=2", "-o", str(out)], check=False)
    assert proc.returncode == 2 and "parallel.memory_limit_gb" in proc.stderr
    assert not out.exists()


def test_exponent_numbers_without_a_dot_are_floats(tmp_path):
    """PyYAML (YAML 1.1) reads 1e-12 as a string; job files, --set values and mappings
    read by another YAML 1.1 loader (Snakemake's --configfile) are all accepted."""
    from spinvalve.config import load_yaml, yaml_numbers
    path = tmp_path / "job.yaml"
    path.write_text("multi_electron: {trunc_cut: 1e-12}\nnumerics: {chebyshev: {tolerance: 1E-10}}\n"
                    "bath: {gamma: 2e-4}\ntime: {t_end: 0.6582119569, dt_out: 0.6582119569}\n")
    assert yaml.safe_load(path.read_text())["multi_electron"]["trunc_cut"] == "1e-12"
    cfg = load_config(path)
    cheb = cfg.numerics.chebyshev
    assert (cfg.multi_electron.trunc_cut, cheb.tolerance, cfg.bath.gamma) == (1e-12, 1e-10, 2e-4)
    cheb = load_config({}, ["numerics.chebyshev.tolerance=3e-11"]).numerics.chebyshev
    assert cheb.tolerance == 3e-11
    cheb = load_config({"numerics": {"chebyshev": {"tolerance": "5e-9"}}}).numerics.chebyshev
    assert cheb.tolerance == 5e-9
    assert load_yaml("[1e3, -2e-2, +1e+2, 1.5, 7, 1e, e5, '1e5']") == [1000.0, -0.02, 100.0, 1.5, 7,
                                                                    "1e", "e5", "1e5"]
    assert yaml_numbers({"a": ["1e-4", "x1e4", 3], "b": {"c": "2E5"}}) == {
        "a": [1e-4, "x1e4", 3], "b": {"c": 2e5}}
    with pytest.raises(ConfigError, match="numerics.chebyshev.tolerance: expected a number"):
        load_config({"numerics": {"chebyshev": {"tolerance": "small"}}})
    with pytest.raises(ConfigError, match="layers.n_p: expected an integer"):
        load_config({"layers": {"n_p": "4e0"}})


def test_packet_centre_must_be_on_the_chain_only_where_it_is_used():
    with pytest.raises(ConfigError, match="pulse.x0"):
        load_config({"pulse": {"x0": 300.0}})
    me = load_config({"pulse": {"x0": 300.0}, "chain": {"n_sites": 40},
                      "layers": {"fm_p_start": 10},
                      "time": {"t_end": 0.6582119569, "dt_out": 0.6582119569},
                      "multi_electron": {"n_electrons": 2}})
    assert me.pulse.x0 == 300.0


@pytest.mark.parametrize("old, new", [
    ("numerics.tolerance", "numerics.chebyshev.tolerance"),
    ("numerics.rk4_dt", "numerics.rk4.dt"),
    ("numerics.spectral_bounds", "numerics.chebyshev.spectral_bounds"),
    ("numerics.ranks_per_member", "parallel.ranks_per_member"),
    ("numerics.overlap_limit_gb", "parallel.overlap_limit_gb"),
])
def test_keys_of_earlier_versions_say_where_they_moved(old, new):
    with pytest.raises(ConfigError, match=rf"^{re.escape(old)}: moved to {re.escape(new)}"):
        load_config({}, [f"{old}=1"])
    load_config({}, [f"{new}={'terms' if 'bounds' in new else 1e-9 if 'tol' in new else 1}"])


def test_every_registered_integrator_has_its_options_section_and_only_those():
    """numerics.<name> for every integrator the registry knows, the choice list the same."""
    import dataclasses
    from spinvalve.config import Numerics
    from spinvalve.propagate import INTEGRATORS
    sections = {name for name, typ in typing.get_type_hints(Numerics).items()
                if dataclasses.is_dataclass(typ)}
    choices = set(dataclasses.fields(Numerics)[0].metadata["choices"])
    assert set(INTEGRATORS) == sections == choices
    for name in INTEGRATORS:
        cfg = load_config({"numerics": {"integrator": name}})
        assert cfg.numerics.options is getattr(cfg.numerics, name)


@pytest.mark.parametrize("raw, key", [
    ({"bath": {}, "numerics": {"integrator": "krylov"}}, "numerics.integrator"),
    ({"bath": {}, "layers": {"n_p": 13, "n_a": 1}}, "layers"),
    ({"temperature": {"gibbs": 100.0}, "layers": {"n_p": 8, "n_a": 8}}, "temperature.gibbs"),
    ({"bath": {}, "temperature": {"gibbs": 10.0}}, "temperature.gibbs"),
])
def test_family_limits_are_config_errors_at_load_time(raw, key):
    """Rules the engines enforce are checked when the config is read (the pipeline's plan
    refuses such a job before any job starts)."""
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)}:"):
        load_config(raw)
    # the largest Gibbs ensemble accepted: 7+7 (charge blocks up to C(14, 7) = 3432 states;
    # 8+8: 12870 > MAX_GIBBS_BLOCK)
    assert load_config({"temperature": {"gibbs": 100.0}, "layers": {"n_p": 7, "n_a": 7}})


def test_parallel_settings_do_not_change_the_checkpoint_hash():
    from spinvalve.checkpoint import config_hash
    base = load_config({})
    assert config_hash(load_config({}, ["parallel.ranks_per_member=1",
                                        "parallel.overlap_limit_gb=0",
                                        "parallel.memory_limit_gb=2"])) == config_hash(base)
    assert config_hash(load_config({}, ["numerics.chebyshev.tolerance=1e-10"])) != config_hash(base)
