"""Reduced density matrix of the localized spins, stored block by block as Gram factors.

rho_FM = sum_members w_m Tr_e |psi_m><psi_m| (SPEC "Observables"). Every member
has a definite S^z_tot, so rho_FM commutes with the total localized S^z and is
block diagonal in the number K of up spins. A member's contribution to block K is
the Gram product sum_x psi[c, x] psi*[c', x] of its amplitudes with the orbital
index summed (electron spin fixed by the part), so

    rho_K = F_K F_K^dag,   F_K = [sqrt(w_m) psi_m[c, x]]  (columns: members x sites).

The factor F_K (n_K x r_K, r_K <= 2 L) is what is kept: the dense block is formed
only when it is small (n_K <= r_K or below ``DENSE_LIMIT``); spectra come from the
smaller Gram side, layer states and rho^{T_a} sub-blocks from factor contractions.
For 10+10 spins the K = 10 block has n = 184756 configurations but rank <= 402.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .basis import SpinLayers

DENSE_LIMIT = 2048


def _gram_factor(r: np.ndarray, eig: dict | None = None, K: int | None = None) -> np.ndarray:
    """F with F F^dag = r for a Hermitian positive (semi)definite block: U sqrt(p) on p > 0.

    With ``eig`` the full eigen-decomposition (p descending, U) is stored as
    ``eig[K]`` for :meth:`BlockDensityMatrix.eig`, which then costs nothing.
    """
    p, u = np.linalg.eigh(0.5 * (r + r.conj().T))
    if eig is not None:
        eig[K] = (p[::-1], u[:, ::-1])
    keep = p > 0
    return u[:, keep] * np.sqrt(p[keep])


@dataclass
class BlockDensityMatrix:
    layers: SpinLayers
    factors: dict[int, np.ndarray] = field(default_factory=dict)

    # -- construction ---------------------------------------------------------------
    @classmethod
    def from_parts(cls, layers: SpinLayers, parts: list[tuple[int, float, np.ndarray]]
                   ) -> "BlockDensityMatrix":
        """From (K, weight, amplitudes[c, x]) contributions (one per member part)."""
        heads = [(K, w, amp.shape) for K, w, amp in parts]
        factors, cols = cls._allocate(heads)
        for (K, _, amp), c0 in zip(parts, cols):
            factors[K][:, c0:c0 + amp.shape[1]] = amp
        return cls._finish(layers, factors, heads, cols)

    @staticmethod
    def _allocate(heads: list[tuple[int, float, tuple]]) -> tuple[dict[int, np.ndarray], list[int]]:
        """Every factor allocated once, and the first column of each part in its factor.

        Parts go straight into their own columns (no intermediate copies: for
        10+10 a factor takes 1.2 GB)."""
        rows, width, cols = {}, {}, []
        for K, _, shape in heads:
            cols.append(width.get(K, 0))
            rows[K], width[K] = shape[0], width.get(K, 0) + shape[1]
        return {K: np.empty((rows[K], width[K]), complex) for K in sorted(width)}, cols

    @classmethod
    def _finish(cls, layers: SpinLayers, factors: dict[int, np.ndarray],
                heads: list[tuple[int, float, tuple]], cols: list[int]) -> "BlockDensityMatrix":
        """Scale every part's columns by sqrt(w) and compress wide factors."""
        for (K, w, shape), c0 in zip(heads, cols):
            factors[K][:, c0:c0 + shape[1]] *= np.sqrt(w)
        rho = cls(layers, factors)
        for K in factors:
            rho._compress(K)
        return rho

    def _compress(self, K: int) -> None:
        """Replace a factor wider than tall (n_K x r, r > n_K) by an n_K x rank one.

        Every observable depends on rho_K = F F^dag only, so F' = U sqrt(p) from
        rho_K = U p U^dag is exact (to rounding); later products over the columns
        get r / n_K times cheaper (a Gibbs ensemble: r = members x sites x 2).
        The dense block formed on the way is kept in the cache of :meth:`dense`.
        """
        f = self.factors[K]
        n, r = f.shape
        if r <= n or n > DENSE_LIMIT:
            return
        self.factors[K] = _gram_factor(self.dense(K))

    @classmethod
    def from_dense_blocks(cls, layers: SpinLayers, blocks: dict[int, np.ndarray]) -> "BlockDensityMatrix":
        """Factor given Hermitian positive blocks (summed Gram products, tests,
        combining ensembles); the blocks are kept as the cache of :meth:`dense`."""
        eig: dict = {}
        rho = cls(layers, {K: _gram_factor(r, eig, K) for K, r in blocks.items()})
        rho.__dict__["_dense"] = dict(blocks)
        rho.__dict__["_eig"] = eig
        return rho

    # -- access ---------------------------------------------------------------------
    def items(self):
        """(block, factor) for every charge block present."""
        for K in sorted(self.factors):
            yield self.layers.block(K), self.factors[K]

    def dense(self, K: int) -> np.ndarray:
        """The dense block rho_K (cached; only for blocks of moderate size)."""
        cache = self.__dict__.setdefault("_dense", {})
        if K not in cache:
            f = self.factors[K]
            cache[K] = f @ f.conj().T
        return cache[K]

    def is_small(self, K: int) -> bool:
        n, r = self.factors[K].shape
        return n <= max(r, DENSE_LIMIT)

    @property
    def trace(self) -> float:
        return float(sum(np.vdot(f, f).real for f in self.factors.values()))

    @property
    def hermiticity_error(self) -> float:
        """max |rho - rho^dag| over the dense blocks formed (factored blocks are Hermitian by construction)."""
        return float(max((np.abs(self.dense(K) - self.dense(K).conj().T).max()
                          for K in self.factors if self.is_small(K) and self.factors[K].size),
                         default=0.0))

    def diagonal(self):
        """(block, probabilities of its configurations) for every block (from the cache of
        :meth:`diagonals` once that has been filled)."""
        cache = self.__dict__.get("_diag")
        if cache is not None:
            for block, _ in self.items():
                yield block, cache[block.K]
            return
        for block, f in self.items():
            yield block, np.einsum("cr,cr->c", f, f.conj()).real

    def spectrum(self, K: int) -> np.ndarray:
        """Nonzero part of the spectrum of rho_K, from the smaller Gram side."""
        f = self.factors[K]
        g = f.conj().T @ f if f.shape[1] < f.shape[0] else self.dense(K)
        return np.linalg.eigvalsh(0.5 * (g + g.conj().T)) if g.size else np.zeros(0)

    def eigh(self, K: int) -> tuple[np.ndarray, np.ndarray]:
        """Eigenpairs (p, U) of rho_K on its range (thin: U is n_K x rank), descending p."""
        f = self.factors[K]
        if self.is_small(K):
            p, u = np.linalg.eigh(0.5 * (self.dense(K) + self.dense(K).conj().T))
        else:
            s2, v = np.linalg.eigh(f.conj().T @ f)
            keep = s2 > s2.max(initial=0.0) * 1e-15
            p, u = s2[keep], f @ v[:, keep]
            u /= np.sqrt(p)  # in place: u is n_K x rank (1.2 GB for 10+10)
        return p[::-1], u[:, ::-1]

    def eig(self, K: int) -> tuple[np.ndarray, np.ndarray]:
        """Eigenpairs (p descending, U) of rho_K spanning its range, computed once (cached).

        The cheaper side: when the factor F (n_K x r) is narrower than tall,
        F^dag F = V s V^dag (r x r) gives p = s and U = F V s^{-1/2} on
        s > 1e-15 max s (rho_K = F F^dag = U diag(p) U^dag); otherwise the dense
        block is diagonalised (all n_K pairs; null ones have p = 0). Unlike
        :meth:`eigh` (the reference) a block below ``DENSE_LIMIT`` with a
        narrow factor also takes the r x r side. The dense blocks of
        :meth:`from_dense_blocks` come with their decomposition already made.
        """
        cache = self.__dict__.setdefault("_eig", {})
        if K not in cache:
            f = self.factors[K]
            n, r = f.shape
            if r < n:
                g = f.conj().T @ f
                s2, v = np.linalg.eigh(0.5 * (g + g.conj().T))
                keep = s2 > s2.max(initial=0.0) * 1e-15
                p, u = s2[keep], f @ v[:, keep]
                u /= np.sqrt(p)
            else:
                p, u = np.linalg.eigh(0.5 * (self.dense(K) + self.dense(K).conj().T))
            cache[K] = (p[::-1], u[:, ::-1])
        return cache[K]

    def diagonals(self) -> dict[int, np.ndarray]:
        """Probabilities of the configurations of every block (cached; see :meth:`diagonal`)."""
        cache = self.__dict__.get("_diag")
        if cache is None:
            cache = self.__dict__["_diag"] = {block.K: p for block, p in self.diagonal()}
        return cache

    def imbalance_moments(self) -> dict[int, tuple[float, float]]:
        """(tr M_q, ||M_q||_F^2) of every charge-imbalance block M_q of rho^{T_a}, without forming it.

        The partial transpose permutes elements: the rho_K sub-block with rows in
        sub-block k_p = x and columns in k_p = y lands in block q = x + y - K
        (see :func:`spinvalve.entanglement.partial_transpose_blocks`), its
        diagonal elements (x = y) on the diagonal of M_q. So
        tr M_q = sum_{K, 2x - K = q} tr rho_K[x, x] and
        ||M_q||_F^2 = sum_{K, x + y - K = q} ||rho_K[x, y]||_F^2, with
        ||F_x F_y^dag||_F^2 = tr(G_x G_y), G_x = F_x^dag F_x (r x r), or the
        dense block where it is cached.
        """
        out: dict[int, list[float]] = {}
        dense = self.__dict__.get("_dense", {})
        for block, f in self.items():
            K, subs = block.K, block.subblocks
            diag = self.diagonals()[K]
            if K in dense or f.shape[1] >= f.shape[0]:
                d = self.dense(K)
                fro = [[float(np.vdot(d[a.slice, b.slice], d[a.slice, b.slice]).real) for b in subs]
                       for a in subs]
            else:
                g = [f[sb.slice].conj().T @ f[sb.slice] for sb in subs]
                fro = [[float(np.vdot(g[i], g[j]).real) for j in range(len(subs))]
                       for i in range(len(subs))]
            for i, a in enumerate(subs):
                q = 2 * a.k_p - K
                acc = out.setdefault(q, [0.0, 0.0])
                acc[0] += float(diag[a.slice].sum())
                for j, b in enumerate(subs):
                    out.setdefault(a.k_p + b.k_p - K, [0.0, 0.0])[1] += fro[i][j]
        return {q: (t, f2) for q, (t, f2) in out.items()}

    def imbalance_nuclear_bounds(self) -> dict[int, float]:
        """Upper bounds b_q >= ||M_q||_1 of the charge-imbalance blocks of rho^{T_a} from the factors.

        rho = sum_K sum_t f_t f_t^dag over the columns t of F_K; column t of block K
        has sub-block matrices A_x[i_p, i_a] (k_p = x). The partial transpose of
        f_t f_t^dag puts A_x (x) conj(A_y) (up to a permutation of its columns) into
        the element block (x, y) of block q = x + y - K, so its trace norm there is
        ||A_x||_1 ||A_y||_1 (nuclear norms), and by the triangle inequality
        ||M_q||_1 <= sum_K sum_t sum_{x + y - K = q} ||A_x||_1 ||A_y||_1.
        One batched singular-value call per sub-block (r matrices of n_pc x n_ac).
        """
        out: dict[int, float] = {}
        for block, f in self.items():
            K, subs = block.K, block.subblocks
            r = f.shape[1]
            if r == 0:
                continue
            a = [np.linalg.svd(f[sb.slice].T.reshape(r, sb.n_pc, sb.n_ac), compute_uv=False).sum(axis=-1)
                 if sb.size else np.zeros(r) for sb in subs]
            for i, x in enumerate(subs):
                for j, y in enumerate(subs):
                    q = x.k_p + y.k_p - K
                    out[q] = out.get(q, 0.0) + float(a[i] @ a[j])
        return out

    def sub_factor(self, K: int, n: int) -> np.ndarray:
        """Rows of sub-block ``n`` of block K as a tensor F[i_p, i_a, column]."""
        sb = self.layers.block(K).subblocks[n]
        return self.factors[K][sb.slice].reshape(sb.n_pc, sb.n_ac, -1)

    def sub(self, K: int, row: int, col: int) -> np.ndarray:
        """Sub-block ``(row, col)`` of block K as a tensor [i_p, i_a, j_p, j_a]."""
        block = self.layers.block(K)
        ra, rb = block.subblocks[row], block.subblocks[col]
        if self.is_small(K):
            m = self.dense(K)[ra.slice, rb.slice]
        else:
            f = self.factors[K]
            m = f[ra.slice] @ f[rb.slice].conj().T
        return m.reshape(ra.n_pc, ra.n_ac, rb.n_pc, rb.n_ac)

    def layer_blocks(self, layer: str) -> dict[int, np.ndarray]:
        """Reduced state of one layer ('p' or 'a'), block diagonal in its number of up spins."""
        out: dict[int, np.ndarray] = {}
        for block, _ in self.items():
            for n, sb in enumerate(block.subblocks):
                f = self.sub_factor(block.K, n)
                if layer == "p":
                    k, part = sb.k_p, np.einsum("iar,jar->ij", f, f.conj(), optimize=True)
                else:
                    k, part = sb.k_a, np.einsum("iar,ibr->ab", f, f.conj(), optimize=True)
                out[k] = out[k] + part if k in out else part
        return out

    def to_dense(self) -> np.ndarray:
        """Dense 2^N x 2^N matrix in the bit basis index c_p + 2^n_p c_a (tests, small N)."""
        n_p, N = self.layers.n_p, self.layers.n_spins
        rho = np.zeros((1 << N, 1 << N), complex)
        for block, _ in self.items():
            cp, ca = block.bits
            idx = cp + (ca << n_p)
            rho[np.ix_(idx, idx)] = self.dense(block.K)
        return rho


