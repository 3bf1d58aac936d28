"""Measurement of one output time vs propagation of one output interval (issue 19, goal 1).

For each case (4+4, 6+6, 7+7 at T = 0 and the 4+4 Gibbs ensemble at 100 K;
L = 201, dt_out = 0.5 fs) one worker process evolves the job to ``--warm`` fs
(untimed, so the packet has passed the layers), then repeats, interleaved:
one output interval of propagation (``Engine.step``), one measurement with the
fast path (``Engine.measure``, the default) and one with the reference path
(``Engine.reference_observables = True``, the original block functions).
It prints the best of ``--repeat`` of each, the ratios measurement /
propagation before (reference) and after (fast), and the largest difference
of every observable between the two paths over all repeats.

    nice -n 10 .venv/bin/python benchmarks/measurement_cost.py [--cases 4p4 6p6 7p7 gibbs4p4]
        [--repeat 3] [--threads 1] [--warm 15]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

CASES = {
    "4p4": {"layers": {"n_p": 4, "n_a": 4}},
    "6p6": {"layers": {"n_p": 6, "n_a": 6}},
    "7p7": {"layers": {"n_p": 7, "n_a": 7}},
    "gibbs4p4": {"layers": {"n_p": 4, "n_a": 4}, "temperature": {"gibbs": 100.0}},
}
KEYS = ["entropy_p", "entropy_a", "entropy_pa", "mutual_information", "log_negativity",
        "magnon_probability", "w_state_probability", "qfi_bound", "qfi_exact", "spin_expectation",
        "trace_rho", "hermiticity_error", "energy", "norm", "sz_total"]


def worker(case: str, out: str, repeat: int, warm: float) -> None:
    import numpy as np
    from _harness import save
    from spinvalve.config import load_config
    from spinvalve.simulate import Engine
    raw = {**CASES[case], "time": {"t_end": warm + repeat * 0.5 + 0.5, "dt_out": 0.5}}
    eng = Engine(load_config(raw))
    for _ in range(int(round(warm / 0.5))):
        eng.step()
    eng.measure()  # first call: caches, gather plans
    best = {"step": np.inf, "fast": np.inf, "reference": np.inf}
    diff = {k: 0.0 for k in KEYS + ["negativity_by_imbalance"]}
    for r in range(repeat):
        t = time.perf_counter()
        eng.step()
        best["step"] = min(best["step"], time.perf_counter() - t)
        obs = {}
        for path in (("fast", "reference") if r % 2 == 0 else ("reference", "fast")):
            eng.reference_observables = path == "reference"
            t = time.perf_counter()
            obs[path], _ = eng.measure()
            best[path] = min(best[path], time.perf_counter() - t)
        for k in KEYS:
            diff[k] = max(diff[k], float(np.abs(np.asarray(obs["fast"][k], float)
                                                - np.asarray(obs["reference"][k], float)).max()))
        a, b = obs["fast"]["negativity_by_imbalance"], obs["reference"]["negativity_by_imbalance"]
        assert set(a) == set(b)
        diff["negativity_by_imbalance"] = max(diff["negativity_by_imbalance"],
                                              max(abs(a[q] - b[q]) for q in b))
    save(out, **{f"t_{k}": v for k, v in best.items()}, **{f"d_{k}": v for k, v in diff.items()},
         e_n=obs["fast"]["log_negativity"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="+", default=list(CASES))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warm", type=float, default=15.0)
    ap.add_argument("--worker")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.out, args.repeat, args.warm)
    from _harness import machine, record, run_worker
    print(f"{machine()}; {args.threads} thread(s) per worker; best of {args.repeat}; "
          f"state at {args.warm} fs, dt_out = 0.5 fs")
    rows = {}
    for case in args.cases:
        wall, res = run_worker(__file__, case, ["--repeat", str(args.repeat), "--warm", str(args.warm)],
                               threads=args.threads, timeout=7200)
        step, fast, slow = (float(res[f"t_{k}"]) for k in ("step", "fast", "reference"))
        worst = max((float(res[k]), k[2:]) for k in res if k.startswith("d_"))
        rows[case] = dict(step_s=step, fast_s=fast, reference_s=slow, before=slow / step,
                          after=fast / step, speedup=slow / fast, max_diff=worst[0], worst=worst[1],
                          log_negativity=float(res["e_n"]), worker_wall_s=wall)
        print(f"{case:9s} propagation {step:8.4f} s | measurement before {slow:8.4f} s ({slow / step:6.2f}x) "
              f"after {fast:8.4f} s ({fast / step:6.2f}x) | speed-up {slow / fast:5.1f}x | "
              f"max |diff| {worst[0]:.1e} ({worst[1]})", flush=True)
    record("measurement_cost", {"threads": args.threads, "repeat": args.repeat, "warm_fs": args.warm,
                                "cases": rows})


if __name__ == "__main__":
    sys.exit(main())
