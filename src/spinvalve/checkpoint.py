"""Checkpoints of a running job, the same for every family (closed, Gibbs, bath, tDMRG).

Layout next to the output (or at ``checkpoint.path``)::

    <base>.meta                 pickle: config hash, rank count, step, records (rank 0)
    <base>.s<step>.r<rank>.npz  this rank's arrays at that step (and its pickled ``extra``)

``records`` is whatever the family needs on rank 0 to resume (observables so far, an
MPS, ...); ``arrays`` are this rank's large arrays (member states, sums); ``extra`` is
a small picklable object per rank (e.g. an output time whose measurement was
interrupted, see docs/physics.md, "Checkpoints").

Every file is written under a temporary name and renamed; the meta file is renamed
last, after a barrier, so it only ever points at complete state files. Files are
created with the process umask (mode ``0o666 & ~umask``).

The config hash covers every key but ``checkpoint.*`` and ``parallel.*``. A checkpoint
of a different config (a leftover after a config edit), or one that cannot be read, is
*stale*: it is moved aside to ``<base>.stale-<timestamp>.*`` (never deleted) with a
one-line message, and the job starts afresh. A checkpoint written with another layout of
the states over the ranks (number of MPI ranks, ``parallel.ranks_per_member``) is refused
with :class:`~spinvalve.errors.CheckpointError` (resume it with that layout, or move it
away to discard it).

:class:`StopFlag` turns SIGTERM / SIGUSR1 (what SLURM sends before the time limit) into
a flag every family polls; a family that sees it writes a checkpoint and raises
:class:`~spinvalve.errors.Interrupted` (exit status 75).
"""

from __future__ import annotations

import glob
import hashlib
import os
import pickle
import re
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .config import Checkpoint, JobConfig, Parallel
from .errors import EXIT_RESUMABLE, CheckpointError, Interrupted

__all__ = ["Checkpointer", "Saved", "StopFlag", "config_hash", "CheckpointError", "Interrupted",
           "EXIT_RESUMABLE"]


def config_hash(cfg: JobConfig) -> str:
    """Hash of everything that determines the numbers (the checkpoint and parallel sections
    excluded: where a checkpoint lives and how the ranks share the work do not)."""
    return hashlib.sha256(replace(cfg, checkpoint=Checkpoint(), parallel=Parallel())
                          .to_yaml().encode()).hexdigest()


class Saved(NamedTuple):
    """What :meth:`Checkpointer.load` returns."""

    step: int
    records: Any          # the records rank 0 saved (on every rank)
    arrays: list          # this rank's arrays
    extra: Any            # this rank's extra object (None if none was saved)


_EXTRA = "extra"


