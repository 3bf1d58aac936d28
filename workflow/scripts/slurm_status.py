#!/usr/bin/env python3
"""Cluster status command for Snakemake's cluster-generic executor on SLURM.

Usage (set by workflow/profiles/cluster-generic/config.yaml):

    slurm_status.py JOBID        # prints exactly one of: running, success, failed

Asks ``sacct`` first where it exists and accounting works (it keeps finished
jobs, with TIMEOUT / OUT_OF_MEMORY reasons, for good); without an accounting
database (sacct missing, or "Slurm accounting storage is disabled", or the job
not (yet) recorded) it asks slurmctld with ``squeue --states=all`` (finished
jobs stay there for MinJobAge seconds: keep MinJobAge >= 120) and then
``scontrol show job``. A failed job's state goes to stderr (Snakemake's log).
Only the standard library is used, so any python3 can run it.
"""

from __future__ import annotations

import re
import shutil
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


def _sacct(jobid: str) -> str | None:
    """The job's state from accounting, or None where sacct is absent or does not know it."""
    if shutil.which("sacct") is None:
        return None
    rc, out, err = _run(["sacct", "-X", "-n", "-P", "-j", jobid, "-o", "State"])
    if rc != 0 or "disabled" in (out + err).lower():
        return None
    lines = [line for line in out.splitlines() if line.strip()]
    return lines[0].strip() if lines else None


def query(jobid: str) -> tuple[str | None, bool]:
    """Return (status or None, controller_reachable)."""
    state = _sacct(jobid)
    if state is not None and _classify(state) is not None:
        if _classify(state) == "failed":
            print(f"slurm_status.py: job {jobid}: {state} (sacct)", file=sys.stderr)
        return _classify(state), True
    rc, out, err = _run(["squeue", "--noheader", "--states=all", "--jobs", jobid,
                         "--format=%T"])
    if rc == 0:
        lines = [line for line in out.splitlines() if line.strip()]
        if lines:
            if _classify(lines[0]) == "failed":
                print(f"slurm_status.py: job {jobid}: {lines[0].strip()} (squeue)",
                      file=sys.stderr)
            return _classify(lines[0]), True
    elif "Invalid job id" not in err:
        return None, False  # controller not reachable: try again
    # Not (or no longer) known to squeue: ask scontrol (same controller data).
    rc, out, err = _run(["scontrol", "show", "job", jobid])
    if rc == 0:
        m = re.search(r"JobState=(\S+)", out)
        if m:
            return _classify(m.group(1)), True
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
