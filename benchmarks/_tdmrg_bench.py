"""One tDMRG run timed phase by phase in CPU seconds, for benchmarks/cost_calibration.py.

    python benchmarks/_tdmrg_bench.py JOB.yaml   # prints JSON: ground_s, measure_s (all
                                                 # output times), intervals [(t, chi, s)],
                                                 # peak RSS after the imports / at the end
Each interval is the evolution between two output times (its measurement excluded),
``chi`` the largest bond dimension at its end.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import yaml


def main(path: str) -> None:
    from spinvalve.config import load_config
    from spinvalve.tdmrg import evolve
    cfg = load_config(yaml.safe_load(Path(path).read_text()))
    acc = {"measure": 0.0, "ground": 0.0}
    orig_m, orig_g = evolve._measure, evolve.ground_state

    def timed(fn, key):
        def wrapper(*a, **k):
            t = time.process_time()
            try:
                return fn(*a, **k)
            finally:
                acc[key] += time.process_time() - t
        return wrapper

    evolve._measure, evolve.ground_state = timed(orig_m, "measure"), timed(orig_g, "ground")
    rows = []
    last = {"t": 0.0, "m": 0.0}

    def progress(t_fs, info):
        now = time.process_time()
        rows.append((t_fs, int(info["chi"]), now - last["t"] - (acc["measure"] - last["m"])))
        last["t"], last["m"] = now, acc["measure"]

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # after the imports
    t0 = time.process_time()
    last["t"] = t0
    evolve.run_tdmrg(cfg, progress=progress, log=None)
    # the first interval also holds the ground state, its measurement and the engine set-up
    rows[0] = (rows[0][0], rows[0][1], rows[0][2] - acc["ground"])
    print(json.dumps({"ground_s": acc["ground"], "measure_s": acc["measure"],
                      "n_out": cfg.time.n_out, "intervals": rows, "total_s": time.process_time() - t0,
                      "rss0_mb": rss0,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main(sys.argv[1])
