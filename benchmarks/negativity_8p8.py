"""Memory and time of the block-wise negativity for 8+8 spins (rho_FM of size 65536).

Evolves the paper's 8+8 spin valve (L = 201) to t_end (default 40 fs) with one
output, then computes every observable at that time, reporting the peak resident
memory (getrusage) and the time of each stage. The dense alternative (the full
65536 x 65536 partial transpose) would need 68.7 GB for the matrix alone; the
block-wise path is measured against that.

    .venv/bin/python benchmarks/negativity_8p8.py [t_end]
"""

from __future__ import annotations

import resource
import sys
import time

from spinvalve.config import load_config
from spinvalve.entanglement import imbalance_block_size, imbalance_labels, negativity
from spinvalve.reduced import BlockDensityMatrix
from spinvalve.simulate import Engine


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def main() -> None:
    t_end = float(sys.argv[1]) if len(sys.argv) > 1 else 40.0
    cfg = load_config({"layers": {"n_p": 8, "n_a": 8}, "time": {"t_end": t_end, "dt_out": t_end}})
    t0 = time.perf_counter()
    eng = Engine(cfg)
    eng.step()
    t1 = time.perf_counter()
    parts = []
    for st in eng.states:
        for e_up, block, sl in st.shell.sector.iter_parts():
            parts.append((block.K, st.member.weight, st.local[sl]))
    rho = BlockDensityMatrix.from_parts(eng.model.layers, parts)
    sizes = {q: imbalance_block_size(rho.layers, q) for q in imbalance_labels(rho.layers)}
    t2 = time.perf_counter()
    e_n, by_q = negativity(rho)
    t3 = time.perf_counter()
    obs = eng.observables(rho, 1.0, 0.0, 0.0)
    t4 = time.perf_counter()
    dense_gb = (1 << 16) ** 2 * 16 / 1e9
    print(f"8+8, L = 201, t = {t_end} fs: E_N = {e_n:.6f}, S_pa = {obs['entropy_pa']:.6f}, "
          f"f_Q(pi/2) = {obs['qfi_bound'][-1]:.6f} (exact {obs['qfi_exact'][-1]:.6f})")
    print(f"largest rho^T_a block: {max(sizes.values())} (of {sum(sizes.values())} in total, "
          f"{len(sizes)} charge-imbalance blocks)")
    print(f"time: propagation {t1 - t0:.1f} s, reduction {t2 - t1:.2f} s, negativity {t3 - t2:.1f} s, "
          f"all observables {t4 - t3:.1f} s")
    print(f"peak memory {peak_gb():.2f} GB (limit 8 GiB = 8.59 GB); the dense partial transpose alone "
          f"would need {dense_gb:.1f} GB: ratio {dense_gb / peak_gb():.0f}x")


if __name__ == "__main__":
    main()
