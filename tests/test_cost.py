"""spinvalve.cost (the cost model), the workflow's requests from it, spinvalve.usage."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from spinvalve import cost
from spinvalve.config import load_config
from spinvalve.pipeline import cluster, sweeps
from spinvalve.usage import read_usage

REPO = Path(__file__).resolve().parents[1]


def cfg(n=2, t_end=10.0, **extra):
    m = {"chain": {"leads": "auto"}, "layers": {"n_p": n, "n_a": n},
         "time": {"t_end": t_end, "dt_out": 0.5}}
    m.update(extra)
    return load_config(m)


def test_constants_file_is_complete_and_names_its_machine():
    c = cost.load_constants()
    assert set(cost.CONSTANT_KEYS) <= set(c)
    assert c["machine"].get("host") and c["machine"].get("date")
    assert all(c[k] > 0 for k in ("amp_term_s", "eigvals_s", "eigh_s", "startup_s", "base_mb"))


def test_propagation_scales_with_time_ranks_and_sector():
    a, b = cost.predict(cfg(3, 10.0)), cost.predict(cfg(3, 20.0))
    # twice the window: twice the steps; the leads grow too (longer chain per step)
    assert 2.0 <= b.propagation_s / a.propagation_s <= 2.0 * b.amplitudes / a.amplitudes + 1e-9
    two = cost.predict(cfg(3, 10.0), ranks=2)
    assert two.propagation_s < a.propagation_s
    # T = 0: two members; the 10+10 sector of the paper: 201 x (C(20,10) + C(20,11))
    assert a.members == 2
    paper = cost.predict(load_config({"layers": {"n_p": 10, "n_a": 10}}))
    assert paper.amplitudes == 201 * (184756 + 167960)
    assert paper.mem_mb > 4 * 1130  # members + work vectors of 1.13 GB each


def test_measurement_dominates_large_layers_and_threads_help():
    small, big = cost.predict(cfg(2)), cost.predict(cfg(7))
    assert big.measurement_dominates
    # observables grow faster with N than the propagation (benchmarks/README.md, series N)
    assert (big.measurement_s / big.propagation_s) > 3 * (small.measurement_s / small.propagation_s)
    assert big.largest_block == 3432                     # C(14, 7): q = 0 block of rho^{T_a}
    assert cost.predict(cfg(7), threads=4).measurement_s < big.measurement_s


def test_gibbs_members_and_bath_trajectories():
    g = cost.predict(cfg(2, temperature={"gibbs": 300.0}))
    assert g.members > 2
    b1 = cost.predict(cfg(2, bath={"temperature": 100.0}, trajectories={"count": 2}))
    b2 = cost.predict(cfg(2, bath={"temperature": 100.0}, trajectories={"count": 4}))
    assert b2.propagation_s == pytest.approx(2 * b1.propagation_s)
    m = cost.predict_merge(cfg(2, bath={"temperature": 100.0}), 2)
    assert m.wall_s > m.startup_s and m.mem_mb > 0


def test_tdmrg_cost_grows_with_chi_and_steps():
    def me(chi, t_end):
        return load_config({"chain": {"n_sites": 24}, "layers": {"n_p": 2, "n_a": 2,
                            "fm_p_start": 10, "spacer": 2}, "pulse": {"x0": 2.0},
                            "time": {"t_end": t_end, "dt_out": 0.6582119569},
                            "multi_electron": {"n_conf": 8, "chi_start": 16, "chi_max": chi}})
    a, b, c = (cost.predict(me(32, 1.3164239138)), cost.predict(me(64, 1.3164239138)),
               cost.predict(me(32, 2.6328478276)))
    assert b.propagation_s > a.propagation_s and c.propagation_s > a.propagation_s
    assert b.mem_mb > a.mem_mb


def test_request_grows_with_attempt():
    p = cost.predict(cfg(7))
    r1, r2 = cost.request(p, attempt=1), cost.request(p, attempt=2)
    assert r2["runtime"] >= 2 * r1["runtime"] - 1 and r2["mem_mb"] > r1["mem_mb"]
    assert r1["runtime"] * 60 >= 2.0 * p.wall_s


def quick():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_user_resources_win_and_grow_with_attempt():
    c = quick()
    job = sweeps.all_jobs(c)[("closed", "spins_per_layer~4")]
    model = cluster.resources(c, "closed", job)
    c["closed"]["resources"] = {"ranks": 2, "runtime": 77, "mem_mb": 3000}
    user1 = cluster.resources(c, "closed", job, attempt=1)
    user2 = cluster.resources(c, "closed", job, attempt=2)
    assert (user1["runtime"], user1["mem_mb"]) == (77, 3000)
    assert (user2["runtime"], user2["mem_mb"]) == (154, 4500)
    assert model["runtime"] != 77 and model["ranks"] == 2


def test_measuring_rank_gets_blas_threads_where_measurement_dominates():
    c = quick()
    c["closed"]["spins_per_layer"] = [2, 7]
    c["figures"]["fig7_spins_per_layer"] = [2, 7]
    c["sizing"] = {"measure_threads": 4}
    js = sweeps.all_jobs(c)
    assert cluster.resources(c, "closed", js[("closed", "spins_per_layer~7")])["threads"] == 4
    assert cluster.resources(c, "closed", js[("closed", "spins_per_layer~2")])["threads"] == 1
    c["closed"]["resources"]["threads"] = 2          # the user's choice wins
    assert cluster.resources(c, "closed", js[("closed", "spins_per_layer~7")])["threads"] == 2


def test_tdmrg_jobs_get_a_longer_warning_lead_and_a_runtime_above_it():
    """tDMRG checkpoints only after whole output intervals: a 15-minute lead, and every runtime
    request at least 5 minutes above its family's lead."""
    c = quick()
    js = sweeps.all_jobs(c)
    assert cluster.warning_lead("multi_electron") == 900 and cluster.warning_lead("closed") == 300
    for (fam, _), job in js.items():
        assert cluster.resources(c, fam, job)["runtime"] * 60 >= cluster.warning_lead(fam) + 300
    # the smallest request follows the lead, whatever sizing.min_runtime says
    small = {"sizing": {"min_runtime": 6}}
    assert cluster._min_runtime(small, "multi_electron") == 20
    assert cluster._min_runtime(small, "closed") == 10


