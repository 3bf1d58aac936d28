"""Issue 18: the cost model's prediction against measured jobs, side by side in one run.

    python benchmarks/cost_check.py                       # every job below (about 15-25 min)
    python benchmarks/cost_check.py --only quick-closed   # a name prefix selects jobs
    python benchmarks/cost_check.py --list

Jobs: every job of the quick config (config/config.yaml, ``sweeps.all_jobs``: closed,
boundary, Gibbs, bath batches, tDMRG) at the ranks / BLAS threads the workflow gives them,
a 6+6 and a 7+7 closed T = 0 job (0-2.5 fs every 0.5 fs at 2 ranks, a member split over
both as closed jobs run) and a tDMRG N_e = 4 job (the quick one). Each job runs as the
workflow's rule runs it: ``mpiexec -n R python -m spinvalve.usage TSV -- spinvalve simulate``
(every rank records its wall / CPU time and peak RSS).

The comparison is predicted wall time against the measured CPU time of the busiest rank:
the model predicts a dedicated core, and on a shared machine CPU time is what a dedicated
core would have taken (an MPI rank waiting for another polls, so its CPU time ~ its
wall time on a dedicated core). The load average before and after each job is printed
with it; wall time is listed too. Also the components: predicted propagation and
measurement against the engine's ``propagation_seconds`` / ``observables_seconds`` of rank
0 (wall, scaled by rank 0's CPU / wall ratio).

Output: a markdown table on stdout, the rows as JSON in benchmarks/results/cost_check.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from spinvalve import cost  # noqa: E402
from spinvalve.config import load_config  # noqa: E402
from spinvalve.pipeline import cluster, sweeps  # noqa: E402
from spinvalve.usage import read_usage  # noqa: E402


def env(threads: int) -> dict:
    e = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        e[k] = str(threads)
    e["PATH"] = str(Path(sys.executable).parent) + os.pathsep + e.get("PATH", "")
    e.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    e.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    e.setdefault("OMPI_MCA_rmaps_base_oversubscribe", "1")
    # a rank waiting for its partner gives the core away instead of spinning: on a shared
    # machine its CPU time then stays near what a dedicated core would have taken
    e.setdefault("OMPI_MCA_mpi_yield_when_idle", "1")
    return e


def extra_jobs() -> list[tuple[str, dict, int, int]]:
    """(name, job mapping, ranks, threads) of the jobs beyond the quick config."""
    base = {"chain": {"leads": "auto"}, "time": {"t_end": 2.5, "dt_out": 0.5}}
    out = []
    for n in (6, 7):
        out.append((f"closed {n}+{n} T=0 0-2.5 fs", {**base, "layers": {"n_p": n, "n_a": n}}, 2, 1))
    return out


def all_checks() -> list[tuple[str, dict, int, int]]:
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    rows = []
    for (fam, params), job in sorted(sweeps.all_jobs(config).items()):
        res = cluster.resources(config, fam, job)
        rows.append((f"quick-{fam} {params}", job.mapping, res["ranks"], res["threads"]))
    return rows + extra_jobs()


def run(tmp: Path, name: str, mapping: dict, ranks: int, threads: int) -> dict:
    import xarray as xr
    stem = tmp / name.replace(" ", "_").replace("/", "_").replace("~", "-").replace("+", "p")
    cfg_path, out, tsv = stem.with_suffix(".yaml"), stem.with_suffix(".nc"), stem.with_suffix(".tsv")
    cfg_path.write_text(yaml.safe_dump(mapping))
    cmd = [sys.executable, "-m", "spinvalve.usage", str(tsv), "--", "spinvalve", "simulate",
           "--config", str(cfg_path), "--output", str(out)]
    if ranks > 1:
        cmd = ["mpiexec", "-n", str(ranks)] + cmd
    load0 = os.getloadavg()[0]
    t = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env(threads))
    wall = time.monotonic() - t
    load1 = os.getloadavg()[0]
    if proc.returncode != 0:
        raise RuntimeError(f"{name}: {proc.stderr[-3000:]}")
    use = read_usage(tsv)
    r0 = min(use, key=lambda u: u["rank"])
    with xr.open_dataset(out) as ds:
        attrs = dict(ds.attrs)
    ratio0 = min(1.0, r0["cpu_s"] / max(r0["wall_s"], 1e-9))
    return {"cpu_s": max(u["cpu_s"] for u in use), "wall_s": max(u["wall_s"] for u in use),
            "launcher_wall_s": wall, "rss_mb": max(u["max_rss_mb"] for u in use),
            "prop_s": float(attrs.get("propagation_seconds", attrs.get("trajectory_seconds_rank0", 0.0)))
            * ratio0, "obs_s": float(attrs.get("observables_seconds", 0.0)) * ratio0,
            "load": f"{load0:.1f}-{load1:.1f}"}


def term_10p10(c) -> dict:
    """One Chebyshev term on a dense 10+10 state (70.9 M amplitudes at L = 201, here with
    leads for 0-12 fs) against cost.term_seconds (CPU seconds, best of 3)."""
    load0 = os.getloadavg()[0]
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "_term_bench.py"), "10"],
                         capture_output=True, text=True, check=True,
                         env={**env(1), "PYTHONPATH": str(ROOT / "src")})
    b = json.loads(out.stdout.splitlines()[-1])["10"]
    pred = cost.term_seconds(b["amplitudes"], c)
    row = {"job": f"10+10 one Chebyshev term (dense state, {b['amplitudes'] / 1e6:.1f} M amplitudes)",
           "ranks": 1, "threads": 1, "pred_wall_s": pred, "cpu_s": b["term_s"],
           "ratio": pred / b["term_s"], "load": f"{load0:.1f}-{os.getloadavg()[0]:.1f}"}
    print(f"| {row['job']} | 1 | {pred:.3f} | {b['term_s']:.3f} | **{row['ratio']:.2f}** | | "
          f"{row['load']} | | | | |", flush=True)
    return row


def render(first: str, repeat: str | None = None) -> str:
    """Markdown table of a run (benchmarks/README.md, "Cost model"), with a repeat's ratios."""
    rows = json.loads(Path(first).read_text())["rows"]
    again = {r["job"]: r for r in json.loads(Path(repeat).read_text())["rows"]} if repeat else {}
    head = ["job", "ranks", "predicted s", "measured CPU s", "ratio", "load"]
    if again:
        head += ["repeat: predicted / measured s", "ratio", "load"]
    head += ["pred. prop / meas. s", "measured prop / obs s (rank 0)", "pred. MB/rank",
             "peak RSS MB"]
    out = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        name = r["job"].replace("quick-", "quick ").replace("spins_per_layer~", "N/2=")
        name = name.replace("/omega_max~0.01", "")
        cells = [name, str(r["ranks"]), f"{r['pred_wall_s']:.3g}", f"{r['cpu_s']:.3g}",
                 f"**{r['ratio']:.2f}**", r["load"]]
        if again:
            a = again.get(r["job"])
            cells += ([f"{a['pred_wall_s']:.3g} / {a['cpu_s']:.3g}", f"**{a['ratio']:.2f}**",
                       a["load"]] if a else ["", "", ""])
        if "pred_prop_s" in r:
            cells += [f"{r['pred_prop_s']:.1f} / {r['pred_meas_s']:.1f}",
                      f"{r['prop_s']:.1f} / {r['obs_s']:.1f}", f"{r['pred_mem_mb']:.0f}",
                      f"{r['rss_mb']:.0f}"]
        else:
            cells += ["", "", "", ""]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated name prefixes")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--render", nargs="+", metavar="JSON",
                    help="print the table of earlier runs' JSON files (a repeat: ratio and load "
                         "columns of the second file beside the first)")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "cost_check.json"))
    args = ap.parse_args()
    if args.render:
        print(render(*args.render))
        return 0
    checks = all_checks()
    if args.only:
        pre = [p.strip() for p in args.only.split(",") if p.strip()]
        checks = [c for c in checks if any(c[0].startswith(p) for p in pre)]
    if args.list:
        for name, _, r, t in checks:
            print(f"{name}\t{r} ranks\t{t} threads")
        return 0
    c = cost.load_constants()
    rows = []
    head = ("| job | ranks | predicted s | measured CPU s (busiest rank) | ratio | wall s | "
            "load (1 min) | pred. prop / meas. s | measured prop / obs s (rank 0) | "
            "pred. MB/rank | peak RSS MB |")
    print(head + "\n|" + " --- |" * 11, flush=True)
    with tempfile.TemporaryDirectory() as d:
        # warm-up, not counted: numba's on-disk kernel cache of a fresh install
        run(Path(d), "warm-up", {"chain": {"leads": "auto"}, "layers": {"n_p": 1, "n_a": 1},
                                 "time": {"t_end": 1.0, "dt_out": 0.5}}, 2, 1)
        for name, mapping, ranks, threads in checks:
            p = cost.predict(load_config(mapping), ranks, threads, c)
            m = run(Path(d), name, mapping, ranks, threads)
            row = {"job": name, "ranks": ranks, "threads": threads, "pred_wall_s": p.wall_s,
                   "pred_prop_s": p.propagation_s, "pred_meas_s": p.measurement_s,
                   "pred_startup_s": p.startup_s, "pred_mem_mb": p.mem_mb, **m,
                   "ratio": p.wall_s / m["cpu_s"]}
            rows.append(row)
            print(f"| {name} | {ranks} | {p.wall_s:.1f} | {m['cpu_s']:.1f} | **{row['ratio']:.2f}** | "
                  f"{m['wall_s']:.1f} | {m['load']} | {p.propagation_s:.1f} / {p.measurement_s:.1f} | "
                  f"{m['prop_s']:.1f} / {m['obs_s']:.1f} | {p.mem_mb:.0f} | {m['rss_mb']:.0f} |",
                  flush=True)
    if not args.only or "10+10".startswith(args.only) or "term" in args.only:
        rows.append(term_10p10(c))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"machine": c["machine"], "rows": rows}, indent=1))
    out = [r for r in rows if not (1 / 1.5 <= r["ratio"] <= 1.5)]
    print(f"\n{len(rows) - len(out)} of {len(rows)} jobs within 1.5x; outside: "
          + (", ".join(f"{r['job']} ({r['ratio']:.2f})" for r in out) or "none"), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
