"""Per-rank resource usage of a command: wall time, CPU time, peak resident memory.

Sizing data must measure the ranks, not the launcher: ``snakemake``'s
``benchmark:`` files under ``srun`` / ``mpiexec`` record the launcher process
(a few MB, no CPU time). The workflow therefore starts every rank through this
wrapper::

    srun -n 2 python -m spinvalve.usage results/benchmarks/ranks/closed/x.tsv -- \
        spinvalve simulate --config x.yaml --output x.nc

Each rank runs the command as its child (same environment, so MPI wires up
as usual), waits for it with ``os.wait4`` and appends one line to the TSV:
rank, host, wall_s, cpu_s (user + system of the child and its children),
max_rss_mb (peak resident set of the child, Linux ``ru_maxrss``), exit code.
The lines of the ranks are appended under an ``fcntl`` lock. The wrapper's
exit code is the child's (75 for a job that checkpointed on SIGUSR1), so
Snakemake's retries work as without it.

Signals: SIGTERM / SIGUSR1 / SIGINT reaching the wrapper are forwarded to the
child once. Under SLURM (``--signal=USR1@300``) slurmstepd signals every
process of the step, so the child also receives the signal directly; the
engine's handler only sets a flag, so a second delivery changes nothing.

Read the files with :func:`read_usage`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

COLUMNS = ("rank", "size", "host", "wall_s", "cpu_s", "max_rss_mb", "exit_code")

_RANK_VARS = ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID")
_SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS")


def _env_int(names, default: int) -> int:
    for name in names:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return default


def run(tsv: str | Path, cmd: list[str]) -> int:
    """Run ``cmd``, append this rank's usage line to ``tsv``, return its exit code."""
    rank, size = _env_int(_RANK_VARS, 0), _env_int(_SIZE_VARS, 1)
    t0 = time.monotonic()
    child = subprocess.Popen(cmd)
    forwarded: set[int] = set()

    def forward(signum, frame):  # once per signal: the child may also get it directly
        if signum not in forwarded and child.poll() is None:
            forwarded.add(signum)
            child.send_signal(signum)

    for s in (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT):
        signal.signal(s, forward)
    while True:
        try:
            _, status, ru = os.wait4(child.pid, 0)
            break
        except InterruptedError:  # pragma: no cover (PEP 475 retries)
            continue
    wall = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(status)
    child.returncode = code
    # ru_maxrss: kB on Linux; CPU of the child and every descendant it waited for
    line = "\t".join(str(v) for v in (
        rank, size, socket.gethostname(), f"{wall:.3f}", f"{ru.ru_utime + ru.ru_stime:.3f}",
        f"{ru.ru_maxrss / 1024:.1f}", code)) + "\n"
    path = Path(tsv)
    path.parent.mkdir(parents=True, exist_ok=True)
    import fcntl
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        if fh.tell() == 0:
            fh.write("\t".join(COLUMNS) + "\n")
        fh.write(line)
        fh.flush()
        fcntl.flock(fh, fcntl.LOCK_UN)
    return code if code >= 0 else 128 - code


def read_usage(tsv: str | Path) -> list[dict]:
    """The rows of a usage file (numbers converted), one per rank and attempt."""
    rows = []
    lines = Path(tsv).read_text().splitlines()
    for line in lines:
        parts = line.split("\t")
        if not line.strip() or parts[0] == "rank":
            continue
        row = dict(zip(COLUMNS, parts))
        for k in ("rank", "size", "exit_code"):
            row[k] = int(row[k])
        for k in ("wall_s", "cpu_s", "max_rss_mb"):
            row[k] = float(row[k])
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m spinvalve.usage USAGE.tsv -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    return run(argv[0], argv[2:])


if __name__ == "__main__":
    sys.exit(main())