class Checkpointer:
    """Checkpoint files of one job at ``base`` over the communicator ``comm``.

    ``log`` receives the one-line message when a stale checkpoint is moved aside
    (rank 0; None: silent).
    """

    def __init__(self, base: str | Path, cfg: JobConfig, comm, log=sys.stderr):
        self.base = Path(base)
        self.comm = comm
        self.hash = config_hash(cfg)
        # how the states are laid out over the ranks: a resume needs the same
        self.layout = {"ranks": comm.size, "ranks_per_member": cfg.parallel.ranks_per_member}
        self.interval = cfg.checkpoint.interval
        self.meta = self.base.with_name(self.base.name + ".meta")
        self.log = log
        self._state_re = re.compile(re.escape(self.base.name) + r"\.s\d+\.r\d+\.npz(\.tmp\.npz)?")

    def _state_file(self, step: int, rank: int) -> Path:
        return self.base.with_name(f"{self.base.name}.s{step}.r{rank}.npz")

    def _own_files(self) -> list[Path]:
        """This checkpoint's state files (current, orphaned or temporary), never stale ones."""
        parent = self.base.parent if str(self.base.parent) else Path(".")
        return sorted(p for p in parent.iterdir() if self._state_re.fullmatch(p.name))

    def save(self, step: int, records: Any, arrays: list[np.ndarray], extra: Any = None) -> None:
        """Write this rank's ``arrays`` (and ``extra``) and, on rank 0, ``records``;
        collective over ``comm``."""
        comm = self.comm
        self.base.parent.mkdir(parents=True, exist_ok=True)
        target = self._state_file(step, comm.rank)
        tmp = target.with_name(target.name + ".tmp.npz")
        named = {f"arr_{n}": a for n, a in enumerate(arrays)}
        if extra is not None:
            named[_EXTRA] = np.frombuffer(pickle.dumps(extra, protocol=pickle.HIGHEST_PROTOCOL),
                                          dtype=np.uint8)
        np.savez(tmp, **named)
        os.replace(tmp, target)
        comm.Barrier()
        if comm.rank == 0:
            try:
                old = self._read_meta()
            except Exception:  # noqa: BLE001 - an unreadable old meta is replaced anyway
                old = None
            data = {"hash": self.hash, **self.layout, "step": step, "records": records}
            tmp = self.meta.with_name(self.meta.name + ".tmp")
            with open(tmp, "wb") as fh:
                pickle.dump(data, fh, protocol=pickle.HIGHEST_PROTOCOL)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.meta)
            if old is not None and old["step"] != step:
                for r in range(old["ranks"]):
                    self._state_file(old["step"], r).unlink(missing_ok=True)
        comm.Barrier()

    def _read_meta(self) -> dict | None:
        if not self.meta.exists():
            return None
        with open(self.meta, "rb") as fh:
            return pickle.load(fh)

    def _check(self) -> tuple[dict | None, str | None]:
        """(meta, None) of a usable checkpoint, (None, None) if there is none, or
        (None, reason) of a stale one (rank 0)."""
        try:
            meta = self._read_meta()
        except Exception as exc:  # noqa: BLE001 - any unreadable meta is stale
            return None, f"cannot be read ({type(exc).__name__}: {exc})"
        if meta is None:
            return None, None
        if not isinstance(meta, dict) or meta.get("hash") != self.hash:
            return None, "was written by a different config"
        saved = {k: meta.get(k, 0 if k == "ranks_per_member" else None) for k in self.layout}
        if saved != self.layout:
            was = ", ".join(f"{k} = {v}" for k, v in saved.items())
            now = ", ".join(f"{k} = {v}" for k, v in self.layout.items())
            raise CheckpointError(f"{self.meta}: written with {was} (MPI ranks, "
                                  f"parallel.ranks_per_member), this run has {now}; resume with "
                                  f"the same, or move the checkpoint files {self.base}.* away "
                                  "to start afresh")
        missing = [r for r in range(meta["ranks"]) if not self._state_file(meta["step"], r).exists()]
        if missing:
            return None, f"misses its state files of ranks {missing}"
        return meta, None

    def move_aside(self, reason: str) -> list[Path]:
        """Rename every file of this checkpoint to ``<base>.stale-<timestamp>.<rest>``
        (rank 0 only; nothing is deleted) and say so on ``log``. Returns the new paths."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        prefix, n = f"{self.base.name}.stale-{stamp}", 1
        while any(self.base.parent.glob(f"{glob.escape(prefix)}.*")):
            prefix, n = f"{self.base.name}.stale-{stamp}-{n}", n + 1
        moved = []
        tmp_meta = self.meta.with_name(self.meta.name + ".tmp")
        legacy = [self.base] if self.base.is_file() else []  # one-file tDMRG checkpoints of old
        for path in [self.meta, tmp_meta, *self._own_files(), *legacy]:
            if path.exists():
                new = path.with_name(prefix + (path.name[len(self.base.name):] or ".legacy"))
                os.replace(path, new)
                moved.append(new)
        if self.log is not None and moved:
            print(f"spinvalve: checkpoint {self.meta} {reason}; moved aside to "
                  f"{self.base.parent / prefix}.*, starting afresh", file=self.log, flush=True)
        return moved

    def load(self) -> Saved | None:
        """The last checkpoint (step, the records, this rank's arrays and extra; collective),
        or None: no checkpoint, or a stale one (moved aside)."""
        meta, stale, error = None, None, None
        if self.comm.rank == 0:
            try:
                meta, stale = self._check()
            except CheckpointError as exc:
                error = exc
            if meta is None and stale is None and self.base.is_file():
                stale = "is a one-file checkpoint of an older spinvalve"
            if stale is not None:
                self.move_aside(stale)
        meta, error = self.comm.bcast((meta, error), root=0)
        if error is not None:
            raise error    # on every rank
        if meta is None:
            return None
        with np.load(self._state_file(meta["step"], self.comm.rank)) as npz:
            n_arr = sum(1 for f in npz.files if f.startswith("arr_"))
            arrays = [npz[f"arr_{n}"] for n in range(n_arr)]
            extra = pickle.loads(npz[_EXTRA].tobytes()) if _EXTRA in npz.files else None
        return Saved(meta["step"], meta["records"], arrays, extra)

    def remove(self) -> None:
        """Delete the checkpoint (after the output file was written), including state
        files orphaned by a kill between writing a new checkpoint and deleting the old one.
        Stale checkpoints moved aside are kept."""
        self.comm.Barrier()
        if self.comm.rank == 0:
            for path in self._own_files():
                path.unlink(missing_ok=True)
            self.meta.unlink(missing_ok=True)
            self.meta.with_name(self.meta.name + ".tmp").unlink(missing_ok=True)
        self.comm.Barrier()


class StopFlag:
    """Set by SIGTERM / SIGUSR1 (what SLURM sends before the time limit).

    ``raised`` is the signal number once one arrived, else None. Every family polls
    it between steps (and the closed-system measurement between its large blocks).
    """

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self):
        self.raised: int | None = None
        self._old = {}

    def __enter__(self) -> "StopFlag":
        for s in self.SIGNALS:
            try:
                self._old[s] = signal.signal(s, self._handler)
            except ValueError:  # not the main thread
                pass
        return self

    def _handler(self, signum, frame) -> None:
        self.raised = signum

    def __exit__(self, *exc) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)
