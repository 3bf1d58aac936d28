"""How the engine's cost grows with L, N and simulated time (three sizes each).

Default job (4+4, L = 201, T = 0, dt_out = 1 fs, 1 rank, 1 thread), varying one of

* the chain length L = 101, 201, 401 (0-25 fs; FM_p kept at site 43),
* the spins per layer n = 3, 5, 7 (N = 2 n; L = 201, 0-5 fs),
* the simulated time t_end = 25, 50, 100 fs (4+4, L = 201),

and reporting, best of ``--repeat`` (sizes interleaved), the propagation time
(``Engine.step``), the observables time (``Engine.measure``), the sector size
and the propagation time per amplitude, per Chebyshev term and per fs.

    python benchmarks/scaling.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import ROOT, record, run_worker, save  # noqa: E402

SERIES = {
    "L": [({"chain": {"n_sites": L}, "time": {"t_end": 25.0, "dt_out": 1.0}}, L) for L in (101, 201, 401)],
    "N": [({"layers": {"n_p": n, "n_a": n}, "time": {"t_end": 5.0, "dt_out": 1.0}}, 2 * n)
          for n in (3, 5, 7)],
    "time": [({"time": {"t_end": t, "dt_out": 1.0}}, t) for t in (25.0, 50.0, 100.0)],
}


def worker(spec: str, out: str) -> None:
    import json
    from spinvalve.config import load_config
    from spinvalve.simulate import Engine
    cfg = load_config(json.loads(spec))
    t0 = time.perf_counter()
    eng = Engine(cfg)
    setup = time.perf_counter() - t0
    eng.run(log=None)
    st = eng.states[0]
    save(out, setup=setup, propagation=eng.seconds["propagation"], observables=eng.seconds["observables"],
         amplitudes=st.shell.local_size, terms=st.propagator.n_terms * st.propagator.n_sub,
         steps=cfg.time.n_out, members=len(eng.states))


def main() -> None:
    import json
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker")
    ap.add_argument("--out")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--series", nargs="*", default=list(SERIES))
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.out)
        return
    report = {}
    for name in args.series:
        best: dict[int, dict] = {}
        for _ in range(args.repeat):
            for n, (spec, value) in enumerate(SERIES[name]):
                _, r = run_worker(__file__, json.dumps(spec))
                b = best.setdefault(n, {"value": value})
                for k, v in r.items():
                    b[k] = min(b.get(k, math.inf), float(v))
        rows = []
        print(f"\nseries {name}:")
        print(f"{name:>6s} {'amplitudes':>11s} {'terms/step':>10s} {'prop. s':>8s} {'obs. s':>8s} "
              f"{'ns/(amp*term)':>14s} {'prop. s/fs':>10s}")
        for n in sorted(best):
            b = best[n]
            work = b["amplitudes"] * b["terms"] * b["steps"] * b["members"]
            per = b["propagation"] / work * 1e9
            rows.append({**b, "ns_per_amplitude_term": per})
            print(f"{b['value']:>6g} {int(b['amplitudes']):>11d} {int(b['terms']):>10d} "
                  f"{b['propagation']:>8.3f} {b['observables']:>8.3f} {per:>14.2f} "
                  f"{b['propagation'] / b['steps']:>10.4f}")
        report[name] = rows
    p = record("scaling", {**report, "repeat": args.repeat})
    print(f"wrote {p.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
