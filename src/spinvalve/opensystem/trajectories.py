"""Quantum trajectories for the universal Lindblad equation (waiting-time / MCWF method).

Problem. H (Eq. 7) acts on the *full* spin space: the baths flip localized
spins, so a trajectory leaves its S^z_tot sector; the state is the direct sum
of every (electron spin, charge block K) part (:meth:`SpinSpace.full`, 2^(N+1)
spin states per chain site), still applied matrix-free by
:class:`~spinvalve.hamiltonian.HamiltonianShell`. Between jumps a trajectory
evolves under H_eff = H - (i/2) Gamma_tot, Gamma_tot = sum_i L_i^dag L_i =
Gamma_p (x) 1 + 1 (x) Gamma_a (the jump operators act on one layer each, see
:mod:`.ule`), applied on the localized-spin index for every site and electron spin.

Propagator. exp(-i H_eff tau / hbar) by the same Chebyshev expansion as the
unitary engine, sum_k c_k(z) T_k((H_eff - a)/b): the generating-function
identity holds for any operator, and the numerical range of (H_eff - a)/b lies
in the rectangle [-1, 1] x [-i delta, 0], delta = max eig(Gamma_tot) / (2 b).
By Crouzeix's theorem ||T_k|| <= (1 + sqrt 2) rho^k on the Bernstein ellipse
E_rho enclosing that rectangle, so the series is truncated where
(1 + sqrt 2) sum_{j >= k} |c_j| rho^j < tolerance (a few extra terms: delta ~ 1e-3).
The shell applies -(i/2) Gamma_tot in the same compiled pass as H
(:meth:`HamiltonianShell.add_spin_term`).

Waiting-time method (Daley, Adv. Phys. 63, 77). Draw r ~ U(0, 1); propagate
a window of output steps with H_eff from one Chebyshev recursion; when
||psi||^2 drops below r inside a step, locate the crossing by Brent's root
search on ln ||psi(tau)||^2 - ln r, every trial state a combination of the
window's stored recursion vectors (jump time to ~1e-9 fs); apply L_i with
probability proportional to ||L_i psi||^2, normalise, draw a new r, continue.
At output times the normalised state adds |psi><psi| (traced over site and
electron spin) to rho_FM.

Randomness and MPI. Trajectory i (both electron-spin members, up then down,
weight 1/2 each) draws every number from ``np.random.default_rng([seed, i])``;
ranks run whole trajectories (round robin over the job's slice) on
MPI.COMM_SELF and the sums are reduced at the end, so results do not depend on
how trajectories are split over ranks or jobs.
"""

from __future__ import annotations

import math
import sys
import time as wallclock

import numpy as np
import scipy.sparse as sp
from scipy.optimize import brentq
from scipy.special import jv

from .. import HBAR, lapack
from ..basis import SpinSpace
from ..config import ConfigError, JobConfig, Trajectories
from ..ensemble import packet
from ..hamiltonian import HamiltonianShell, Model
from ..propagate import PropagationError
from ..schema import variable
from .bands import (N_BATCHES, TrajectorySums, band_time_indices, bootstrap_bands, pack_hermitian,
                    to_dataset)
from .ule import JumpOperators, jump_operators

CROUZEIX = 1.0 + math.sqrt(2.0)
Z_WINDOW = 30.0
WINDOW_BYTES = 256 * 2 ** 20


# ---------------------------------------------------------------------------
# problem: H on the full spin space, Gamma_tot and the jumps
# ---------------------------------------------------------------------------

