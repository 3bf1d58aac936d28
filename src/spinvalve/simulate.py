"""One job: evolve every ensemble member, reduce rho_FM, record observables, write NetCDF.

MPI layout: the world communicator is split into groups of
``numerics.ranks_per_member`` ranks (0: one group of all ranks); each group
evolves its share of the members, each member's state distributed over the
group's ranks by chain site. At every output time each rank adds the Gram
products of its local amplitudes to rho_FM's blocks and one world Allreduce
sums them, so the result does not depend on the split.
"""

from __future__ import annotations

import sys
import time as wallclock
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from threadpoolctl import threadpool_limits

from . import HBAR, kernels
from .config import JobConfig
from .ensemble import Ensemble, Member, build_ensemble, packet
from .entanglement import entropies, negativity
from .hamiltonian import HamiltonianShell, Model
from .io import provenance, write_dataset
from .magnons import magnon_probabilities, reachable_configurations, w_state_probability
from .propagate import make_propagator
from .qfi import qfi_bound, qfi_exact, sz_moments
from .reduced import BlockDensityMatrix
from .basis import Sector
from .checkpoint import Checkpointer, Interrupted, StopFlag


# Job families the pipeline may enable ("enabled: auto" in config/*.yaml reads this line).
IMPLEMENTED_FAMILIES = ("closed", "gibbs", "bath", "multi_electron")


class Progress:
    """Progress lines (time reached, step, elapsed, ETA) at most every 10 s on stderr;
    a single updating line when stderr is a terminal."""

    def __init__(self, n_out: int, dt: float, stream):
        self.n_out, self.dt, self.stream = n_out, dt, stream
        self.t0 = self.last = wallclock.monotonic()
        self.tty = bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())

    def update(self, n: int, start: int) -> None:
        if self.stream is None:
            return
        now = wallclock.monotonic()
        if not (self.tty or now - self.last > 10 or n == self.n_out):
            return
        done = (n - start) / max(self.n_out - start, 1)
        eta = (now - self.t0) / done * (1 - done) if done > 0 else float("nan")
        line = (f"spinvalve: t = {n * self.dt:.2f} / {self.n_out * self.dt:.2f} fs, step {n}/{self.n_out}, "
                f"elapsed {now - self.t0:.1f} s, eta {eta:.1f} s")
        if self.tty:
            bar = "#" * int(30 * n / self.n_out)
            print(f"\r[{bar:<30}] {line}", end="\n" if n == self.n_out else "",
                  file=self.stream, flush=True)
        else:
            print(line, file=self.stream, flush=True)
        self.last = now


class InvariantError(RuntimeError):
    """A conserved quantity drifted beyond numerics.invariant_tolerance."""


@dataclass
class MemberState:
    member: Member
    shell: HamiltonianShell
    vec: object          # PETSc Vec, distributed over the group
    propagator: object

    @property
    def local(self) -> np.ndarray:
        return self.vec.array.reshape(self.shell.local_shape)


def _max_op():
    from mpi4py import MPI
    return MPI.MAX