def test_site_settings_per_family():
    c = quick()
    assert cluster.site_keys(c) == set() and cluster.sbatch_flags(c, "closed") == ""
    c["cluster"] = {"partition": "short", "account": "p1"}
    c["multi_electron"]["cluster"] = {"partition": "long", "qos": "big", "extra": "-C avx512"}
    assert cluster.site_keys(c) == {"partition", "account", "qos", "extra"}
    assert cluster.site_settings(c, "closed") == {"partition": "short", "account": "p1"}
    assert cluster.site_settings(c, "multi_electron")["partition"] == "long"
    assert cluster.sbatch_flags(c, "multi_electron") == (
        "--partition=long --account=p1 --qos=big -C avx512")
    # jobs that checkpoint on the warning signal ask for it, on both executors' routes
    assert cluster.sbatch_flags(c, "multi_electron", signal=True) == (
        "--partition=long --account=p1 --qos=big --signal=USR1@900 -C avx512")
    assert cluster.slurm_extra(c, "multi_electron", signal=True) == "--signal=USR1@900 -C avx512"
    assert cluster.slurm_extra(c, "closed", signal=True) == "--signal=USR1@300"
    assert cluster.slurm_extra(c, "closed") == "" and cluster.sbatch_flags(c, "closed") == "--partition=short --account=p1"


def test_plan_lists_every_job_and_merge():
    c = quick()
    js = sweeps.all_jobs(c)
    rows = cluster.plan(c, js)
    assert len(rows) == len(js) + len(sweeps.bath_groups(js))
    text = cluster.plan_text(rows)
    assert text.splitlines()[0].split("\t") == list(cluster.PLAN_COLUMNS)
    total = sum(r["core_hours"] for r in rows)
    assert f"{total:.3g} core-hours predicted" in cluster.plan_summary(rows)


def test_plan_cli_prints_the_plan(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "spinvalve.pipeline.plan", str(REPO / ".test/config.yaml"),
                           "--output", str(tmp_path / "plan.tsv")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "spinvalve plan:" in proc.stderr
    assert (tmp_path / "plan.tsv").read_text() == proc.stdout
    assert "closed/spins_per_layer~1\t" in proc.stdout


def test_usage_records_the_child_and_keeps_its_exit_code(tmp_path):
    tsv = tmp_path / "u.tsv"
    child = "import numpy as np, sys; a = np.ones(40_000_000); a += 1; sys.exit(3)"  # 320 MB
    proc = subprocess.run([sys.executable, "-m", "spinvalve.usage", str(tsv), "--",
                           sys.executable, "-c", child], timeout=120)
    assert proc.returncode == 3
    (row,) = read_usage(tsv)
    assert row["exit_code"] == 3 and row["max_rss_mb"] > 300 and row["cpu_s"] > 0


def test_usage_forwards_the_warning_signal(tmp_path):
    tsv = tmp_path / "u.tsv"
    child = ("import signal, sys, time\n"
             "signal.signal(signal.SIGUSR1, lambda *a: sys.exit(75))\n"
             "print('ready', flush=True)\n"
             "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-m", "spinvalve.usage", str(tsv), "--",
                             sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    t0 = time.monotonic()
    proc.send_signal(signal.SIGUSR1)
    assert proc.wait(timeout=30) == 75 and time.monotonic() - t0 < 30
    assert read_usage(tsv)[0]["exit_code"] == 75
