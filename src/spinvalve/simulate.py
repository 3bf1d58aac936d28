"""One job of any family: dispatch to its solver, record the geometry, write the NetCDF file.

The closed-system solver (T = 0 and Gibbs ensembles) is
:class:`spinvalve.closed_system.Engine`, the baths' trajectories
:func:`spinvalve.opensystem.run_open`, multi-electron pulses
:func:`spinvalve.tdmrg.run_tdmrg`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import xarray as xr

from . import kernels
from .checkpoint import Checkpointer, StopFlag
from .closed_system import Engine, estimate_memory_gb
from .config import JobConfig
from .errors import LaunchError
from .io import provenance, write_dataset
from .schema import variable

__all__ = ["Engine", "run_job", "check_resources", "with_geometry", "reflection_warning",
           "checkpoint_base"]


def check_resources(cfg: JobConfig) -> None:
    """Refuse a job whose states cannot fit in ``parallel.memory_limit_gb`` (before it starts)."""
    from .config import ConfigError
    if cfg.multi_electron is not None or cfg.bath is not None:
        return
    need = estimate_memory_gb(cfg)
    if need > cfg.parallel.memory_limit_gb:
        raise ConfigError(f"parallel.memory_limit_gb: the job needs about {need:.1f} GB for its "
                          f"states, more than the limit of {cfg.parallel.memory_limit_gb} GB "
                          "(fewer spins, a shorter chain, or raise the limit)")


def with_geometry(ds: xr.Dataset, cfg: JobConfig) -> xr.Dataset:
    """Record the whole chain and its chain-end reflection time (every family's output)."""
    geo = cfg.geometry
    ds["reflection_time"] = variable("every", "reflection_time", geo.reflection_time)
    ds.attrs.update(chain_sites=geo.n_sites, lead_sites_left=geo.lead_left,
                    lead_sites_right=geo.lead_right)
    return ds


def reflection_warning(cfg: JobConfig) -> str | None:
    """A warning when chain-end reflections reach the layers inside the simulated window."""
    t_r = cfg.geometry.reflection_time
    if t_r >= cfg.time.t_end:
        return None
    hint = "" if cfg.multi_electron is not None else " (chain.leads: auto adds lead sites)"
    return (f"spinvalve: warning: amplitude reflected by a chain end can reach the layers from "
            f"t = {t_r:.1f} fs < time.t_end = {cfg.time.t_end:g} fs; later changes of the "
            f"observables are the finite chain's{hint}")


def checkpoint_base(cfg: JobConfig, output: str | Path | None) -> Path | None:
    """``checkpoint.path``, else ``<output>.ckpt``; None without either (no checkpoints)."""
    if cfg.checkpoint.path:
        return Path(cfg.checkpoint.path)
    return None if output is None else Path(str(output) + ".ckpt")


def run_job(cfg: JobConfig, output: str | Path | None, log=sys.stderr) -> xr.Dataset:
    """Run one job of any family and write its NetCDF file (rank 0) atomically.

    ``output`` None: nothing is written (the Python API, :func:`spinvalve.run`).
    Returns the dataset (the bath family: on rank 0, None elsewhere). Resumes from a checkpoint of the same config next to
    the output or at ``checkpoint.path`` (a stale one, from another config, is moved
    aside; neither given: no checkpoints); SIGTERM or SIGUSR1 writes a checkpoint and
    raises :class:`~spinvalve.errors.Interrupted` (exit status 75). Multi-electron
    (tDMRG) jobs run on one MPI rank (TeNPy threads through BLAS).
    """
    from mpi4py import MPI
    from slepc4py import SLEPc  # noqa: F401  (initialise SLEPc on every rank: its finalize is collective)
    kernels.allow_mmap_malloc()
    world = MPI.COMM_WORLD
    base = checkpoint_base(cfg, output)
    if cfg.multi_electron is not None:
        if world.size > 1:
            raise LaunchError(f"multi_electron: a tDMRG job runs on one MPI rank, this run has "
                              f"{world.size}; start it without mpiexec/srun -n (TeNPy uses "
                              "BLAS threads)")
        from .tdmrg import run_tdmrg
        ckpt = Checkpointer(base, cfg, MPI.COMM_SELF, log=log) if base is not None else None
        with StopFlag() as stop:
            ds = run_tdmrg(cfg, checkpointer=ckpt, stop=stop, log=log)
    elif cfg.bath is not None:
        from .opensystem import run_open
        ckpt = Checkpointer(base, cfg, world, log=log) if base is not None else None
        with StopFlag() as stop:
            ds = run_open(cfg, world, log=log, checkpointer=ckpt, stop=stop)
    else:
        ckpt = Checkpointer(base, cfg, world, log=log) if base is not None else None
        with StopFlag() as stop:
            ds = Engine(cfg, world).run(log=log, checkpointer=ckpt, stop=stop)
    if ds is not None:
        ds = with_geometry(ds, cfg)
        ds.attrs.update(provenance(cfg, world.size))
    if world.rank == 0 and output is not None:
        write_dataset(ds, output)
    if ckpt is not None:
        ckpt.remove()
    world.Barrier()
    return ds