def split_groups(world, ranks_per_member: int):
    """Sub-communicator of this rank's group and (group index, number of groups)."""
    size = world.size
    per = size if ranks_per_member in (0, None) or ranks_per_member >= size else ranks_per_member
    if size % per:
        raise ValueError(f"numerics.ranks_per_member: {per} does not divide {size} MPI ranks")
    color = world.rank // per
    return world.Split(color, world.rank), color, size // per


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
        self.group, color, n_groups = split_groups(self.world, cfg.numerics.ranks_per_member)
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

    # -- one output time -------------------------------------------------------------
    def measure(self, index: int = 0) -> dict:
        """Observables of the ensemble at the current time (identical on every rank).

        Each rank contributes the amplitudes of its rows (Gram factors of rho_FM's
        blocks); rank 0 assembles rho_FM, computes the observables and broadcasts them.
        """
        parts = []
        scal = np.zeros(3)  # norm, energy, s^z_e
        for st in self.states:
            w, psi, sec = st.member.weight, st.local, st.shell.sector
            hpsi = np.empty_like(psi)       # freed before the rho_FM factors are gathered
            st.shell.apply(psi, hpsi)
            scal[0] += w * np.vdot(psi, psi).real
            scal[1] += w * np.vdot(psi, hpsi).real
            del hpsi
            for e_up, block, sl in sec.iter_parts():
                amp = psi[sl]
                scal[2] += (1 if e_up else -1) * w * np.vdot(amp, amp).real
                parts.append((block.K, w, amp))
        total = np.empty_like(scal)
        self.world.Allreduce(scal, total)
        rho = BlockDensityMatrix.gather(self.model.layers, parts, self.world)
        obs = self.observables(rho, *total, index=index) if rho is not None else None
        return self.world.bcast(obs, root=0)

    def observables(self, rho: BlockDensityMatrix, norm: float, energy: float, sz_e: float,
                    index: int = 0) -> dict:
        """All observables of one time; small blocks run with single-threaded BLAS
        (many small calls are several times slower with threads competing)."""
        small = max((min(f.shape) for f in rho.factors.values()), default=0) < 1000
        with threadpool_limits(1 if small else None):
            return self._observables(rho, norm, energy, sz_e, index)

    def _observables(self, rho: BlockDensityMatrix, norm: float, energy: float, sz_e: float,
                     index: int) -> dict:
        cfg, N = self.cfg, self.model.n_spins
        s_p, s_a, s_pa = entropies(rho)
        if index % cfg.observables.negativity_stride == 0:
            e_n, by_q = negativity(rho, cfg.observables.negativity_max_dim)
        else:
            e_n, by_q = float("nan"), {}
        positions = np.array(self.model.spin_sites, dtype=float)
        n_k = len(cfg.observables.k_values)
        spin = np.zeros((N, 3))
        if N:
            spin[:, 2] = sz_moments(rho)[0]
        return {
            "electron_spin": np.array([0.0, 0.0, sz_e]),
            "spin_expectation": spin,
            "entropy_p": s_p, "entropy_a": s_a, "entropy_pa": s_pa,
            "mutual_information": s_p + s_a - s_pa,
            "log_negativity": e_n,
            "negativity_by_imbalance": by_q,
            "magnon_probability": magnon_probabilities(rho),
            "w_state_probability": w_state_probability(rho),
            "qfi_bound": qfi_bound(rho, positions, cfg.observables.k_values) if N else np.zeros(n_k),
            "qfi_exact": (qfi_exact(rho, positions, cfg.observables.k_values,
                                    cfg.observables.qfi_exact_max_dim) if N else np.zeros(n_k)),
            "norm": norm, "energy": energy,
            "sz_total": sz_e + spin[:, 2].sum(),
            "trace_rho": rho.trace,
            "hermiticity_error": rho.hermiticity_error,
            "reachable": reachable_configurations(rho),
        }

    def step(self) -> None:
        for st in self.states:
            st.propagator.step(st.vec)

    # -- whole run -------------------------------------------------------------------
    def run(self, log=sys.stderr, checkpointer: Checkpointer | None = None,
            stop: StopFlag | None = None) -> xr.Dataset:
        """Evolve to t_end recording observables; resume from and write checkpoints."""
        cfg = self.cfg
        n_out = cfg.time.n_out
        records: list[dict] = []
        start = 0
        if checkpointer is not None:
            saved = checkpointer.load()
            if saved is not None:
                start, records, arrays = saved
                del saved
                for st in self.states:  # pop: no state-sized copy stays referenced for the run
                    st.local[...] = arrays.pop(0)
                if self.world.rank == 0 and log is not None:
                    print(f"spinvalve: resuming from checkpoint at t = {start * cfg.time.dt_out} fs",
                          file=log, flush=True)
        last_ckpt = wallclock.monotonic()
        progress = Progress(n_out, cfg.time.dt_out, log if self.world.rank == 0 else None)
        for n in range(start + 1 if records else 0, n_out + 1):
            if n:
                t_step = wallclock.monotonic()
                self.step()
                self.seconds["propagation"] += wallclock.monotonic() - t_step
            t_obs = wallclock.monotonic()
            obs = self.measure(n)
            self.seconds["observables"] += wallclock.monotonic() - t_obs
            self.check_invariants(obs, records[0] if records else obs, n * cfg.time.dt_out)
            records.append(obs)
            progress.update(n, start)
            if checkpointer is not None and n < n_out:
                now = wallclock.monotonic()
                signalled = self.world.allreduce(int(stop is not None and stop.raised is not None))
                if signalled or now - last_ckpt > checkpointer.interval:
                    checkpointer.save(n, records, [st.local for st in self.states])
                    last_ckpt = now
                if signalled:
                    raise Interrupted(f"spinvalve: signal received, checkpoint written at "
                                      f"t = {n * cfg.time.dt_out} fs; rerun the same command to resume")
        self.seconds = {k: self.world.allreduce(v, op=_max_op()) for k, v in self.seconds.items()}
        return self.dataset(records)

    def check_invariants(self, obs: dict, first: dict, t: float) -> None:
        tol = self.cfg.numerics.invariant_tolerance
        checks = {
            "norm": (obs["norm"], abs(obs["norm"] - 1.0)),
            "sz_total": (obs["sz_total"], abs(obs["sz_total"] - first["sz_total"])),
            "energy": (obs["energy"], abs(obs["energy"] - first["energy"]) / max(1.0, abs(first["energy"]))),
            "hermiticity": (obs["hermiticity_error"], obs["hermiticity_error"]),
        }
        for name, (value, drift) in checks.items():
            if not np.isfinite(value) or drift > tol:
                raise InvariantError(f"invariant {name} drifted at t = {t:.4g} fs: value {value!r}, "
                                     f"drift {drift:.3e} > numerics.invariant_tolerance = {tol:.1e}")

    def dataset(self, records: list[dict]) -> xr.Dataset:
        cfg, model = self.cfg, self.model
        times = np.arange(len(records)) * cfg.time.dt_out
        N = model.n_spins
        qs = sorted({q for r in records for q in r["negativity_by_imbalance"]})
        stack = lambda key: np.array([r[key] for r in records])
        tdim = ("time",)
        ds = xr.Dataset(
            {
                "electron_spin": (("time", "component"), stack("electron_spin"),
                                  {"units": "1", "long_name": "electron spin <s_e> (Pauli), Eq. 23"}),
                "spin_expectation": (("time", "spin", "component"), stack("spin_expectation").reshape(len(times), N, 3),
                                     {"units": "1", "long_name": "localized spin <S_i> (Pauli)"}),
                "entropy_p": (tdim, stack("entropy_p"), {"units": "nat", "long_name": "von Neumann entropy of FM_p"}),
                "entropy_a": (tdim, stack("entropy_a"), {"units": "nat", "long_name": "von Neumann entropy of FM_a"}),
                "entropy_pa": (tdim, stack("entropy_pa"), {"units": "nat", "long_name": "von Neumann entropy of FM_p u FM_a"}),
                "mutual_information": (tdim, stack("mutual_information"), {"units": "nat", "long_name": "mutual information I(FM_p|FM_a), Eq. 5"}),
                "log_negativity": (tdim, stack("log_negativity"), {"units": "1", "long_name": "mutual logarithmic negativity E_N, Eq. 2"}),
                "trace_norm_by_imbalance": (("time", "charge_imbalance"),
                                            np.array([[r["negativity_by_imbalance"].get(q, 0.0) for q in qs] for r in records]).reshape(len(times), len(qs)),
                                            {"units": "1", "long_name": "trace norm of the charge-imbalance block of rho_FM^{T_a}"}),
                "magnon_probability": (("time", "magnons"), stack("magnon_probability"),
                                       {"units": "1", "long_name": "probability of m flipped spins, Eq. 25"}),
                "w_state_probability": (tdim, stack("w_state_probability"), {"units": "1", "long_name": "W-state weight <W|rho_FM|W>"}),
                "qfi_bound": (("time", "k"), stack("qfi_bound"), {"units": "1", "long_name": "QFI density bound f_Q, Eq. 29"}),
                "qfi_exact": (("time", "k"), stack("qfi_exact"), {"units": "1", "long_name": "exact mixed-state QFI density"}),
                "norm": (tdim, stack("norm"), {"units": "1", "long_name": "norm of the ensemble state"}),
                "sz_total": (tdim, stack("sz_total"), {"units": "1", "long_name": "total S^z (Pauli), Eq. 28"}),
                "energy": (tdim, stack("energy"), {"units": "eV", "long_name": "energy <H>"}),
                "trace_rho": (tdim, stack("trace_rho"), {"units": "1", "long_name": "trace of rho_FM"}),
                "hermiticity_error": (tdim, stack("hermiticity_error"), {"units": "1", "long_name": "max |rho_FM - rho_FM^dag|"}),
            },
            coords={
                "time": ("time", times, {"units": "fs", "long_name": "time"}),
                "spin": ("spin", np.arange(N), {"long_name": "localized spin index (FM_p first)"}),
                "site": ("spin", np.array(model.spin_sites, dtype=int), {"long_name": "chain site (0-based)"}),
                "layer": ("spin", np.array(["p"] * model.n_p + ["a"] * model.n_a, dtype=object)),
                "component": ("component", np.array(["x", "y", "z"], dtype=object)),
                "magnons": ("magnons", np.arange(N + 1), {"long_name": "number of flipped spins m"}),
                "k": ("k", np.array(cfg.observables.k_values), {"units": "1/site", "long_name": "momentum transfer"}),
                "charge_imbalance": ("charge_imbalance", np.array(qs, dtype=int),
                                     {"long_name": "k_p - k_a' of the rho^{T_a} block"}),
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
    return (members + 3) * cfg.chain.n_sites * dim * 16 / 1e9


def check_resources(cfg: JobConfig) -> None:
    """Refuse a job whose states cannot fit in ``numerics.memory_limit_gb`` (before it starts)."""
    from .config import ConfigError
    if cfg.multi_electron is not None or cfg.bath is not None:
        return
    need = estimate_memory_gb(cfg)
    if need > cfg.numerics.memory_limit_gb:
        raise ConfigError(f"numerics.memory_limit_gb: the job needs about {need:.1f} GB for its "
                          f"states, more than the limit of {cfg.numerics.memory_limit_gb} GB "
                          "(fewer spins, a shorter chain, or raise the limit)")


def checkpoint_base(cfg: JobConfig, output: str | Path) -> Path:
    return Path(cfg.checkpoint.path) if cfg.checkpoint.path else Path(str(output) + ".ckpt")


def run_job(cfg: JobConfig, output: str | Path) -> xr.Dataset:
    """Run one job and write its NetCDF file (rank 0) atomically.

    Resumes from a checkpoint of the same config next to the output; SIGTERM or
    SIGUSR1 writes a checkpoint and exits with status 75.
    """
    from mpi4py import MPI
    from slepc4py import SLEPc  # noqa: F401  (initialise SLEPc on every rank: its finalize is collective)
    kernels.allow_mmap_malloc()
    world = MPI.COMM_WORLD
    if cfg.multi_electron is not None:
        from .tdmrg import run_tdmrg
        ds = (run_tdmrg(cfg, checkpoint_path=checkpoint_base(cfg, output))
              if world.rank == 0 else None)
        ckpt = None
    elif cfg.bath is not None:
        from .opensystem import run_open
        ckpt = Checkpointer(checkpoint_base(cfg, output), cfg, world)
        with StopFlag() as stop:
            ds = run_open(cfg, world, checkpointer=ckpt, stop=stop)
    else:
        ckpt = Checkpointer(checkpoint_base(cfg, output), cfg, world)
        with StopFlag() as stop:
            ds = Engine(cfg, world).run(checkpointer=ckpt, stop=stop)
    if world.rank == 0:
        ds.attrs.update(provenance(cfg, world.size))
        write_dataset(ds, output)
    if ckpt is not None:
        ckpt.remove()
    world.Barrier()
    return ds
