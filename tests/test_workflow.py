"""The Snakemake pipeline end to end: .test/ config, local and SLURM, reruns, bad input.

Every run uses the real engine (``spinvalve simulate`` under ``mpiexec``/``srun``)
in a temporary working directory (``snakemake --directory``), never the
repository's own ``results/``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xarray as xr
import yaml

try:  # pytest's rootdir-relative import or a package-style one
    from slurm_fixture import slurm_cluster  # noqa: F401  (pytest fixture)
except ImportError:  # pragma: no cover
    from tests.slurm_fixture import slurm_cluster  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
LOCAL = REPO / "workflow" / "profiles" / "local"
SLURM = REPO / "workflow" / "profiles" / "slurm"
TEST_CONFIG = REPO / ".test" / "config.yaml"
FIGURES = ("fig2", "fig3", "fig4", "fig5", "fig6", "fig7", "fig_gibbs", "fig_bath_lifetime",
           "fig_trajectory_count", "fig_boundary", "fig_bath_coupling")

pytestmark = pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import snakemake"], capture_output=True).returncode,
    reason="snakemake is not installed in this interpreter (pip install -e '.[workflow]')")


def _env() -> dict:
    env = dict(os.environ)
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.pop("SNAKEMAKE_PROFILE", None)
    return env


def snakemake(workdir: Path, configfile: Path, *args: str, profile: Path = LOCAL,
              timeout: int = 600, check: bool = True, site: Path | None = None
              ) -> subprocess.CompletedProcess:
    """Run the pipeline; with ``site`` (a user's site profile) ``profile`` is the workflow
    profile (``--workflow-profile profile --profile site``)."""
    prof = (["--workflow-profile", str(profile), "--profile", str(site)] if site is not None
            else ["--profile", str(profile)])
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE),
           "--directory", str(workdir), "--configfile", str(configfile), *prof, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(),
                          cwd=workdir)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}): {' '.join(cmd)}\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


def planned(proc: subprocess.CompletedProcess) -> set[tuple[str, str]]:
    """(rule, first output) of every job a dry run would execute (rule `all` excluded)."""
    jobs, rule = set(), None
    for line in (proc.stdout + proc.stderr).splitlines():
        m = re.match(r"^(?:local)?rule (\w+):$", line.strip())
        if m:
            rule = m.group(1)
            continue
        m = re.match(r"^\s+output: (\S+?),?(\s|$)", line)
        if m and rule:
            if rule != "all":
                jobs.add((rule, m.group(1).rstrip(",")))
            rule = None
    return jobs


def edited_config(tmp: Path, name: str, edit) -> Path:
    cfg = yaml.safe_load(TEST_CONFIG.read_text())
    edit(cfg)
    path = tmp / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


# ---------------------------------------------------------------------------
# one full local run of the .test config, shared by the tests below
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("pipeline")
    cfg = work / "config.yaml"
    shutil.copy(TEST_CONFIG, cfg)
    t0 = time.monotonic()
    proc = snakemake(work, cfg, "--cores", "2")
    return {"work": work, "config": cfg, "proc": proc, "seconds": time.monotonic() - t0}


def enabled_families(proc) -> set[str]:
    m = re.search(r"enabled families: (.*)", proc.stderr + proc.stdout)
    return set() if not m or m.group(1) == "none" else {s.strip() for s in m.group(1).split(",")}


@pytest.mark.mpi
def test_local_pipeline_writes_every_figure(local_run):
    work, proc = local_run["work"], local_run["proc"]
    print(f"local .test pipeline: {local_run['seconds']:.0f} s")
    out = proc.stdout + proc.stderr
    assert "disabled families" in out or "enabled families" in out
    # each MPI job ran its ranks under mpiexec, the count from the rule's resources
    assert re.search(r"mpiexec -n 2 python -m spinvalve.usage \S+ -- "
                     r"spinvalve simulate --config results/jobs/closed/", out)
    # sizing data of the ranks themselves (spinvalve.usage): one line per rank
    from spinvalve.usage import read_usage
    rows = read_usage(work / "results/benchmarks/ranks/closed/spins_per_layer~2.tsv")
    assert sorted(r["rank"] for r in rows) == [0, 1] and {r["size"] for r in rows} == {2}
    assert all(r["exit_code"] == 0 and r["max_rss_mb"] > 50 and r["cpu_s"] > 0 for r in rows)
    for fig in FIGURES:
        for ext in ("nc", "png", "pdf"):
            path = work / "results" / "figures" / f"{fig}.{ext}"
            assert path.stat().st_size > 0, path
        with xr.open_dataset(work / "results" / "figures" / f"{fig}.nc") as ds:
            assert ds.attrs["figure"] == fig and ds.attrs["git_revision"]
            assert "settings" in ds.attrs and "spinvalve_version" in ds.attrs
            for name, var in ds.variables.items():
                assert "long_name" in var.attrs, (fig, name)
                assert "units" in var.attrs or var.dtype.kind in "OSU", (fig, name)
    with xr.open_dataset(work / "results" / "figures" / "fig4.nc") as ds:
        assert list(ds["n_spins"].values) == [2, 4]
        assert {str(c) for c in ds["source_config"].values} != {""}
    with xr.open_dataset(work / "results/jobs/closed/spins_per_layer~2.nc") as job:
        assert int(job.attrs["mpi_ranks"]) == 2
    if "bath" in enabled_families(proc):  # two trajectory batches summed into one curve + band
        with xr.open_dataset(work / "results" / "figures" / "fig3.nc") as ds:
            assert {"log_negativity_bath", "log_negativity_bath_lower",
                    "log_negativity_bath_upper"} <= set(ds.data_vars)
            assert ds["log_negativity_bath"].dims == ("bath_temperature", "time_bath")
        with xr.open_dataset(work / "results" / "figures" / "fig_trajectory_count.nc") as ds:
            assert ds["log_negativity"].dims == ("n_trajectories", "time")
            assert ds["n_trajectories"].values[-1] == 4        # 2 batches x 2 trajectories
        with xr.open_dataset(work / "results" / "figures" / "fig_bath_lifetime.nc") as ds:
            assert ds["lifetime"].dims == ("n_spins", "bath_temperature")
    assert not list((work / "results").rglob("*.tmp")) and not list((work / "results").rglob(".*.nc*"))


@pytest.mark.mpi
def test_report_has_every_figure_and_its_parameters(local_run):
    work = local_run["work"]
    snakemake(work, local_run["config"], "--report", "report.html", timeout=300)
    html = (work / "report.html").read_text()
    for fig in FIGURES:
        assert f"{fig}.png" in html
    assert "Jobs shown: closed/spins_per_layer~2" in html
    assert "reference_spins_per_layer" in html


@pytest.mark.mpi
def test_unchanged_second_run_does_nothing(local_run):
    proc = snakemake(local_run["work"], local_run["config"], "--cores", "2")
    assert "Nothing to be done" in proc.stdout + proc.stderr
    assert planned(proc) == set()


POINT = "spins_per_layer~2/T_bb~100/Gamma~0.00012/omega_max~0.01"   # the .test bath point


@pytest.mark.mpi
def test_one_sweep_value_reruns_exactly_its_jobs(local_run):
    work = local_run["work"]
    cfg = edited_config(work, "more_spins.yaml",
                        lambda c: c["closed"].update(spins_per_layer=[1, 2, 3]))
    assert planned(snakemake(work, cfg, "-n")) == {
        ("job_config", "results/jobs/closed/spins_per_layer~3.yaml"),
        ("simulate", "results/jobs/closed/spins_per_layer~3.nc"),
        ("aggregate_figure", "results/figures/fig4.nc"),   # Fig. 4 shows every N
        ("plot_fig4", "results/figures/fig4.png"),
    }
    if "gibbs" in enabled_families(local_run["proc"]):
        cfg = edited_config(work, "gibbs_t.yaml",
                            lambda c: c["gibbs"].update(temperatures=[100, 200]))
        assert planned(snakemake(work, cfg, "-n")) == {
            ("job_config", "results/jobs/gibbs/spins_per_layer~2/T_gibbs~200.yaml"),
            ("simulate", "results/jobs/gibbs/spins_per_layer~2/T_gibbs~200.nc"),
            ("aggregate_figure", "results/figures/fig_gibbs.nc"),
            ("plot_fig_gibbs", "results/figures/fig_gibbs.png"),
        }
    if "bath" in enabled_families(local_run["proc"]):  # one more trajectory batch
        cfg = edited_config(work, "batch.yaml", lambda c: c["bath"].update(batches=[0, 1, 2]))
        assert planned(snakemake(work, cfg, "-n")) == {
            ("job_config", f"results/jobs/bath/{POINT}/batch~2.yaml"),
            ("simulate", f"results/jobs/bath/{POINT}/batch~2.nc"),
            ("merge_bath_batches", f"results/merged/bath/{POINT}.nc"),
            ("aggregate_figure", "results/figures/fig3.nc"),
            ("plot_fig3", "results/figures/fig3.png"),
            ("aggregate_figure", "results/figures/fig_bath_lifetime.nc"),
            ("plot_fig_bath_lifetime", "results/figures/fig_bath_lifetime.png"),
            ("aggregate_figure", "results/figures/fig_trajectory_count.nc"),
            ("plot_fig_trajectory_count", "results/figures/fig_trajectory_count.png"),
            ("aggregate_figure", "results/figures/fig_bath_coupling.nc"),
            ("plot_fig_bath_coupling", "results/figures/fig_bath_coupling.png"),
        }
        # a second bath coupling: its batches, their merge and the coupling figure only
        cfg = edited_config(work, "coupling.yaml",
                            lambda c: c["bath"].update(couplings=[1.2e-4, 3e-4]))
        other = "spins_per_layer~2/T_bb~100/Gamma~0.0003/omega_max~0.01"
        assert planned(snakemake(work, cfg, "-n")) == {
            *{(rule, f"results/jobs/bath/{other}/batch~{b}.{ext}")
              for b in (0, 1) for rule, ext in (("job_config", "yaml"), ("simulate", "nc"))},
            ("merge_bath_batches", f"results/merged/bath/{other}.nc"),
            ("aggregate_figure", "results/figures/fig_bath_coupling.nc"),
            ("plot_fig_bath_coupling", "results/figures/fig_bath_coupling.png"),
        }


@pytest.mark.mpi
def test_parallel_settings_reach_the_job_and_rerun_nothing(local_run):
    """<family>.parallel goes to the job's command line, not into its job file: the job ran
    with it, and changing it plans no job."""
    work = local_run["work"]
    if "gibbs" not in enabled_families(local_run["proc"]):
        pytest.skip("gibbs disabled in .test/config.yaml")
    point = "results/jobs/gibbs/spins_per_layer~2/T_gibbs~100"
    assert "parallel" not in yaml.safe_load((work / f"{point}.yaml").read_text())
    with xr.open_dataset(work / f"{point}.nc") as ds:
        assert ds.attrs["groups"] == 2       # a member per rank on the 2 ranks
    cfg = edited_config(work, "parallel.yaml", lambda c: c["gibbs"].update(
        parallel={"ranks_per_member": 0, "overlap_limit_gb": 0.5}))
    assert planned(snakemake(work, cfg, "-n")) == set()


@pytest.mark.mpi
def test_plot_option_reruns_plots_only_and_job_change_reruns_its_jobs(local_run):
    work = local_run["work"]
    cfg = edited_config(work, "units.yaml", lambda c: c["plot"].update(time_unit="hbar_over_gamma"))
    jobs = planned(snakemake(work, cfg, "-n"))
    assert jobs == {(f"plot_{f}", f"results/figures/{f}.png") for f in FIGURES}
    cfg = edited_config(work, "closed_job.yaml",
                        lambda c: c["closed"].update(job={"time": {"t_end": 4.0}}))
    jobs = planned(snakemake(work, cfg, "-n"))
    sims = {o for r, o in jobs if r == "simulate"}
    assert sims == {"results/jobs/closed/spins_per_layer~1.nc",
                    "results/jobs/closed/spins_per_layer~2.nc"}
    assert not [o for r, o in jobs if "gibbs/" in o or "bath/" in o or "multi_electron/" in o]


@pytest.mark.mpi
def test_killed_job_leaves_nothing_snakemake_takes_as_complete(tmp_path):
    def edit(c):
        # 5+5 for 300 fs (on leads of about 450 sites): minutes; first progress line after 10 s
        c["job"]["time"]["t_end"] = 300.0
        c["closed"]["spins_per_layer"] = [5]
        c["figures"].update(fig7_spins_per_layer=[5], reference_spins_per_layer=5)
        for fam in ("gibbs", "bath", "multi_electron", "boundary"):
            c[fam]["enabled"] = False
    cfg = edited_config(tmp_path, "long.yaml", edit)
    target = "results/jobs/closed/spins_per_layer~5.nc"
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory",
           str(tmp_path), "--configfile", str(cfg), "--profile", str(LOCAL), "--cores", "2",
           target]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=_env(), cwd=tmp_path, start_new_session=True)
    log = tmp_path / "results/logs/jobs/closed/spins_per_layer~5.log"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "spinvalve: t =" not in (
                log.read_text() if log.exists() else ""):
            time.sleep(0.5)
        assert "spinvalve: t =" in log.read_text(), "the job never started propagating"
        assert proc.poll() is None, "the job finished before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    time.sleep(1)
    assert not (tmp_path / target).exists()
    rerun = planned(snakemake(tmp_path, cfg, "-n", target))
    assert ("simulate", target) in rerun


def test_exponent_numbers_in_the_workflow_config(tmp_path):
    """`couplings: [1.2e-4, 3e-4]` (strings to Snakemake's YAML 1.1 loader) are numbers."""
    cfg = edited_config(tmp_path, "exp.yaml", lambda c: c["bath"].update(couplings=[0.5, 0.25]))
    cfg.write_text(re.sub(r"couplings:\n(\s*- 0.5\n\s*- 0.25\n)", "couplings: [1.2e-4, 3e-4]\n",
                          cfg.read_text()))
    assert "couplings: [1.2e-4, 3e-4]" in cfg.read_text()
    jobs = {path for rule, path in planned(snakemake(tmp_path, cfg, "-n")) if rule == "simulate"}
    for gamma in ("0.00012", "0.0003"):
        assert any(f"/Gamma~{gamma}/" in p for p in jobs), sorted(jobs)


@pytest.mark.parametrize("edit, key", [
    (lambda c: c["job"]["chain"].update(colour="red"), "job.chain.colour"),
    (lambda c: c["closed"]["resources"].update(ranks="two"), "closed.resources.ranks"),
    (lambda c: c["gibbs"].update(enabled=True, temperatures=[-10]), "gibbs.temperatures[0]"),
    (lambda c: c["closed"].update(spins_per_layer=[2, 9]), "closed.spins_per_layer"),
    (lambda c: c["gibbs"].update(job={"parallel": {"ranks_per_member": 1}}), "gibbs.job.parallel"),
    (lambda c: c["gibbs"].update(parallel={"ranks_per_member": -1}), "gibbs.parallel.ranks_per_member"),
    (lambda c: c["bath"].update(job={"numerics": {"integrator": "krylov"}}), "numerics.integrator"),
])
def test_bad_config_stops_before_any_job(tmp_path, edit, key):
    cfg = edited_config(tmp_path, "bad.yaml", edit)
    proc = snakemake(tmp_path, cfg, "--cores", "2", check=False, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "invalid workflow config" in out and key in out, out[-2000:]
    assert not (tmp_path / "results").exists()
    assert not re.search(r"^(local)?rule \w+:", out, re.M)


# ---------------------------------------------------------------------------
# SLURM: the same pipeline through workflow/profiles/slurm on the test cluster
# ---------------------------------------------------------------------------

@pytest.mark.slurm
@pytest.mark.mpi
def test_slurm_pipeline(slurm_cluster, tmp_path):
    cfg = tmp_path / "config.yaml"
    shutil.copy(TEST_CONFIG, cfg)
    # the project's workflow profile (no site settings) + a user's site profile (partition,
    # status command of a cluster without accounting)
    site = slurm_cluster.site_profile(tmp_path / "site-profile")
    proc = snakemake(tmp_path, cfg, "--slurm-keep-successful-logs", profile=SLURM, site=site,
                     timeout=900)
    out = proc.stdout + proc.stderr
    assert re.search(r"submitted with SLURM jobid \d+ \(log: \S*rule_simulate", out), out[-3000:]
    # bands merging runs as a cluster job too
    assert re.search(r"submitted with SLURM jobid \d+ \(log: \S*rule_merge_bath_batches", out)
    # the 2-rank MPI jobs are started by srun inside their allocation, each rank measured
    job_logs = "".join(p.read_text() for p in
                       (tmp_path / ".snakemake" / "slurm_logs" / "rule_simulate").rglob("*.log"))
    assert re.search(r"srun -n 2 python -m spinvalve.usage \S+ -- "
                     r"spinvalve simulate --config results/jobs/closed/", job_logs)
    from spinvalve.usage import read_usage
    rows = read_usage(tmp_path / "results/benchmarks/ranks/closed/spins_per_layer~2.tsv")
    assert sorted(r["rank"] for r in rows) == [0, 1] and {r["size"] for r in rows} == {2}
    for n in (1, 2):
        with xr.open_dataset(tmp_path / f"results/jobs/closed/spins_per_layer~{n}.nc") as job:
            assert int(job.attrs["mpi_ranks"]) == 2
    for fig in FIGURES:
        for ext in ("nc", "png", "pdf"):
            assert (tmp_path / "results" / "figures" / f"{fig}.{ext}").stat().st_size > 0
    again = snakemake(tmp_path, cfg, "-n", profile=SLURM, site=site, timeout=300)
    assert planned(again) == set()
