"""Reduced density matrix of the localized spins, stored block by block.

rho_FM = sum_members w_m Tr_e |psi_m><psi_m| (SPEC "Observables"). Every member
has a definite S^z_tot, so rho_FM commutes with the total localized S^z and is
block diagonal in the number K of up spins: ``blocks[K]`` is a dense matrix over
the configurations of :class:`~spinvalve.basis.ChargeBlock` ``K``. A member's
contribution to a block is the Gram product sum_x psi[x, c] psi*[x, c'] of its
amplitudes (orbital index summed, electron spin fixed by the block).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .basis import ChargeBlock, SpinLayers


@dataclass
class BlockDensityMatrix:
    layers: SpinLayers
    blocks: dict[int, np.ndarray] = field(default_factory=dict)

    def add_gram(self, block: ChargeBlock, amplitudes: np.ndarray, weight: float) -> None:
        """blocks[K] += weight * A A^dag  for amplitudes A[c, x] of one charge block."""
        g = amplitudes @ amplitudes.conj().T
        if block.K in self.blocks:
            self.blocks[block.K] += weight * g
        else:
            self.blocks[block.K] = weight * g

    def allreduce(self, comm) -> "BlockDensityMatrix":
        """Sum the per-rank partial blocks over ``comm`` (every rank gets the total)."""
        keys = sorted(comm.allreduce(set(self.blocks), op=_union))
        out = BlockDensityMatrix(self.layers)
        for K in keys:
            size = self.layers.block(K).size
            local = self.blocks.get(K, np.zeros((size, size), complex))
            total = np.empty_like(local)
            comm.Allreduce(np.ascontiguousarray(local), total)
            out.blocks[K] = total
        return out

    def items(self):
        for K in sorted(self.blocks):
            yield self.layers.block(K), self.blocks[K]

    @property
    def trace(self) -> float:
        return float(sum(np.trace(r).real for r in self.blocks.values()))

    @property
    def hermiticity_error(self) -> float:
        return float(max((np.abs(r - r.conj().T).max() for r in self.blocks.values() if r.size),
                         default=0.0))

    def diagonal(self):
        """(block, probabilities of its configurations) for every block."""
        for block, r in self.items():
            yield block, np.real(np.diagonal(r)).copy()

    def sub(self, K: int, row: int, col: int) -> np.ndarray:
        """Sub-block ``(row, col)`` of block K as a tensor [i_p, i_a, j_p, j_a]."""
        block = self.layers.block(K)
        a, b = block.subblocks[row], block.subblocks[col]
        return self.blocks[K][a.slice, b.slice].reshape(a.n_pc, a.n_ac, b.n_pc, b.n_ac)

    def layer_blocks(self, layer: str) -> dict[int, np.ndarray]:
        """Reduced state of one layer ('p' or 'a'), block diagonal in its number of up spins."""
        out: dict[int, np.ndarray] = {}
        for block, _ in self.items():
            for n, sb in enumerate(block.subblocks):
                t = self.sub(block.K, n, n)
                if layer == "p":
                    k, part = sb.k_p, np.einsum("iaja->ij", t)
                else:
                    k, part = sb.k_a, np.einsum("iaib->ab", t)
                out[k] = out[k] + part if k in out else part
        return out

    def to_dense(self) -> np.ndarray:
        """Dense 2^N x 2^N matrix in the bit basis index c_p + 2^n_p c_a (tests, small N)."""
        n_p, N = self.layers.n_p, self.layers.n_spins
        rho = np.zeros((1 << N, 1 << N), complex)
        for block, r in self.items():
            cp, ca = block.bits
            idx = cp + (ca << n_p)
            rho[np.ix_(idx, idx)] = r
        return rho


def _union(a: set, b: set, datatype=None) -> set:
    return a | b
