"""spinvalve: a current pulse entangling two distant ferromagnets in a spin valve.

Reproduces and extends Suresh et al., arXiv:2210.06634. Units: eV, fs, K,
lattice sites (0-based). See ``docs/physics.md`` for conventions.

Python API (e.g. from a notebook)::

    import spinvalve
    ds = spinvalve.run({"layers": {"n_p": 2, "n_a": 2}, "time": {"t_end": 20.0}})
    ds.log_negativity.plot()

:func:`run` runs one job of any family (closed, Gibbs, bath, tDMRG) and returns the
same ``xarray.Dataset`` that ``spinvalve simulate`` writes, with the same attributes
(``config``, versions, chain geometry), so ``ds.to_netcdf(...)`` gives a file
``spinvalve aggregate`` accepts.
"""

from __future__ import annotations

__version__ = "0.1.0"

HBAR = 0.6582119569  # eV fs
K_B = 8.617333262e-5  # eV / K

__all__ = ["run", "load_config", "HBAR", "K_B", "__version__"]


def load_config(source=None, overrides=()):
    """The validated job config (:func:`spinvalve.config.load_config`): a mapping, a
    YAML file or None (the paper's values), with ``dotted.key=value`` overrides."""
    from .config import load_config as _load
    return _load(source, overrides)


def run(config=None, overrides=(), *, output=None, log="stderr"):
    """Run one job and return its dataset (what ``spinvalve simulate`` writes).

    Parameters
    ----------
    config : mapping, path, JobConfig or None
        The job config (keys of config/README.md; omitted keys take the paper's
        values), a YAML file, an already validated ``JobConfig``, or None.
    overrides : sequence of str
        ``dotted.key=value`` overrides, as ``--set`` of the CLI.
    output : path, optional
        Also write the NetCDF file there (atomically); checkpoints then go to
        ``<output>.ckpt`` as with the CLI. Without it nothing is written, and there
        are checkpoints only if ``checkpoint.path`` is set.
    log : stream, "stderr" or None
        Progress lines (default: standard error; None: silent).

    Returns
    -------
    xarray.Dataset
        Coordinates, variables and attributes as the CLI's file (the resolved
        ``config`` YAML, package/PETSc/SLEPc versions, git revision, MPI ranks, chain
        geometry). Under MPI, every rank must call it; the bath family returns the
        dataset on rank 0 only (None elsewhere).

    Raises
    ------
    spinvalve.errors.SpinvalveError
        A bad config (ConfigError), an unwritable output, a failed run (InvariantError,
        ConvergenceError, ...).
    """
    import sys
    from .config import JobConfig
    from .simulate import check_resources, run_job
    cfg = config if isinstance(config, JobConfig) and not overrides else load_config(
        config.to_dict() if isinstance(config, JobConfig) else config, overrides)
    check_resources(cfg)
    if output is not None:
        from .io import check_writable
        check_writable(output)
    return run_job(cfg, output, log=sys.stderr if log == "stderr" else log)
