"""How the job was launched: the MPI rank count against what the batch system granted.

Under SLURM, ``srun -n N`` without working MPI wiring (a PMI plugin the MPI library
does not speak) starts N independent single-rank copies of the job. They would all
compute the whole job and share one checkpoint file. :func:`check_rank_count` turns
that into a clear error before any work.
"""

from __future__ import annotations

import os
from typing import Mapping

from .errors import LaunchError

#: Variables naming the number of ranks the launcher started, most specific first.
#: A launcher that started this process itself (mpiexec: OMPI_COMM_WORLD_SIZE, PMI_SIZE)
#: is authoritative; otherwise the SLURM step's, then the allocation's task count.
RANK_COUNT_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS")


def expected_rank_count(env: Mapping[str, str] | None = None) -> tuple[str, int] | None:
    """(variable, ranks) the launcher announced, or None outside any launcher.

    mpiexec's own variables win over SLURM's: under ``mpiexec`` inside an allocation
    the SLURM step variables describe mpiexec's daemons, not the ranks.
    """
    env = os.environ if env is None else env
    for var in RANK_COUNT_VARIABLES:
        value = env.get(var, "").strip()
        if value:
            try:
                return var, int(value.split("(")[0].split(",")[0])
            except ValueError:
                continue
    return None


def check_rank_count(size: int, expected: tuple[str, int] | None = None) -> None:
    """Raise :class:`LaunchError` if the launcher announced (``expected``, default
    :func:`expected_rank_count` of the environment now) a different rank count than
    the ``size`` of MPI's COMM_WORLD."""
    expected = expected_rank_count() if expected is None else expected
    if expected is None or expected[1] == size:
        return
    var, n = expected
    raise LaunchError(
        f"{var} = {n} but MPI COMM_WORLD has {size} rank{'s' if size != 1 else ''}: the launcher "
        f"started {n} independent copies of this job, which would all compute it and share one "
        "checkpoint; launch with MPI wiring (e.g. srun --mpi=pmix, or mpiexec -n "
        f"{n}), or ask for {size} task{'s' if size != 1 else ''}")
