"""Analysis of bath runs for two figures: MLN lifetime vs T_bb, MLN vs trajectory count.

Both work on what every bath job file (and every merged file of
:func:`spinvalve.opensystem.combine`) holds: the MLN of the trajectory-averaged
rho_FM at every output time, and the rho_FM sums per trajectory batch
(``rho_fm_batch_packed``: trajectory i in batch i mod n_batches, at the band
times). Nothing here averages an MLN: every curve, including each bootstrap
replicate, is the MLN of an averaged rho_FM (SPEC "Observables").

**MLN lifetime** (:func:`mln_lifetime`, docs/open_system.md "MLN lifetime").
With E(t) the MLN and t_pk the time of its maximum E_pk, the lifetime is the
1/e time tau = t_x - t_pk, where t_x is the first time after the peak at which
E falls below E_pk / e (linearly interpolated between output times). For an
exponential decay after the peak it is the time constant. Only the window
before the chain-end reflection time counts (``valid_until``): later, the
chain's ends, not the baths, move the MLN. On clean leads the closed-system
MLN is constant once the packet has left the layers, so every fall below
E_pk / e is decoherence. If E is still >= E_pk / e at the end of the window,
the decay is not resolved: tau >= t_end - t_pk is recorded as a *lower bound*
(flag set).

**Bands by a bootstrap over trajectory batches** (:func:`subset_mln`). A
replicate resamples the batches with replacement (the same draw at every
band time, so a replicate is one coherent curve), sums their rho_FM, divides
by the trajectory count and takes the MLN. The lifetime band is the
2.5-97.5 percentile interval of the replicates' lifetimes
(:func:`lifetime_band`); replicates whose MLN has not decayed in the window
enter with their lower bound, and when more than 2.5 % of them do, the upper
end of the band is itself only a lower bound (flagged).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import xarray as xr

from .. import dense
from ..opensystem.bands import BAND_PERCENTILES, N_BOOTSTRAP, unpack_hermitian

#: The MLN has decayed when it falls below its peak divided by this.
DROP = math.e
#: A maximum MLN at or below this is no entanglement: the lifetime is undefined (NaN).
PEAK_FLOOR = 1e-10
#: The MLN onset: the first time the reference MLN exceeds this fraction of its maximum.
ONSET_FRACTION = 0.01


@dataclass(frozen=True)
class Lifetime:
    """MLN lifetime of one curve (times in the curve's unit, fs in the pipeline)."""

    tau: float            #: lifetime; NaN when the curve has no entanglement to lose
    lower_bound: bool     #: not decayed by the last output time: tau = t_end - t_peak is a lower bound
    t_peak: float         #: time of the MLN maximum
    peak: float           #: the maximum


def mln_lifetime(times: Sequence[float], values: Sequence[float],
                 valid_until: float = math.inf) -> Lifetime:
    """1/e time of the MLN after its peak (see the module docstring).

    Parameters
    ----------
    times, values : the MLN curve E(t); NaN samples (e.g. ``negativity_stride``) are skipped.
    valid_until : the curve's chain-end reflection time (fs): later samples are not used.
    """
    t = np.asarray(times, dtype=float)
    e = np.asarray(values, dtype=float)
    ok = np.isfinite(t) & np.isfinite(e) & (t <= valid_until)
    t, e = t[ok], e[ok]
    if not len(t):
        return Lifetime(math.nan, False, math.nan, math.nan)
    i = int(np.argmax(e))
    peak = float(e[i])
    if not peak > PEAK_FLOOR:
        return Lifetime(math.nan, False, float(t[i]), peak)
    threshold = peak / DROP
    below = np.nonzero(e[i:] < threshold)[0]       # never at the peak itself
    j = i + int(below[0]) - 1 if len(below) else len(e) - 1
    if j == len(e) - 1:
        return Lifetime(float(t[-1] - t[i]), True, float(t[i]), peak)
    frac = (e[j] - threshold) / (e[j] - e[j + 1])        # e[j] >= threshold > e[j + 1]
    t_cross = t[j] + frac * (t[j + 1] - t[j])
    return Lifetime(float(t_cross - t[i]), False, float(t[i]), peak)


def onset_time(times: Sequence[float], values: Sequence[float],
               fraction: float = ONSET_FRACTION) -> float:
    """First time the MLN exceeds ``fraction`` of its maximum (NaN if it never becomes positive)."""
    t = np.asarray(times, dtype=float)
    e = np.asarray(values, dtype=float)
    ok = np.isfinite(e)
    if not ok.any() or not np.nanmax(e) > PEAK_FLOOR:
        return math.nan
    idx = np.nonzero(ok & (e > fraction * np.nanmax(e)))[0]
    return float(t[idx[0]])


# ---------------------------------------------------------------------------
# trajectory batches and bootstrap
# ---------------------------------------------------------------------------

@dataclass
class BatchSums:
    """The per-batch rho_FM sums of a bath file (band times only)."""

    packed: np.ndarray        #: (batch, band time, D, D), Hermitian sums packed in real matrices
    counts: np.ndarray        #: trajectories per batch
    band_times: np.ndarray    #: fs
    n_p: int
    n_a: int
    seed: int

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> "BatchSums":
        missing = [v for v in ("rho_fm_batch_packed", "batch_count", "band_time", "layer")
                   if v not in ds.variables]
        if missing:
            raise ValueError(f"{ds.attrs.get('_source_file', 'bath file')}: no trajectory batch "
                             f"sums ({', '.join(missing)} missing)")
        layer = [str(x) for x in ds["layer"].values]
        return cls(np.asarray(ds["rho_fm_batch_packed"].values),
                   np.asarray(ds["batch_count"].values, dtype=np.int64),
                   np.asarray(ds["band_time"].values, dtype=float),
                   layer.count("p"), layer.count("a"), int(ds.attrs.get("seed", 0)))

    @property
    def nonempty(self) -> np.ndarray:
        """Indices of the batches holding trajectories, in batch order."""
        return np.nonzero(self.counts > 0)[0]


def subset_mln(sums: BatchSums, batches: Sequence[int], rng: np.random.Generator | None,
               n_boot: int = N_BOOTSTRAP) -> tuple[np.ndarray, np.ndarray | None]:
    """MLN at the band times of the trajectories in ``batches``, and bootstrap replicates.

    Returns ``(central, replicates)``: central (band time,) is the MLN of the
    rho_FM averaged over those trajectories; replicates (n_boot, band time)
    resample the batches with replacement, the same draw at every time. No
    replicates (None) from a single batch or without ``rng``.
    """
    sel = np.asarray(batches, dtype=np.int64)
    if not len(sel):
        raise ValueError("no batches selected")
    c = sums.counts[sel].astype(float)
    if not c.sum() > 0:
        raise ValueError("the selected batches hold no trajectories")
    nbt = sums.packed.shape[1]
    central = np.empty(nbt)
    reps = None
    if rng is not None and len(sel) >= 2 and n_boot > 0:
        picks = rng.integers(0, len(sel), size=(n_boot, len(sel)))
        weights = np.stack([np.bincount(p, minlength=len(sel)) for p in picks]).astype(float)
        norm = weights @ c
        reps = np.empty((n_boot, nbt))
    for j in range(nbt):
        mats = unpack_hermitian(np.asarray(sums.packed[sel, j], dtype=float))
        central[j] = dense.log_negativity_stack(mats.sum(axis=0) / c.sum(), sums.n_p, sums.n_a)
        if reps is not None:
            chunk = max(1, (64 << 20) // (16 * mats.shape[-1] ** 2))
            for c0 in range(0, n_boot, chunk):
                rho = (np.tensordot(weights[c0:c0 + chunk], mats, axes=1)
                       / norm[c0:c0 + chunk, None, None])
                reps[c0:c0 + chunk, j] = dense.log_negativity_stack(rho, sums.n_p, sums.n_a)
    return central, reps


def band(replicates: np.ndarray | None, n_times: int) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) percentile band of replicates (NaN without replicates)."""
    if replicates is None:
        return np.full(n_times, np.nan), np.full(n_times, np.nan)
    lo, hi = np.percentile(replicates, BAND_PERCENTILES, axis=0)
    return lo, hi


@dataclass(frozen=True)
class LifetimeBand:
    lower: float                #: 2.5 percentile of the replicates' lifetimes (censored at their bound)
    upper: float                #: 97.5 percentile (censored replicates at their bound)
    upper_is_lower_bound: bool  #: more than 2.5 % censored: the upper end is only a lower bound
    censored_fraction: float    #: replicates whose MLN did not decay within the window


def lifetime_band(times: np.ndarray, replicates: np.ndarray | None,
                  valid_until: float = math.inf) -> LifetimeBand:
    """Percentile band of the lifetime over bootstrap replicates (rows of ``replicates``)."""
    if replicates is None:
        return LifetimeBand(math.nan, math.nan, False, math.nan)
    lts = [mln_lifetime(times, r, valid_until) for r in replicates]
    tau = np.array([lt.tau for lt in lts])
    cens = np.array([lt.lower_bound for lt in lts])
    ok = np.isfinite(tau)
    if not ok.any():
        return LifetimeBand(math.nan, math.nan, False, math.nan)
    tau, cens = tau[ok], cens[ok]
    lo, hi = np.percentile(tau, BAND_PERCENTILES)
    open_hi = np.percentile(np.where(cens, np.inf, tau), BAND_PERCENTILES[1],
                            method="higher") == np.inf
    return LifetimeBand(float(lo), float(hi), bool(open_hi), float(cens.mean()))


def subset_sizes(n_batches: int) -> list[int]:
    """Numbers of batches combined: 1, 2, 4, ... and all of them."""
    if n_batches < 1:
        return []
    ks = [1]
    while ks[-1] * 2 < n_batches:
        ks.append(ks[-1] * 2)
    if ks[-1] != n_batches:
        ks.append(n_batches)
    return ks