class OpenProblem:
    """H, the jump operators and the map between storage order and the bit basis.

    ``rows[e * 2^N + c]`` is the spin-part index (storage row) of electron spin
    e (0 = up) and localized configuration c = c_p + 2^n_p c_a, so
    ``psi[rows].reshape(2, 2^n_a, 2^n_p, nx)`` is the state in the bit basis.
    """

    def __init__(self, model: Model, jumps: JumpOperators, comm):
        self.model, self.jumps = model, jumps
        self.space = SpinSpace.full(model.layers)
        self.shell = HamiltonianShell(model, self.space, comm)
        self.comm = comm
        n_p, N = model.n_p, model.n_spins
        self.dp, self.da = 1 << model.n_p, 1 << model.n_a
        rows = np.full((2, 1 << N), -1, dtype=np.int64)
        for e_up, block, sl in self.space.iter_parts():
            cp, ca = block.bits
            rows[0 if e_up else 1, cp + (ca << n_p)] = np.arange(sl.start, sl.stop)
        assert (rows >= 0).all()
        self.rows = rows.reshape(-1)
        self.gamma_p = jumps.decay["p"] if model.n_p else np.zeros((1, 1), complex)
        self.gamma_a = jumps.decay["a"] if model.n_a else np.zeros((1, 1), complex)
        self.max_decay = jumps.max_decay if N else 0.0
        # Gamma_tot in storage order (both electron spins): CSR with 2^n_p + 2^n_a - 1 entries per row
        gb = sp.csr_matrix(jumps.full_decay()) if N else sp.csr_matrix((1, 1), dtype=complex)
        perm = sp.csr_matrix((np.ones(len(self.rows)), (self.rows, np.arange(len(self.rows)))),
                             shape=(len(self.rows),) * 2)
        self.decay_csr = (perm @ sp.block_diag([gb, gb]) @ perm.T).tocsr()
        self.decay_csr.sort_indices()
        if self.max_decay > 0:                     # the shell applies H_eff = H - (i/2) Gamma_tot
            self.shell.add_spin_term(-0.5j * self.decay_csr)

    @property
    def local_shape(self) -> tuple[int, int]:
        return self.shell.local_shape

    def bits(self, psi: np.ndarray) -> np.ndarray:
        """The state as t[e, c_a, c_p, x] (a copy)."""
        return psi[self.rows].reshape(2, self.da, self.dp, psi.shape[1])

    def apply_jump(self, i: int, psi: np.ndarray) -> np.ndarray:
        """L_i psi (a new array)."""
        t = self.bits(psi)
        nx = psi.shape[1]
        op = self.jumps.layer_ops[i]
        if self.jumps.layer_of(i) == "p":
            r = np.matmul(op, t)
        else:
            r = np.matmul(op, t.reshape(2, self.da, self.dp * nx)).reshape(t.shape)
        out = np.empty_like(psi)
        out[self.rows] = r.reshape(-1, nx)
        return out

    def norm2(self, psi: np.ndarray) -> float:
        n = np.vdot(psi, psi).real
        return self.comm.allreduce(n) if self.comm.size > 1 else float(n)


# ---------------------------------------------------------------------------
# propagator of H_eff
# ---------------------------------------------------------------------------

def bernstein_rho(delta: float) -> float:
    """Smallest rho whose Bernstein ellipse (foci +-1) contains [-1, 1] x [-delta, delta]."""
    if delta <= 0:
        return 1.0

    def excess(rho):
        alpha, beta = 0.5 * (rho + 1 / rho), 0.5 * (rho - 1 / rho)
        return 1 / alpha ** 2 + delta ** 2 / beta ** 2 - 1

    return float(brentq(excess, 1 + 1e-15, 1 + 10 * math.sqrt(delta) + 10 * delta))


def growth_coefficients(z: float, tol: float, rho: float) -> np.ndarray:
    """c_k = (2 - delta_k0)(-i)^k J_k(z), truncated where CROUZEIX sum_{j>=k} |c_j| rho^j < tol."""
    kmax = int(2 * z * rho + 80)
    k = np.arange(kmax + 1)
    mag = np.abs(jv(k, z)) * np.where(k == 0, 1.0, 2.0) * rho ** k * CROUZEIX
    tail = np.cumsum(mag[::-1])[::-1]
    if not np.any(tail < tol):
        raise PropagationError(f"Chebyshev series for z = {z:.3g} does not reach tolerance {tol:.1e} "
                               f"(Bernstein rho = {rho:.3g}: is max eig(Gamma_tot) sensible?)")
    n = max(int(np.argmax(tail < tol)), 2)
    kk = k[:n]
    return ((-1j) ** kk) * jv(kk, z) * np.where(kk == 0, 1.0, 2.0)


