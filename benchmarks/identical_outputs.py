"""Bit-for-bit safety net: run small jobs of every family with this checkout, compare two output sets.

``python benchmarks/identical_outputs.py run DIR`` writes ``DIR/<job>.nc`` for the
jobs of ``JOBS`` (closed T = 0 2+2 and 3+3 on 1 and 2 ranks, blocking and measured
in turn; Gibbs; bath; tDMRG; a closed job stopped by SIGTERM after a checkpoint and
resumed) with the interpreter running this script; ``... compare REF NEW`` checks
every data variable and coordinate for exact equality and the attributes except
wall-clock timings, history and the git revision.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

CLOSED = {"chain": {"n_sites": 36},
          "layers": {"n_p": 2, "n_a": 2, "fm_p_start": 14, "spacer": 2},
          "time": {"t_end": 8.0, "dt_out": 1.0}}
CLOSED_3 = {"chain": {"n_sites": 40},
            "layers": {"n_p": 3, "n_a": 3, "fm_p_start": 14, "spacer": 2},
            "time": {"t_end": 6.0, "dt_out": 1.0}}
IN_TURN = {"parallel": {"ranks_per_member": 1}}
RESUMED = {"chain": {"n_sites": 90},
           "layers": {"n_p": 3, "n_a": 3, "fm_p_start": 30, "spacer": 2},
           "pulse": {"x0": 12.0}, "time": {"t_end": 30.0, "dt_out": 0.1},
           "checkpoint": {"interval": 1.0e-9}}

#: job name -> (MPI ranks, config mapping, stopped by SIGTERM after its first checkpoint and resumed)
JOBS = {
    "t0_2p2_r1": (1, CLOSED, False),
    "t0_2p2_r2_blocking": (2, CLOSED, False),
    "t0_2p2_r2_in_turn": (2, {**CLOSED, **IN_TURN}, False),
    "t0_3p3_r1": (1, CLOSED_3, False),
    "t0_3p3_r2_blocking": (2, CLOSED_3, False),
    "t0_3p3_r2_in_turn": (2, {**CLOSED_3, **IN_TURN}, False),
    "gibbs_2p2_r1": (1, {**CLOSED, "time": {"t_end": 6.0, "dt_out": 1.0},
                         "temperature": {"gibbs": 200.0, "weight_cutoff": 1e-3}}, False),
    "gibbs_2p2_r2_in_turn": (2, {**CLOSED, **IN_TURN, "time": {"t_end": 6.0, "dt_out": 1.0},
                                 "temperature": {"gibbs": 200.0, "weight_cutoff": 1e-3}}, False),
    "bath_r2": (2, {"chain": {"n_sites": 8}, "layers": {"n_p": 2, "n_a": 1, "fm_p_start": 3, "spacer": 1},
                    "pulse": {"x0": 1.0}, "time": {"t_end": 6.0, "dt_out": 1.0},
                    "bath": {"temperature": 100.0, "gamma": 0.01, "omega_max": 0.3},
                    "trajectories": {"count": 8, "seed": 11}}, False),
    "tdmrg_r1": (1, {"chain": {"n_sites": 16, "hopping": 1.0},
                     "layers": {"n_p": 2, "n_a": 2, "fm_p_start": 6, "spacer": 2},
                     "pulse": {"x0": 2.0}, "time": {"t_end": 3 * 0.6582119569, "dt_out": 0.6582119569},
                     "multi_electron": {"n_electrons": 2, "n_conf": 3}}, False),
    "resumed_3p3_r1": (1, RESUMED, True),
    "resumed_3p3_r2_in_turn": (2, {**RESUMED, **IN_TURN}, True),
}

#: attributes that differ between identical runs
VOLATILE = ("propagation_seconds", "observables_seconds", "wallclock_seconds",
            "trajectory_seconds_rank0", "wall_time_s", "history", "git_revision")
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMPI_MCA_rmaps_base_oversubscribe": "1"}


def _launch(job: Path, out: Path, ranks: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "spinvalve.cli", "simulate", "--config", str(job), "-o", str(out)]
    if ranks > 1:
        cmd = [shutil.which("mpiexec"), "-n", str(ranks), *cmd]
    return subprocess.Popen(cmd, env={**os.environ, **MPI_ENV}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def run(outdir: Path, only: list[str]) -> None:
    """Write ``outdir/<name>.nc`` for every job (``only``: those names)."""
    outdir.mkdir(parents=True, exist_ok=True)
    for name, (ranks, mapping, interrupt) in JOBS.items():
        if only and name not in only:
            continue
        job, out = outdir / f"{name}.yaml", outdir / f"{name}.nc"
        job.write_text(yaml.safe_dump(mapping))
        out.unlink(missing_ok=True)
        proc = _launch(job, out, ranks)
        if interrupt:
            meta = Path(str(out) + ".ckpt.meta")
            while not meta.exists():
                if proc.poll() is not None:
                    sys.exit(f"{name}: ended before its first checkpoint\n{proc.stderr.read()}")
                time.sleep(0.01)
            os.killpg(proc.pid, signal.SIGTERM)
            if proc.wait(timeout=300) == 0:  # 75 on one rank; mpiexec passes on 1 or the signal
                sys.exit(f"{name}: ended despite the stop signal\n{proc.stderr.read()}")
            proc = _launch(job, out, ranks)
        if proc.wait(timeout=1800) != 0:
            sys.exit(f"{name}: exit {proc.returncode}\n{proc.stderr.read()}")
        print(f"{name}: {out}", flush=True)


def compare(ref: Path, new: Path) -> int:
    """Number of jobs whose outputs differ; prints every difference."""
    import numpy as np
    import xarray as xr
    bad = 0
    for name in JOBS:
        a_path, b_path = ref / f"{name}.nc", new / f"{name}.nc"
        if not (a_path.exists() and b_path.exists()):
            print(f"{name}: missing in {ref if not a_path.exists() else new}")
            bad += 1
            continue
        a, b = xr.open_dataset(a_path).load(), xr.open_dataset(b_path).load()
        diffs = []
        for kind, names_a, names_b in (("variable", a.data_vars, b.data_vars),
                                       ("coordinate", a.coords, b.coords)):
            if set(names_a) != set(names_b):
                diffs.append(f"{kind}s {sorted(set(names_a) ^ set(names_b))} in one file only")
            for var in sorted(set(names_a) & set(names_b)):
                x, y = a[var], b[var]
                if x.dims != y.dims or x.shape != y.shape:
                    diffs.append(f"{var}: dims {x.dims}{x.shape} vs {y.dims}{y.shape}")
                elif not x.identical(y):
                    if x.attrs != y.attrs:
                        diffs.append(f"{var}: attributes {x.attrs} vs {y.attrs}")
                    if x.dtype.kind in "fc" and y.dtype.kind in "fc":
                        err = float(np.nanmax(np.abs(x.values - y.values), initial=0.0))
                        same_nan = np.array_equal(np.isnan(x.values), np.isnan(y.values))
                        if err or not same_nan or x.dtype != y.dtype:
                            diffs.append(f"{var}: max |difference| {err:.3e} ({x.dtype} vs {y.dtype})")
                    elif not np.array_equal(x.values, y.values):
                        diffs.append(f"{var}: values differ")
        attrs_a = {k: v for k, v in a.attrs.items() if k not in VOLATILE}
        attrs_b = {k: v for k, v in b.attrs.items() if k not in VOLATILE}
        for key in sorted(set(attrs_a) | set(attrs_b)):
            va, vb = attrs_a.get(key), attrs_b.get(key)
            if not np.array_equal(np.asarray(va), np.asarray(vb)):
                diffs.append(f"attribute {key}: {va!r} vs {vb!r}")
        bad += bool(diffs)
        print(f"{name}: " + ("identical" if not diffs else "DIFFERS\n  " + "\n  ".join(diffs)))
    return bad


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run the jobs with this interpreter's spinvalve")
    p_run.add_argument("outdir", type=Path)
    p_run.add_argument("--only", nargs="*", default=[], help="job names (default: all)")
    p_cmp = sub.add_parser("compare", help="compare two output sets")
    p_cmp.add_argument("ref", type=Path)
    p_cmp.add_argument("new", type=Path)
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.outdir, args.only)
        return 0
    return int(compare(args.ref, args.new) > 0)


if __name__ == "__main__":
    sys.exit(main())
