"""Calibrate the cost model (spinvalve.cost) on this machine; a few minutes.

    python benchmarks/cost_calibration.py            # measure, print the constants
    python benchmarks/cost_calibration.py --write    # ... and write src/spinvalve/cost_constants.yaml
    python benchmarks/cost_calibration.py --write --output site.yaml   # for another machine:
        # SPINVALVE_COST_CONSTANTS=site.yaml snakemake ...

Run it on a compute node of the target cluster (one core, the machine otherwise
idle if possible). All constants are CPU times (the phases' wall times scaled
by the process's CPU / wall ratio), so they predict the wall time on a
dedicated core; a loaded machine still slows the caches and memory. Every measurement is a real `spinvalve simulate` job (one
rank, one BLAS thread, started through `python -m spinvalve.usage`, which
records the process's wall and CPU time and peak memory), or a timed LAPACK
call for the dense-algebra speeds:

* eigvals_s + eigvals2_s, eigh_s + eigh2_s: CPU seconds per n^3 and per n^2 of
  LAPACK eigenvalues (two-stage where available, as the negativity uses it) and of
  numpy's eigh, fitted through n = 1500 (eigh: 800) and n = 250 (the size of the
  blocks of 4+4 to 6+6); gemm_s per complex multiply-add of a Gram product; thread_efficiency from the
  eigenvalues on 2 threads (wall time: meaningful on an idle node only);
* term_s, amp_term_s: seconds per Chebyshev term and per amplitude and term,
  fitted to the `propagation_seconds` of a 3+3 and a 5+5 closed job over
  0-12 fs (the packet crosses both layers, so the state fills its sector);
  cache_state_mb: the 5+5 state's size (in the caches);
* amp_term_mem_s, mem_state_mb: amp_term_s times the per-amplitude time of one
  Chebyshev term on a dense 9+9 state (290 MB, 4 vectors: far beyond a 32 MB
  last-level cache) over that of a dense 5+5 state, both timed interleaved in one
  process (benchmarks/_term_bench.py);
* pt_elem_s: a 6+6 closed job before the electron reaches FM_a (0-1.5 fs): its
  measurement per output time above the rest of the model, per element of the
  rho_FM blocks (the negativity's fast path gathers rho^{T_a} from them);
* startup_s, output_s, base_mb: a 2+2 closed job (process time minus
  propagation and the modelled block work; its peak memory minus its states);
* bath_factor, bath_setup_s: the trajectory phase of 2+2 bath jobs of 3 and 9
  trajectories: the difference over the closed-system propagation model of the 6
  trajectories more, and the phase's fixed set-up (jump operators, first calls);
* bands_eig_per_replicate: the merge of two bath batches (bootstrap bands);
* tdmrg_step_s, tdmrg_s, tdmrg_output_s, tdmrg_ground_sweeps,
  tdmrg_mb_per_site_chi2: one tDMRG run (the quick chain, N_e = 4, chi 16 -> 64)
  timed interval by interval (benchmarks/_tdmrg_bench.py): least squares of
  the intervals against per-site-step + chi^3 terms at the bond dimension
  reached (22 ... 64: many chi values), the measurements, and the ground state
  plus the engine's set-up.

rank_efficiency (0.9) is not measured here: benchmarks/README.md, case 4
(92-98% at 2 ranks).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from spinvalve import cost  # noqa: E402
from spinvalve.config import load_config  # noqa: E402
from spinvalve.usage import read_usage  # noqa: E402


def env(threads: int = 1) -> dict:
    e = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "SPINVALVE_THREADS"):
        e[k] = str(threads)
    e["PATH"] = str(Path(sys.executable).parent) + os.pathsep + e.get("PATH", "")
    e.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    e.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    return e


def timed_lapack(threads: int, n: int, what: str, repeat: int = 2) -> float:
    """Best CPU seconds (wall with threads > 1) of one LAPACK call on an n x n matrix."""
    code = f"""
import time, numpy as np
from spinvalve import lapack
rng = np.random.default_rng(1)
n = {n}
a = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n)); a = a + a.conj().T
best = 1e9
clock = time.process_time if {threads} == 1 else time.perf_counter
for _ in range({repeat}):
    b = a.copy(); t = clock()
    if "{what}" == "eigvals":
        lapack.eigvalsh(b, overwrite=True, min_two_stage=700)
    elif "{what}" == "eigh":
        np.linalg.eigh(b)
    else:
        f = rng.standard_normal((n, n // 2)) + 0j; t = clock(); f @ f.conj().T
    best = min(best, clock() - t)
print(best)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**env(threads), "PYTHONPATH": str(ROOT / "src")}, check=True)
    return float(out.stdout.split()[-1])