class EffectivePropagator:
    """exp(-i H_eff tau / hbar) psi by the non-Hermitian Chebyshev expansion, in windows
    of one recursion each (:meth:`window`; longer spans: :meth:`TrajectoryRunner._advance`)."""

    def __init__(self, problem: OpenProblem, tolerance: float):
        self.problem = problem
        self.shell = problem.shell
        lo, hi = problem.model.spectral_bounds()
        self.a = 0.5 * (hi + lo)
        self.b = 0.5 * (hi - lo) * (1 + 1e-6) + 1e-12
        self.rho = bernstein_rho(0.5 * problem.max_decay / self.b)
        self.tolerance = tolerance
        self._zero = np.zeros(problem.local_shape, complex)
        self._coef_cache: dict[float, np.ndarray] = {}
        self.n_terms = 0

    def _coefficients(self, tau: float) -> np.ndarray:
        c = self._coef_cache.get(tau)
        if c is None:
            c = growth_coefficients(self.b * tau / HBAR, self.tolerance, self.rho)
            if len(self._coef_cache) < 256:
                self._coef_cache[tau] = c
        return c

    def window_steps(self, dt: float) -> int:
        """Output steps per window of :meth:`propagate_many`.

        The window's z = b m dt / hbar is at most Z_WINDOW, and its stored
        Chebyshev vectors (about z + 40 of them) take at most WINDOW_BYTES.
        """
        state = 16 * int(np.prod(self.problem.local_shape))
        z_mem = max(1.0, WINDOW_BYTES / state - 45.0)
        return max(1, int(min(Z_WINDOW, z_mem) * HBAR / (self.b * dt)))

    @property
    def max_window(self) -> float:
        """Longest time span (fs) of one :meth:`window` (z = b tau / hbar = Z_WINDOW)."""
        return Z_WINDOW * HBAR / self.b

    def window(self, psi: np.ndarray, tau_max: float) -> "ChebyshevWindow":
        """The recursion vectors T_k((H_eff - a)/b) psi needed for every tau <= tau_max.

        They do not depend on tau: the window then gives exp(-i H_eff tau / hbar) psi
        for any tau in [0, tau_max] as one linear combination (no further operator
        applications). Costs about z + O(log 1/tol) applications, z = b tau_max / hbar.
        """
        if self.b * tau_max / HBAR > 100.0:
            raise ValueError("window too long (z > 100)")
        K = len(self._coefficients(float(tau_max)))
        shell, a, b = self.shell, self.a, self.b
        T = np.empty((K,) + psi.shape, complex)
        T[0] = psi
        shell.chebyshev_term(T[0], self._zero, None, 0.0, a, 1.0 / b, out=T[1])  # T_1
        for k in range(1, K - 1):                  # T_{k+1} = s (H_eff - a) T_k - T_{k-1}
            shell.chebyshev_term(T[k], T[k - 1], None, 0.0, a, 2.0 / b, out=T[k + 1])
        self.n_terms += K
        return ChebyshevWindow(self, T, float(tau_max))

    def propagate_many(self, psi: np.ndarray, taus) -> list[np.ndarray]:
        """exp(-i H_eff tau_j / hbar) psi for increasing tau_j, from ONE Chebyshev recursion.

        A window of m outputs costs about z_max + O(log 1/tol) operator
        applications instead of m times the per-step overhead.
        """
        taus = [float(t) for t in taus]
        return self.window(psi, taus[-1]).states(taus)


class ChebyshevWindow:
    """exp(-i H_eff tau / hbar) psi for any 0 <= tau <= tau_max from stored recursion vectors.

    The state at tau is sum_k c_k(b tau / hbar) e^{-i a tau / hbar} T_k, each
    coefficient row truncated at its own tolerance (never longer than the
    stored K: the series for a shorter time converges faster).
    """

    def __init__(self, prop: EffectivePropagator, T: np.ndarray, tau_max: float):
        self.prop, self.T, self.tau_max = prop, T, tau_max

    def _row(self, tau: float) -> np.ndarray:
        if not 0.0 <= tau <= self.tau_max * (1 + 1e-12):
            raise ValueError(f"time {tau} outside the window [0, {self.tau_max}]")
        c = self.prop._coefficients(float(tau))
        if len(c) > len(self.T):               # pragma: no cover - monotone in practice
            raise PropagationError(f"Chebyshev series for {tau} fs is longer than its window's")
        return c * np.exp(-1j * self.prop.a * tau / HBAR)

    def states(self, taus) -> list[np.ndarray]:
        """The states at several times: one product C T over the vectors the longest row needs."""
        rows = [self._row(t) for t in taus]
        K = max(len(c) for c in rows)
        C = np.zeros((len(rows), K), complex)
        for j, c in enumerate(rows):
            C[j, :len(c)] = c
        out = (C @ self.T[:K].reshape(K, -1)).reshape((len(rows),) + self.T.shape[1:])
        if not np.all(np.isfinite(out)):
            raise PropagationError("non-Hermitian Chebyshev window produced non-finite amplitudes")
        return list(out)

    def state(self, tau: float) -> np.ndarray:
        return self.states([tau])[0]


