"""Quantum trajectories: spinvalve.opensystem against QuTiP 5 mcsolve, same operators.

Cases (``--case``), both with the bath at 100 K and 10x the default strength
(so that jumps happen), 20 fs, trajectories x 2 electron-spin members:
``small`` 2+2 spins, L = 40 (full space 1 280: start-up dominates both codes);
``medium`` 3+3 spins, L = 101 (12 928), the smaller version of the 4+4, L = 201
production case (25 728 per member). QuTiP gets
the full-space H / hbar and the ULE jump operators L_i / sqrt(hbar) (both from
tests/reference.py, the independent implementation) and integrates each member
with ``mcsolve`` (its default adaptive ODE integrator) and the benchmark forms
the trajectory-averaged rho_FM and its MLN from the stored states; spinvalve runs
``run_open`` on one rank, once with the same outputs (``trajectories.bands:
false``: averaged rho_FM and every observable, no bootstrap) and once as a
default job (plus bootstrap bands of every observable, which mcsolve does not
produce). Every worker is a separate process with one thread; the parent
prints the wall-time ratios (goal: >= 5x) and the largest MLN difference
against the trajectory band.

    .venv/bin/python benchmarks/trajectories_vs_qutip.py [--ntraj 40] [--repeat 1]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from _harness import run_worker

CASES = {
    "small": dict(n_p=2, n_a=2, L=40, p0=14, spacer=2, x0=6.0, t_end=20.0, dt_out=0.5,
                  T=100.0, gamma=1.2e-3, omega_max=0.01),
    "medium": dict(n_p=3, n_a=3, L=101, p0=40, spacer=4, x0=20.0, t_end=20.0, dt_out=0.5,
                   T=100.0, gamma=1.2e-3, omega_max=0.01),
}
CASE = CASES["small"]


def config(ntraj: int, bands: bool = True):
    from spinvalve.config import load_config
    c = CASE
    return load_config({"chain": {"n_sites": c["L"]},
                        "layers": {"n_p": c["n_p"], "n_a": c["n_a"], "fm_p_start": c["p0"], "spacer": c["spacer"]},
                        "pulse": {"x0": c["x0"]}, "time": {"t_end": c["t_end"], "dt_out": c["dt_out"]},
                        "bath": {"temperature": c["T"], "gamma": c["gamma"], "omega_max": c["omega_max"]},
                        "trajectories": {"count": ntraj, "seed": 5, "bands": bands}})


def worker_engine(ntraj: int, bands: bool = False) -> dict:
    t0 = time.perf_counter()
    from spinvalve.opensystem import run_open
    ds = run_open(config(ntraj, bands), log=None)
    out = {"time": time.perf_counter() - t0, "traj_time": ds.attrs["trajectory_seconds_rank0"],
           "mln": ds.log_negativity.values, "entropy": ds.entropy_pa.values}
    if bands:
        out.update(lo=ds.log_negativity_lower.values, hi=ds.log_negativity_upper.values)
    return out


def worker_engine_bands(ntraj: int) -> dict:
    return worker_engine(ntraj, bands=True)


def worker_qutip(ntraj: int) -> dict:
    t0 = time.perf_counter()
    import qutip
    import reference as ref
    from spinvalve import dense
    from test_dense import to_reference_basis
    c = CASE
    geom = ref.Geometry(c["L"], c["p0"], c["n_p"], c["spacer"], c["n_a"])
    hbar = ref.HBAR
    H = qutip.Qobj(ref.hamiltonian(geom) / hbar)
    jumps = ref.ule_jump_operators(geom, 0.1, 1.005, c["T"], c["gamma"], c["omega_max"])
    c_ops = [qutip.Qobj(ref.embed_spin_operator(Lj, c["L"]) / np.sqrt(hbar)) for Lj in jumps]
    times = np.arange(0, c["t_end"] + 1e-9, c["dt_out"])
    psis, ws = ref.initial_ensemble(geom, c["x0"])
    N = geom.N
    rho = np.zeros((len(times), 2 ** N, 2 ** N), complex)
    for m, (psi, w) in enumerate(zip(psis, ws)):
        res = qutip.mcsolve(H, qutip.Qobj(psi), times, c_ops, ntraj=ntraj, seeds=100 + m,
                            options={"store_states": True, "keep_runs_results": True,
                                     "progress_bar": False, "map": "serial"})
        for run in res.runs_states:
            for n, st in enumerate(run):
                v = st.full().reshape(-1)
                rho[n] += w / ntraj * ref.reduced_fm([v], [1.0], c["L"], N)
    perm = to_reference_basis(N)
    mln = np.array([dense.log_negativity(r[np.ix_(perm, perm)], c["n_p"], c["n_a"]) for r in rho])
    return {"time": time.perf_counter() - t0, "mln": mln}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ntraj", type=int, default=40)
    ap.add_argument("--case", choices=sorted(CASES), default="small")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--worker")
    ap.add_argument("--out")
    args = ap.parse_args()
    global CASE
    CASE = CASES[args.case]
    if args.worker:
        res = {"engine": worker_engine, "engine_bands": worker_engine_bands,
               "qutip": worker_qutip}[args.worker](args.ntraj)
        np.savez(args.out, **res)
        return
    walls = {"engine": [], "engine_bands": [], "qutip": []}
    results = {}
    for _ in range(args.repeat):
        for name in walls:
            wall, res = run_worker(__file__, name, ["--ntraj", str(args.ntraj), "--case", args.case])
            walls[name].append(wall)
            results[name] = res
    e, eb, q = min(walls["engine"]), min(walls["engine_bands"]), min(walls["qutip"])
    eng, engb, qt = results["engine"], results["engine_bands"], results["qutip"]
    assert np.array_equal(eng["mln"], engb["mln"])
    halfwidth = 0.5 * (engb["hi"] - engb["lo"]).max()
    print(f"case: {CASE}, {args.ntraj} trajectories x 2 members")
    print(f"QuTiP mcsolve + averaged rho_FM, MLN : {q:8.2f} s wall ({float(qt['time']):.2f} s in the worker)")
    print(f"spinvalve run_open, same outputs     : {e:8.2f} s wall ({float(eng['time']):.2f} s in the worker, "
          f"trajectories {float(eng['traj_time']):.2f} s)")
    print(f"spinvalve run_open + bootstrap bands : {eb:8.2f} s wall ({float(engb['time']):.2f} s in the worker)")
    print(f"time ratio QuTiP / spinvalve = {q / e:.1f}x for the same outputs (goal >= 5x), "
          f"{q / eb:.1f}x with the bands; trajectory phase alone {q / float(eng['traj_time']):.1f}x")
    print(f"MLN: max |spinvalve - QuTiP| = {np.abs(eng['mln'] - qt['mln']).max():.4f} "
          f"(independent random streams; spinvalve band half-width up to {halfwidth:.4f}), "
          f"final MLN {eng['mln'][-1]:.4f} vs {qt['mln'][-1]:.4f}")


if __name__ == "__main__":
    sys.exit(main())
