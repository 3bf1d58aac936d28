"""Case 2: 10+10 spins, L = 201, T = 0, 0-100 fs every 0.5 fs (the QFI run of Fig. 7).

One member's sector holds 201 x C(21, 11) = 70.9 M amplitudes (1.13 GB). In one
process this script measures, interleaved and best of ``--repeat``:

* the machine's memory-stream rate: a STREAM-like copy of one state vector
  (reads and writes 2 x 1.13 GB) -- the time to stream the vectors of one H
  application (read psi, write H psi) once;
* one H application with the fused compiled kernel (``apply_fused``) and, with
  ``--numpy``, with the numpy/scipy reference path;
* one Chebyshev recursion term (``chebyshev_fused``: reads T_k, T_{k-1}, acc,
  writes T_{k-1}, acc);
* the first ``--steps`` output steps of the real run (engine propagator, from
  the initial state), with subnormal flushing on and off (``--ftz-compare``);

then builds the whole ``Engine`` (both electron-spin members), times one step
and one measurement, extrapolates the 200-step run at 1 and 2 MPI ranks (one
member per rank) and reports the peak resident memory. ``--full`` runs the
whole 100 fs instead (background job: about half an hour on 2 cores).

    python benchmarks/qfi_10p10.py [--repeat 3] [--steps 3] [--numpy] [--full]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import ROOT, record  # noqa: E402

CFG = {"layers": {"n_p": 10, "n_a": 10}, "time": {"t_end": 100.0, "dt_out": 0.5}}


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


class _Vec:
    """The one attribute of a PETSc Vec that the Chebyshev propagator uses."""

    def __init__(self, a: np.ndarray):
        self.array = a.reshape(-1)


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def kernel_figures(args) -> dict:
    from mpi4py import MPI
    from spinvalve import kernels
    from spinvalve.basis import Sector
    from spinvalve.config import load_config
    from spinvalve.ensemble import build_ensemble, packet
    from spinvalve.hamiltonian import HamiltonianShell, Model
    from spinvalve.propagate import make_propagator
    cfg = load_config(CFG)
    model = Model.from_config(cfg)
    t = time.perf_counter()
    member = build_ensemble(model, cfg).members[0]
    shell = HamiltonianShell(model, Sector(model.layers, member.sector(model.n_spins)), MPI.COMM_SELF)
    t_shell = time.perf_counter() - t
    shape = shell.local_shape
    n_amp = shape[0] * shape[1]
    print(f"10+10 sector: {shape[0]} spin configurations x {shape[1]} sites = {n_amp / 1e6:.1f} M "
          f"amplitudes ({n_amp * 16 / 1e9:.2f} GB); shell built in {t_shell:.1f} s", flush=True)
    rng = np.random.default_rng(0)
    cur = np.empty(shape, complex)
    cur.real = rng.standard_normal(shape)
    cur.imag = rng.standard_normal(shape)
    out = np.empty_like(cur)
    prev = np.zeros_like(cur)
    acc = np.zeros_like(cur)
    np.copyto(out, cur)
    copy = apply = cheb = float("inf")
    for _ in range(args.repeat):   # interleaved: copy, H apply, Chebyshev term
        copy = min(copy, best_of(lambda: np.copyto(out, cur), 1))
        apply = min(apply, best_of(lambda: shell.apply(cur, out), 1))
        cheb = min(cheb, best_of(lambda: shell.chebyshev_term(cur, prev, acc, 0.3 + 0.1j, 0.7, 0.4), 1))
    rate = 2 * cur.nbytes / copy
    res = {"amplitudes": n_amp, "stream_copy_s": copy, "stream_rate_GBps": rate / 1e9,
           "apply_s": apply, "apply_over_stream": apply / copy, "cheb_term_s": cheb,
           "cheb_over_stream": cheb / (copy * 2.5), "shell_setup_s": t_shell}
    print(f"stream copy of one vector (2 x {cur.nbytes / 1e9:.2f} GB moved): {copy:.3f} s = "
          f"{rate / 1e9:.1f} GB/s")
    print(f"H application (fused, {kernels._THREADS} thread): {apply:.3f} s = "
          f"{apply / copy:.2f} x stream time of its vectors")
    print(f"Chebyshev term (fused): {cheb:.3f} s = {cheb / (2.5 * copy):.2f} x stream time "
          f"of its 5 vector passes")
    if args.numpy:
        t_np = best_of(lambda: shell.apply_numpy(cur, out), 1)
        res["apply_numpy_s"] = t_np
        print(f"H application (numpy reference path): {t_np:.3f} s = {t_np / apply:.1f} x fused")
    del prev, acc
    # real steps from the initial state, subnormals flushed or not
    phi = packet(cfg)
    prop = make_propagator(shell, None, cfg.time.dt_out, cfg.numerics)
    res["terms_per_step"] = prop.n_terms
    modes = [False, True, False] if args.ftz_compare else [False]
    per_mode: dict[bool, list[float]] = {}
    for ftz in modes:
        kernels.flush_denormals(ftz)
        cur[...] = 0.0
        cur[shell.sector.slice(member.e_up, member.K), :] = np.outer(member.spins, phi)
        times = []
        for _ in range(args.steps):
            t = time.perf_counter()
            prop.step(_Vec(cur))
            times.append(time.perf_counter() - t)
        v = np.abs(cur.view(float))
        sub = float(((v > 0) & (v < np.finfo(float).tiny)).mean())
        zero = float((v == 0).mean())
        old = per_mode.get(ftz)
        per_mode[ftz] = times if old is None else list(np.minimum(old, times))
        print(f"first {args.steps} steps of {cfg.time.dt_out} fs ({prop.n_terms} terms), "
              f"flush-to-zero {'on ' if ftz else 'off'}: " + ", ".join(f"{x:.2f}" for x in times)
              + f" s; after them {sub:.1%} of the floats are subnormal, {zero:.1%} zero", flush=True)
    kernels.flush_denormals(False)
    res["step_s"] = per_mode[False]
    if True in per_mode:
        res["step_s_ftz"] = per_mode[True]
        print(f"flush-to-zero gain over the first {args.steps} steps: "
              f"{sum(per_mode[False]) / sum(per_mode[True]):.2f}x")
    res["zero_fraction_after_steps"] = zero
    res["peak_rss_gb_kernels"] = peak_rss_gb()
    return res


def engine_figures(args) -> dict:
    from spinvalve.config import load_config
    from spinvalve.simulate import Engine
    cfg = load_config(CFG)
    t = time.perf_counter()
    eng = Engine(cfg)
    setup = time.perf_counter() - t
    t_meas = best_of(eng.measure, 1)
    t_step = best_of(eng.step, 1)
    t_meas2 = best_of(eng.measure, 1)
    n_out = cfg.time.n_out
    members = len(eng.states)
    per_member_step = t_step / members
    one_rank = setup + n_out * (t_step + min(t_meas, t_meas2))
    two_ranks = setup / 2 + n_out * (per_member_step + min(t_meas, t_meas2))
    res = {"engine_setup_s": setup, "engine_step_s": t_step, "engine_measure_s": min(t_meas, t_meas2),
           "members": members, "n_out": n_out, "extrapolated_1rank_min": one_rank / 60,
           "extrapolated_2ranks_min": two_ranks / 60, "peak_rss_gb_engine": peak_rss_gb()}
    print(f"Engine: setup {setup:.1f} s, one step ({members} members) {t_step:.1f} s, one measurement "
          f"{min(t_meas, t_meas2):.1f} s; peak RSS {peak_rss_gb():.2f} GB")
    print(f"extrapolated {n_out}-step run: {one_rank / 60:.1f} min on 1 rank, "
          f"{two_ranks / 60:.1f} min on 2 ranks (one member each; measurement as on 1 rank)")
    if args.full:
        t = time.perf_counter()
        ds = eng.run()
        res["full_run_min"] = (time.perf_counter() - t + setup) / 60
        res["qfi_bound_max"] = float(ds["qfi_bound"].max())
        res["peak_rss_gb_engine"] = peak_rss_gb()
        print(f"full run: {res['full_run_min']:.1f} min, peak RSS {peak_rss_gb():.2f} GB")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--numpy", action="store_true", help="also time the numpy reference H apply")
    ap.add_argument("--ftz-compare", action="store_true", help="first steps with and without FTZ")
    ap.add_argument("--no-engine", action="store_true", help="kernel figures only")
    ap.add_argument("--full", action="store_true", help="run the whole 100 fs (one process)")
    args = ap.parse_args()
    res = kernel_figures(args)
    if not args.no_engine:
        import gc
        gc.collect()
        res.update(engine_figures(args))
    p = record("qfi_10p10", res)
    print(f"wrote {p.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
