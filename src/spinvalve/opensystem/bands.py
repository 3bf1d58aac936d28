"""Trajectory sums, batch means and bootstrap bands; observables of the averaged rho_FM.

What a job keeps. rho_FM(t) = (1/n) sum_traj rho_traj(t) with rho_traj the
electron-spin-member average of one trajectory; every observable (entropies,
MI, MLN, P_W, P_m, QFI) is computed from this average, never averaged itself.
A job file stores the *sums* (``rho_fm_sum_real/imag`` over (time, config_row,
config_col), the electron-spin and energy sums) so that slices of
trajectories run in different jobs combine exactly (:func:`combine`).

Bands. Trajectory i belongs to batch ``i % N_BATCHES`` (so every contiguous
slice of trajectories spreads over all batches and slices add batch by
batch). The band of a derived observable is the 2.5-97.5 % percentile
interval of a bootstrap over batches: resample the non-empty batches with
replacement, rho* = sum of their rho sums / their trajectory count, recompute
the observable; ``N_BOOTSTRAP`` replicates from a generator seeded by the
job's seed. Its width scales as 1/sqrt(n_traj). Batch sums are stored packed
(a Hermitian matrix in one real matrix, float32) at band times every
``band_stride`` output steps, the stride chosen so that they take at most
``BATCH_BYTES`` in memory; between band times the band's offsets from the
central curve are interpolated linearly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from .. import HBAR
from .. import dense
from ..errors import CombineError, InvariantError
from ..schema import BAND_PERCENTILES, variable

N_BATCHES = 20
N_BOOTSTRAP = 200
BATCH_BYTES = 512 * 2 ** 20

def band_time_indices(n_times: int, n_spins: int, n_batches: int = N_BATCHES,
                      budget: int = BATCH_BYTES) -> np.ndarray:
    """Output-time indices at which batch sums (and bootstrap bands) are kept."""
    per_time = n_batches * (1 << n_spins) ** 2 * 8
    stride = max(1, math.ceil(n_times * per_time / budget))
    idx = np.arange(0, n_times, stride)
    if idx[-1] != n_times - 1:
        idx = np.append(idx, n_times - 1)
    return idx


def pack_hermitian(h: np.ndarray) -> np.ndarray:
    """One real matrix holding a Hermitian h: Re h on and above the diagonal, Im h below."""
    return np.triu(h.real) + np.tril(h.imag, -1)


def unpack_hermitian(r: np.ndarray) -> np.ndarray:
    u = np.triu(r)
    re = u + np.swapaxes(np.triu(r, 1), -1, -2)
    lo = np.tril(r, -1)
    return re + 1j * (lo - np.swapaxes(lo, -1, -2))


@dataclass
class TrajectorySums:
    n_p: int
    n_a: int
    times: np.ndarray
    band_idx: np.ndarray
    rho: np.ndarray                 # (time, D, D) complex, sum over trajectories
    rho_e: np.ndarray               # (time, 2, 2) complex
    energy: np.ndarray              # (time,)
    batch: np.ndarray               # (N_BATCHES, band time, D, D) packed real
    batch_count: np.ndarray         # (N_BATCHES,)
    indices: list = field(default_factory=list)
    n_jumps: int = 0

    @classmethod
    def empty(cls, n_p: int, n_a: int, times: np.ndarray, band_idx: np.ndarray) -> "TrajectorySums":
        D, nt = 1 << (n_p + n_a), len(times)
        return cls(n_p, n_a, np.asarray(times), np.asarray(band_idx),
                   np.zeros((nt, D, D), complex), np.zeros((nt, 2, 2), complex), np.zeros(nt),
                   np.zeros((N_BATCHES, len(band_idx), D, D)), np.zeros(N_BATCHES, dtype=np.int64))

    @property
    def n_trajectories(self) -> int:
        return len(self.indices)

    def add_trajectory(self, index: int, rho: np.ndarray, rho_e: np.ndarray, energy: np.ndarray,
                       jumps: int) -> None:
        self.rho += rho
        self.rho_e += rho_e
        self.energy += energy
        b = index % N_BATCHES
        self.batch[b] += pack_hermitian(rho[self.band_idx])
        self.batch_count[b] += 1
        self.indices.append(int(index))
        self.n_jumps += int(jumps)

    def reduce(self, comm, root: int = 0) -> "TrajectorySums | None":
        """Sum over the ranks of ``comm`` on ``root`` (None elsewhere)."""
        if comm.size == 1:
            return self
        from mpi4py import MPI
        out = {}
        for name in ("rho", "rho_e", "energy", "batch", "batch_count"):
            a = np.ascontiguousarray(getattr(self, name))
            total = np.empty_like(a) if comm.rank == root else None
            comm.Reduce(a, total, op=MPI.SUM, root=root)
            out[name] = total
        idx = comm.gather(self.indices, root=root)
        jumps = comm.reduce(self.n_jumps, op=MPI.SUM, root=root)
        if comm.rank != root:
            return None
        return TrajectorySums(self.n_p, self.n_a, self.times, self.band_idx, out["rho"], out["rho_e"],
                              out["energy"], out["batch"], out["batch_count"],
                              sorted(i for part in idx for i in part), jumps)

    def __iadd__(self, other: "TrajectorySums") -> "TrajectorySums":
        if (self.n_p, self.n_a) != (other.n_p, other.n_a) or not np.array_equal(self.times, other.times) \
                or not np.array_equal(self.band_idx, other.band_idx):
            raise CombineError("trajectory slices of different problems (spins, times or band times differ)")
        overlap = set(self.indices) & set(other.indices)
        if overlap:
            raise CombineError(f"trajectory slices overlap: trajectories {sorted(overlap)[:5]}... twice")
        self.rho = self.rho + other.rho
        self.rho_e = self.rho_e + other.rho_e
        self.energy = self.energy + other.energy
        self.batch = self.batch + other.batch
        self.batch_count = self.batch_count + other.batch_count
        self.indices = sorted(self.indices + other.indices)
        self.n_jumps += other.n_jumps
        return self


# ---------------------------------------------------------------------------
# observables and bands
# ---------------------------------------------------------------------------

def bootstrap_bands(sums: TrajectorySums, positions: np.ndarray, k_values, seed: int,
                    n_boot: int = N_BOOTSTRAP, comm=None
                    ) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """(lower, upper) of every derived observable at the band times.

    With an MPI communicator (collective; every rank passes sums with the same
    batch sums) the band times are shared out round robin and the bands are
    gathered on rank 0, which returns them (other ranks return None). The
    replicates are drawn from (seed) alone, so the bands do not depend on the
    number of ranks.
    """
    n_p, n_a = sums.n_p, sums.n_a
    full = [b for b in range(N_BATCHES) if sums.batch_count[b] > 0]
    counts = sums.batch_count[full].astype(float)
    rng = np.random.default_rng([seed, 0xB007])
    picks = rng.integers(0, len(full), size=(n_boot, len(full)))
    weights = np.stack([np.bincount(p, minlength=len(full)) for p in picks]).astype(float)
    out: dict[str, list] = {k: [] for k in dense.DERIVED}
    norm = weights @ counts
    rank, size = (comm.rank, comm.size) if comm is not None else (0, 1)
    for j in range(rank, len(sums.band_idx), size):
        mats = unpack_hermitian(sums.batch[full, j])
        chunk = max(1, (64 << 20) // (16 * mats.shape[-1] ** 2))
        parts = []
        for c0 in range(0, n_boot, chunk):
            reps = np.tensordot(weights[c0:c0 + chunk], mats, axes=1) / norm[c0:c0 + chunk, None, None]
            parts.append(dense.derived_stack(reps, n_p, n_a, positions, k_values))
        for k in dense.DERIVED:
            vals = np.concatenate([p[k] for p in parts])
            out[k].append(np.percentile(vals, BAND_PERCENTILES, axis=0))
    if size > 1:
        shares = comm.gather(out, root=0)
        if rank != 0:
            return None
        # band time j was computed by rank j % size as its (j // size)-th entry
        out = {k: [shares[j % size][k][j // size] for j in range(len(sums.band_idx))] for k in out}
    return {k: (np.array(v)[:, 0], np.array(v)[:, 1]) for k, v in out.items()}


def _interpolate_band(times, band_idx, central, lower, upper):
    """Band on all times: offsets from the central curve interpolated between band times."""
    if len(band_idx) == len(times):
        return lower, upper
    lo_off = central[band_idx] - lower
    hi_off = upper - central[band_idx]
    tb = times[band_idx]
    shape = central.shape[1:]
    lo = np.empty_like(central)
    hi = np.empty_like(central)
    for idx in np.ndindex(*shape):
        sl = (slice(None),) + idx
        lo[sl] = central[sl] - np.interp(times, tb, lo_off[sl])
        hi[sl] = central[sl] + np.interp(times, tb, hi_off[sl])
    return lo, hi


def to_dataset(sums: TrajectorySums, meta: dict, n_boot: int = N_BOOTSTRAP,
               bands: dict | None | bool = None) -> xr.Dataset:
    """Observables of the averaged rho_FM, their bands and the sums, as one job Dataset.

    ``meta``: positions (chain sites of the spins), k_values, seed,
    invariant_tolerance, hopping. ``bands``: the result of :func:`bootstrap_bands`
    when it was computed already (over MPI ranks), None to compute it here, False
    for none (a slice whose merge computes them; attribute ``n_bootstrap`` = 0).
    Raises InvariantError when the trace or hermiticity of the averaged rho_FM
    drifts beyond the tolerance.
    """
    n = sums.n_trajectories
    if n == 0:
        raise CombineError("no trajectories")
    n_p, n_a, N = sums.n_p, sums.n_a, sums.n_p + sums.n_a
    times, positions, k_values = sums.times, np.asarray(meta["positions"]), np.asarray(meta["k_values"])
    rho = sums.rho / n
    rho_e = sums.rho_e / n
    rec: dict[str, list] = {k: [] for k in (*dense.DERIVED, "spin_expectation", "electron_spin",
                                             "trace_rho", "hermiticity_error", "norm")}
    for r, re in zip(rho, rho_e):
        obs = dense.derived_observables(r, n_p, n_a, positions, k_values)
        for k in dense.DERIVED:
            rec[k].append(obs[k])
        rec["spin_expectation"].append(dense.spin_expectations(r, N))
        rec["electron_spin"].append(dense.electron_spin(re))
        rec["trace_rho"].append(np.trace(r).real)
        rec["hermiticity_error"].append(dense.hermiticity_error(r))
        rec["norm"].append(np.trace(re).real)
    arr = {k: np.array(v) for k, v in rec.items()}
    tol = meta.get("invariant_tolerance", 1e-8)
    for name, drift in (("trace_rho", np.abs(arr["trace_rho"] - 1)), ("hermiticity", arr["hermiticity_error"])):
        bad = np.nonzero(~np.isfinite(drift) | (drift > tol))[0]
        if len(bad):
            raise InvariantError(f"invariant {name} of the trajectory-averaged rho_FM drifted at "
                                 f"t = {times[bad[0]]:.4g} fs: {drift[bad[0]]:.3e} > {tol:.1e}")
    sz_total = arr["electron_spin"][:, 2] + arr["spin_expectation"][:, :, 2].sum(axis=1)
    if bands is None:
        bands = bootstrap_bands(sums, positions, k_values, int(meta["seed"]), n_boot)
    elif bands is False:
        n_boot = 0

    data = {
        "electron_spin": variable("bath", "electron_spin", arr["electron_spin"]),
        "spin_expectation": variable("bath", "spin_expectation",
                                     arr["spin_expectation"].reshape(len(times), N, 3)),
        "norm": variable("bath", "norm", arr["norm"]),
        "sz_total": variable("bath", "sz_total", sz_total),
        "energy": variable("bath", "energy", sums.energy / n),
        "trace_rho": variable("bath", "trace_rho", arr["trace_rho"]),
        "hermiticity_error": variable("bath", "hermiticity_error", arr["hermiticity_error"]),
    }
    for k in dense.DERIVED:
        central = arr[k]
        data[k] = variable("bath", k, central)
        if not n_boot:
            continue
        lo, hi = _interpolate_band(times, sums.band_idx, central, *bands[k])
        data[f"{k}_lower"] = variable("bath", f"{k}_lower", lo)
        data[f"{k}_upper"] = variable("bath", f"{k}_upper", hi)
    data.update({
        "rho_fm_sum_real": variable("bath", "rho_fm_sum_real", sums.rho.real),
        "rho_fm_sum_imag": variable("bath", "rho_fm_sum_imag", sums.rho.imag),
        "rho_e_sum_real": variable("bath", "rho_e_sum_real", sums.rho_e.real),
        "rho_e_sum_imag": variable("bath", "rho_e_sum_imag", sums.rho_e.imag),
        "energy_sum": variable("bath", "energy_sum", sums.energy),
        "rho_fm_batch_packed": variable("bath", "rho_fm_batch_packed", sums.batch.astype(np.float32)),
        "batch_count": variable("bath", "batch_count", sums.batch_count),
        "trajectory_index": variable("bath", "trajectory_index", np.array(sums.indices, dtype=np.int64)),
    })
    D = 1 << N
    ds = xr.Dataset(data, coords={
        "time": variable("bath", "time", times),
        "spin": variable("bath", "spin", np.arange(N)),
        "site": variable("bath", "site", positions.astype(int)),
        "layer": variable("bath", "layer", np.array(["p"] * n_p + ["a"] * n_a, dtype=object)),
        "component": variable("bath", "component", np.array(["x", "y", "z"], dtype=object)),
        "magnons": variable("bath", "magnons", np.arange(N + 1)),
        "k": variable("bath", "k", k_values),
        "config_row": variable("bath", "config_row", np.arange(D)),
        "config_col": variable("bath", "config_col", np.arange(D)),
        "band_time": variable("bath", "band_time", times[sums.band_idx]),
        "trajectory_batch": variable("bath", "trajectory_batch", np.arange(N_BATCHES)),
    }, attrs={
        "n_trajectories": n,
        "seed": int(meta["seed"]),
        "first_trajectory": int(min(sums.indices)),
        "last_trajectory": int(max(sums.indices)),
        "n_jumps": int(sums.n_jumps),
        "n_batches": N_BATCHES,
        "n_bootstrap": n_boot,
        "band": f"{BAND_PERCENTILES[0]:g}-{BAND_PERCENTILES[1]:g} percentile bootstrap over trajectory batches",
        "band_stride": int(sums.band_idx[1] - sums.band_idx[0]) if len(sums.band_idx) > 1 else 1,
        "invariant_tolerance": float(tol),
        "time_unit_hbar_over_gamma_fs": HBAR / float(meta.get("hopping", 1.0)),
        "open_system": 1,
    })
    return ds


def from_dataset(ds: xr.Dataset) -> tuple[TrajectorySums, dict]:
    """The sums and meta data of a job file written by :func:`to_dataset`."""
    layer = [str(x) for x in ds["layer"].values]
    n_p, n_a = layer.count("p"), layer.count("a")
    times = ds["time"].values
    band_idx = np.searchsorted(times, ds["band_time"].values)
    rho = ds["rho_fm_sum_real"].values + 1j * ds["rho_fm_sum_imag"].values
    rho_e = ds["rho_e_sum_real"].values + 1j * ds["rho_e_sum_imag"].values
    sums = TrajectorySums(n_p, n_a, times, band_idx, rho, rho_e, ds["energy_sum"].values.astype(float),
                          ds["rho_fm_batch_packed"].values.astype(float),
                          ds["batch_count"].values.astype(np.int64),
                          [int(i) for i in ds["trajectory_index"].values], int(ds.attrs.get("n_jumps", 0)))
    meta = {"positions": ds["site"].values.astype(float), "k_values": ds["k"].values,
            "seed": int(ds.attrs["seed"]), "invariant_tolerance": float(ds.attrs.get("invariant_tolerance", 1e-8)),
            "hopping": HBAR / float(ds.attrs.get("time_unit_hbar_over_gamma_fs", HBAR))}
    return sums, meta


def _check_same_problem(datasets) -> None:
    """CombineError naming the first config section in which two slices differ."""
    from dataclasses import fields, replace
    from ..config import Checkpoint, Parallel, load_config, load_yaml
    configs = [load_config(load_yaml(d.attrs["config"])) for d in datasets if "config" in d.attrs]
    problem = [replace(c, trajectories=None, checkpoint=Checkpoint(), parallel=Parallel())
               for c in configs]
    for other in problem[1:]:
        if other != problem[0]:
            key = next(f.name for f in fields(other)
                       if getattr(other, f.name) != getattr(problem[0], f.name))
            raise CombineError(f"trajectory slices of different problems: their {key} "
                               "sections differ (only trajectories.* may)")


def combine(datasets, n_boot: int = N_BOOTSTRAP) -> xr.Dataset:
    """Merge job files of disjoint trajectory slices of one problem: sum, then observables and bands.

    The slices must share spins, times, seed and bath (checked: their ``config``
    attributes, where present, may differ in ``trajectories``, ``checkpoint`` and
    ``parallel`` only); the result equals a single job over the union of their
    trajectories (bands up to the float32 storage of the batch sums).
    """
    datasets = list(datasets)
    if not datasets:
        raise CombineError("no datasets to combine")
    _check_same_problem(datasets)
    total, meta = from_dataset(datasets[0])
    for ds in datasets[1:]:
        s, m = from_dataset(ds)
        if m["seed"] != meta["seed"]:
            raise CombineError(f"trajectory slices with different seeds ({m['seed']} and {meta['seed']})")
        if not np.array_equal(m["positions"], meta["positions"]) or not np.allclose(m["k_values"], meta["k_values"]):
            raise CombineError("trajectory slices of different geometries")
        total += s
    out = to_dataset(total, meta, n_boot)
    keep = {k: v for k, v in datasets[0].attrs.items() if k not in out.attrs}
    out.attrs.update(keep)
    if "jumps_per_spin" in datasets[0]:
        out["jumps_per_spin"] = sum(d["jumps_per_spin"] for d in datasets)
    out.attrs["combined_slices"] = len(datasets)
    if all("config" in d.attrs for d in datasets):
        out.attrs["slice_configs"] = "\n---\n".join(d.attrs["config"] for d in datasets)
    return out