# ---------------------------------------------------------------------------
# one trajectory
# ---------------------------------------------------------------------------

def _log_norm_excess(tau: float, win: ChebyshevWindow, norm2, log_r: float) -> float:
    """ln ||psi(tau)||^2 - ln r for the jump-time root search."""
    return math.log(norm2(win.state(tau))) - log_r


class TrajectoryRunner:
    """Runs trajectories of one job config and accumulates their rho_FM sums."""

    def __init__(self, cfg: JobConfig, comm=None):
        if cfg.bath is None:
            raise ConfigError("bath: the open-system engine needs a bath section")
        from mpi4py import MPI
        # the many small BLAS calls of a trajectory (axpy, small GEMMs) run many times
        # slower with threads competing for the cores: the ranks are the parallelism
        lapack.limit_blas_threads(1)
        self.cfg = cfg
        self.traj = cfg.trajectories if cfg.trajectories is not None else Trajectories()
        self.model = Model.from_config(cfg)
        self.jumps = jump_operators(self.model, cfg.bath)
        self.problem = OpenProblem(self.model, self.jumps, comm if comm is not None else MPI.COMM_SELF)
        self.prop = EffectivePropagator(self.problem, cfg.numerics.chebyshev.tolerance)
        shell = self.problem.shell
        self.phi = packet(cfg)[shell.x0:shell.x1]
        ref = self.model.layers.reference_charge
        block = self.model.layers.block(ref)
        self.ref_index = int(block.index(np.array([(1 << self.model.n_p) - 1]), np.array([0]))[0])
        self.ref_charge = ref
        self.times = np.arange(cfg.time.n_out + 1) * cfg.time.dt_out
        N = self.model.n_spins
        self.sums = TrajectorySums.empty(self.model.n_p, self.model.n_a, self.times,
                                         band_time_indices(len(self.times), N))
        self.n_jumps = np.zeros(N, dtype=np.int64)
        self._h = np.empty(self.problem.local_shape, complex)

    def initial_state(self, e_up: bool) -> np.ndarray:
        psi = np.zeros(self.problem.local_shape, complex)
        row = self.problem.space.slice(e_up, self.ref_charge).start + self.ref_index
        psi[row] = self.phi
        return psi

    def _record(self, psi: np.ndarray, n: int, acc: dict, weight: float) -> None:
        p = self.problem
        nrm = p.norm2(psi)
        t = p.bits(psi).reshape(2, -1, psi.shape[1])          # [e, c, x]
        m = t.transpose(1, 0, 2).reshape(t.shape[1], -1)      # [c, (e, x)]
        acc["rho"][n] += (weight / nrm) * (m @ m.conj().T)
        te = t.reshape(2, -1)
        acc["rho_e"][n] += (weight / nrm) * (te @ te.conj().T)
        p.shell.apply(psi, self._h, spin_term=False)          # H psi (without -(i/2) Gamma_tot)
        acc["energy"][n] += weight * np.vdot(psi, self._h).real / nrm

    def _jump(self, psi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        cands = [self.problem.apply_jump(i, psi) for i in range(self.model.n_spins)]
        w = np.array([self.problem.norm2(c) for c in cands])
        i = int(np.searchsorted(np.cumsum(w) / w.sum(), rng.random(), side="right"))
        i = min(i, len(w) - 1)
        self.n_jumps[i] += 1
        return cands[i] / math.sqrt(w[i])

    def _jump_in(self, win: ChebyshevWindow, lo: float, hi: float, r: float,
                 rng: np.random.Generator) -> tuple[np.ndarray, float]:
        """Locate ||psi(tau)||^2 = r in (lo, hi] of the window and jump there: (state, tau).

        Brent's root search on ln ||psi(tau)||^2 - ln r, every evaluation a linear
        combination of the window's vectors (no operator application).
        """
        args = (win, self.problem.norm2, math.log(r))
        # a module-level function with args, not a closure: scipy's brentq wraps f in a
        # self-referencing closure, which would keep the window's vectors (tens of MB)
        # alive until the cyclic garbage collector runs (9 GB resident on a 4+4 job)
        tau = lo if _log_norm_excess(lo, *args) <= 0 else brentq(
            _log_norm_excess, lo, hi, args=args, xtol=1e-9, rtol=1e-12)
        return self._jump(win.state(tau), rng), tau

    def _advance(self, psi: np.ndarray, span: float, r: float, rng: np.random.Generator
                 ) -> tuple[np.ndarray, float, int]:
        """Advance ``span`` fs with jumps, in windows of at most ``max_window``: (state, r, jumps)."""
        p, prop = self.problem, self.prop
        jumps = 0
        while span > 1e-12:
            stretch = min(span, prop.max_window)
            win = prop.window(psi, stretch)
            end = win.state(stretch)
            if p.norm2(end) > r:
                psi, span = end, span - stretch
                continue
            psi, tau = self._jump_in(win, 0.0, stretch, r, rng)
            jumps += 1
            r = rng.random()
            span -= tau
        return psi, r, jumps

    def run_member(self, e_up: bool, rng: np.random.Generator, acc: dict, weight: float) -> int:
        """One member's trajectory; returns its number of jumps.

        Windows of output steps come from one Chebyshev recursion
        (:meth:`EffectivePropagator.window`). When the norm of an output fell
        below r, the jump time is located between it and the previous output
        from the same window's vectors, and the rest of that output step is
        advanced with further jumps (:meth:`_advance`).
        """
        p, prop, dt = self.problem, self.prop, self.cfg.time.dt_out
        n_out = len(self.times) - 1
        window = prop.window_steps(dt)
        psi = self.initial_state(e_up)
        r = rng.random()
        jumps = 0
        self._record(psi, 0, acc, weight)
        n = 0
        while n < n_out:
            m = min(window, n_out - n)
            taus = dt * np.arange(1, m + 1)
            win = prop.window(psi, taus[-1])
            states = win.states(taus)
            crossed = next((j for j, st in enumerate(states) if p.norm2(st) <= r), None)
            good = m if crossed is None else crossed
            for j in range(good):
                self._record(states[j], n + j + 1, acc, weight)
            n += good
            if crossed is None:
                psi = states[-1]
                continue
            lo = taus[crossed - 1] if crossed else 0.0
            psi, tau = self._jump_in(win, lo, taus[crossed], r, rng)
            jumps += 1
            r = rng.random()
            psi, r, nj = self._advance(psi, taus[crossed] - tau, r, rng)
            jumps += nj
            n += 1
            self._record(psi, n, acc, weight)
        return jumps

    def run_trajectory(self, index: int) -> int:
        """Trajectory ``index`` (both members); adds its rho_FM to the sums. Returns jumps."""
        nt, D = len(self.times), 1 << self.model.n_spins
        acc = {"rho": np.zeros((nt, D, D), complex), "rho_e": np.zeros((nt, 2, 2), complex),
               "energy": np.zeros(nt)}
        rng = np.random.default_rng([self.traj.seed, index])
        jumps = sum(self.run_member(e_up, rng, acc, 0.5) for e_up in (True, False))
        self.sums.add_trajectory(index, acc["rho"], acc["rho_e"], acc["energy"], jumps)
        return jumps


def _sums_arrays(runner: TrajectoryRunner) -> list[np.ndarray]:
    s = runner.sums
    return [s.rho, s.rho_e, s.energy, s.batch, s.batch_count, np.array(s.indices, dtype=np.int64),
            np.array([s.n_jumps], dtype=np.int64), runner.n_jumps]


def _restore_sums(runner: TrajectoryRunner, arrays: list[np.ndarray]) -> None:
    s = runner.sums
    s.rho[...], s.rho_e[...], s.energy[...], s.batch[...], s.batch_count[...] = arrays[:5]
    s.indices = [int(i) for i in arrays[5]]
    s.n_jumps = int(arrays[6][0])
    runner.n_jumps[...] = arrays[7]


def run_open(cfg: JobConfig, world=None, log=sys.stderr, checkpointer=None, stop=None):
    """Run this job's trajectories (``trajectories.first`` ... first + count - 1) over ``world``.

    Ranks take trajectories round robin; the sums are reduced to rank 0, which
    returns the dataset (observables, bands, sums); other ranks return None.
    With a :class:`~spinvalve.checkpoint.Checkpointer`, every rank's sums are saved
    after whole trajectories (every ``checkpoint.interval`` s, or when ``stop``
    caught SIGTERM/SIGUSR1) and a restart skips the trajectories already summed:
    trajectory i depends only on (seed, i), so the result is unchanged.
    """
    from mpi4py import MPI
    from ..errors import Interrupted
    world = world if world is not None else MPI.COMM_WORLD
    runner = TrajectoryRunner(cfg, MPI.COMM_SELF)
    tr = runner.traj
    mine = [i for n, i in enumerate(range(tr.first, tr.first + tr.count)) if n % world.size == world.rank]
    rounds = -(-tr.count // world.size)
    start = 0
    if checkpointer is not None:
        saved = checkpointer.load()
        if saved is not None:
            start, arrays = saved.step, saved.arrays
            _restore_sums(runner, arrays)
            if log is not None and world.rank == 0:
                print(f"spinvalve: resuming after {start} rounds of trajectories", file=log, flush=True)
    t0 = last = last_ckpt = wallclock.monotonic()
    for n in range(start, rounds):
        if n < len(mine):
            runner.run_trajectory(mine[n])
        now = wallclock.monotonic()
        if log is not None and world.rank == 0 and (now - last > 10 or n == rounds - 1):
            print(f"spinvalve: trajectory {n + 1}/{len(mine)} on rank 0 "
                  f"({tr.count} in the job over {world.size} ranks), elapsed {now - t0:.1f} s, "
                  f"{(now - t0) / (n + 1 - start):.2f} s per trajectory", file=log, flush=True)
            last = now
        if checkpointer is not None and n < rounds - 1:
            signalled = world.allreduce(int(stop is not None and stop.raised is not None))
            if signalled or world.allreduce(now - last_ckpt > checkpointer.interval, op=MPI.LOR):
                checkpointer.save(n + 1, [], _sums_arrays(runner))
                last_ckpt = now
            if signalled:
                raise Interrupted(f"spinvalve: signal received, checkpoint written after {n + 1} rounds "
                                  "of trajectories; rerun the same command to resume")
    t_traj = wallclock.monotonic() - t0
    sums = runner.sums.reduce(world)
    jumps = np.zeros_like(runner.n_jumps)
    world.Reduce(runner.n_jumps, jumps, op=MPI.SUM, root=0)
    meta = {"positions": np.array(runner.model.spin_sites, dtype=float),
            "k_values": np.array(cfg.observables.k_values, dtype=float),
            "seed": tr.seed, "invariant_tolerance": cfg.numerics.invariant_tolerance,
            "hopping": cfg.chain.hopping}
    bands = None
    if tr.bands:  # the bootstrap bands (the costly part of the observables) on every rank
        shared = sums if world.rank == 0 else runner.sums
        if world.size > 1:
            shared.batch = np.ascontiguousarray(shared.batch)
            shared.batch_count = np.ascontiguousarray(shared.batch_count)
            world.Bcast(shared.batch, root=0)
            world.Bcast(shared.batch_count, root=0)
        bands = bootstrap_bands(shared, meta["positions"], meta["k_values"], tr.seed, comm=world)
    if world.rank != 0:
        return None
    ds = to_dataset(sums, meta, bands=bands if tr.bands else False)
    ds["jumps_per_spin"] = variable("bath", "jumps_per_spin", jumps)
    ds.attrs.update({
        "integrator": "chebyshev (non-Hermitian, H_eff)",
        "bath_jump_operators": cfg.bath.jump_operators,
        "max_decay_rate_eV": runner.problem.max_decay,
        "chebyshev_bernstein_rho": runner.prop.rho,
        "wallclock_seconds": wallclock.monotonic() - t0,
        "trajectory_seconds_rank0": t_traj,
        "n_members": 2 * tr.count,
    })
    return ds


__all__ = ["OpenProblem", "EffectivePropagator", "ChebyshevWindow", "TrajectoryRunner", "run_open",
           "bernstein_rho", "growth_coefficients", "pack_hermitian", "N_BATCHES"]
