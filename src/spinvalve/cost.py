"""Predicted cost of a job: memory, propagation time, measurement time (before submission).

The workflow sizes every SLURM job from this model (``runtime``, ``mem_mb``,
``tasks``, ``cpus_per_task``; user overrides in the config win) and writes the
plan of a run (``results/plan.tsv``, ``spinvalve-plan CONFIG``). The model
follows the engine's work, term by term; its constants are machine speeds
measured by ``benchmarks/cost_calibration.py`` and stored with the package in
``cost_constants.yaml`` (which records the machine they came from; point
``SPINVALVE_COST_CONSTANTS`` at another file for another machine).

Single-electron jobs (families ``closed``, ``gibbs``, ``boundary``; ``bath``
per trajectory):

* members: 2 at T = 0 (the electron-spin ensemble), the kept Boltzmann
  members times 2 for a Gibbs state (:func:`spinvalve.ensemble.spin_states`);
* amplitudes of a member: L x (sector dimension), the sector of its S^z_tot;
* Chebyshev terms per output step from the spectral bounds and the tolerance,
  exactly as :class:`spinvalve.propagate.ChebyshevPropagator` chooses them;
* propagation = members x steps x terms x (``term_s`` + amplitudes x a(bytes)),
  shared by the ranks. a(bytes) is the time per amplitude and term, a function of
  the member state's size in bytes (16 per amplitude, :func:`amp_term_seconds`):
  ``amp_term_s`` while the state sits in the caches (up to ``cache_state_mb``, the
  in-cache calibration state), ``amp_term_mem_s`` once it is streamed from memory
  (from ``mem_state_mb``, the out-of-cache calibration state, at least 8x the
  last-level cache), log-linear in the bytes in between;
* measurement of one output time: the Gram products and eigen-decompositions
  of the charge blocks of rho_FM (``gemm_s`` x dim x r x min(dim, r),
  :func:`dense_seconds` ("eigh") of min(dim, r), r the Gram factor's width: L x members in the
  block), and, once the electron has reached FM_a, the eigenvalues of the
  partial-transpose blocks of rho^{T_a} (sizes C(2n, n - q), :func:`dense_seconds`
  ("eigvals") for q >= -1, the blocks the fast path cannot certify; up to
  ``observables.negativity_max_dim``), plus ``output_s`` of fixed work; a
  factor narrower than its block (r < dim) also pays the eigenvectors U = F V
  (``gemm_s`` x dim x r^2) and, below ``reduced.DENSE_LIMIT`` rows, the dense
  block F F^dag (``gemm_s`` x dim^2 x r); with every block dense and rho^{T_a}
  below ``entanglement.PLAN_MAX_ELEMENTS`` elements the negativity's fast path
  gathers its blocks and their bounds at every output time: ``pt_elem_s`` per
  element (sum_K dim_K^2);
  threaded BLAS speeds the eigenvalue parts up by ``thread_efficiency``;
* bath trajectories: ``bath_factor`` x the closed-system propagation per
  trajectory (the decay term and the jump search), ``bath_setup_s`` once per
  rank (the trajectory phase's set-up), plus the measurement of the
  dense 2^N x 2^N average at every output time;
* memory per rank: ``base_mb`` + the states (members per rank + 3 work
  vectors) + the largest block being diagonalised (3 copies) + the Gram factors.

Multi-electron (tDMRG) jobs (:func:`tdmrg_step_seconds`, :func:`chi_profile`):
per step ``tdmrg_step_s`` x L (the per-bond work independent of chi: Python, TeNPy's
bookkeeping, the small blocks) plus ``tdmrg_s`` x sum over bonds of chi_l^3, on a
bond-dimension profile that grows linearly in time from ``chi_start`` at t = 0 to
``chi_max`` at t_end (the entanglement grows as the pulse scatters) and is bounded on
each bond by the largest dimension the sites on its shorter side allow (the product of
their local dimensions, d^min(l, L - l) for a uniform d); the measurement of every
output time is ``tdmrg_output_s``; the ground-state search costs
``tdmrg_ground_sweeps`` steps at ``chi_start`` (the same bounded profile); memory
``base_mb`` + sum_l chi_l^2 x ``tdmrg_mb_per_site_chi2`` at the largest profile.

Every job pays ``startup_s`` (Python and package imports, PETSc/MPI set-up, the
Hamiltonian shells and the ensemble; measured on a whole job) once, and
``output_s`` per output time (the fixed work of one measurement and its record).

The merge of bath batches (bootstrap bands): ``N_BOOTSTRAP`` replicates x band
times x ``bands_eig_per_replicate`` eigen-decompositions of 2^N x 2^N.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import yaml

from . import HBAR

CONSTANTS_FILE = Path(__file__).with_name("cost_constants.yaml")

#: Constants the model needs (cost_constants.yaml must define each).
CONSTANT_KEYS = ("startup_s", "base_mb", "term_s", "amp_term_s", "amp_term_mem_s",
                 "cache_state_mb", "mem_state_mb", "gemm_s", "eigh_s", "eigh2_s", "eigvals_s",
                 "eigvals2_s", "output_s", "bath_setup_s", "pt_elem_s",
                 "thread_efficiency", "bath_factor", "tdmrg_s", "tdmrg_step_s", "tdmrg_output_s",
                 "tdmrg_ground_sweeps", "tdmrg_mb_per_site_chi2", "bands_eig_per_replicate",
                 "rank_efficiency")


class CostModelError(ValueError):
    """The constants file is missing or incomplete."""


@lru_cache(maxsize=4)
def _load(path: str) -> dict:
    data = yaml.safe_load(Path(path).read_text()) or {}
    consts = data.get("constants") or {}
    missing = [k for k in CONSTANT_KEYS if k not in consts]
    if missing:
        raise CostModelError(f"{path}: constants missing: {missing}")
    return {"machine": data.get("machine") or {}, **{k: float(v) for k, v in consts.items()}}


def load_constants(path: str | os.PathLike | None = None) -> dict:
    """The model's constants: ``path``, else $SPINVALVE_COST_CONSTANTS, else the package's file."""
    path = path or os.environ.get("SPINVALVE_COST_CONSTANTS") or CONSTANTS_FILE
    if not Path(path).is_file():
        raise CostModelError(f"cost constants file {path} not found "
                             "(python benchmarks/cost_calibration.py --write writes it)")
    return _load(str(Path(path).resolve()))


@dataclass(frozen=True)
class Cost:
    """Predicted cost of one job (times in seconds, memory in MB per rank)."""

    family: str
    ranks: int
    threads: int            #: BLAS threads per rank (cpus_per_task)
    members: int
    amplitudes: int         #: per member (largest sector)
    terms: int              #: Chebyshev terms per output step (tDMRG: steps per output)
    outputs: int
    largest_block: int      #: largest matrix diagonalised at one output time
    startup_s: float
    propagation_s: float    #: wall time of the propagation (all ranks working)
    measurement_s: float    #: wall time of the measurements (as the ranks share them)
    wall_s: float
    mem_mb: float           #: per rank

    @property
    def core_hours(self) -> float:
        return self.wall_s * self.ranks * self.threads / 3600.0

    @property
    def measurement_dominates(self) -> bool:
        return self.measurement_s > self.propagation_s

    def as_dict(self) -> dict:
        return {**asdict(self), "core_hours": self.core_hours}


# ---------------------------------------------------------------------------
# pieces
# ---------------------------------------------------------------------------

def chebyshev_terms(b: float, dt: float, tol: float) -> int:
    """Terms per step of :class:`spinvalve.propagate.ChebyshevPropagator` (sub-steps included)."""
    from .propagate import chebyshev_coefficients
    n_sub = max(1, math.ceil(b * dt / HBAR / 100.0))
    return n_sub * len(chebyshev_coefficients(b * dt / n_sub / HBAR, tol / n_sub))


def amp_term_seconds(amplitudes: float, c: Mapping) -> float:
    """Seconds per amplitude of one Chebyshev term on a state of ``amplitudes`` amplitudes
    (16 bytes each): ``amp_term_s`` up to ``cache_state_mb`` (the state and its work
    vectors in the caches), ``amp_term_mem_s`` from ``mem_state_mb`` on (streamed from
    memory, bandwidth bound), linear in log(bytes) in between. Non-decreasing in the size
    (a slower in-cache point, measurement noise, is taken as the floor of both)."""
    lo, hi = c["amp_term_s"], max(c["amp_term_s"], c["amp_term_mem_s"])
    mb = amplitudes * 16 / 2 ** 20
    b_lo, b_hi = c["cache_state_mb"], max(c["mem_state_mb"], c["cache_state_mb"] * 1.0001)
    if mb <= b_lo:
        return lo
    if mb >= b_hi:
        return hi
    f = math.log(mb / b_lo) / math.log(b_hi / b_lo)
    return lo + f * (hi - lo)


def term_seconds(amplitudes: float, c: Mapping) -> float:
    """Seconds of one Chebyshev term on a member of ``amplitudes`` amplitudes: a fixed cost
    per term (the calls, the live-row scans) plus :func:`amp_term_seconds` per amplitude."""
    return c["term_s"] + amplitudes * amp_term_seconds(amplitudes, c)


def dense_seconds(kind: str, n: int, c: Mapping) -> float:
    """Seconds of one LAPACK eigen-decomposition (``kind`` "eigh": eigenvectors too,
    "eigvals": eigenvalues only) of an n x n Hermitian matrix: ``<kind>_s`` x n^3 (the
    tridiagonalisation's and back-transformation's flops) + ``<kind>2_s`` x n^2 (the
    matrix-vector half of the reduction and the per-column work, which dominate the
    blocks of a few hundred rows). Both from timings at two sizes."""
    return c[f"{kind}_s"] * n ** 3 + c[f"{kind}2_s"] * n ** 2


def thread_speedup(threads: int, c: Mapping) -> float:
    return 1.0 + c["thread_efficiency"] * (max(1, threads) - 1)


def _members(cfg) -> list[tuple[bool, int]]:
    """(electron up, K) of every member's starting part: 2 per kept spin state."""
    from .basis import SpinLayers
    if cfg.temperature.gibbs == 0.0:
        K = SpinLayers(cfg.layers.n_p, cfg.layers.n_a).reference_charge
        return [(True, K), (False, K)]
    from .ensemble import spin_states
    from .hamiltonian import Model
    kept, _ = spin_states(Model.from_config(cfg), cfg)
    return [(e, K) for _, K, _ in kept for e in (True, False)]


