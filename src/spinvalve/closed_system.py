"""The closed-system solver: evolve every ensemble member, reduce rho_FM, record observables.

MPI layout: the world communicator is split into groups of
``parallel.ranks_per_member`` ranks (0: one group of all ranks); each group
evolves its share of the members, each member's state distributed over the
group's ranks by chain site. At every output time each rank contributes the
amplitudes of its rows to rho_FM's blocks, so the result does not depend on
the split. With one rank per member (no halo exchanges that a measuring rank
would stall) and within ``parallel.overlap_limit_gb`` the ranks measure in turn
(``Engine.overlap``, :class:`~spinvalve.transport.InTurnReduction`): output
time n is measured by rank n mod size one output time later while the others
propagate on. Otherwise (a member split over ranks, or 10+10) rank 0 receives
rho_FM, measures every output time and broadcasts the observables
(:class:`~spinvalve.transport.BlockingReduction`). rho_FM travels as dense
blocks' Gram products (every block no larger than its Gram factor, e.g. a
Gibbs ensemble or 4+4 spins) or as the amplitudes of its Gram factors (large
sectors: 7+7 and up).
"""

from __future__ import annotations

import sys
import time as wallclock
from dataclasses import dataclass

import numpy as np
import xarray as xr

from . import HBAR, kernels, measure
from .basis import Sector
from .checkpoint import Checkpointer, StopFlag
from .config import JobConfig
from .driver import check_invariants, interrupted, run_output_times
from .ensemble import Ensemble, Member, build_ensemble, packet
from .entanglement import BlockProgress, MeasurementInterrupted
from .errors import InvariantError
from .hamiltonian import HamiltonianShell, Model
from .propagate import make_propagator
from .reduced import DENSE_LIMIT, BlockDensityMatrix
from .schema import variable
from .transport import (BlockingReduction, DenseBlocks, Flags, InTurnReduction, Reduced, Share,
                        split_groups)


@dataclass
class MemberState:
    """One ensemble member on this rank's group: its shell, PETSc state and propagator."""
    member: Member
    shell: HamiltonianShell
    vec: object          # PETSc Vec, distributed over the group
    propagator: object

    @property
    def local(self) -> np.ndarray:
        return self.vec.array.reshape(self.shell.local_shape)


#: the observables of a closed-system file, in file order
OBSERVABLES = ("electron_spin", "spin_expectation", "entropy_p", "entropy_a", "entropy_pa",
               "mutual_information", "log_negativity", "trace_norm_by_imbalance",
               "magnon_probability", "w_state_probability", "qfi_bound", "qfi_exact", "norm",
               "sz_total", "energy", "trace_rho", "hermiticity_error")


def _max_op():
    from mpi4py import MPI
    return MPI.MAX


