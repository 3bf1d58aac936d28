"""How the ranks of a closed-system job share one output time: MPI layout and the two reductions.

Every rank holds some members' rows and contributes, at every output time, its
:class:`Flags`, its share of the scalars (norm, <H>, <s^z_e>, the spins' <S^z>)
and its share of rho_FM: either the Gram products of every dense block
(:class:`DenseBlocks`) or its amplitudes, gathered into the measuring rank's
Gram factors (:class:`~spinvalve.reduced.FactorGather`).

* :class:`BlockingReduction`: rank 0 receives every output time at once
  (Allreduce of flags and scalars, Reduce of the dense blocks or a gather of the
  factors) while the others wait.
* :class:`InTurnReduction`: point-to-point messages without blocking; output time
  n is reduced onto rank n mod size and finished one output time later, so the
  others propagate on meanwhile.

Both return the summed :class:`Reduced` output time; the engine measures it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from .reduced import BlockDensityMatrix, FactorGather

#: the flags, then the scalars, in the summed message every rank receives
N_FLAGS = 3
SCALARS = slice(N_FLAGS, N_FLAGS + 4)


@dataclass
class Flags:
    """What a rank reports at an output time (summed over the ranks: any rank's)."""
    stop: bool = False            # the stop signal was received
    checkpoint_due: bool = False  # checkpoint.interval elapsed since the last checkpoint
    failed: bool = False          # an invariant check failed

    def pack(self) -> np.ndarray:
        """The flags as the first floats of the summed message."""
        return np.array([self.stop, self.checkpoint_due, self.failed], float)

    @classmethod
    def unpack(cls, summed: np.ndarray) -> Flags:
        """The flags of a summed message: set when any rank set them."""
        return cls(*(bool(x) for x in summed[:N_FLAGS]))


def split_groups(world, ranks_per_member: int):
    """Sub-communicator of this rank's group and (group index, number of groups)."""
    size = world.size
    per = size if ranks_per_member in (0, None) or ranks_per_member >= size else ranks_per_member
    if size % per:
        raise ValueError(f"parallel.ranks_per_member: {per} does not divide {size} MPI ranks")
    color = world.rank // per
    return world.Split(color, world.rank), color, size // per


class DenseBlocks:
    """rho_FM's dense blocks in one flat buffer: ``offsets[K]`` where block K starts."""

    def __init__(self, layers, offsets: dict[int, int], size: int):
        self.layers, self.offsets, self.size = layers, offsets, size

    def gram(self, parts) -> np.ndarray:
        """This rank's Gram products sum_x w psi psi^dag of ``parts`` (K, w, amplitudes)."""
        buf = np.zeros(self.size, complex)
        for K, w, amp in parts:
            n = amp.shape[0]
            off = self.offsets[K]
            buf[off:off + n * n].reshape(n, n)[...] += w * (amp @ amp.conj().T)
        return buf

    def unpack(self, buf: np.ndarray) -> BlockDensityMatrix:
        """rho_FM from the summed blocks."""
        blocks = {}
        for K, off in self.offsets.items():
            n = self.layers.block(K).size
            blocks[K] = buf[off:off + n * n].reshape(n, n).copy()
        return BlockDensityMatrix.from_dense_blocks(self.layers, blocks)


@dataclass
class Share:
    """One rank's contribution to an output time."""
    flags: Flags
    scalars: np.ndarray    # norm, <H>, <s^z_e>, the spins' <S^z>: this rank's terms
    parts: list            # (K, weight, amplitudes[c, x]) of this rank's rows

    def message(self) -> np.ndarray:
        """Flags and scalars: the small message summed over the ranks."""
        return np.concatenate([self.flags.pack(), self.scalars])


@dataclass
class Reduced:
    """An output time summed over the ranks."""
    index: int
    flags: Flags
    scalars: np.ndarray              # the four summed scalars (identical on every rank)
    rho: BlockDensityMatrix | None   # on the measuring rank only


class BlockingReduction:
    """Rank 0 receives each output time while the other ranks wait."""

    def __init__(self, world, layers, dense: DenseBlocks | None, heads):
        self.world, self.layers, self.dense, self.heads = world, layers, dense, heads

    def reduce(self, index: int, share: Share) -> Reduced:
        """Flags and scalars summed on every rank, rho_FM on rank 0."""
        from mpi4py import MPI
        small = share.message()
        self.world.Allreduce(MPI.IN_PLACE, small)
        if self.dense is not None:
            blocks = self.dense.gram(share.parts)
            self.world.Reduce(MPI.IN_PLACE if self.world.rank == 0 else blocks, blocks, root=0)
            rho = self.dense.unpack(blocks) if self.world.rank == 0 else None
        else:
            rho = FactorGather(self.layers, share.parts, self.heads, self.world, 0,
                               buffered=False).wait()
        return Reduced(index, Flags.unpack(small), small[SCALARS], rho)


@dataclass
class _InFlight:
    """An output time whose messages are under way."""
    index: int
    requests: list
    message: np.ndarray           # this rank's flags and scalars (kept alive while sent)
    messages: np.ndarray          # every rank's, one row per rank
    blocks: np.ndarray | None     # dense Gram blocks: every rank's on the measuring rank, else this rank's
    factors: FactorGather | None


class InTurnReduction:
    """Output time n reduced onto rank n mod size without blocking, finished later.

    Point-to-point messages only: a large one is read by the receiver alone
    (shared-memory single copy), while a non-blocking collective would wait for
    the other ranks to call into MPI, i.e. for the measuring rank to finish."""

    def __init__(self, comm, world, layers, dense: DenseBlocks | None, heads):
        """``comm``: flags, scalars and dense blocks; ``world``: the factors' transfers."""
        self.comm, self.world, self.layers, self.dense, self.heads = comm, world, layers, dense, heads
        self.in_flight: deque[_InFlight] = deque()

    def measuring_rank(self, index: int) -> int:
        return index % self.comm.size

    def send(self, index: int, share: Share) -> None:
        """Send this rank's share of output time ``index``: flags and scalars to every
        rank, rho_FM's Gram blocks or factors to its measuring rank."""
        comm, size, rank, root = self.comm, self.comm.size, self.comm.rank, self.measuring_rank(index)
        small = share.message()
        smalls = np.empty((size, small.size))
        smalls[rank] = small
        requests = [comm.Isend(small, dest=r, tag=0) for r in range(size) if r != rank]
        requests += [comm.Irecv(smalls[r], source=r, tag=0) for r in range(size) if r != rank]
        blocks = factors = None
        if self.dense is not None:
            mine = self.dense.gram(share.parts)
            if rank == root:
                blocks = np.empty((size, mine.size), complex)
                blocks[rank] = mine
                requests += [comm.Irecv(blocks[r], source=r, tag=1) for r in range(size) if r != rank]
            else:
                blocks = mine
                requests.append(comm.Isend(mine, dest=root, tag=1))
        else:
            factors = FactorGather(self.layers, share.parts, self.heads, self.world, root,
                                   buffered=True)
        self.in_flight.append(_InFlight(index, requests, small, smalls, blocks, factors))

    def finish_oldest(self) -> Reduced:
        """Wait for the oldest output time in flight; rho_FM on its measuring rank."""
        from mpi4py import MPI
        sent = self.in_flight.popleft()
        MPI.Request.Waitall(sent.requests)
        rho = sent.factors.wait() if sent.factors is not None else None
        total = sent.messages.sum(axis=0)     # the same order of terms on every rank
        if self.measuring_rank(sent.index) == self.comm.rank and rho is None:
            rho = self.dense.unpack(sent.blocks.sum(axis=0))
        return Reduced(sent.index, Flags.unpack(total), total[SCALARS], rho)