def _sector_dim(n_p: int, n_a: int, e_up: bool, K: int) -> int:
    from .basis import Sector, SpinLayers, sector_of
    lay = SpinLayers(n_p, n_a)
    return Sector(lay, sector_of(n_p + n_a, e_up, K)).dim


def entanglement_onset(cfg) -> float:
    """Time (fs) at which the packet's front (3 widths ahead of x0) reaches FM_a's first spin."""
    geo = cfg.geometry
    n_p = cfg.layers.n_p
    if len(geo.spin_sites) <= n_p:
        return math.inf
    front = geo.x0 + 3.0 / cfg.pulse.dk
    v = 2.0 * cfg.chain.hopping / HBAR  # sites per fs
    return max(0.0, (geo.spin_sites[n_p] - front) / v)


def measurement_per_output(cfg, members: list[tuple[bool, int]], threads: int, c: Mapping,
                           dense_rank: int | None = None) -> tuple[float, float, int, float]:
    """(seconds before the onset, seconds after it, largest block, block memory MB) of the
    measurement of one output time. ``dense_rank``: the Gram width of every block (bath:
    the dense 2^N matrix)."""
    from math import comb
    n_p, n_a = cfg.layers.n_p, cfg.layers.n_a
    N, L = n_p + n_a, cfg.geometry.n_sites
    # blocks of rho_FM by localized charge K: every member's sector covers K and K +- 1
    width: dict[int, int] = {}
    for e_up, K in members:
        for k in ((K, K + 1) if e_up else (K - 1, K)):
            if 0 <= k <= N:
                width[k] = width.get(k, 0) + L
    speed = thread_speedup(threads, c)
    base = c["output_s"]
    largest = 0
    mem = 0.0
    from .entanglement import PLAN_MAX_ELEMENTS
    from .reduced import DENSE_LIMIT
    all_dense, elements = True, 0
    for k, r in width.items():
        dim = comb(N, k)
        r = dense_rank if dense_rank is not None else r
        m = min(dim, r)
        base += c["gemm_s"] * dim * r * m / speed          # Gram F^dag F (or F F^dag)
        if dense_rank is None and r < dim:
            base += c["gemm_s"] * dim * r * m / speed      # eigenvectors U = F V s^-1/2
            if dim <= DENSE_LIMIT:                         # dense rho_K = F F^dag as well
                base += c["gemm_s"] * dim * dim * r / speed
            else:
                all_dense = False
        elements += dim * dim
        qfi = 2 if dim <= cfg.observables.qfi_exact_max_dim else 1
        base += qfi * dense_seconds("eigh", m, c) / speed
        largest = max(largest, m)
        mem = max(mem, (dim * r + 2 * m * m) * 16 / 2 ** 20)
    # negativity's small-layer path (every rho_K dense, rho^{T_a} small): its blocks gathered
    # by one index array and their certified bounds, at every output time
    if (dense_rank is None and n_p == n_a and all_dense and elements <= PLAN_MAX_ELEMENTS):
        base += c["pt_elem_s"] * elements
    neg = 0.0
    n = min(n_p, n_a)
    if n_p == n_a and n >= 1 and cfg.observables.negativity_max_dim > 0:
        for q in range(-1, n + 1):
            size = comb(2 * n, n - q)
            if size > cfg.observables.negativity_max_dim:
                continue
            neg += dense_seconds("eigvals", size, c) / speed
            largest = max(largest, size)
            mem = max(mem, 3 * size * size * 16 / 2 ** 20)
    stride = max(1, cfg.observables.negativity_stride)
    return base, base + neg / stride, largest, mem