class Engine:
    """The single-electron engine for one job config."""

    def __init__(self, cfg: JobConfig, world=None):
        from mpi4py import MPI
        from petsc4py import PETSc
        kernels.allow_mmap_malloc()  # PETSc turned mmap off: freed GBs would stay resident
        self.cfg = cfg
        self.world = world if world is not None else MPI.COMM_WORLD
        self.model = Model.from_config(cfg)
        self.ensemble: Ensemble = build_ensemble(self.model, cfg)
        self.group, color, n_groups = split_groups(self.world, cfg.parallel.ranks_per_member)
        self.n_groups = n_groups
        self.petsc_group = PETSc.Comm(self.group)
        phi = packet(cfg)
        self.states: list[MemberState] = []
        self.seconds = {"propagation": 0.0, "observables": 0.0}
        shells: dict[int, tuple[HamiltonianShell, object]] = {}
        N = self.model.n_spins
        for n, member in enumerate(self.ensemble.members):
            if n % n_groups != color:
                continue
            M = member.sector(N)
            if M not in shells:
                shell = HamiltonianShell(self.model, Sector(self.model.layers, M), self.group)
                shells[M] = (shell, shell.create_mat(self.petsc_group))
            shell, mat = shells[M]
            vec = mat.createVecRight()
            local = vec.array.reshape(shell.local_shape)
            local[...] = 0.0
            local[shell.sector.slice(member.e_up, member.K), :] = np.outer(member.spins,
                                                                           phi[shell.x0:shell.x1])
            prop = make_propagator(shell, mat, cfg.time.dt_out, cfg.numerics)
            self.states.append(MemberState(member, shell, vec, prop))
        self.dense = self._dense_layout()
        self._heads = None if self.dense is not None else self.world.allgather(
            [(K, w, amp.shape) for K, w, amp in self._parts()])
        # Measure in turn only with one rank per member (a measuring rank would stall the
        # halo exchanges of its group) and within the memory allowance. False: rank 0
        # measures every output time.
        in_flight_gb = (self.world.size * self.dense.size * 16 / 1e9 if self.dense is not None
                        else self.factor_gb if self.world.size > 1 else np.inf)
        self.overlap = self.group.size == 1 and in_flight_gb <= cfg.parallel.overlap_limit_gb
        self.blocking = BlockingReduction(self.world, self.model.layers, self.dense, self._heads)
        # flags, scalars and dense blocks in flight on a communicator of their own
        self.in_turn = InTurnReduction(self.world.Dup(), self.world, self.model.layers, self.dense,
                                       self._heads)
        self._records: dict[int, dict] = {}  # observables this rank computed (rank 0: all, after a merge)
        self._first: dict | None = None     # reference values of the invariant checks
        self.failure: InvariantError | None = None
        # output times whose measurement the stop flag interrupted on this rank:
        # index -> (rho_FM, scalars, BlockProgress); saved with the checkpoint
        self._unfinished: dict[int, tuple] = {}
        self._stop = None                   # callable: the stop flag was raised

    # -- one output time -------------------------------------------------------------
    def _parts(self):
        """(K, weight, amplitudes[c, x]) of this rank's rows, one per member part."""
        for st in self.states:
            for _, block, sl in st.shell.sector.iter_parts():
                yield block.K, st.member.weight, st.local[sl]

    def _scalars(self) -> np.ndarray:
        """This rank's share of the norm, the energy <H>, <s^z_e> and the localized
        spins' total <S^z> (block K: 2K - N for every configuration)."""
        scal = np.zeros(4)
        N = self.model.n_spins
        for st in self.states:
            w, psi, sec = st.member.weight, st.local, st.shell.sector
            hpsi = np.empty_like(psi)       # freed before the rho_FM parts are reduced
            st.shell.apply(psi, hpsi)
            scal[0] += w * np.vdot(psi, psi).real
            scal[1] += w * np.vdot(psi, hpsi).real
            del hpsi
            for e_up, block, sl in sec.iter_parts():
                p = w * np.vdot(psi[sl], psi[sl]).real
                scal[2] += p if e_up else -p
                scal[3] += (2 * block.K - N) * p
        return scal

    def _dense_layout(self) -> DenseBlocks | None:
        """rho_FM's dense blocks in a flat buffer, or None when a block is larger than its
        Gram factor or than ``DENSE_LIMIT`` (then the factors are gathered)."""
        from mpi4py import MPI
        width = np.zeros(self.model.n_spins + 1)
        for K, _, amp in self._parts():
            width[K] += amp.shape[1]
        self.world.Allreduce(MPI.IN_PLACE, width)
        offsets, off = {}, 0
        for K in np.flatnonzero(width):
            n = self.model.layers.block(int(K)).size
            if n > DENSE_LIMIT or n > width[K]:
                return None
            offsets[int(K)], off = off, off + n * n
        return DenseBlocks(self.model.layers, offsets, off)

    @property
    def factor_gb(self) -> float:
        """Size of one output time's rho_FM Gram factors (all members' amplitudes), GB."""
        if self._heads is None:
            return 0.0
        return sum(rows * width for heads in self._heads for _, _, (rows, width) in heads) * 16 / 1e9

    def _share(self, flags: Flags) -> Share:
        """This rank's flags, scalars and rho_FM parts at the current time."""
        return Share(flags, self._scalars(), list(self._parts()))

    def measure(self, index: int = 0, flags: Flags | None = None) -> tuple[dict, Flags]:
        """Observables of the ensemble at the current time (identical on every rank)
        and the flags summed over the ranks; rank 0 measures while the others wait.
        Observables None: the stop flag interrupted rank 0's measurement (kept in
        ``_unfinished``)."""
        done = self.blocking.reduce(index, self._share(flags or Flags()))
        obs = self._observe(done.rho, done.scalars[:3], index) if done.rho is not None else None
        return self.world.bcast(obs, root=0), done.flags

    def _measure_in_turn(self, done: Reduced) -> Flags:
        """Measure and check an output time finished by the in-turn reduction on its
        measuring rank; its summed flags.

        The reference values of the invariant checks come from the scalars of the
        first output time (identical on every rank), not from its observables."""
        scal = done.scalars
        if self._first is None:
            self._first = {"energy": scal[1], "sz_total": scal[2] + scal[3]}
        if done.rho is not None:
            obs = self._observe(done.rho, scal[:3], done.index)
            done.rho = None
            if obs is not None:
                self._record(done.index, obs)
        return done.flags

    def output_time(self, n: int, flags: Flags) -> Flags:
        """Reduce and measure output time ``n`` (in turn with ``overlap``: an earlier one
        is finished, if any); the flags summed over the ranks of what was finished."""
        if self.overlap:
            self.in_turn.send(n, self._share(flags))
            return (self._measure_in_turn(self.in_turn.finish_oldest())
                    if len(self.in_turn.in_flight) > 1 else Flags())
        obs, summed = self.measure(n, flags)
        if obs is None:  # the stop flag interrupted rank 0's measurement
            summed.stop = True
        else:
            self._first = self._first or obs
            self.check_invariants(obs, self._first, n * self.cfg.time.dt_out)
            if self.world.rank == 0:
                self._records[n] = obs
        return summed

    def _record(self, index: int, obs: dict) -> None:
        """Keep and check the observables this rank measured (in-turn measurement)."""
        self._records[index] = obs
        try:
            self.check_invariants(obs, self._first, index * self.cfg.time.dt_out)
        except InvariantError as exc:
            self.failure = self.failure or exc

    def _observe(self, rho: BlockDensityMatrix, scal, index: int,
                 blocks: BlockProgress | None = None) -> dict | None:
        """Observables of output time ``index``, or None when the stop flag interrupted
        the measurement: then rho_FM as it was handed over (factors and the caches made
        with it), the scalars and the finished charge-imbalance blocks are kept in
        ``_unfinished`` for the checkpoint, and a resumed run finishes the measurement
        from them (the same numbers as an uninterrupted run)."""
        if self._stop is None and blocks is None:
            return self.observables(rho, *scal, index=index)
        blocks = blocks or BlockProgress()
        blocks.stop = self._stop
        handed = {k: dict(v) if isinstance(v, dict) else v for k, v in rho.__dict__.items()}
        try:
            return self.observables(rho, *scal, index=index, blocks=blocks)
        except MeasurementInterrupted:
            kept = BlockDensityMatrix.__new__(BlockDensityMatrix)
            kept.__dict__.update(handed)
            blocks.stop = None
            self._unfinished[index] = (kept, tuple(float(x) for x in scal), blocks)
            return None

    def drain(self) -> None:
        """Finish every output time in flight; raise on every rank if any rank's check failed."""
        while self.in_turn.in_flight:
            self._measure_in_turn(self.in_turn.finish_oldest())
        self._raise_any_failure()

    def _raise_any_failure(self) -> None:
        """Raise on every rank the invariant failure any rank recorded (collective)."""
        if self.world.allreduce(int(self.failure is not None)):
            raise self.failure or InvariantError("an invariant drifted (reported by another rank)")

    def _merged(self) -> dict[int, dict]:
        """Every rank's records by output index, on every rank (they are small)."""
        parts = self.world.allgather(self._records)
        merged = {n: obs for part in parts for n, obs in part.items()}
        self._records = merged if self.world.rank == 0 else {}
        return dict(sorted(merged.items()))

    def _merged_records(self) -> list[dict]:
        """Every rank's records, in time order, on every rank."""
        return list(self._merged().values())

    def save(self, checkpointer: Checkpointer, n: int) -> None:
        """Checkpoint at output time ``n`` (states after it): the records, the invariant
        references and every rank's interrupted measurements."""
        checkpointer.save(n, {"records": self._merged(), "first": self._first},
                          [st.local for st in self.states], extra=self._unfinished or None)

    def _resume(self, saved) -> int:
        """Restore a checkpoint and finish the measurements it interrupted; the output
        time of its states."""
        for st in self.states:  # pop: no state-sized copy stays referenced for the run
            st.local[...] = saved.arrays.pop(0)
        self._records = dict(saved.records["records"]) if self.world.rank == 0 else {}
        self._first = saved.records["first"]
        for index, (rho, scal, blocks) in sorted((saved.extra or {}).items()):
            obs = self._observe(rho, scal, index, blocks)
            if obs is not None:
                self._first = self._first or obs   # blocking measurement of output time 0
                self._record(index, obs)
        firsts = [f for f in self.world.allgather(self._first) if f is not None]
        self._first = firsts[0] if firsts else None
        self._raise_any_failure()
        return saved.step

    #: True: every output time measured by the original block functions, the tested
    #: reference of the default fast path (measure.derived; benchmarks compare the two)
    reference_observables = False

    def observables(self, rho: BlockDensityMatrix, norm: float, energy: float, sz_e: float,
                    index: int = 0, blocks: BlockProgress | None = None) -> dict:
        """All observables of one time (measure.derived, which picks the BLAS threads)."""
        cfg, N = self.cfg, self.model.n_spins
        obs = measure.derived(rho, np.array(self.model.spin_sites, dtype=float),
                              cfg.observables.k_values,
                              negativity_max_dim=cfg.observables.negativity_max_dim,
                              qfi_exact_max_dim=cfg.observables.qfi_exact_max_dim,
                              with_negativity=index % cfg.observables.negativity_stride == 0,
                              reference=self.reference_observables, blocks=blocks)
        spin = np.zeros((N, 3))
        spin[:, 2] = obs.pop("sz")
        obs.update({"electron_spin": np.array([0.0, 0.0, sz_e]), "spin_expectation": spin,
                    "norm": norm, "energy": energy, "sz_total": sz_e + spin[:, 2].sum()})
        return obs

    def step(self) -> None:
        for st in self.states:
            st.propagator.step(st.vec)

    # -- whole run -------------------------------------------------------------------
    def run(self, log=sys.stderr, checkpointer: Checkpointer | None = None,
            stop: StopFlag | None = None) -> xr.Dataset:
        """Evolve to t_end recording observables; resume from and write checkpoints.

        With ``overlap`` every output time is reduced without blocking and
        measured by rank n mod size one output time later, so the ranks share
        the observables and never wait for them; otherwise rank 0 measures each
        output time while the others wait.
        """
        cfg = self.cfg
        n_out, dt = cfg.time.n_out, cfg.time.dt_out
        start, resumed = 0, False
        if checkpointer is not None:
            self._stop = lambda: stop is not None and stop.raised is not None
            saved = checkpointer.load()
            if saved is not None:
                if self.world.rank == 0 and log is not None:
                    print(f"spinvalve: resuming from checkpoint at t = {saved.step * dt} fs",
                          file=log, flush=True)
                start, resumed = self._resume(saved), True
                del saved
                if self.world.allreduce(len(self._unfinished)):  # stopped again meanwhile
                    self.save(checkpointer, start)
                    raise interrupted(start * dt)
        run_output_times(self, start + 1 if resumed else 0, start, log, checkpointer, stop)
        t_obs = wallclock.monotonic()
        self.drain()
        if checkpointer is not None and self.world.allreduce(len(self._unfinished)):
            self.save(checkpointer, n_out)  # a measurement of the last output times stopped
            raise interrupted(n_out * dt)
        records = self._merged_records()
        self.seconds["observables"] += wallclock.monotonic() - t_obs
        self.seconds = {k: self.world.allreduce(v, op=_max_op()) for k, v in self.seconds.items()}
        return self.dataset(records)

    def check_invariants(self, obs: dict, first: dict, t: float) -> None:
        """:func:`spinvalve.driver.check_invariants` at ``numerics.invariant_tolerance``."""
        check_invariants(obs, first, t, self.cfg.numerics.invariant_tolerance)

    def dataset(self, records: list[dict]) -> xr.Dataset:
        cfg, model = self.cfg, self.model
        times = np.arange(len(records)) * cfg.time.dt_out
        N = model.n_spins
        qs = sorted({q for r in records for q in r["negativity_by_imbalance"]})
        stack = lambda key: np.array([r[key] for r in records])
        trace_norms = np.array([[r["negativity_by_imbalance"].get(q, 0.0) for q in qs]
                                for r in records]).reshape(len(times), len(qs))
        shaped = {"spin_expectation": stack("spin_expectation").reshape(len(times), N, 3),
                  "trace_norm_by_imbalance": trace_norms}
        ds = xr.Dataset(
            {name: variable("closed", name, shaped[name] if name in shaped else stack(name))
             for name in OBSERVABLES},
            coords={
                "time": variable("closed", "time", times),
                "spin": variable("closed", "spin", np.arange(N)),
                "site": variable("closed", "site", np.array(model.spin_sites, dtype=int)),
                "layer": variable("closed", "layer",
                                  np.array(["p"] * model.n_p + ["a"] * model.n_a, dtype=object)),
                "component": variable("closed", "component", np.array(["x", "y", "z"], dtype=object)),
                "magnons": variable("closed", "magnons", np.arange(N + 1)),
                "k": variable("closed", "k", np.array(cfg.observables.k_values)),
                "charge_imbalance": variable("closed", "charge_imbalance", np.array(qs, dtype=int)),
            },
            attrs={
                "n_members": len(self.ensemble.members),
                "n_spin_states": self.ensemble.n_spin_states,
                "discarded_weight": self.ensemble.discarded_weight,
                "reachable_configurations": int(records[-1]["reachable"]),
                "integrator": cfg.numerics.integrator,
                "propagation_seconds": self.seconds["propagation"],
                "observables_seconds": self.seconds["observables"],
                "groups": self.n_groups,
                "time_unit_hbar_over_gamma_fs": HBAR / cfg.chain.hopping,
            },
        )
        return ds


def estimate_memory_gb(cfg: JobConfig) -> float:
    """Upper estimate of the state vectors' memory (GB) of a closed-system job, all ranks.

    Members (2 at T = 0, at most 2^(N+1) for a Gibbs ensemble) plus three work
    vectors (two during a Chebyshev step, H psi during the measurement; each exists
    only then), each L x sector dimension.
    """
    from .basis import SpinLayers, sector_of
    lay = SpinLayers(cfg.layers.n_p, cfg.layers.n_a)
    N = lay.n_spins
    dim = max(Sector(lay, sector_of(N, True, K)).dim for K in range(N + 1))
    members = 2 if cfg.temperature.gibbs == 0 else 2 ** (N + 1)
    return (members + 3) * cfg.geometry.n_sites * dim * 16 / 1e9
