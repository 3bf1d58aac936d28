"""spinvalve.figures: sweep expansion, aggregation and plotting, on real engine output.

The job files come from ``spinvalve simulate`` itself (tiny chains, single
rank); nothing here fakes an observable, except the bath test, which relabels
real closed-system files as trajectory batches to exercise the batch plumbing.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from spinvalve.config import load_config
from spinvalve.pipeline import cluster, sweeps
from spinvalve.figures.aggregate import AggregationError, aggregate, read_job, sweep_point
from spinvalve.figures.catalog.fig5 import magnon_groups
from spinvalve.figures.plot import draw, save, time_values
from conftest import simulate_job

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
TINY = {"chain": {"n_sites": 40}, "layers": {"fm_p_start": 12, "spacer": 2},
        "pulse": {"x0": 6.0}, "time": {"t_end": 5.0, "dt_out": 0.5}}
ALL_ON = {f: (True, "test") for f in sweeps.FAMILIES}


def quick_config() -> dict:
    """The quick config with the sweep values the tests below rely on pinned."""
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["job"] = {"chain": {"n_sites": 101, "leads": "auto"}, "time": {"t_end": 40.0, "dt_out": 0.5}}
    cfg["closed"]["spins_per_layer"] = [1, 2, 3, 4]
    cfg["gibbs"]["spins_per_layer"] = [2]
    cfg["bath"]["spins_per_layer"] = [2]
    cfg["bath"]["temperatures"] = [10, 100]
    cfg["bath"].pop("couplings", None)            # no coupling axis (tests/test_bath_figures.py)
    cfg["figures"].update(reference_spins_per_layer=4, fig7_spins_per_layer=[2, 3, 4],
                          fig_trajectory_count_temperature=100)
    return cfg


# ---------------------------------------------------------------------------
# sweep expansion and validation (no engine needed)
# ---------------------------------------------------------------------------

def test_shipped_configs_pass_schema_and_job_validation():
    for name in ("config/config.yaml", "config/paper.yaml", ".test/config.yaml"):
        cfg = yaml.safe_load((REPO / name).read_text())
        sweeps.check_schema(cfg, SCHEMA)
        sweeps.validate(cfg, ALL_ON)
        assert sweeps.all_jobs(cfg, ALL_ON), name


def test_paper_config_sweeps_the_paper():
    cfg = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    jobs = sweeps.all_jobs(cfg, ALL_ON)
    closed = sorted(j.value("spins_per_layer") for (f, _), j in jobs.items() if f == "closed")
    assert closed == list(range(1, 11))
    assert cfg["figures"]["fig7_spins_per_layer"] == [4, 7, 10]
    me = sorted(j.value("n_electrons") for (f, _), j in jobs.items() if f == "multi_electron")
    assert me == [2, 4, 8]
    bath = [j for (f, _), j in jobs.items() if f == "bath"]
    per_t: dict[tuple, int] = {}
    for j in bath:
        key = (j.value("T_bb"), j.value("Gamma"))
        per_t[key] = per_t.get(key, 0) + load_config(j.mapping).trajectories.count
    temps = {t for t, _ in per_t}
    assert {10, 100} <= temps and len(temps) >= 4            # Fig. 3(d) and the lifetime figure
    assert len({g for _, g in per_t}) >= 3                   # the coupling figure
    assert set(per_t.values()) == {200}                      # 200 trajectories per point
    # the paper's parameters are the package defaults: nothing overrides them
    resolved = load_config(jobs[("closed", "spins_per_layer~4")].mapping)
    assert (resolved.chain.n_sites, resolved.couplings.j_sd, resolved.layers.fm_p_start) == (201, 0.5, 43)
    # ... on clean leads, except the boundary family's literal 201-site chain
    assert resolved.geometry.reflection_time > resolved.time.t_end
    literal = load_config(jobs[("boundary", "spins_per_layer~4")].mapping)
    assert literal.geometry.n_sites == 201 and literal.geometry.reflection_time < 30.0


def test_pipeline_refuses_chain_end_reflections_outside_the_boundary_family():
    cfg = quick_config()
    cfg["bath"]["job"] = {"chain": {"leads": "none"}}
    with pytest.raises(sweeps.PipelineConfigError,
                       match=r"^bath.job: the job at spins_per_layer = 2, T_bb = 10, Gamma = 0.00012, "
                             r"omega_max = 0.01, batch = 0 "
                             r"would show chain-end reflections: .* t = 28.3 fs < time.t_end = 40"):
        sweeps.validate(cfg, ALL_ON)
    cfg["bath"]["job"] = {}
    cfg["boundary"]["spins_per_layer"] = [3, 5]
    with pytest.raises(sweeps.PipelineConfigError, match=r"^boundary.spins_per_layer: \[5\]"):
        sweeps.validate(cfg, ALL_ON)


def test_job_paths_name_their_parameters_and_configs_apply_in_order():
    cfg = quick_config()
    cfg["job"] = {"chain": {"n_sites": 90}, "time": {"t_end": 10.0}}
    cfg["gibbs"]["job"] = {"chain": {"n_sites": 80}}
    jobs = {j.params: j for j in sweeps.family_jobs(cfg, "gibbs")}
    job = jobs["spins_per_layer~2/T_gibbs~100"]
    assert job.output == "results/jobs/gibbs/spins_per_layer~2/T_gibbs~100.nc"
    assert job.config_path.endswith("T_gibbs~100.yaml")
    resolved = load_config(yaml.safe_load(job.yaml))
    assert resolved.chain.n_sites == 80          # family override beats the base
    assert resolved.time.t_end == 10.0           # base kept
    assert resolved.temperature.gibbs == 100.0   # sweep value
    assert (resolved.layers.n_p, resolved.layers.n_a) == (2, 2)


def test_bath_batches_partition_the_trajectories():
    cfg = quick_config()
    cfg["bath"].update(batches=[0, 1, 2], trajectories_per_batch=7)
    firsts = sorted(load_config(j.mapping).trajectories.first
                    for j in sweeps.family_jobs(cfg, "bath")
                    if j.value("T_bb") == 10)
    assert firsts == [0, 7, 14]
    groups = sweeps.bath_groups(sweeps.all_jobs(cfg, ALL_ON))
    assert set(groups) == {"results/merged/bath/spins_per_layer~2/T_bb~10/Gamma~0.00012/omega_max~0.01.nc",
                           "results/merged/bath/spins_per_layer~2/T_bb~100/Gamma~0.00012/omega_max~0.01.nc"}
    assert all(len(v) == 3 for v in groups.values())


def test_value_spelling_is_canonical():
    assert [sweeps.fmt_value(v) for v in (4, 100.0, 0.5, 1e-5, 12.25)] == \
        ["4", "100", "0.5", "1e-05", "12.25"]


@pytest.mark.parametrize("edit, key", [
    (lambda c: c.update(colour=1), "colour: unknown key"),
    (lambda c: c["closed"].update(ranks=2), "closed.ranks: unknown key"),
    (lambda c: c["closed"].update(spins_per_layer=[1, "two"]), "closed.spins_per_layer[1]"),
    (lambda c: c["gibbs"].update(temperatures=[10, -5]), "gibbs.temperatures[1]"),
    (lambda c: c["plot"].update(time_unit="ps"), "plot.time_unit"),
    (lambda c: c["closed"]["resources"].update(ranks=0), "closed.resources.ranks"),
])
def test_schema_errors_name_the_key(edit, key):
    cfg = quick_config()
    edit(cfg)
    with pytest.raises(sweeps.PipelineConfigError) as err:
        sweeps.check_schema(cfg, SCHEMA)
    assert str(err.value).startswith(key), str(err.value)


@pytest.mark.parametrize("edit, key", [
    (lambda c: c["job"]["chain"].update(colour=1), "job.chain.colour: unknown key"),
    (lambda c: c["job"]["time"].update(t_end="long"), "job.time.t_end: expected a number"),
    (lambda c: c["gibbs"].setdefault("job", {}).update(temperature={"h_pin": -1}), "gibbs.job: temperature.h_pin"),
    (lambda c: c["closed"].update(spins_per_layer=[1, 40]), "closed.spins_per_layer"),
    (lambda c: c["figures"].update(reference_spins_per_layer=9),
     "figures.reference_spins_per_layer"),
    (lambda c: c["figures"].update(fig7_spins_per_layer=[2, 8]), "figures.fig7_spins_per_layer"),
])
def test_job_config_errors_name_the_key(edit, key):
    cfg = quick_config()
    edit(cfg)
    with pytest.raises(sweeps.PipelineConfigError) as err:
        sweeps.validate(cfg, ALL_ON)
    assert str(err.value).startswith(key), str(err.value)


def test_spins_not_fitting_on_the_chain_name_the_sweep_point():
    cfg = quick_config()
    cfg["job"]["chain"]["n_sites"] = 60
    cfg["closed"]["spins_per_layer"] = [2, 8]     # 43 + 8 + 4 + 8 = 63 > 60
    with pytest.raises(sweeps.PipelineConfigError) as err:
        sweeps.validate(cfg, ALL_ON)
    msg = str(err.value)
    assert msg.startswith("closed.spins_per_layer") and "spins_per_layer = 8" in msg
    assert "chain.n_sites" in msg


def test_disabled_families_have_no_jobs_and_are_reported():
    cfg = quick_config()
    cfg["gibbs"]["enabled"] = False
    del cfg["bath"]
    status = sweeps.family_status(cfg)
    assert status["gibbs"] == (False, "disabled in the config")
    assert status["bath"][0] is False
    jobs = sweeps.all_jobs(cfg, status)
    assert not [k for k in jobs if k[0] in ("gibbs", "bath")]
    text = sweeps.describe_status(status)
    assert "disabled families: gibbs (disabled in the config); bath" in text
    # a figure of a disabled family still has (empty) inputs, so it never blocks the DAG
    assert sweeps.figure_inputs(cfg, jobs, "fig_gibbs")["gibbs"] == []


def test_resources_by_spins_override_family_defaults():
    cfg = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    jobs = sweeps.all_jobs(cfg, ALL_ON)
    small = cluster.resources(cfg, "closed", jobs[("closed", "spins_per_layer~4")])
    big = cluster.resources(cfg, "closed", jobs[("closed", "spins_per_layer~10")])
    assert small["ranks"] == 2 and big["ranks"] == 8 and big["mem_mb"] > small["mem_mb"]


def test_figure_inputs_follow_the_figure_choices():
    cfg = quick_config()
    jobs = sweeps.all_jobs(cfg, ALL_ON)
    inp = sweeps.figure_inputs(cfg, jobs, "fig3")
    assert inp["closed"] == ["results/jobs/closed/spins_per_layer~4.nc"]
    assert inp["gibbs"] == []                 # the Gibbs sweep has N/2 = 2 only
    cfg["gibbs"]["spins_per_layer"] = [2, 4]
    jobs = sweeps.all_jobs(cfg, ALL_ON)
    inp = sweeps.figure_inputs(cfg, jobs, "fig3")
    assert inp["gibbs"] == ["results/jobs/gibbs/spins_per_layer~4/T_gibbs~100.nc"]
    fig7 = sweeps.figure_inputs(cfg, jobs, "fig7")["closed"]
    assert [p.rsplit("~", 1)[1] for p in fig7] == ["2.nc", "3.nc", "4.nc"]
    fig4 = sweeps.figure_inputs(cfg, jobs, "fig4")["closed"]
    assert len(fig4) == len(cfg["closed"]["spins_per_layer"])


# ---------------------------------------------------------------------------
# aggregation and plots on real engine output
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def job_files(tmp_path_factory):
    pytest.importorskip("petsc4py")
    tmp = tmp_path_factory.mktemp("jobs")
    files = {}
    for n in (1, 2):
        files[f"closed{n}"] = simulate_job(tmp, f"closed{n}", sweeps.deep_merge(
            TINY, {"layers": {"n_p": n, "n_a": n}}))
    files["gibbs2"] = simulate_job(tmp, "gibbs2", sweeps.deep_merge(
        TINY, {"layers": {"n_p": 2, "n_a": 2}, "temperature": {"gibbs": 300.0}}))
    return files


def test_sweep_point_is_read_from_the_job_config(job_files):
    p = sweep_point(read_job(job_files["gibbs2"]))
    assert (p["n_spins"], p["spins_per_layer"], p["temperature"]) == (4, 2, 300.0)


def test_fig4_merges_the_spin_sweep_along_n_spins(job_files):
    ds = aggregate("fig4", {"closed": [job_files["closed2"], job_files["closed1"]]},
                   {"figure": "fig4"})
    assert list(ds["n_spins"].values) == [2, 4]
    assert list(ds["spins_per_layer"].values) == [1, 2]
    assert ds["log_negativity"].dims == ("n_spins", "time")
    for n, key in ((2, "closed1"), (4, "closed2")):
        with xr.open_dataset(job_files[key]) as job:
            np.testing.assert_array_equal(ds["log_negativity"].sel(n_spins=n).values,
                                          job["log_negativity"].values)
    assert ds.sizes["source"] == 2
    assert set(ds["source_family"].values) == {"closed"}


def test_every_figure_file_is_self_describing(job_files, tmp_path):
    inputs = {"closed": [job_files["closed2"]], "gibbs": [job_files["gibbs2"]]}
    for fig in sweeps.FIGURES:
        ds = aggregate(fig, inputs, {"figure": fig})
        for key in ("title", "spinvalve_version", "git_revision", "settings",
                    "petsc_version", "families_without_data", "notes", "status"):
            assert key in ds.attrs, (fig, key)
        for name, var in ds.variables.items():
            assert "long_name" in var.attrs, (fig, name)
            assert "units" in var.attrs or var.dtype.kind in "OSU", (fig, name)  # strings: none
        out = tmp_path / f"{fig}.nc"
        from spinvalve.io import write_dataset
        write_dataset(ds, out)
        with xr.open_dataset(out) as back:
            assert back.attrs["figure"] == fig


UDUNITS_HERE = {"1", "fs", "K", "eV"}


def test_figure_variables_keep_their_sources_units_and_cf_attributes(job_files):
    """Units and long names travel from the job files into every figure file unchanged;
    every unit string is one UDUNITS knows; the global attributes follow CF."""
    inputs = {"closed": [job_files["closed2"]], "gibbs": [job_files["gibbs2"]],
              "boundary": [job_files["closed1"]]}
    with xr.open_dataset(job_files["closed2"]) as src:
        source = {n: dict(v.attrs) for n, v in src.variables.items()}
    suffixes = ("_gibbs", "_bath", "_closed", "_literal", "_clean")
    for fig in sweeps.FIGURES:
        ds = aggregate(fig, inputs, {"figure": fig})
        assert ds.attrs["Conventions"] == "CF-1.10" and "arXiv:2210.06634" in ds.attrs["references"]
        assert f"spinvalve aggregate {fig}" in ds.attrs["history"]
        for name, var in ds.variables.items():
            if "units" in var.attrs:
                assert var.attrs["units"] in UDUNITS_HERE, (fig, name, var.attrs["units"])
            base = str(name)
            for suf in suffixes:
                base = base.removesuffix(suf)
            if base in source and "units" in source[base]:
                assert var.attrs.get("units") == source[base]["units"], (fig, name)
                assert var.attrs["long_name"].startswith(source[base]["long_name"]), (fig, name)


def test_an_undescribed_variable_fails_the_aggregation(job_files, tmp_path):
    ds = read_job(job_files["closed2"])
    del ds["log_negativity"].attrs["units"]
    bad = tmp_path / "bad.nc"
    from spinvalve.io import write_dataset
    write_dataset(ds, bad)
    with pytest.raises(AggregationError, match=r"fig4: variables without units.*log_negativity"):
        aggregate("fig4", {"closed": [bad]}, {"figure": "fig4"})


def test_fig3_and_gibbs_figure_combine_families(job_files):
    ds = aggregate("fig3", {"closed": [job_files["closed2"]], "gibbs": [job_files["gibbs2"]]})
    assert "log_negativity" in ds and "log_negativity_gibbs" in ds
    assert ds["log_negativity_gibbs"].dims == ("temperature", "time_gibbs")
    assert ds.attrs["families_without_data"] == "bath, multi_electron, boundary"
    g = aggregate("fig_gibbs", {"closed": [job_files["closed2"]], "gibbs": [job_files["gibbs2"]]})
    assert list(g["temperature"].values) == [0.0, 300.0]
    peak = g["peak_log_negativity"].sel(n_spins=4)
    mln = g["log_negativity"].sel(n_spins=4)
    np.testing.assert_allclose(peak.values, mln.max("time").values)
    assert g["peak_log_negativity"].attrs["long_name"].startswith("maximum over time")


def test_duplicate_sweep_points_are_refused(job_files):
    with pytest.raises(AggregationError, match="same sweep point"):
        aggregate("fig4", {"closed": [job_files["closed1"], job_files["closed1"]]})


def test_empty_family_gives_a_partial_file_not_an_error():
    ds = aggregate("fig6", {"multi_electron": []})
    assert ds.attrs["status"] == "partial" and "multi_electron" in ds.attrs["notes"]
    fig = draw("fig6", ds)
    save(fig, [])


@pytest.mark.parametrize("unit", ["fs", "hbar_over_gamma"])
def test_every_figure_draws_in_both_time_units(job_files, tmp_path, unit):
    inputs = {"closed": [job_files["closed1"], job_files["closed2"]],
              "gibbs": [job_files["gibbs2"]]}
    for fig in sweeps.FIGURES:
        sel = dict(inputs)
        if fig in ("fig2", "fig3", "fig5"):
            sel["closed"] = [job_files["closed2"]]
        if fig == "fig_gibbs":
            sel["closed"] = [job_files["closed2"]]
        ds = aggregate(fig, sel)
        figure = draw(fig, ds, unit)
        first_is_time = fig in ("fig_gibbs", "fig_bath_lifetime", "fig_trajectory_count",
                                "fig_bath_coupling")
        label = figure.axes[0 if first_is_time else -1].get_xlabel()
        assert ("fs" in label) == (unit == "fs") and (r"\hbar" in label) == (unit != "fs")
        outs = save(figure, [tmp_path / f"{fig}.png", tmp_path / f"{fig}.pdf"], dpi=40)
        assert outs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert outs[1].read_bytes()[:5] == b"%PDF-"
        assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_bath_figure_inputs_follow_the_bath_sweep():
    cfg = quick_config()
    cfg["bath"].update(temperatures=[10, 100, 300], batches=[0, 1])
    cfg["figures"]["reference_spins_per_layer"] = 2
    jobs = sweeps.all_jobs(cfg, ALL_ON)
    merged = [sweeps.bath_merged_path(2, t) for t in (10, 100, 300)]
    inp = sweeps.figure_inputs(cfg, jobs, "fig_bath_lifetime")
    assert sorted(inp["bath"]) == sorted(merged)
    assert inp["closed"] == ["results/jobs/closed/spins_per_layer~2.nc"]   # the bath's N only
    inp = sweeps.figure_inputs(cfg, jobs, "fig_trajectory_count")
    assert inp["bath"] == [sweeps.bath_merged_path(2, cfg["figures"]["fig_trajectory_count_temperature"])]
    cfg["figures"]["fig_trajectory_count_temperature"] = None           # default: the hottest bath
    assert sweeps.figure_inputs(cfg, jobs, "fig_trajectory_count")["bath"] == [merged[-1]]
    assert sweeps.figure_settings(cfg, "fig_trajectory_count")["shown"] == {
        "spins_per_layer": 2, "T_bb": 300.0}
    cfg["figures"]["fig_trajectory_count_temperature"] = 30
    with pytest.raises(sweeps.PipelineConfigError,
                       match=r"^figures.fig_trajectory_count_temperature: 30 is not in bath"):
        sweeps.validate(cfg, ALL_ON)


def test_time_axis_in_hbar_over_gamma(job_files):
    ds = aggregate("fig4", {"closed": [job_files["closed1"]]})
    t = time_values(ds, "time", "hbar_over_gamma")
    assert math.isclose(t[-1], 5.0 / 0.6582119569, rel_tol=1e-9)


def test_fig5_panels_split_the_magnon_sectors_like_the_paper():
    assert magnon_groups(8) == [[0, 1, 2], [3, 4], [5, 6], [7, 8]]
    assert magnon_groups(4) == [[0, 1, 2], [3], [4]]        # no empty panel
    assert magnon_groups(2) == [[0, 1, 2]]


def test_cli_aggregate_and_plot(job_files, tmp_path):
    out = tmp_path / "fig4.nc"
    run = [sys.executable, "-m", "spinvalve.cli"]
    proc = subprocess.run(run + ["aggregate", "fig4", "--closed", str(job_files["closed1"]),
                                 "--settings", '{"figure": "fig4"}', "-o", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(run + ["plot", "fig4", str(out), "-o", str(tmp_path / "f.png"),
                                 "--time-unit", "hbar_over_gamma"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    proc = subprocess.run(run + ["aggregate", "fig4", "--closed", str(tmp_path / "nope.nc"),
                                 "-o", str(tmp_path / "x.nc")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "nope.nc" in proc.stderr
    assert not (tmp_path / "x.nc").exists()



def _schema_keys(node: dict, prefix: str = "") -> list[str]:
    keys = []
    for name, sub in (node.get("properties") or {}).items():
        key = f"{prefix}.{name}" if prefix else name
        if "properties" in sub:
            keys += _schema_keys(sub, key)
        else:
            keys.append(key)
    return keys


def test_config_readme_documents_every_key():
    readme = (REPO / "config" / "README.md").read_text()
    from spinvalve.config import describe
    missing = [k for k in _schema_keys(SCHEMA) if f"`{k}`" not in readme
               and k.split(".")[-1] not in ("job", "resources", "resources_by_spins")]
    missing += [k for k, _, _ in describe() if f"`{k}`" not in readme]
    assert not missing, f"add to config/README.md: {missing}"


def _readme_job_keys() -> dict[str, tuple[str, str]]:
    """``| `key` | `default` | meaning |`` rows of config/README.md's job-config table."""
    rows = {}
    for line in (REPO / "config" / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and cells[1].startswith("`"):
            rows[cells[0].strip("`")] = (cells[1].strip("`"), cells[2])
    return rows


def _readme_value(text: str):
    if "pi" in text:  # pi/2, [pi/6, pi/2]
        return eval(text.replace("pi", "math.pi"), {"math": math, "__builtins__": {}})  # noqa: S307
    from spinvalve.config import load_yaml
    return load_yaml(text)


def test_config_readme_defaults_and_units_are_the_code_s():
    """Every job-config key's documented default equals the dataclass default, and every
    unit the code's doc string names, e.g. "(eV)", is the README's."""
    import re
    from spinvalve.config import describe
    rows = _readme_job_keys()
    wrong = []
    for key, default, doc in describe():
        documented, meaning = rows[key]
        value = _readme_value(documented)
        if isinstance(default, tuple):
            same = len(value) == len(default) and all(math.isclose(a, b) for a, b in zip(value, default))
        elif isinstance(default, float):
            same = isinstance(value, (int, float)) and math.isclose(value, default, rel_tol=1e-12)
        else:
            same = type(value) is type(default) and value == default
        if not same:
            wrong.append(f"{key}: README {documented!r}, code {default!r}")
        for unit in re.findall(r"\((eV|fs|K|GB|1/site|hbar/gamma|0-based site)\)", doc):
            if f"({unit})" not in meaning:
                wrong.append(f"{key}: unit ({unit}) of the code not in the README: {meaning!r}")
    assert not wrong, wrong
    assert rows["multi_electron.method"][0] == "tebd" and "(eV)" in rows["multi_electron.well_depth"][1]