# ---------------------------------------------------------------------------
# families
# ---------------------------------------------------------------------------

def predict(cfg, ranks: int = 1, threads: int = 1, constants: Mapping | None = None) -> Cost:
    """Predicted cost of the job ``cfg`` (a :class:`spinvalve.config.JobConfig`) on ``ranks``
    MPI ranks with ``threads`` BLAS threads each."""
    c = constants or load_constants()
    if cfg.multi_electron is not None:
        return _predict_tdmrg(cfg, threads, c)
    return _predict_single(cfg, ranks, threads, c)


def _predict_single(cfg, ranks: int, threads: int, c: Mapping) -> Cost:
    from .hamiltonian import Model
    ranks = max(1, ranks)
    n_p, n_a = cfg.layers.n_p, cfg.layers.n_a
    L = cfg.geometry.n_sites
    lo, hi = Model.from_config(cfg).spectral_bounds()
    b = 0.5 * (hi - lo)
    terms = chebyshev_terms(b, cfg.time.dt_out, cfg.numerics.chebyshev.tolerance)
    n_out = cfg.time.n_out
    family = "gibbs" if cfg.temperature.gibbs > 0 else "closed"
    if cfg.bath is not None:
        family = "bath"
        members = _members(cfg)
        n_traj = cfg.trajectories.count if cfg.trajectories is not None else 200
    else:
        members = _members(cfg)
        n_traj = 1
    dims = [_sector_dim(n_p, n_a, e, K) * L for e, K in members]
    amps = max(dims)
    work = sum(term_seconds(d, c) for d in dims) * terms * n_out
    # members spread over the ranks (whole members per rank, or one member split by site)
    per_rank = math.ceil(len(dims) * n_traj / ranks)
    if cfg.bath is not None:
        prop_total = c["bath_factor"] * work * n_traj
        prop = prop_total / ranks / c["rank_efficiency"] if ranks > 1 else prop_total
        prop += c["bath_setup_s"]          # every rank builds its jump operators once
        dense = 1 << (n_p + n_a)
        # rho_FM of a trajectory average is dense: one 2^N matrix (blocks by K of size C(N,K))
        pre, post, largest, block_mb = measurement_per_output(
            cfg, [(True, K) for K in range(n_p + n_a + 1)], threads, c, dense_rank=dense)
        state_mb = (2 + 3) * amps * 16 / 2 ** 20
        sums_mb = (n_out + 1) * dense * dense * 16 / 2 ** 20
        mem = c["base_mb"] + state_mb + sums_mb + block_mb
    else:
        prop = work / ranks / (c["rank_efficiency"] if ranks > 1 else 1.0)
        pre, post, largest, block_mb = measurement_per_output(cfg, members, threads, c)
        local = min(per_rank, len(dims)) if cfg.parallel.ranks_per_member == 1 else len(dims)
        split = 1 if cfg.parallel.ranks_per_member == 1 else ranks
        state_mb = (local + 3) * amps * 16 / split / 2 ** 20
        mem = c["base_mb"] + state_mb + block_mb
    t_on = entanglement_onset(cfg)
    n_post = sum(1 for i in range(n_out + 1) if i * cfg.time.dt_out >= t_on)
    meas = pre * (n_out + 1 - n_post) + post * n_post
    # the ranks measure in turn with a member per rank (Engine.overlap), else rank 0 measures
    # every output time while the others wait
    in_turn = cfg.parallel.ranks_per_member == 1 and ranks > 1 and cfg.bath is None
    meas_wall = meas / min(ranks, 2) if in_turn else meas
    wall = c["startup_s"] + (max(prop, meas_wall) if in_turn else prop + meas_wall)
    return Cost(family, ranks, max(1, threads), len(dims) * n_traj, amps, terms, n_out,
                largest, c["startup_s"], prop, meas_wall, wall, mem)


