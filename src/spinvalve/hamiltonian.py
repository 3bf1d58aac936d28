"""Hamiltonian of Eq. 7 on one S^z_tot sector, as a matrix-free PETSc shell operator.

H = H_hop (x) 1  +  sum_i P_{x_i} (x) V_i  +  1 (x) H_spin, with (Pauli spins)

* H_hop  = -gamma sum_<xy> |x><y|                   (open chain, L sites)
* V_i    = -J_sd s . S_i                           (electron spin with spin i at site x_i)
* H_spin = -sum_<ij> in a layer [J (S^x S^x + S^y S^y) + J_z S^z S^z]

MPI ranks own contiguous ranges of chain sites [x0, x1); a rank stores its part
of a member's state as ``psi[s, x - x0]`` (spin part major, so that ``H_spin``
adds whole contiguous rows), ``H_spin`` and ``V_i`` act locally and hopping
exchanges one halo column with each neighbouring rank. The global PETSc vector
is the concatenation of the ranks' local blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from . import kernels
from .basis import ChargeBlock, LayerBasis, SpinLayers, SpinSpace
from .config import JobConfig


@dataclass(frozen=True)
class Model:
    """Declarative description of the chain, the layers and the couplings (eV)."""

    n_sites: int
    hopping: float
    n_p: int
    n_a: int
    spin_sites: tuple[int, ...]  # chain site of every localized spin, FM_p first
    j_sd: float
    j: float
    jz: float

    @classmethod
    def from_config(cls, cfg: JobConfig) -> "Model":
        c, geo = cfg.couplings, cfg.geometry
        return cls(geo.n_sites, cfg.chain.hopping, cfg.layers.n_p, cfg.layers.n_a,
                   geo.spin_sites, c.j_sd, c.j, c.jz)

    @property
    def n_spins(self) -> int:
        return self.n_p + self.n_a

    @cached_property
    def layers(self) -> SpinLayers:
        return SpinLayers(self.n_p, self.n_a)

    # -- localized-spin Hamiltonian -------------------------------------------------
    def layer_hamiltonian(self, layer: LayerBasis, k: int) -> sp.csr_matrix:
        """XXZ chain of one layer restricted to k up spins (open, nearest neighbours)."""
        pats = layer.patterns[k]
        n, dim = layer.n, len(pats)
        diag = np.zeros(dim)
        rows, cols = [], []
        for b in range(n - 1):
            s1 = 2 * ((pats >> b) & 1) - 1
            s2 = 2 * ((pats >> (b + 1)) & 1) - 1
            diag -= self.jz * s1 * s2
            anti = np.nonzero(s1 != s2)[0]
            flipped = pats[anti] ^ ((1 << b) | (1 << (b + 1)))
            rows.append(anti)
            cols.append(layer.rank[flipped])
        r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
        # S^x S^x + S^y S^y = 2 (S^+ S^- + S^- S^+) for Pauli operators
        off = sp.csr_matrix((np.full(len(r), -2.0 * self.j), (r, c)), shape=(dim, dim))
        return (sp.diags(diag) + off).tocsr()

    def block_hamiltonian(self, block: ChargeBlock) -> sp.csr_matrix:
        """H_spin on one charge block: sum over sub-blocks of H_p (x) 1 + 1 (x) H_a."""
        mats = []
        for sb in block.subblocks:
            hp = self.layer_hamiltonian(self.layers.p, sb.k_p)
            ha = self.layer_hamiltonian(self.layers.a, sb.k_a)
            mats.append(sp.kron(hp, sp.identity(sb.n_ac)) + sp.kron(sp.identity(sb.n_pc), ha))
        if not mats:
            return sp.csr_matrix((0, 0))
        return sp.block_diag(mats, format="csr")

    def spin_hamiltonian(self, space: SpinSpace) -> sp.csr_matrix:
        """H_spin on every part of the spin space (it does not act on the electron)."""
        parts = [self.block_hamiltonian(block) for _, block, _ in space.iter_parts()]
        return sp.block_diag(parts, format="csr") if parts else sp.csr_matrix((0, 0))

    def sd_operator(self, space: SpinSpace, i: int) -> sp.csr_matrix:
        """V_i = -J_sd s . S_i on the spin space (Pauli: s.S = s^z S^z + 2(s+S- + s-S+)).

        The flip term joins part (e up, K) with spin i down to part (e down, K + 1)
        with spin i up.
        """
        dim = space.dim
        diag = np.zeros(dim)
        rows, cols = [], []
        for e_up, block, sl in space.iter_parts():
            diag[sl] = (-self.j_sd if e_up else self.j_sd) * block.spins[:, i]
            partner_block = space.block(False, block.K + 1) if e_up else None
            if partner_block is None:
                continue
            cp, ca = block.bits
            down_i = np.nonzero(block.spins[:, i] < 0)[0]
            if i < self.n_p:
                cp2, ca2 = cp[down_i] | (1 << i), ca[down_i]
            else:
                cp2, ca2 = cp[down_i], ca[down_i] | (1 << (i - self.n_p))
            partner = partner_block.index(cp2, ca2) + space.slice(False, block.K + 1).start
            src = down_i + sl.start
            rows += [src, partner]
            cols += [partner, src]
        r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
        off = sp.csr_matrix((np.full(len(r), -2.0 * self.j_sd), (r, c)), shape=(dim, dim))
        return (sp.diags(diag) + off).tocsr()

    # -- spectral bounds -------------------------------------------------------------
    def spectral_bounds(self) -> tuple[float, float]:
        """Rigorous [E_min, E_max] of H (computed once per model: every member's propagator asks)."""
        return self._spectral_bounds

    @cached_property
    def _spectral_bounds(self) -> tuple[float, float]:
        """The sum of the exact ranges of H's three terms (Weyl).

        Hopping: +-2 gamma cos(pi/(L+1)); sd: the values {0, -J_sd, 3 J_sd} of
        P_x (x) (-J_sd s.S); each layer: exact extreme eigenvalues of its XXZ chain.
        """
        hop = 2 * abs(self.hopping) * np.cos(np.pi / (self.n_sites + 1))
        lo, hi = -hop, hop
        if self.n_spins:
            sd = (0.0, -self.j_sd, 3 * self.j_sd)
            lo, hi = lo + min(sd), hi + max(sd)
        for layer in (self.layers.p, self.layers.a):
            if layer.n < 2:
                continue
            if layer.n <= 12:
                ev = np.concatenate([np.linalg.eigvalsh(self.layer_hamiltonian(layer, k).toarray())
                                     for k in range(layer.n + 1)])
                lo, hi = lo + ev.min(), hi + ev.max()
            else:  # bond-by-bond bound
                bond = (min(-self.jz, self.jz - 2 * abs(self.j)), self.jz + 2 * abs(self.j))
                lo, hi = lo + (layer.n - 1) * min(bond), hi + (layer.n - 1) * max(bond)
        return float(lo), float(hi)


def row_range(n_sites: int, size: int, rank: int) -> tuple[int, int]:
    """Chain sites [x0, x1) owned by ``rank`` of ``size`` (PETSc's default split)."""
    base, extra = divmod(n_sites, size)
    x0 = rank * base + min(rank, extra)
    return x0, x0 + base + (1 if rank < extra else 0)


class HamiltonianShell:
    """Matrix-free H on one spin space (usually a sector): PETSc python-matrix context.

    ``apply(psi, out)`` works on the local block ``psi[s, x - x0]`` of this rank.
    """

    def __init__(self, model: Model, sector: SpinSpace, comm):
        self.model, self.sector = model, sector
        self.comm = comm  # mpi4py communicator
        self.x0, self.x1 = row_range(model.n_sites, comm.size, comm.rank)
        if self.x1 <= self.x0:
            raise ValueError(f"{comm.size} MPI ranks for a chain of {model.n_sites} sites: "
                             "every rank needs at least one site")
        self.dim = sector.dim
        self.h_spin = model.spin_hamiltonian(sector)
        self._halo = np.zeros((2, self.dim), dtype=complex)
        self.n_mult = 0
        self.fused = kernels.HAVE_NUMBA
        kernels.set_threads()
        self.spin_term: sp.csr_matrix | None = None
        self._fused_args = self._compact_operators()
        self._no_spin_term = self._spin_term_args = self._compact_spin_term(None)

    def add_spin_term(self, k: sp.spmatrix) -> None:
        """Make the operator H + 1 (x) K with a complex spin-space matrix K (rows of this space).

        The open system's H_eff = H - (i/2) Gamma_tot: the term is applied inside
        the same compiled pass as H. Every method (apply, chebyshev_term, PETSc
        mult) then acts with H + 1 (x) K.
        """
        k = sp.csr_matrix(k, dtype=complex)
        if k.shape != (self.dim, self.dim):
            raise ValueError(f"spin term of shape {k.shape} for a spin space of dimension {self.dim}")
        k.sort_indices()
        self.spin_term = k
        self._spin_term_args = self._compact_spin_term(k)

    def _compact_spin_term(self, k: sp.csr_matrix | None) -> tuple:
        if k is None:
            return (np.zeros(self.dim + 1, dtype=np.int64), np.zeros(0, dtype=np.int64),
                    np.zeros(0), np.zeros(0))
        return (k.indptr.astype(np.int64), k.indices.astype(np.int64),
                np.ascontiguousarray(k.data.real), np.ascontiguousarray(k.data.imag))

    def _local_sd_operators(self):
        """(local column, V_i as CSR) of every spin on this rank's sites, one at a time."""
        for i, x in enumerate(self.model.spin_sites):
            if self.x0 <= x < self.x1:
                yield x - self.x0, self.model.sd_operator(self.sector, i)

    @cached_property
    def local_spins(self) -> list[tuple[int, sp.csr_matrix]]:
        """All local V_i as CSR matrices: the numpy reference path only (built when first
        used; the fused kernel keeps the compact form, 0.34 GB less per rank for 10+10)."""
        return list(self._local_sd_operators())

    def _compact_operators(self) -> tuple:
        """Arrays of the fused kernel: H_spin as CSR, each V_i as diagonal + partner index."""
        n_local = sum(self.x0 <= x < self.x1 for x in self.model.spin_sites)
        fm_cols = np.array([x - self.x0 for x in self.model.spin_sites if self.x0 <= x < self.x1],
                           dtype=np.int64)
        diag = np.zeros((max(n_local, 1), self.dim))
        partner = np.full((max(n_local, 1), self.dim), -1, dtype=np.int64)
        for n, (xl, v) in enumerate(self._local_sd_operators()):
            diag[n] = v.diagonal()
            off = (v - sp.diags(v.diagonal())).tocsr()
            off.eliminate_zeros()
            counts = np.diff(off.indptr)
            if counts.max(initial=0) > 1:
                raise AssertionError("sd operator has more than one spin-flip partner per row")
            rows = np.nonzero(counts)[0]
            partner[n, rows] = off.indices[off.indptr[rows]]
        hs = self.h_spin.tocsr()
        hs.sort_indices()
        return (float(self.model.hopping), hs.indptr.astype(np.int64), hs.indices.astype(np.int64),
                hs.data.astype(float), fm_cols, diag, partner, -2.0 * self.model.j_sd)

    @property
    def local_shape(self) -> tuple[int, int]:
        return (self.dim, self.x1 - self.x0)

    @property
    def local_size(self) -> int:
        return (self.x1 - self.x0) * self.dim

    def _exchange_halo(self, psi: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        comm = self.comm
        if comm.size == 1:
            return None, None
        from mpi4py import MPI
        prev = comm.rank - 1 if comm.rank > 0 else MPI.PROC_NULL
        nxt = comm.rank + 1 if comm.rank < comm.size - 1 else MPI.PROC_NULL
        lo, hi = self._halo
        comm.Sendrecv(np.ascontiguousarray(psi[:, -1]), dest=nxt, recvbuf=lo, source=prev,
                      sendtag=1, recvtag=1)
        comm.Sendrecv(np.ascontiguousarray(psi[:, 0]), dest=prev, recvbuf=hi, source=nxt,
                      sendtag=2, recvtag=2)
        return (lo if comm.rank > 0 else None), (hi if comm.rank < comm.size - 1 else None)

    def _halo_args(self, psi: np.ndarray) -> tuple:
        lo, hi = self._exchange_halo(psi)
        return (self._halo[0], self._halo[1], lo is not None, hi is not None)

    def apply(self, psi: np.ndarray, out: np.ndarray, spin_term: bool = True) -> None:
        """out = H psi on this rank's rows (collective: exchanges halos).

        ``spin_term=False`` leaves out the spin term of :meth:`add_spin_term` (H alone).
        """
        if self.fused:
            self.n_mult += 1
            k = self._spin_term_args if spin_term else self._no_spin_term
            kernels.apply_fused(psi, out, *self._fused_args, *k, *self._halo_args(psi))
        else:
            self.apply_numpy(psi, out, spin_term)

    def chebyshev_term(self, cur: np.ndarray, prev: np.ndarray, acc: np.ndarray | None,
                       ck: complex, a: float, s: float, out: np.ndarray | None = None) -> None:
        """out <- s (H - a) cur - prev, then acc += ck out (one fused pass when compiled).

        ``out`` defaults to ``prev`` (in place; required with an accumulation);
        ``acc=None`` skips the accumulation.
        """
        out = prev if out is None else out
        if self.fused:
            self.n_mult += 1
            kernels.chebyshev_fused(cur, prev, out, acc, ck, a, s, *self._fused_args,
                                    *self._spin_term_args, *self._halo_args(cur))
            return
        h = np.empty_like(cur)
        self.apply_numpy(cur, h)
        h -= a * cur
        h *= s
        h -= prev
        out[...] = h
        if acc is not None:
            acc += ck * out

    def apply_numpy(self, psi: np.ndarray, out: np.ndarray, spin_term: bool = True) -> None:
        """Reference implementation of :meth:`apply` in numpy/scipy array operations."""
        self.n_mult += 1
        lo, hi = self._exchange_halo(psi)
        out[...] = self.h_spin @ psi
        g = self.model.hopping
        if psi.shape[1] > 1:
            out[:, 1:] -= g * psi[:, :-1]
            out[:, :-1] -= g * psi[:, 1:]
        if lo is not None:
            out[:, 0] -= g * lo
        if hi is not None:
            out[:, -1] -= g * hi
        for xl, v in self.local_spins:
            out[:, xl] += v @ psi[:, xl]
        if spin_term and self.spin_term is not None:
            out += self.spin_term @ psi

    # petsc4py python-matrix protocol
    def mult(self, mat, x, y) -> None:
        self.apply(x.array_r.reshape(self.local_shape), y.array_w.reshape(self.local_shape))

    def create_mat(self, petsc_comm, prefix: str = "ham_"):
        """The PETSc shell matrix (MATPYTHON) wrapping this context."""
        from petsc4py import PETSc
        n = self.local_size
        N = self.model.n_sites * self.dim
        mat = PETSc.Mat().createPython(((n, N), (n, N)), context=self, comm=petsc_comm)
        mat.setOptionsPrefix(prefix)
        mat.setUp()
        mat.setFromOptions()
        return mat
