#!/usr/bin/env python3
"""Cluster status command for Snakemake's cluster-generic executor on SLURM.

Usage (set by workflow/profiles/cluster-generic/config.yaml):

    slurm_status.py JOBID        # prints exactly one of: running, success, failed

Works without an accounting database: asks slurmctld with ``squeue --states=all``
(finished jobs stay there for MinJobAge seconds) and falls back to
``scontrol show job`` and then, only if present and working, ``sacct``.
Only the standard library is used, so any python3 can run it.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

RUNNING = {
    "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED",
    "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING", "SIGNALING", "STAGE_OUT",
    "STOPPED", "RESV_DEL_HOLD", "SPECIAL_EXIT", "POWER_UP_NODE", "UPDATE_DB",
}
SUCCESS = {"COMPLETED"}
FAILED = {
    "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
    "DEADLINE", "PREEMPTED", "REVOKED",
}

ATTEMPTS = 4
TIMEOUT_S = 20


def _run(cmd: list[str]) -> tuple[int, str, str]:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 255, "", str(exc)
    return p.returncode, p.stdout, p.stderr


def _classify(state: str) -> str | None:
    # "CANCELLED by 0" -> CANCELLED; "COMPLETED+" -> COMPLETED
    state = re.split(r"[\s+]", state.strip().upper(), maxsplit=1)[0] if state.strip() else ""
    if state in SUCCESS:
        return "success"
    if state in FAILED:
        return "failed"
    if state in RUNNING:
        return "running"
    return None


def query(jobid: str) -> tuple[str | None, bool]:
    """Return (status or None, controller_reachable)."""
    rc, out, err = _run(["squeue", "--noheader", "--states=all", "--jobs", jobid,
                         "--format=%T"])
    if rc == 0:
        lines = [line for line in out.splitlines() if line.strip()]
        if lines:
            return _classify(lines[0]), True
    elif "Invalid job id" not in err:
        return None, False  # controller not reachable: try again
    # Not (or no longer) known to squeue: ask scontrol (same controller data).
    rc, out, err = _run(["scontrol", "show", "job", jobid])
    if rc == 0:
        m = re.search(r"JobState=(\S+)", out)
        if m:
            return _classify(m.group(1)), True
    # Last resort: accounting, if the site has it.
    rc, out, err = _run(["sacct", "-X", "-n", "-P", "-j", jobid, "-o", "State"])
    if rc == 0 and out.strip() and "disabled" not in out:
        return _classify(out.splitlines()[0]), True
    return None, True


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    # sbatch --parsable prints "JOBID" or "JOBID;CLUSTER"
    jobid = argv[1].strip().split(";")[0]
    status = None
    for attempt in range(ATTEMPTS):
        status, reachable = query(jobid)
        if status is not None:
            break
        if attempt + 1 < ATTEMPTS:
            time.sleep(2 ** attempt)  # 1, 2, 4 s
    if status is None:
        if not reachable:
            # The controller did not answer: keep waiting rather than failing
            # a job that may still be running.
            print(f"slurm_status.py: slurmctld unreachable for job {jobid}", file=sys.stderr)
            status = "running"
        else:
            # Unknown job (purged after MinJobAge, or never existed).
            print(f"slurm_status.py: job {jobid} unknown to squeue/scontrol/sacct",
                  file=sys.stderr)
            status = "failed"
    print(status)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
