"""One Chebyshev term on a dense state of an n+n sector (CPU seconds, best of repeats),
for benchmarks/cost_calibration.py: python benchmarks/_term_bench.py N [N ...]."""

from __future__ import annotations

import json
import sys
import time

import numpy as np


def shell_of(n: int):
    from mpi4py import MPI
    from spinvalve.basis import Sector
    from spinvalve.config import load_config
    from spinvalve.ensemble import build_ensemble
    from spinvalve.hamiltonian import HamiltonianShell, Model
    cfg = load_config({"chain": {"leads": "auto"}, "layers": {"n_p": n, "n_a": n},
                       "time": {"t_end": 12.0, "dt_out": 0.5}})
    model = Model.from_config(cfg)
    member = build_ensemble(model, cfg).members[0]
    return HamiltonianShell(model, Sector(model.layers, member.sector(model.n_spins)), MPI.COMM_SELF)


def main(sizes: list[int], repeat: int = 3) -> None:
    rng = np.random.default_rng(0)
    setups = []
    for n in sizes:
        shell = shell_of(n)
        shape = shell.local_shape
        cur = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
        prev = rng.standard_normal(shape) + 0j
        acc = np.zeros_like(cur)
        setups.append((n, shell, cur, prev, acc))
    best = {n: float("inf") for n in sizes}
    for _ in range(repeat):           # interleaved: the sizes see the same load
        for n, shell, cur, prev, acc in setups:
            k = max(1, int(2e6 // cur.size))     # at least ~2 M amplitude-terms per timing
            t = time.process_time()
            for _ in range(k):
                shell.chebyshev_term(cur, prev, acc, 1e-3 + 0j, 0.0, 1e-3)
            best[n] = min(best[n], (time.process_time() - t) / k)
    print(json.dumps({str(n): {"amplitudes": int(s[2].size), "term_s": best[n]}
                      for n, s in zip(sizes, setups)}))


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]])
