"""spinvalve.cost (the cost model), the workflow's requests from it, spinvalve.usage."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
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
    # observables grow faster with N than the propagation (benchmarks/README.md, series N);
    # how much faster depends on the machine's constants (the fixed cost per term above all)
    assert (big.measurement_s / big.propagation_s) > 1.5 * (small.measurement_s / small.propagation_s)
    assert big.largest_block == 3432                     # C(14, 7): q = 0 block of rho^{T_a}
    assert cost.predict(cfg(7), threads=4).measurement_s < big.measurement_s


def test_gibbs_members_and_bath_trajectories():
    g = cost.predict(cfg(2, temperature={"gibbs": 300.0}))
    assert g.members > 2
    b1 = cost.predict(cfg(2, bath={"temperature": 100.0}, trajectories={"count": 2}))
    b2 = cost.predict(cfg(2, bath={"temperature": 100.0}, trajectories={"count": 4}))
    setup = cost.load_constants()["bath_setup_s"]       # once per rank, not per trajectory
    assert b2.propagation_s - setup == pytest.approx(2 * (b1.propagation_s - setup))
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


# the model's terms, on made-up constants (formulae, not this machine's speeds) ---------

def fake_constants(**over):
    c = {k: 1.0 for k in cost.CONSTANT_KEYS}
    c.update(amp_term_s=1e-8, amp_term_mem_s=3e-8, cache_state_mb=1.0, mem_state_mb=256.0,
             term_s=1e-5, tdmrg_s=1e-8, tdmrg_step_s=1e-2, tdmrg_output_s=0.1,
             tdmrg_ground_sweeps=10.0, tdmrg_mb_per_site_chi2=1e-4, eigh_s=1e-9, eigh2_s=1e-7,
             thread_efficiency=0.5, rank_efficiency=0.9)
    c.update(over)
    return c


def test_out_of_cache_interpolation_is_monotone_and_meets_both_calibration_points():
    c = fake_constants()
    amps = [int(x) for x in np.logspace(2, 9, 60)]
    a = [cost.amp_term_seconds(n, c) for n in amps]
    assert all(y >= x for x, y in zip(a, a[1:]))
    per_mb = 2 ** 20 / 16
    assert cost.amp_term_seconds(0.5 * per_mb, c) == c["amp_term_s"]        # in the caches
    assert cost.amp_term_seconds(1000 * per_mb, c) == c["amp_term_mem_s"]   # streamed
    # log-linear: the geometric middle of the two states' sizes costs the mean
    assert cost.amp_term_seconds(16 * per_mb, c) == pytest.approx(2e-8)
    # a noisy calibration whose big state came out faster never makes bigger states cheaper
    c2 = fake_constants(amp_term_mem_s=0.5e-8)
    assert cost.amp_term_seconds(1000 * per_mb, c2) == c2["amp_term_s"]
    assert cost.term_seconds(1e6, c) == pytest.approx(1e-5 + 1e6 * cost.amp_term_seconds(1e6, c))


def test_dense_seconds_is_cubic_plus_quadratic():
    c = fake_constants()
    assert cost.dense_seconds("eigh", 100, c) == pytest.approx(1e-9 * 1e6 + 1e-7 * 1e4)


def test_tdmrg_bond_caps_follow_the_local_dimensions():
    caps = cost.bond_caps([4] * 10)
    L = 10
    assert caps == [4 ** min(l, L - l) for l in range(1, L)]
    mixed = cost.bond_caps([4, 8, 4, 4])
    assert mixed == [4, 16, 4]          # bond 2: left 4 x 8 = 32, right 4 x 4 = 16
    prof = cost.chi_profile(50, caps)
    assert max(prof) == 50 and all(p <= min(50, cap) for p, cap in zip(prof, caps))
    assert prof[0] == 4 and prof[-1] == 4


def quick_tdmrg(**me):
    return load_config({"chain": {"n_sites": 24}, "layers": {"n_p": 2, "n_a": 2,
                        "fm_p_start": 10, "spacer": 2}, "pulse": {"x0": 2.0},
                        "time": {"t_end": 1.3164239138, "dt_out": 0.3291059785},
                        "multi_electron": {"n_conf": 8, "chi_start": 32, "chi_max": 96, **me}})


def test_tdmrg_cost_is_per_step_overhead_plus_chi_cubed_on_a_bounded_ramp():
    c = fake_constants()
    cfg = quick_tdmrg()
    p = cost.predict(cfg, constants=c)
    caps = cost.bond_caps(cost.tdmrg_local_dims(cfg))
    assert len(caps) == cfg.geometry.n_sites - 1
    steps = 20                                   # 1.316 fs / (0.1 hbar/gamma)
    ramp = [32 + 64 * (k + 0.5) / steps for k in range(steps)]
    expect = sum(c["tdmrg_step_s"] * 24 + c["tdmrg_s"] * sum(min(x, cap) ** 3 for cap in caps)
                 for x in ramp)
    ground = c["tdmrg_ground_sweeps"] * (c["tdmrg_step_s"] * 24 + c["tdmrg_s"] * sum(
        min(32, cap) ** 3 for cap in caps))
    assert p.propagation_s == pytest.approx(expect + ground)
    assert p.measurement_s == pytest.approx(c["tdmrg_output_s"] * (cfg.time.n_out + 1))
    # chi_max beyond what the entanglement allows anywhere costs nothing more
    top = max(caps)
    at_cap = cost.predict(quick_tdmrg(chi_start=top, chi_max=top), constants=c)
    beyond = cost.predict(quick_tdmrg(chi_start=top, chi_max=4 * top), constants=c)
    assert beyond.propagation_s == pytest.approx(at_cap.propagation_s)
    assert beyond.largest_block == top
    # and a larger chi_max below the bound costs more, chi^3 on the inner bonds only
    more = cost.predict(quick_tdmrg(chi_max=192), constants=c)
    assert p.propagation_s < more.propagation_s < p.propagation_s * 8


def test_measurement_terms_of_narrow_factors_and_the_gathered_blocks():
    """Per output time, gemm_s counts: the Gram product of every block (dim x r x min), and for
    a factor narrower than its block the eigenvectors (dim x r^2) and the dense block
    (dim^2 x r, below DENSE_LIMIT); pt_elem_s: every element of the dense blocks."""
    from math import comb
    from spinvalve.reduced import DENSE_LIMIT
    c = {k: 0.0 for k in cost.CONSTANT_KEYS} | {"gemm_s": 1.0, "thread_efficiency": 1.0}
    conf = cfg(6)
    members = cost._members(conf)
    L = conf.geometry.n_sites
    pre, post, _, _ = cost.measurement_per_output(conf, members, 1, c)
    want, elements = 0.0, 0
    for K, r in ((5, L), (6, 2 * L), (7, L)):          # T = 0: e up on K = 6, e down on 7
        dim = comb(12, K)
        m = min(dim, r)
        want += dim * r * m
        if r < dim:
            want += dim * r * m + (dim * dim * r if dim <= DENSE_LIMIT else 0)
        elements += dim * dim
    assert pre == pytest.approx(want)
    c2 = {**c, "gemm_s": 0.0, "pt_elem_s": 1.0}
    assert cost.measurement_per_output(conf, members, 1, c2)[0] == pytest.approx(elements)
    # 7+7: rho^{T_a} above the fast path's plan limit: no gathered blocks
    assert cost.measurement_per_output(cfg(7), cost._members(cfg(7)), 1, c2)[0] == 0.0