def run_job(tmp: Path, name: str, mapping: dict) -> tuple[dict, dict]:
    """One `spinvalve simulate` job: (its output attributes, its usage row). The phase times
    of the attributes (wall clock) are scaled to CPU time by the process's CPU / wall ratio,
    so that a loaded machine does not inflate the constants (``cpu_ratio``)."""
    import xarray as xr
    cfg_path, out, usage = tmp / f"{name}.yaml", tmp / f"{name}.nc", tmp / f"{name}.usage.tsv"
    cfg_path.write_text(yaml.safe_dump(mapping))
    usage.unlink(missing_ok=True)
    proc = subprocess.run([sys.executable, "-m", "spinvalve.usage", str(usage), "--",
                           "spinvalve", "simulate", "--config", str(cfg_path), "--output",
                           str(out)], capture_output=True, text=True, env=env(1))
    if proc.returncode != 0:
        raise RuntimeError(f"{name}: {proc.stderr[-2000:]}")
    with xr.open_dataset(out) as ds:
        attrs = dict(ds.attrs)
    use = read_usage(usage)[-1]
    ratio = min(1.0, use["cpu_s"] / max(use["wall_s"], 1e-9))
    for k in ("propagation_seconds", "observables_seconds", "trajectory_seconds_rank0"):
        if k in attrs:
            attrs[k] = float(attrs[k]) * ratio
    attrs["cpu_ratio"] = ratio
    return attrs, use


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="write the constants file")
    ap.add_argument("--output", default=str(cost.CONSTANTS_FILE))
    ap.add_argument("--propagation-only", action="store_true",
                    help="re-measure term_s and amp_term_s only, keep the file's other constants")
    args = ap.parse_args()
    c: dict = {"rank_efficiency": 0.9}
    if args.propagation_only:
        old = yaml.safe_load(Path(args.output).read_text())
        c = dict(old["constants"])
    t_all = time.monotonic()

    # dense algebra ------------------------------------------------------------------
    n = 1500
    if args.propagation_only:
        return _propagation_only(args, c, old)
    t1 = timed_lapack(1, n, "eigvals")
    # 2 threads: wall time against the 1-thread wall time (only meaningful on a quiet node)
    t2 = timed_lapack(2, n, "eigvals")
    c["thread_efficiency"] = float(min(1.0, max(0.1, t1 / t2 - 1.0)))
    # n^3 + n^2 from two sizes: the large one (flops) and one of the blocks' typical size
    small = 250
    c["eigvals_s"], c["eigvals2_s"] = _fit_n3_n2(n, t1, small,
                                                 timed_lapack(1, small, "eigvals", repeat=5))
    c["eigh_s"], c["eigh2_s"] = _fit_n3_n2(800, timed_lapack(1, 800, "eigh"), small,
                                           timed_lapack(1, small, "eigh", repeat=5))
    c["gemm_s"] = timed_lapack(1, 1200, "gemm") / (1200 * 1200 * 600)
    print(f"eigvals {c['eigvals_s']:.3g} s/n^3 + {c['eigvals2_s']:.3g} s/n^2, eigh "
          f"{c['eigh_s']:.3g} + {c['eigh2_s']:.3g}, gemm {c['gemm_s']:.3g}, "
          f"2-thread efficiency {c['thread_efficiency']:.2f}", file=sys.stderr)

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        base = {"chain": {"leads": "auto"}}
        _calibrate_propagation(tmp, base, c)
        # start-up, fixed work per output time, base memory ------------------------------------
        m = {**base, "layers": {"n_p": 2, "n_a": 2}, "time": {"t_end": 10.0, "dt_out": 0.25}}
        attrs, use = run_job(tmp, "small", m)
        cfg = load_config(m)
        probe = {**_dummy(), **c, "output_s": 0.0, "startup_s": 0.0, "base_mb": 0.0}
        p = cost.predict(cfg, constants=probe)
        obs = float(attrs["observables_seconds"])
        c["output_s"] = max(0.0, (obs - p.measurement_s) / (cfg.time.n_out + 1))
        c["startup_s"] = max(0.0, use["cpu_s"] - float(attrs["propagation_seconds"]) - obs)
        c["base_mb"] = max(50.0, use["max_rss_mb"] - p.mem_mb)
        print(f"start-up {c['startup_s']:.2f} s, {c['output_s'] * 1e3:.1f} ms per output time, "
              f"base {c['base_mb']:.0f} MB", file=sys.stderr)
        # negativity's gathered blocks: a 6+6 job before the onset (rho^{T_a}: 2.7 M elements)
        m6 = {**base, "layers": {"n_p": 6, "n_a": 6}, "time": {"t_end": 1.5, "dt_out": 0.5}}
        attrs6, _ = run_job(tmp, "pt6", m6)
        cfg6 = load_config(m6)
        rest = cost.measurement_per_output(cfg6, cost._members(cfg6), 1, {**c, "pt_elem_s": 0.0})[0]
        elements = _pt_elements(cfg6)
        per_out = float(attrs6["observables_seconds"]) / (cfg6.time.n_out + 1)
        c["pt_elem_s"] = max(0.0, (per_out - rest) / elements)
        print(f"6+6 measurement {per_out:.3f} s per output time, model without the gathered "
              f"blocks {rest:.3f} s: {c['pt_elem_s'] * 1e9:.1f} ns per element", file=sys.stderr)
        # bath trajectories and their merge ------------------------------------------------
        mb = {**base, "layers": {"n_p": 2, "n_a": 2}, "time": {"t_end": 10.0, "dt_out": 0.5},
              "bath": {"temperature": 100.0}}
        files = []
        for b in (0, 1):
            mbb = {**mb, "trajectories": {"count": 3, "first": 3 * b, "bands": False}}
            attrs, _ = run_job(tmp, f"bath{b}", mbb)
            files.append(tmp / f"bath{b}.nc")
        cfg = load_config(mbb)
        # the trajectory phase at 3 and at 9 trajectories: the difference gives the cost per
        # trajectory (bath_factor x the closed-system model), the rest the phase's set-up
        unit = {"bath_factor": 1.0, "startup_s": 0.0, "bath_setup_s": 0.0}
        p3 = cost.predict(cfg, constants={**c, **unit}).propagation_s
        t3 = float(attrs["trajectory_seconds_rank0"])
        m9 = {**mb, "trajectories": {"count": 9, "first": 6, "bands": False}}
        attrs9, _ = run_job(tmp, "bath9", m9)
        p9 = cost.predict(load_config(m9), constants={**c, **unit}).propagation_s
        t9 = float(attrs9["trajectory_seconds_rank0"])
        c["bath_factor"] = max(0.1, (t9 - t3) / (p9 - p3))
        c["bath_setup_s"] = max(0.0, t3 - c["bath_factor"] * p3)
        usage = tmp / "merge.usage.tsv"
        subprocess.run([sys.executable, "-m", "spinvalve.usage", str(usage), "--", "spinvalve",
                        "aggregate", "bath_batches", "--bath", *map(str, files), "--output",
                        str(tmp / "merged.nc")], check=True, capture_output=True, env=env(1))
        merge_cpu = read_usage(usage)[-1]["cpu_s"]
        from spinvalve.opensystem.bands import N_BOOTSTRAP, band_time_indices
        pm = cost.predict_merge(cfg, 2, constants={**c, "bands_eig_per_replicate": 1.0,
                                                  "base_mb": 0.0})
        D = 1 << cfg.layers.n_p + cfg.layers.n_a
        bands_unit = (N_BOOTSTRAP * len(band_time_indices(cfg.time.n_out + 1, 4))
                      * cost.dense_seconds("eigh", D, c))
        meas = pm.measurement_s - bands_unit  # the observables at every output time
        c["bands_eig_per_replicate"] = max(1.0, (merge_cpu - c["startup_s"] - meas) / bands_unit)
        print(f"bath factor {c['bath_factor']:.2f}, set-up {c['bath_setup_s']:.2f} s, bands {c['bands_eig_per_replicate']:.1f} "
              "eigen-decompositions per replicate", file=sys.stderr)
        _calibrate_tdmrg(tmp, c)

    data = {
        "machine": {"host": socket.gethostname(), "cpu": _cpu(), "cores": os.cpu_count(),
                    "python": platform.python_version(),
                    "date": datetime.date.today().isoformat(),
                    "load_average": round(os.getloadavg()[0], 2),
                    "seconds": round(time.monotonic() - t_all, 1)},
        "constants": {k: float(f"{v:.4g}") for k, v in sorted(c.items())},
    }
    return _emit(data, args)



