"""Case 1: 4+4 spins, L = 201, T = 0, both electron-spin members, 0-50 fs, state every 1 fs.

The sector engine (``Engine(cfg).run()``) against three full-space propagators
written here, independently of the engine, on the Kronecker-product CSR
Hamiltonian of ``tests/reference.py`` (orbital x electron spin x 2^8,
dimension 102 912):

* ``expm``  scipy ``expm_multiply``, one call per 1 fs interval (both members
  as two columns; the ``start/stop/num`` form was 2x slower here);
* ``qutip`` QuTiP 5 ``sesolve`` (adams, atol 1e-12, rtol 1e-10, one run per member);
* ``cheb``  a full-space CSR Chebyshev propagator, one expansion per 1 fs
  output interval, tolerance 1e-12, both members as two columns.

Each runs in its own worker process (1 thread), interleaved, best of
``--repeat``; phases: start-up (imports and building H and the initial
states), propagation (time stepping) and observables; ``whole`` is the wall time
of the process. Accuracy: largest deviation of <S^z_i>(t) (all 8 spins, 51
times) and of the norm from a tight full-space Chebyshev solution (tolerance
1e-15, computed once).

    python benchmarks/fullspace_4p4.py [--repeat 3] [--skip qutip]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import HBAR, ROOT, record, run_worker, save  # noqa: E402

T_END, DT = 50.0, 1.0
TIMES = [n * DT for n in range(int(round(T_END / DT)) + 1)]
GEOM = dict(L=201, p0=43, n_p=4, spacer=4, n_a=4)
ENGINE_CFG = {"time": {"t_end": T_END, "dt_out": DT}}


# -- workers -----------------------------------------------------------------------
def _fullspace_setup():
    import numpy as np
    sys.path.insert(0, str(ROOT / "tests"))
    import reference as ref
    g = ref.Geometry(**GEOM)
    H = ref.hamiltonian(g).tocsr()
    psis, ws = ref.initial_ensemble(g)
    return np, ref, g, H, np.stack(psis, axis=1), np.array(ws)


def _fullspace_observables(np, g, states, ws):
    """<S^z_i>(t) and the norm from full-space states [t, n, member]."""
    N = g.N
    s = np.arange(2 ** N)
    sz = 1.0 - 2.0 * ((s[:, None] >> (N - 1 - np.arange(N))[None, :]) & 1)   # [s, i]
    prob = (np.abs(states) ** 2).reshape(len(states), 2 * g.L, 2 ** N, -1).sum(axis=1)
    prob = prob @ ws                                                          # [t, s]
    return prob @ sz, prob.sum(axis=1)


def chebyshev_fullspace(np, H, psi0, dt, n_steps, tol):
    """States at 0, dt, ..., n_steps dt by a Chebyshev expansion per step (CSR matvecs)."""
    from scipy.special import jv
    absrow = np.asarray(abs(H).sum(axis=1)).ravel()
    diag = H.diagonal().real
    lo, hi = float((diag - (absrow - abs(diag))).min()), float((diag + (absrow - abs(diag))).max())
    a, b = 0.5 * (hi + lo), 0.5 * (hi - lo)
    z = b * dt / HBAR
    k = np.arange(int(2 * z + 80))
    mag = np.abs(jv(k, z)) * np.where(k == 0, 1, 2)
    n = int(np.argmax(np.cumsum(mag[::-1])[::-1] < tol))
    c = ((-1j) ** k[:n]) * jv(k[:n], z) * np.where(k[:n] == 0, 1, 2)
    phase = np.exp(-1j * a * dt / HBAR)
    import scipy.sparse as sp
    Hs = ((H - a * sp.identity(H.shape[0], format="csr")) / b).tocsr()
    out = np.empty((n_steps + 1,) + psi0.shape, complex)
    psi = out[0] = psi0
    for step in range(n_steps):
        t0, t1 = psi.copy(), Hs @ psi
        acc = c[0] * t0 + c[1] * t1
        for ck in c[2:]:
            t0 *= -1
            t0 += 2 * (Hs @ t1)          # T_{k+1} = 2 H~ T_k - T_{k-1}, in place of T_{k-1}
            t0, t1 = t1, t0
            acc += ck * t1
        psi = out[step + 1] = phase * acc
    return out, n


def worker_engine(out):
    t0 = time.perf_counter()
    import numpy as np
    from spinvalve.config import load_config
    from spinvalve.simulate import Engine
    t1 = time.perf_counter()
    eng = Engine(load_config(ENGINE_CFG))
    t2 = time.perf_counter()
    ds = eng.run(log=None)
    t3 = time.perf_counter()
    save(out, import_=t1 - t0, setup=t2 - t1, propagation=eng.seconds["propagation"],
         observables=eng.seconds["observables"], run=t3 - t2,
         sz=ds["spin_expectation"].values[:, :, 2], norm=ds["norm"].values,
         terms=eng.states[0].propagator.n_terms)


def worker_expm(out):
    t0 = time.perf_counter()
    np, ref, g, H, psi0, ws = _fullspace_setup()
    from scipy.sparse.linalg import expm_multiply
    A = (H * (-1j / HBAR)).tocsr()
    t1 = time.perf_counter()
    states = np.empty((len(TIMES),) + psi0.shape, complex)
    states[0] = psi = psi0
    for n in range(1, len(TIMES)):  # one call per interval: faster here than start/stop/num
        states[n] = psi = expm_multiply(A * DT, psi)
    t2 = time.perf_counter()
    sz, norm = _fullspace_observables(np, g, states, ws)
    t3 = time.perf_counter()
    save(out, setup=t1 - t0, propagation=t2 - t1, observables=t3 - t2, sz=sz, norm=norm)


def worker_qutip(out):
    t0 = time.perf_counter()
    np, ref, g, H, psi0, ws = _fullspace_setup()
    import qutip
    Hq = qutip.Qobj(H / HBAR)
    kets = [qutip.Qobj(psi0[:, m].reshape(-1, 1)) for m in range(psi0.shape[1])]
    opts = {"store_states": True, "atol": 1e-12, "rtol": 1e-10, "nsteps": 10 ** 7,
            "progress_bar": False}
    t1 = time.perf_counter()
    res = [qutip.sesolve(Hq, k, TIMES, options=opts) for k in kets]
    t2 = time.perf_counter()
    states = np.stack([np.stack([s.full().ravel() for s in r.states]) for r in res], axis=2)
    sz, norm = _fullspace_observables(np, g, states, ws)
    t3 = time.perf_counter()
    save(out, setup=t1 - t0, propagation=t2 - t1, observables=t3 - t2, sz=sz, norm=norm)


def worker_cheb(out, tol=1e-12):
    t0 = time.perf_counter()
    np, ref, g, H, psi0, ws = _fullspace_setup()
    t1 = time.perf_counter()
    states, n_terms = chebyshev_fullspace(np, H, psi0, DT, len(TIMES) - 1, tol)
    t2 = time.perf_counter()
    sz, norm = _fullspace_observables(np, g, states, ws)
    t3 = time.perf_counter()
    save(out, setup=t1 - t0, propagation=t2 - t1, observables=t3 - t2, sz=sz, norm=norm,
         terms=n_terms)


def worker_exact(out):
    worker_cheb(out, tol=1e-15)


WORKERS = {"engine": worker_engine, "expm": worker_expm, "qutip": worker_qutip,
           "cheb": worker_cheb, "exact": worker_exact}


# -- parent ------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker")
    ap.add_argument("--out")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip", nargs="*", default=[])
    args = ap.parse_args()
    if args.worker:
        WORKERS[args.worker](args.out)
        return
    import numpy as np
    _, exact = run_worker(__file__, "exact")
    alts = [a for a in ("expm", "qutip", "cheb") if a not in args.skip]
    best: dict[str, dict] = {}
    results: dict[str, dict] = {}
    for rep in range(args.repeat):
        for name in ["engine"] + alts:
            wall, res = run_worker(__file__, name)
            res["whole"] = wall
            results[name] = res
            b = best.setdefault(name, {})
            for key in ("whole", "propagation", "observables"):
                b[key] = min(b.get(key, math.inf), float(res[key]))
            print(f"  repeat {rep}: {name:6s} whole {wall:7.2f} s, propagation "
                  f"{float(res['propagation']):7.3f} s", flush=True)
    acc = {}
    for name, res in results.items():
        acc[name] = {"sz": float(np.abs(res["sz"] - exact["sz"]).max()),
                     "norm": float(np.abs(res["norm"] - 1.0).max())}
    eng = best["engine"]
    rows = []
    print(f"\n4+4, L = 201, T = 0, 2 members, 0-{T_END:g} fs every {DT:g} fs "
          f"(engine: {int(results['engine']['terms'])} Chebyshev terms per step)")
    print(f"{'alternative':10s} {'prop. alt/eng':>14s} {'whole alt/eng':>14s} "
          f"{'alt error':>10s} {'eng error':>10s}  (engine prop {eng['propagation']:.3f} s, "
          f"whole {eng['whole']:.2f} s)")
    for name in alts:
        b = best[name]
        r_prop, r_whole = b["propagation"] / eng["propagation"], b["whole"] / eng["whole"]
        rows.append({"alternative": name, "propagation_ratio": r_prop, "whole_ratio": r_whole,
                     "alt_prop_s": b["propagation"], "alt_whole_s": b["whole"],
                     "alt_error_sz": acc[name]["sz"], "alt_norm_error": acc[name]["norm"]})
        print(f"{name:10s} {r_prop:14.1f} {r_whole:14.1f} {acc[name]['sz']:10.1e} "
              f"{acc['engine']['sz']:10.1e}")
    print(f"engine norm error {acc['engine']['norm']:.1e}; phases (best): "
          f"propagation {eng['propagation']:.3f} s, observables {eng['observables']:.3f} s, "
          f"whole {eng['whole']:.2f} s")
    p = record("fullspace_4p4", {"engine": {**eng, "error_sz": acc["engine"]["sz"],
                                            "norm_error": acc["engine"]["norm"]},
                                 "alternatives": rows, "repeat": args.repeat})
    print(f"wrote {p.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
