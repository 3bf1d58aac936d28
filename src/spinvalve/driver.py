"""The run loop of the closed-system solver: one output time after another, with the
stop flag, checkpoint cadence, progress lines and the invariant checks.

The solver (:class:`spinvalve.closed_system.Engine`) provides ``step()``,
``output_time(n, flags)`` (reduce and measure output time n; the summed
:class:`~spinvalve.transport.Flags` of what was finished), ``drain()``
(finish every output time in flight; raises when a check failed on any rank),
``save(checkpointer, n)``, ``failure``, ``world``, ``cfg`` and ``seconds``.
"""

from __future__ import annotations

import time as wallclock

import numpy as np

from .errors import Interrupted, InvariantError
from .progress import Progress
from .transport import Flags


def interrupted(t: float) -> Interrupted:
    """The error of a job stopped by the signal after its checkpoint at ``t`` fs."""
    return Interrupted(f"spinvalve: signal received, checkpoint written at t = {t} fs; rerun the "
                       "same command to resume")


def check_invariants(obs: dict, first: dict, t: float, tol: float) -> None:
    """Raise :class:`InvariantError` when the norm, total S^z (against ``first``), the
    energy (relative to ``first``) or rho_FM's hermiticity drifted beyond ``tol`` at ``t``."""
    checks = {
        "norm": (obs["norm"], abs(obs["norm"] - 1.0)),
        "sz_total": (obs["sz_total"], abs(obs["sz_total"] - first["sz_total"])),
        "energy": (obs["energy"], abs(obs["energy"] - first["energy"]) / max(1.0, abs(first["energy"]))),
        "hermiticity": (obs["hermiticity_error"], obs["hermiticity_error"]),
    }
    for name, (value, drift) in checks.items():
        if not np.isfinite(value) or drift > tol:
            raise InvariantError(f"invariant {name} drifted at t = {t:.4g} fs: value {value!r}, "
                                 f"drift {drift:.3e} > numerics.invariant_tolerance = {tol:.1e}")


def run_output_times(solver, first: int, start: int, log, checkpointer, stop) -> None:
    """Output times ``first`` ... ``time.n_out`` (a resumed run started after ``start``):
    step (not before output time 0), reduce and measure, report progress; a checkpoint
    when any rank's stop flag is raised or ``checkpoint.interval`` elapsed, raising
    :class:`Interrupted` after it on a stop."""
    n_out, dt = solver.cfg.time.n_out, solver.cfg.time.dt_out
    last_ckpt = wallclock.monotonic()
    progress = Progress(n_out, dt, log if solver.world.rank == 0 else None)
    for n in range(first, n_out + 1):
        if n:
            t_step = wallclock.monotonic()
            solver.step()
            solver.seconds["propagation"] += wallclock.monotonic() - t_step
        t_obs = wallclock.monotonic()
        flags = Flags(stop=stop is not None and stop.raised is not None,
                      checkpoint_due=(checkpointer is not None
                                      and t_obs - last_ckpt > checkpointer.interval),
                      failed=solver.failure is not None)
        summed = solver.output_time(n, flags)
        solver.seconds["observables"] += wallclock.monotonic() - t_obs
        progress.update(n, start)
        if summed.failed:
            solver.drain()  # raises on every rank
        if checkpointer is not None and n < n_out and (summed.stop or summed.checkpoint_due):
            solver.drain()
            solver.save(checkpointer, n)
            last_ckpt = wallclock.monotonic()
            if summed.stop:
                raise interrupted(n * dt)