class FactorGather:
    """Every rank's parts sent to ``root``'s Gram factors, point to point, non-blocking.

    ``heads[rank]`` lists the (K, w, shape) of that rank's parts (needed on the
    root only). The amplitudes travel as typed MPI buffers, part by part: a
    pickled list of them would exceed MPI's 2 GiB message limit for 10+10 spins.

    ``buffered=False`` (blocking use, large states): the root receives each part
    straight into its columns of the preallocated factor (a strided MPI vector
    type), without an intermediate buffer; the senders must not change their
    states before :meth:`wait`. ``buffered=True`` (an overlapped measurement):
    the senders send copies and the root receives into contiguous buffers,
    copied into the columns by :meth:`wait`. Contiguous messages are read by
    the receiver alone (shared-memory single copy), so the transfer completes
    while the sender computes; a strided receive would wait for the sender to
    call into MPI again.
    """

    def __init__(self, layers: SpinLayers, parts: list[tuple[int, float, np.ndarray]], heads,
                 comm, root: int, buffered: bool):
        from mpi4py import MPI
        self.layers, self.comm, self.root = layers, comm, root
        self.requests, self.types, self.buffers, self.received = [], [], [], []
        if comm.rank != root:
            for n, (_, _, amp) in enumerate(parts):
                buf = (np.array(amp, dtype=complex, order="C") if buffered
                       else np.ascontiguousarray(amp, complex))
                self.buffers.append(buf)
                self.requests.append(comm.Isend(buf, dest=root, tag=n))
            return
        flat = [(rank, n, head) for rank, rank_heads in enumerate(heads)
                for n, head in enumerate(rank_heads)]
        self.heads = [head for _, _, head in flat]
        self.factors, self.cols = BlockDensityMatrix._allocate(self.heads)
        for (rank, n, (K, _, (rows, width))), c0 in zip(flat, self.cols):
            factor = self.factors[K]
            if rank == root:
                factor[:, c0:c0 + width] = parts[n][2]
            elif buffered:
                buf = np.empty((rows, width), complex)
                self.received.append((factor, c0, buf))
                self.requests.append(comm.Irecv(buf, source=rank, tag=n))
            else:
                # columns c0 ... c0 + width - 1 of the C-ordered factor: rows blocks at its row stride
                columns = MPI.DOUBLE_COMPLEX.Create_vector(rows, width, factor.shape[1]).Commit()
                self.types.append(columns)
                self.requests.append(comm.Irecv([factor.reshape(-1)[c0:], 1, columns], source=rank, tag=n))

    def wait(self) -> BlockDensityMatrix | None:
        """Complete the transfer; rho_FM on the root, None elsewhere."""
        from mpi4py import MPI
        MPI.Request.Waitall(self.requests)
        for columns in self.types:
            columns.Free()
        for factor, c0, buf in self.received:
            factor[:, c0:c0 + buf.shape[1]] = buf
        self.requests, self.types, self.buffers, self.received = [], [], [], []
        if self.comm.rank != self.root:
            return None
        return BlockDensityMatrix._finish(self.layers, self.factors, self.heads, self.cols)