def bond_caps(local_dims: list[int]) -> list[int]:
    """Largest bond dimension of each of the L - 1 bonds of an MPS with these local
    dimensions: bond l (between sites l - 1 and l) is bounded by the Hilbert-space
    dimension of its shorter side, prod(d_0..d_{l-1}) or prod(d_l..d_{L-1})."""
    L = len(local_dims)
    caps = []
    for l in range(1, L):
        left = math.prod(local_dims[:l]) if l <= 40 else math.inf
        right = math.prod(local_dims[l:]) if L - l <= 40 else math.inf
        caps.append(min(left, right))
    return caps


def chi_profile(chi: float, caps: list[int]) -> list[float]:
    """Bond dimensions of every bond at a target ``chi``: min(chi, the bond's cap)."""
    return [min(float(chi), float(cap)) for cap in caps]


def tdmrg_local_dims(cfg) -> list[int]:
    """Local dimension of every MPS site: 4 (spinful fermion), 8 where a localized spin
    is grouped with its site (spinvalve.tdmrg.model)."""
    spins = set(cfg.geometry.spin_sites)
    return [8 if i in spins else 4 for i in range(cfg.geometry.n_sites)]


def tdmrg_step_seconds(chi: float, caps: list[int], c: Mapping) -> float:
    """Seconds of one tDMRG time step at target bond dimension ``chi``: ``tdmrg_step_s``
    per site plus ``tdmrg_s`` x sum over bonds of chi_l^3 (:func:`chi_profile`)."""
    return (c["tdmrg_step_s"] * (len(caps) + 1)
            + c["tdmrg_s"] * sum(x ** 3 for x in chi_profile(chi, caps)))