def _pt_elements(cfg) -> int:
    """sum_K dim_K^2 over the charge blocks of rho_FM a T = 0 job holds (K, K +- 1)."""
    from math import comb
    N, K = cfg.layers.n_p + cfg.layers.n_a, cfg.layers.n_p
    return sum(comb(N, k) ** 2 for k in (K - 1, K, K + 1) if 0 <= k <= N)


def _fit_n3_n2(n1: int, t1: float, n2: int, t2: float) -> tuple[float, float]:
    """(c3, c2) of t(n) = c3 n^3 + c2 n^2 through two timings (both >= 0)."""
    c3 = (t1 / n1 ** 2 - t2 / n2 ** 2) / (n1 - n2)
    c3 = max(c3, 0.1 * t1 / n1 ** 3)
    c2 = max(0.0, (t2 - c3 * n2 ** 3) / n2 ** 2)
    return c3, c2


#: the tDMRG calibration job: the quick config's chain (L = 24, 2+2 spins, a well of 8
#: sites), N_e = 4, bond dimension from 16 to 64 (the quick jobs: 32 to 96), 0-3.9 fs
TDMRG_JOB = {"chain": {"n_sites": 24},
             "layers": {"n_p": 2, "n_a": 2, "fm_p_start": 10, "spacer": 2},
             "pulse": {"x0": 2.0},
             "multi_electron": {"n_electrons": 4, "n_conf": 8, "chi_start": 16, "chi_max": 64,
                                "trunc_cut": 1.0e-8},
             "time": {"t_end": 60 * 0.1 * 0.6582119569, "dt_out": 5 * 0.1 * 0.6582119569}}


