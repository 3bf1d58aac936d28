"""Shared pieces of the benchmarks: worker subprocesses, best-of-n timing, machine line.

Every benchmark runs the engine and its alternatives as separate worker
processes of the same script (``--worker NAME``), interleaved and repeated, on
identical inputs; each worker writes its phase timings and observables to a
``.npz`` file that the parent compares. The parent measures the wall time of
the whole worker process (interpreter start-up and imports included).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HBAR = 0.6582119569


def worker_env(threads: int = 1) -> dict:
    """Environment of a worker: ``threads`` BLAS/OpenMP/numba threads, OpenBLAS core type unset.

    OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE (set on some hosts for old OpenBLAS builds)
    slow a current numpy; both are dropped together, in the workers only.
    """
    env = dict(os.environ)
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        env.pop(k, None)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "SPINVALVE_THREADS",
              "NUMBA_NUM_THREADS"):
        env[k] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests"),
                                         env.get("PYTHONPATH", "")])
    return env


def run_worker(script: str, name: str, extra: list[str] | None = None, threads: int = 1,
               timeout: float = 3600) -> tuple[float, dict]:
    """Run ``script --worker name``; return (process wall time, its result dict)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "res.npz"
        cmd = [sys.executable, script, "--worker", name, "--out", str(out)] + (extra or [])
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=worker_env(threads), capture_output=True, text=True,
                              timeout=timeout)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"worker {name} failed:\n{proc.stdout}\n{proc.stderr}")
        with np.load(out, allow_pickle=False) as f:
            res = {k: f[k] for k in f.files}
    return wall, res


def save(out: str, **arrays) -> None:
    np.savez(out, **{k: np.asarray(v) for k, v in arrays.items()})


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def today() -> str:
    return datetime.date.today().isoformat()


def record(name: str, payload: dict) -> Path:
    """Write the latest figures of one benchmark to benchmarks/results/NAME.json."""
    d = ROOT / "benchmarks" / "results"
    d.mkdir(exist_ok=True)
    payload = {"benchmark": name, "machine": machine(), "date": today(), **payload}
    p = d / f"{name}.json"
    p.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    return p


def stream_copy_rate(n_bytes: int, repeats: int = 3) -> float:
    """STREAM-like copy b[:] = a[:] of ``n_bytes``: bytes moved (read + write) per second."""
    a = np.ones(n_bytes // 8)
    b = np.empty_like(a)
    np.copyto(b, a)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t)
    return 2 * a.nbytes / best