def _predict_tdmrg(cfg, threads: int, c: Mapping) -> Cost:
    me = cfg.multi_electron
    dt_fs = me.dt * HBAR / cfg.chain.hopping
    steps = max(1, round(cfg.time.t_end / dt_fs))
    caps = bond_caps(tdmrg_local_dims(cfg))
    speed = thread_speedup(threads, c)
    # chi grows linearly from chi_start to chi_max over the window (midpoint of every step)
    chi0, chi1 = float(me.chi_start), float(me.chi_max)
    prop = sum(tdmrg_step_seconds(chi0 + (chi1 - chi0) * (k + 0.5) / steps, caps, c)
               for k in range(steps)) / speed
    ground = c["tdmrg_ground_sweeps"] * tdmrg_step_seconds(chi0, caps, c) / speed
    meas = c["tdmrg_output_s"] * (cfg.time.n_out + 1)
    prof = chi_profile(chi1, caps)
    mem = c["base_mb"] + sum(x ** 2 for x in prof) * c["tdmrg_mb_per_site_chi2"]
    wall = c["startup_s"] + ground + prop + meas
    return Cost("multi_electron", 1, max(1, threads), 1, 0, steps // max(1, cfg.time.n_out),
                cfg.time.n_out, int(max(prof)), c["startup_s"], ground + prop, meas, wall, mem)


