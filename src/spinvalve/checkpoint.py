"""Checkpoints of a running job: member states, output index and records so far.

Layout next to the output (or at ``checkpoint.path``)::

    <base>.meta               pickle: config hash, rank count, step, records (rank 0)
    <base>.s<step>.r<rank>.npz  this rank's local member arrays at that step

Every file is written under a temporary name and renamed; the meta file is
renamed last, after a barrier, so it only ever points at complete state files.
A checkpoint written by a different config (any key but ``checkpoint.*``) or a
different number of MPI ranks is refused with :class:`CheckpointError`.
"""

from __future__ import annotations

import glob
import hashlib
import os
import pickle
import signal
from dataclasses import replace
from pathlib import Path

import numpy as np

from .config import Checkpoint, JobConfig


class CheckpointError(RuntimeError):
    """A checkpoint exists but cannot be used for this job."""


class Interrupted(SystemExit):
    """SIGTERM/SIGUSR1 arrived: a checkpoint was written and the job stops (exit 75)."""

    def __init__(self, message: str):
        super().__init__(75)
        self.message = message


def config_hash(cfg: JobConfig) -> str:
    """Hash of everything that determines the numbers (the checkpoint section excluded)."""
    return hashlib.sha256(replace(cfg, checkpoint=Checkpoint()).to_yaml().encode()).hexdigest()


class Checkpointer:
    def __init__(self, base: str | Path, cfg: JobConfig, comm):
        self.base = Path(base)
        self.comm = comm
        self.hash = config_hash(cfg)
        self.interval = cfg.checkpoint.interval
        self.meta = self.base.with_name(self.base.name + ".meta")

    def _state_file(self, step: int, rank: int) -> Path:
        return self.base.with_name(f"{self.base.name}.s{step}.r{rank}.npz")

    def save(self, step: int, records: list, arrays: list[np.ndarray]) -> None:
        comm = self.comm
        target = self._state_file(step, comm.rank)
        tmp = target.with_name(target.name + ".tmp.npz")
        np.savez(tmp, *arrays)
        os.replace(tmp, target)
        comm.Barrier()
        if comm.rank == 0:
            old = self._read_meta()
            data = {"hash": self.hash, "ranks": comm.size, "step": step, "records": records}
            tmp = self.meta.with_name(self.meta.name + ".tmp")
            with open(tmp, "wb") as fh:
                pickle.dump(data, fh)
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

    def load(self) -> tuple[int, list, list[np.ndarray]] | None:
        """(step, records, this rank's arrays) of the last checkpoint, or None."""
        meta = self._read_meta() if self.comm.rank == 0 else None
        meta = self.comm.bcast(meta, root=0)
        if meta is None:
            return None
        if meta["hash"] != self.hash:
            raise CheckpointError(f"{self.meta}: checkpoint of a different config; remove it "
                                  "(or its siblings) to start afresh, or run the same config")
        if meta["ranks"] != self.comm.size:
            raise CheckpointError(f"{self.meta}: written by {meta['ranks']} MPI ranks, this run has "
                                  f"{self.comm.size}; resume with {meta['ranks']} ranks")
        with np.load(self._state_file(meta["step"], self.comm.rank)) as npz:
            arrays = [npz[f"arr_{n}"] for n in range(len(npz.files))]
        return meta["step"], meta["records"], arrays

    def remove(self) -> None:
        """Delete the checkpoint (after the output file was written), including state
        files orphaned by a kill between writing a new checkpoint and deleting the old one."""
        self.comm.Barrier()
        if self.comm.rank == 0:
            for path in self.base.parent.glob(f"{glob.escape(self.base.name)}.s*.r*.npz*"):
                path.unlink(missing_ok=True)
            self.meta.unlink(missing_ok=True)
            self.meta.with_name(self.meta.name + ".tmp").unlink(missing_ok=True)
        self.comm.Barrier()


class StopFlag:
    """Set by SIGTERM / SIGUSR1 (what SLURM sends before the time limit)."""

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
