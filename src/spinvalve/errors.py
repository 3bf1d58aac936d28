"""Every error the ``spinvalve`` command line reports, in one hierarchy.

The CLI prints any :class:`SpinvalveError` as one line, ``spinvalve: error: <message>``,
and exits with the class's :attr:`~SpinvalveError.exit_code`: 2 for bad input found before
any computation (config, output path, launch), 1 for a run that failed (invariant drift,
non-convergence, an unusable checkpoint). Messages name the offending config key or file.
Each class also derives from the built-in exception it refines (``ValueError``,
``RuntimeError``, ``OSError``), so callers catching those keep working.

A stop on SIGTERM/SIGUSR1 is not an error: :class:`Interrupted` (exit status 75,
``EX_TEMPFAIL``: "rerun the same command to resume").

This module imports nothing from the package, so every module can import it.
"""

from __future__ import annotations

#: Exit status of a job stopped by SIGTERM/SIGUSR1 after writing its checkpoint.
EXIT_RESUMABLE = 75


class SpinvalveError(Exception):
    """Base class of every error the CLI reports as one line."""

    exit_code = 1


# -- bad input: exit status 2, before any computation ---------------------------------

class ConfigError(SpinvalveError, ValueError):
    """A configuration value is unknown, mistyped, out of range or inconsistent."""

    exit_code = 2


class OutputError(SpinvalveError, OSError):
    """The output file cannot be written (path, permissions, disk full)."""

    exit_code = 2


class LaunchError(SpinvalveError, RuntimeError):
    """The job was launched wrongly (e.g. MPI ranks differ from what SLURM granted)."""

    exit_code = 2


class PipelineConfigError(SpinvalveError, ValueError):
    """The workflow config is malformed; the message names the offending key."""

    exit_code = 2


class AggregationError(SpinvalveError, ValueError):
    """Job files do not fit together (missing variable, duplicate sweep point)."""

    exit_code = 2


class PlotError(SpinvalveError, ValueError):
    """The dataset cannot be drawn (unknown figure or time unit)."""

    exit_code = 2


class CombineError(SpinvalveError, ValueError):
    """Trajectory slices that cannot be combined (different problems or overlapping indices)."""

    exit_code = 2


# -- failed runs: exit status 1 --------------------------------------------------------

class CheckpointError(SpinvalveError, RuntimeError):
    """A checkpoint exists but cannot be used for this job (e.g. another MPI rank count)."""


class InvariantError(SpinvalveError, RuntimeError):
    """A conserved quantity (norm, N, S^z_tot, energy, trace, hermiticity) drifted
    beyond ``numerics.invariant_tolerance``."""


class ConvergenceError(SpinvalveError, RuntimeError):
    """An iterative solver (the tDMRG ground state) did not converge."""


class PropagationError(SpinvalveError, RuntimeError):
    """A propagator did not converge or produced a non-finite state."""


class SeriesError(SpinvalveError, ValueError):
    """The Eq. 18 series is undefined (T_bb = 0: sqrt(J) is not analytic at 0)."""


class Interrupted(SystemExit):
    """SIGTERM/SIGUSR1 arrived: a checkpoint was written and the job stops (exit 75)."""

    def __init__(self, message: str):
        super().__init__(EXIT_RESUMABLE)
        self.message = message


__all__ = ["EXIT_RESUMABLE", "SpinvalveError", "ConfigError", "OutputError", "LaunchError",
           "PipelineConfigError", "AggregationError", "PlotError", "CombineError",
           "CheckpointError", "InvariantError", "ConvergenceError", "PropagationError",
           "SeriesError", "Interrupted"]