def predict_merge(cfg, n_batches: int, constants: Mapping | None = None) -> Cost:
    """Cost of merging ``n_batches`` trajectory batch files of ``cfg``'s bath point
    (the trajectory sums, then observables and bootstrap bands of the combined rho_FM)."""
    from .opensystem.bands import N_BATCHES, N_BOOTSTRAP, band_time_indices
    c = constants or load_constants()
    N = cfg.layers.n_p + cfg.layers.n_a
    D = 1 << N
    n_times = cfg.time.n_out + 1
    n_band = len(band_time_indices(n_times, N))
    eig = dense_seconds("eigh", D, c)
    bands = N_BOOTSTRAP * n_band * c["bands_eig_per_replicate"] * eig
    _, post, _, block_mb = measurement_per_output(
        cfg, [(True, K) for K in range(N + 1)], 1, c, dense_rank=D)
    meas = n_times * post
    files_mb = n_batches * (n_times * D * D * 16 + N_BATCHES * n_band * D * D * 8) / 2 ** 20
    mem = c["base_mb"] + 2 * files_mb + block_mb
    wall = c["startup_s"] + bands + meas
    return Cost("bath_merge", 1, 1, n_batches, D * D, 0, cfg.time.n_out, D, c["startup_s"],
                0.0, bands + meas, wall, mem)


# ---------------------------------------------------------------------------
# requests
# ---------------------------------------------------------------------------

def request(cost: Cost, *, safety: float = 2.0, attempt: int = 1, min_runtime: int = 10,
            min_mem_mb: int = 500) -> dict[str, int]:
    """SLURM request of a predicted job: runtime (minutes) = max(wall x safety, min_runtime)
    x attempt, rounded up; mem_mb = peak x 1.25 x (1 + 0.5 (attempt - 1)) per rank x ranks,
    rounded up to 100 MB (at least min_mem_mb)."""
    attempt = max(1, int(attempt))
    runtime = max(min_runtime, math.ceil(cost.wall_s * safety / 60.0)) * attempt
    per_rank = cost.mem_mb * 1.25 * (1 + 0.5 * (attempt - 1))
    mem = max(min_mem_mb, int(math.ceil(per_rank * cost.ranks / 100.0) * 100))
    return {"runtime": int(runtime), "mem_mb": mem}
