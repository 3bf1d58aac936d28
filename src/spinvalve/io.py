"""NetCDF output: one self-describing xarray Dataset per job, written atomically."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import xarray as xr

from . import __version__
from .config import JobConfig
from .errors import OutputError


def git_revision() -> str:
    """The source tree's git revision, or 'unknown' outside a checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=Path(__file__).parent, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(cfg: JobConfig | None, n_ranks: int) -> dict:
    """Attributes every job file carries: config, versions, rank count."""
    attrs = {"spinvalve_version": __version__, "git_revision": git_revision(),
             "mpi_ranks": int(n_ranks)}
    if cfg is not None:
        attrs["config"] = cfg.to_yaml()
    try:
        from petsc4py import PETSc
        from slepc4py import SLEPc
        attrs["petsc_version"] = ".".join(map(str, PETSc.Sys.getVersion()))
        attrs["slepc_version"] = ".".join(map(str, SLEPc.Sys.getVersion()))
    except ImportError:  # pragma: no cover - PETSc is a hard requirement of the engine
        pass
    if cfg is not None and cfg.multi_electron is not None:
        import tenpy
        attrs["tenpy_version"] = tenpy.__version__
    return attrs


def check_writable(path: str | Path) -> Path:
    """Fail early (before any computation) if ``path`` cannot be written."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create directory {parent} ({exc.strerror})") from exc
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{path}: directory {parent} is not writable")
    if path.exists() and path.is_dir():
        raise OutputError(f"{path}: is a directory")
    return path


def umask() -> int:
    """The process umask (read without changing it where /proc tells it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # no other way to read it: set and restore at once
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode ``open()`` gives a new file: ``0o666 & ~umask``."""
    return 0o666 & ~umask()


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it gets the mode of a file
    created with the umask (not mkstemp's 0600, so co-workers sharing a project
    directory can read results) and is renamed onto ``path``; on failure it is removed
    and any previous file at ``path`` is left untouched."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix + ".tmp",
                               dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_dataset(ds: xr.Dataset, path: str | Path) -> Path:
    """Write ``ds`` to ``path`` atomically (:func:`atomic_output`: temporary file in the
    same directory, mode from the umask, then rename).

    Complex variables are split into ``<name>_real`` / ``<name>_imag``. A failure
    leaves any previous file at ``path`` untouched and removes the temporary file.
    """
    path = check_writable(path)
    out = ds.copy()
    for name in list(out.data_vars):
        var = out[name]
        if np.iscomplexobj(var.values):
            attrs = dict(var.attrs)
            out[f"{name}_real"] = var.real.assign_attrs(attrs, long_name=f"{attrs.get('long_name', name)} (real part)")
            out[f"{name}_imag"] = var.imag.assign_attrs(attrs, long_name=f"{attrs.get('long_name', name)} (imaginary part)")
            out = out.drop_vars(name)
    try:
        with atomic_output(path) as tmp:
            out.to_netcdf(tmp, engine="netcdf4")
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"{path}: writing failed ({exc})") from exc
    return path
