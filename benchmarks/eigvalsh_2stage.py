"""All eigenvalues of a dense Hermitian matrix: numpy (zheevd) vs two-stage LAPACK.

The negativity of rho_FM needs every eigenvalue of each charge-imbalance block
of rho^{T_a} (12870 x 12870 for 8+8 spins). ``spinvalve.lapack.eigvalsh`` calls
LAPACK's two-stage reduction ``zheevd_2stage``. Both run here in one process on
the same random Hermitian matrices, interleaved, best of ``--repeat``; the
script prints the time ratio and the largest eigenvalue difference.

    .venv/bin/python benchmarks/eigvalsh_2stage.py [--sizes 2000 4000] [--repeat 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 4000])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        os.environ.pop(k, None)
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)  # before numpy loads OpenBLAS
    import numpy as np
    from _harness import record
    from spinvalve import lapack
    if not lapack.have_two_stage():
        sys.exit("no LAPACKE zheevd_2stage in this installation: spinvalve uses numpy's eigvalsh")
    res = {}
    for n in args.sizes:
        rng = np.random.default_rng(n)
        x = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
        a = x + x.conj().T
        best = {"numpy": float("inf"), "two_stage": float("inf")}
        for _ in range(args.repeat):
            t = time.perf_counter()
            w1 = np.linalg.eigvalsh(a)
            best["numpy"] = min(best["numpy"], time.perf_counter() - t)
            t = time.perf_counter()
            w2 = lapack.eigvalsh(a, min_two_stage=0)
            best["two_stage"] = min(best["two_stage"], time.perf_counter() - t)
        err = float(np.abs(w1 - w2).max() / np.abs(w1).max())
        ratio = best["numpy"] / best["two_stage"]
        res[n] = {**best, "ratio": ratio, "relative_difference": err}
        print(f"n = {n}: numpy {best['numpy']:.2f} s, two-stage {best['two_stage']:.2f} s, "
              f"ratio {ratio:.1f}x, max |dw| / max |w| = {err:.1e}", flush=True)
    print(f"wrote {record('eigvalsh_2stage', {'threads': args.threads, 'sizes': res})}")


if __name__ == "__main__":
    main()