def _calibrate_tdmrg(tmp: Path, c: dict) -> None:
    """tdmrg_step_s, tdmrg_s: least squares of the CPU time of every output interval (5
    steps) against the model's per-step terms at the bond dimension the run reached (it
    grows from 16 to 64: the chi values of the fit); tdmrg_output_s: the measurements;
    tdmrg_ground_sweeps: the ground state plus the engine's set-up (the first interval
    above the model) in steps at chi_start; memory per chi^2 from the peak RSS."""
    import json
    import numpy as np
    path = tmp / "tdmrg.yaml"
    path.write_text(yaml.safe_dump(TDMRG_JOB))
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "_tdmrg_bench.py"), str(path)],
                         capture_output=True, text=True, check=True,
                         env={**env(1), "PYTHONPATH": str(ROOT / "src")})
    r = json.loads(out.stdout.splitlines()[-1])
    cfg = load_config(TDMRG_JOB)
    caps = cost.bond_caps(cost.tdmrg_local_dims(cfg))
    n_sub = round(cfg.time.dt_out / (cfg.multi_electron.dt * cost.HBAR / cfg.chain.hopping))
    rows, prev = [], float(cfg.multi_electron.chi_start)
    for _, chi, sec in r["intervals"]:
        mid = 0.5 * (prev + chi)
        rows.append((n_sub * len(caps + [0]), n_sub * sum(x ** 3 for x in cost.chi_profile(mid, caps)),
                     sec))
        prev = chi
    A = np.array([[a, b] for a, b, _ in rows[1:]])
    y = np.array([s for _, _, s in rows[1:]])
    (a, b), *_ = np.linalg.lstsq(A, y, rcond=None)
    if b <= 0 or a <= 0:       # noisy: chi^3 not resolved; keep both terms positive
        b = max(b, 1e-12)
        a = max(1e-6, float(np.mean((y - b * A[:, 1]) / A[:, 0])))
    c["tdmrg_step_s"], c["tdmrg_s"] = float(a), float(b)
    c["tdmrg_output_s"] = r["measure_s"] / (r["n_out"] + 1)
    first = rows[0][2] - (a * rows[0][0] + b * rows[0][1])
    c["tdmrg_ground_sweeps"] = max(0.0, r["ground_s"] + first) / cost.tdmrg_step_seconds(
        cfg.multi_electron.chi_start, caps, c)
    chi_end = r["intervals"][-1][1]
    c["tdmrg_mb_per_site_chi2"] = max(1e-6, (r["rss_mb"] - r["rss0_mb"])
                                      / sum(x ** 2 for x in cost.chi_profile(chi_end, caps)))
    print(f"tDMRG {c['tdmrg_step_s'] * 1e3:.2f} ms per site-step + {c['tdmrg_s']:.3g} s per "
          f"chi^3-step (chi {rows and r['intervals'][0][1]}-{chi_end}), {c['tdmrg_output_s']:.3f} s "
          f"per output, ground state + set-up {c['tdmrg_ground_sweeps']:.1f} step-equivalents",
          file=sys.stderr)


