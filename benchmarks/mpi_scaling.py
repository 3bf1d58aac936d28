"""Case 4: MPI scaling at 1 and 2 ranks (the machine has 2 cores).

* ``ensemble``: a Gibbs ensemble (4+4 spins, L = 201, T = 100 K, members spread
  over ranks, ``ranks_per_member: 1``); ideal is a halving of the time.
  Efficiency = t(1) / (2 t(2)), goal >= 90%. Its observables are measured
  overlapped (rank n mod size measures output time n while the others
  propagate); ``ensemble-blocking`` is the same job with every measurement
  blocking on rank 0 (``Engine.overlap = False``), side by side.
* ``trajectories``: quantum trajectories of the open system (3+3 spins, L = 101,
  bath at 100 K with 10x the default strength, 8 trajectories to 20 fs),
  whole trajectories round robin over the ranks; "propagation" is the
  trajectory phase, "run" adds the reduction, observables and bootstrap bands
  on rank 0.
* ``strong``: one 7+7 state (L = 201, T = 0; each of the two electron-spin
  members distributed over all ranks by chain site, ``ranks_per_member: 0``),
  a few output steps; efficiency of the propagation phase, reported. Rank 0
  measures every output time (a measuring rank would stall its group's halo
  exchanges).
* ``members-7p7``: the same job with one member per rank (``ranks_per_member:
  1``): the Gram factors (0.04 GB) travel without blocking and the ranks
  measure in turn.

Each case runs ``mpiexec -n R`` worker processes (1 thread each), interleaved
1, 2, 1, 2, ..., best of ``--repeat``. Times are the slowest rank's, for the
propagation phase (``Engine.step``), the whole ``Engine.run()`` and the
process's total (imports, PETSc start-up and ``Engine`` set-up included).

    python benchmarks/mpi_scaling.py [--repeat 3] [--cases ensemble strong]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import ROOT, record, worker_env  # noqa: E402

CASES = {
    "ensemble": {"temperature": {"gibbs": 100.0}, "time": {"t_end": 10.0, "dt_out": 1.0},
                 "parallel": {"ranks_per_member": 1}},
    "trajectories": {"layers": {"n_p": 3, "n_a": 3, "fm_p_start": 40, "spacer": 4},
                     "chain": {"n_sites": 101}, "pulse": {"x0": 20.0},
                     "time": {"t_end": 20.0, "dt_out": 0.5},
                     "bath": {"temperature": 100.0, "gamma": 1.2e-3},
                     "trajectories": {"count": 8, "seed": 3}},
    "ensemble-blocking": {"temperature": {"gibbs": 100.0}, "time": {"t_end": 10.0, "dt_out": 1.0},
                          "parallel": {"ranks_per_member": 1}},
    "strong": {"layers": {"n_p": 7, "n_a": 7}, "time": {"t_end": 2.0, "dt_out": 0.5},
               "parallel": {"ranks_per_member": 0}},
    "members-7p7": {"layers": {"n_p": 7, "n_a": 7}, "time": {"t_end": 2.0, "dt_out": 0.5},
                    "parallel": {"ranks_per_member": 1}},
}


def worker(case: str, out: str) -> None:
    t_start = time.perf_counter()
    import numpy as np
    from mpi4py import MPI
    from spinvalve.config import load_config
    from spinvalve.simulate import Engine
    world = MPI.COMM_WORLD
    cfg = load_config(CASES[case])
    if cfg.bath is not None:
        return trajectory_worker(cfg, out, t_start)
    t0 = time.perf_counter()
    eng = Engine(cfg, world)
    eng.overlap = eng.overlap and not case.endswith("-blocking")
    world.Barrier()
    t1 = time.perf_counter()
    spent = [0.0]
    step = eng.step

    def timed_step():
        t = time.perf_counter()
        step()
        spent[0] += time.perf_counter() - t
    eng.step = timed_step
    eng.run(log=None)
    world.Barrier()
    t2 = time.perf_counter()
    local = np.array([t1 - t0, spent[0], t2 - t1, t2 - t_start], float)
    worst = np.empty_like(local)
    world.Allreduce(local, worst, op=MPI.MAX)
    members = world.allreduce(len(eng.states))
    if world.rank == 0:
        np.savez(out, setup=worst[0], propagation=worst[1], run=worst[2], total=worst[3],
                 members=members, ranks=world.size)


def trajectory_worker(cfg, out: str, t_start: float) -> None:
    import numpy as np
    from mpi4py import MPI
    from spinvalve.opensystem import run_open
    world = MPI.COMM_WORLD
    world.Barrier()
    t0 = time.perf_counter()
    ds = run_open(cfg, world, log=None)
    world.Barrier()
    t1 = time.perf_counter()
    if world.rank == 0:
        np.savez(out, setup=0.0, propagation=ds.attrs["trajectory_seconds_rank0"], run=t1 - t0,
                 total=t1 - t_start, members=ds.attrs["n_members"], ranks=world.size)


def run(case: str, ranks: int) -> dict:
    import numpy as np
    import subprocess
    env = worker_env(1)
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r.npz")
        cmd = ["mpiexec", "--oversubscribe", "-n", str(ranks), sys.executable, __file__,
               "--worker", case, "--out", out]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
        if proc.returncode:
            raise RuntimeError(f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}")
        with np.load(out) as f:
            return {k: float(f[k]) for k in f.files}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker")
    ap.add_argument("--out")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cases", nargs="*", default=list(CASES))
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.out)
        return
    report = {}
    for case in args.cases:
        best: dict[int, dict] = {}
        for rep in range(args.repeat):
            for ranks in (1, 2):
                r = run(case, ranks)
                b = best.setdefault(ranks, {})
                for k, v in r.items():
                    b[k] = min(b.get(k, math.inf), v)
                print(f"  {case} repeat {rep}, {ranks} rank(s): propagation {r['propagation']:.2f} s, "
                      f"run {r['run']:.2f} s", flush=True)
        eff_p = best[1]["propagation"] / (2 * best[2]["propagation"])
        eff_r = best[1]["run"] / (2 * best[2]["run"])
        eff_t = best[1]["total"] / (2 * best[2]["total"])
        report[case] = {"members": best[1]["members"], "t1": best[1], "t2": best[2],
                        "efficiency_propagation": eff_p, "efficiency_run": eff_r,
                        "efficiency_total": eff_t}
        print(f"{case}: {int(best[1]['members'])} members; propagation {best[1]['propagation']:.2f} s "
              f"-> {best[2]['propagation']:.2f} s (efficiency {eff_p:.0%}); whole run "
              f"{best[1]['run']:.2f} s -> {best[2]['run']:.2f} s (efficiency {eff_r:.0%}); process "
              f"{best[1]['total']:.2f} s -> {best[2]['total']:.2f} s (efficiency {eff_t:.0%})", flush=True)
    p = record("mpi_scaling", {**report, "repeat": args.repeat})
    print(f"wrote {p.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
