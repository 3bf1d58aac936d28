"""Cost of every charge-imbalance block of rho^{T_a}: assembly, dense eigenvalues, bounds.

Evolves the paper's N+N spin valve (L = 201, T = 0) to ``--t`` fs in one output
interval (or loads the member amplitudes saved by an earlier call with
``--save``), then for every charge-imbalance block q of rho_FM^{T_a} prints
its size, the wall and CPU time to assemble it and of all its eigenvalues
(``spinvalve.lapack.eigvalsh``, two-stage LAPACK, ``--threads`` BLAS threads),
its trace norm, its trace, the certified bounds of
``entanglement.negativity_fast`` (and whether they make the block negligible),
and the resident-memory peak; blocks in increasing size. Blocks outside
``--min-size``/``--max-size`` are only bracketed by their bounds, and the last
lines give E_N as a certified interval (9+9: the blocks too large for this
machine's memory). These
per-block costs are what the cluster recipe of benchmarks/README.md is built
from.

    nice -n 10 .venv/bin/python benchmarks/negativity_blocks.py --n 8 --t 15 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=8, help="spins per layer")
    ap.add_argument("--t", type=float, default=15.0, help="time of the state, fs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--load", help="npz of member parts written by --save")
    ap.add_argument("--save", help="write the member parts here")
    ap.add_argument("--min-size", type=int, default=0, help="skip the eigenvalues of smaller blocks")
    ap.add_argument("--max-size", type=int, default=1 << 30, help="skip the eigenvalues of larger blocks")
    ap.add_argument("--skip-negligible", action="store_true",
                    help="no eigenvalues of blocks the fast path certifies as negligible")
    args = ap.parse_args()
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        os.environ.pop(k, None)
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
    import numpy as np
    from spinvalve import entanglement, lapack
    from spinvalve.basis import SpinLayers
    from spinvalve.reduced import BlockDensityMatrix

    t0 = time.perf_counter()
    if args.load:
        with np.load(args.load) as f:
            parts = [(int(f[f"K{i}"]), float(f[f"w{i}"]), f[f"a{i}"]) for i in range(int(f["count"]))]
    else:
        from spinvalve.config import load_config
        from spinvalve.simulate import Engine
        cfg = load_config({"layers": {"n_p": args.n, "n_a": args.n},
                           "time": {"t_end": args.t, "dt_out": args.t}})
        eng = Engine(cfg)
        eng.step()
        parts = [(K, w, np.array(a)) for K, w, a in eng._parts()]
        del eng
    if args.save:
        np.savez(args.save, count=len(parts), **{f"K{i}": K for i, (K, _, _) in enumerate(parts)},
                 **{f"w{i}": w for i, (_, w, _) in enumerate(parts)},
                 **{f"a{i}": a for i, (_, _, a) in enumerate(parts)})
    rho = BlockDensityMatrix.from_parts(SpinLayers(args.n, args.n), parts)
    del parts
    print(f"{args.n}+{args.n}, t = {args.t} fs, state ready in {time.perf_counter() - t0:.1f} s; "
          f"{args.threads} BLAS threads; two-stage: {lapack.have_two_stage()}", flush=True)
    rows = []
    t_b = time.perf_counter()
    moments = rho.imbalance_moments()
    nuclear = rho.imbalance_nuclear_bounds()
    print(f"bounds of every block from the factors: {time.perf_counter() - t_b:.1f} s", flush=True)
    order = sorted(moments, key=lambda q: (entanglement.imbalance_block_size(rho.layers, q), q))
    for q in order:
        if q not in moments:
            continue
        n = entanglement.imbalance_block_size(rho.layers, q)
        lo, hi = entanglement._moment_bounds(*moments[q], n)
        hi = max(lo, min(hi, nuclear[q]))
        row = dict(q=q, n=n, trace=moments[q][0], lo=lo, hi=hi, hi_frobenius=entanglement._moment_bounds(*moments[q], n)[1],
                   negligible=hi - lo <= 2 * entanglement.NEGLIGIBLE)
        if args.min_size <= n <= args.max_size and not (args.skip_negligible and row["negligible"]):
            t_a, c_a = time.perf_counter(), time.process_time()
            m = entanglement.partial_transpose_block(rho, q)
            t1, c1 = time.perf_counter(), time.process_time()
            w = lapack.eigvalsh(m, overwrite=True)
            t2, c2 = time.perf_counter(), time.process_time()
            del m
            row.update(assemble_s=t1 - t_a, eig_s=t2 - t1, assemble_cpu_s=c1 - c_a, eig_cpu_s=c2 - c1,
                       trace_norm=float(np.abs(w).sum()))
        row["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        rows.append(row)
        print(json.dumps(row), flush=True)
    lo = sum(r.get("trace_norm", r["lo"]) for r in rows)
    hi = sum(r.get("trace_norm", r["hi"]) for r in rows)
    fast = sum(r.get("trace_norm", float("nan")) if not r["negligible"] else 0.5 * (r["lo"] + r["hi"])
               for r in rows)
    print(f"E_N in [{np.log(lo):.12f}, {np.log(hi):.12f}] (blocks not diagonalised bracketed by their "
          f"bounds); fast path (negligible blocks by midpoint, others exact): {np.log(fast):.12f}")
    print(f"blocks the fast path diagonalises: {[r['q'] for r in rows if not r['negligible']]}; "
          f"their eigenvalue CPU time {sum(r.get('eig_cpu_s', 0) for r in rows if not r['negligible']):.1f} s")
    print(f"total eigenvalue time {sum(r.get('eig_s', 0) for r in rows):.1f} s "
          f"(CPU {sum(r.get('eig_cpu_s', 0) for r in rows):.1f} s); "
          f"peak {max(r['peak_gb'] for r in rows):.2f} GB", flush=True)


if __name__ == "__main__":
    sys.exit(main())