def _calibrate_propagation(tmp: Path, base: dict, c: dict) -> None:
    """term_s and amp_term_s from closed runs at two state sizes (3+3, 5+5): through the
    layers (the first fs are cheap: zero rows of the unreached spin configurations are
    skipped), then the fill-in state of the rest of a run."""
    pts = []
    for n_s, t_end in ((3, 12.0), (5, 12.0)):
        m = {**base, "layers": {"n_p": n_s, "n_a": n_s}, "time": {"t_end": t_end, "dt_out": 0.5}}
        attrs, _ = run_job(tmp, f"prop{n_s}", m)
        cfg = load_config(m)
        # term_s = 1, amp_term_s = 0: propagation_s counts the member-terms
        p = cost.predict(cfg, constants={**_dummy(), **c, "term_s": 1.0, "amp_term_s": 0.0})
        per_term = float(attrs["propagation_seconds"]) / p.propagation_s
        pts.append((p.amplitudes, per_term))
        print(f"{n_s}+{n_s}: {per_term * 1e3:.3f} ms per Chebyshev term ({p.amplitudes} "
              f"amplitudes, {p.terms} terms per step)", file=sys.stderr)
    (a1, t1), (a2, t2) = pts
    c["amp_term_s"] = max(1e-12, (t2 - t1) / (a2 - a1))
    c["term_s"] = max(0.0, t1 - a1 * c["amp_term_s"])
    # out of the caches: one Chebyshev term on dense states of 5+5 (in cache, the point
    # above) and 9+9 (~300 MB per vector, 4 vectors: >= 8x a 32 MB last-level cache),
    # interleaved in one process; their per-amplitude ratio scales amp_term_s
    import json
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "_term_bench.py"), "5", "9"],
                         capture_output=True, text=True, check=True,
                         env={**env(1), "PYTHONPATH": str(ROOT / "src")})
    b = json.loads(out.stdout.splitlines()[-1])
    per = {k: v["term_s"] / v["amplitudes"] for k, v in b.items()}
    c["amp_term_mem_s"] = c["amp_term_s"] * max(1.0, per["9"] / per["5"])
    c["cache_state_mb"] = a2 * 16 / 2 ** 20
    c["mem_state_mb"] = b["9"]["amplitudes"] * 16 / 2 ** 20
    print(f"dense term per amplitude: 5+5 {per['5'] * 1e9:.1f} ns, 9+9 {per['9'] * 1e9:.1f} ns "
          f"({c['mem_state_mb']:.0f} MB state): amp_term_mem_s {c['amp_term_mem_s']:.3g}",
          file=sys.stderr)


def _propagation_only(args, c: dict, old: dict) -> int:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        base = {"chain": {"leads": "auto"}}
        _calibrate_propagation(tmp, base, c)
    # bath_factor was measured against the old propagation constants: keep its measurement
    bath = load_config({"chain": {"leads": "auto"}, "layers": {"n_p": 2, "n_a": 2},
                        "time": {"t_end": 10.0, "dt_out": 0.5}, "bath": {"temperature": 100.0},
                        "trajectories": {"count": 3}})
    unit = {"bath_factor": 1.0, "startup_s": 0.0}
    before = cost.predict(bath, constants={**old["constants"], **unit}).propagation_s
    after = cost.predict(bath, constants={**c, **unit}).propagation_s
    c["bath_factor"] = old["constants"]["bath_factor"] * before / after
    old["constants"] = {k: float(f"{v:.4g}") for k, v in sorted(c.items())}
    old["machine"]["propagation_date"] = datetime.date.today().isoformat()
    return _emit(old, args)


def _emit(data: dict, args) -> int:
    """Print the constants file; write it to ``args.output`` with ``--write``."""
    text = ("# Cost-model constants (spinvalve.cost), written by benchmarks/cost_calibration.py.\n"
            "# Recalibrate on the target machine: python benchmarks/cost_calibration.py --write\n"
            + yaml.safe_dump(data, sort_keys=False))
    print(text)
    if args.write:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _dummy() -> dict:
    """Constants that make the model count work units (1 s per unit, nothing else)."""
    return {k: 0.0 for k in cost.CONSTANT_KEYS} | {
        "term_s": 1.0, "thread_efficiency": 1.0, "rank_efficiency": 1.0, "bath_factor": 1.0,
        "bands_eig_per_replicate": 1.0}


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
