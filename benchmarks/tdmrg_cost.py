"""Cost of the multi-electron tDMRG run (paper Fig. 6) on this machine.

Runs the ground state and the first output intervals of the paper-size pulse
(L = 112, FM_p on 0-based sites 48-51, FM_a on 56-59, N_e electrons) and prints,
per output time, wall time, largest bond dimension, S_half and the peak resident
memory. The cost of one TDVP step grows like chi^3; the bond dimension saturates
at ``multi_electron.chi_max`` (400), so the per-step time at chi = 400 bounds the rest.

    python benchmarks/tdmrg_cost.py --n-electrons 8 --t-end 6.582 [--set key=value ...]
"""

from __future__ import annotations

import argparse
import resource
import time

from spinvalve import HBAR
from spinvalve.config import load_config
from spinvalve.tdmrg import run_tdmrg

PAPER_L112 = {
    "chain": {"n_sites": 112},
    "layers": {"n_p": 4, "n_a": 4, "fm_p_start": 48, "spacer": 4},
    "pulse": {"x0": 5.0},
    "multi_electron": {"n_electrons": 8, "n_conf": 10},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-electrons", type=int, default=8)
    ap.add_argument("--t-end", type=float, default=10 * HBAR, help="fs (rounded to dt_out)")
    ap.add_argument("--dt-out", type=float, default=HBAR, help="fs, multiple of 0.1 hbar")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    raw = {k: dict(v) for k, v in PAPER_L112.items()}
    raw["multi_electron"]["n_electrons"] = args.n_electrons
    n_out = max(1, round(args.t_end / args.dt_out))
    raw["time"] = {"t_end": n_out * args.dt_out, "dt_out": args.dt_out}
    cfg = load_config(raw, args.set)
    t0 = time.perf_counter()
    last = [t0]

    def report(t_fs: float, info: dict) -> None:
        now = time.perf_counter()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
        print(f"t = {t_fs:7.3f} fs  chi = {info['chi']:4d}  S_half = {info['entropy_half']:.4f}  "
              f"trunc = {info['truncation_error']:.2e}  interval {now - last[0]:8.1f} s  "
              f"total {now - t0:8.1f} s  peak RSS {rss:.2f} GB", flush=True)
        last[0] = now

    ds = run_tdmrg(cfg, progress=report)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    print(f"N_e = {args.n_electrons}: {len(ds.time) - 1} intervals in "
          f"{time.perf_counter() - t0:.1f} s, peak RSS {rss:.2f} GB, "
          f"max chi {int(ds.bond_dimension.max())}")


if __name__ == "__main__":
    main()
