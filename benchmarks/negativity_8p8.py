"""Consecutive output times of the 8+8 spin valve measured in full by the engine (issue 19, goal 2).

Evolves the paper's 8+8 spin valve (L = 201, T = 0, dt_out = 0.5 fs) to
``--t`` fs without measuring, then measures ``--count`` consecutive output
times with ``Engine.measure`` (the default fast path: every observable, the
MLN with every charge-imbalance block either diagonalised or certified below
``entanglement.NEGLIGIBLE``), propagating one output interval between them.
Prints per output time the wall and CPU time of the measurement and of the
propagation, E_N, which blocks were diagonalised, and the resident-memory
peak (getrusage). The dense 65536 x 65536 partial transpose would need
68.7 GB for the matrix alone.

    nice -n 10 .venv/bin/python benchmarks/negativity_8p8.py --t 15 --count 2 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=8, help="spins per layer")
    ap.add_argument("--t", type=float, default=15.0, help="first measured time, fs")
    ap.add_argument("--count", type=int, default=2, help="consecutive output times measured")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        os.environ.pop(k, None)
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    from spinvalve import entanglement
    from spinvalve.config import load_config
    from spinvalve.simulate import Engine

    dt = 0.5
    cfg = load_config({"layers": {"n_p": args.n, "n_a": args.n},
                       "time": {"t_end": args.t + args.count * dt, "dt_out": dt}})
    eng = Engine(cfg)
    t0 = time.perf_counter()
    for _ in range(int(round(args.t / dt))):
        eng.step()
    print(f"{args.n}+{args.n}, L = {cfg.chain.n_sites}: propagated to {args.t} fs in "
          f"{time.perf_counter() - t0:.1f} s; {args.threads} BLAS threads; NEGLIGIBLE = "
          f"{entanglement.NEGLIGIBLE:g} per block", flush=True)
    for i in range(args.count):
        if i:
            w, c = time.perf_counter(), time.process_time()
            eng.step()
            prop = (time.perf_counter() - w, time.process_time() - c)
        else:
            prop = (float("nan"), float("nan"))
        w, c = time.perf_counter(), time.process_time()
        obs, _ = eng.measure()
        wall, cpu = time.perf_counter() - w, time.process_time() - c
        row = dict(t=args.t + i * dt, measure_wall_s=wall, measure_cpu_s=cpu, step_wall_s=prop[0],
                   step_cpu_s=prop[1], log_negativity=obs["log_negativity"], entropy_pa=obs["entropy_pa"],
                   qfi_exact=list(obs["qfi_exact"]), by_q=obs["negativity_by_imbalance"], peak_gb=peak_gb())
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    sys.exit(main())
