"""spinvalve.hamiltonian: the matrix-free shell against the brute-force full-space H of
tests/reference.py (SPEC "Model", Eq. 7), restricted to one S^z_tot sector."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import dense_matrix
from mpi4py import MPI

import reference as ref
from spinvalve.basis import Sector, SpinSpace, sector_of
from spinvalve.config import load_config
from spinvalve.hamiltonian import HamiltonianShell, Model

GEOMS = [(2, 2, 3, 2, 12), (3, 2, 2, 1, 10), (1, 0, 2, 0, 6), (0, 2, 1, 1, 6)]


def model_of(n_p, n_a, p0, spacer, L, **couplings):
    cfg = load_config({"chain": {"n_sites": L}, "layers": {"n_p": n_p, "n_a": n_a,
                       "fm_p_start": p0, "spacer": spacer}, "pulse": {"x0": 2.0},
                       **({"couplings": couplings} if couplings else {})})
    return Model.from_config(cfg)


def reference_indices(space: SpinSpace, n_p: int, n_a: int, L: int) -> np.ndarray:
    """Full-space index (reference order) of every amplitude psi[s, x] of ``space``, C order."""
    N = n_p + n_a
    spin_ref = np.empty(space.dim, np.int64)
    e_ref = np.empty(space.dim, np.int64)
    for e_up, blk, sl in space.iter_parts():
        cp, ca = blk.bits
        s = np.zeros(blk.size, np.int64)
        for i in range(N):
            up = ((cp >> i) & 1) if i < n_p else ((ca >> (i - n_p)) & 1)
            s |= (1 - up) << (N - 1 - i)               # reference: bit set = down, spin 0 first
        spin_ref[sl], e_ref[sl] = s, 0 if e_up else 1
    x = np.arange(L)
    return ((x[None, :] * 2 + e_ref[:, None]) * 2 ** N + spin_ref[:, None]).ravel()


@pytest.mark.parametrize("n_p,n_a,p0,spacer,L", GEOMS)
def test_shell_equals_the_reference_hamiltonian_on_every_sector(n_p, n_a, p0, spacer, L):
    model = model_of(n_p, n_a, p0, spacer, L, j_sd=0.7, j=0.13, jz_ratio=1.2)
    assert model.spin_sites == tuple(ref.Geometry(L, p0, n_p, spacer, n_a).sites)
    H_ref = ref.build_hamiltonian(L, p0, n_p, spacer, n_a, gamma=model.hopping, j_sd=0.7,
                                  j=0.13, jz_ratio=1.2).toarray()
    N = n_p + n_a
    covered = np.zeros(len(H_ref), int)
    for M in range(-N - 1, N + 2, 2):
        shell = HamiltonianShell(model, Sector(model.layers, M), MPI.COMM_SELF)
        idx = reference_indices(shell.sector, n_p, n_a, L)
        H = dense_matrix(shell)
        np.testing.assert_allclose(H, H_ref[np.ix_(idx, idx)], atol=1e-13)
        np.testing.assert_allclose(H, H.conj().T, atol=1e-14)          # Hermitian
        # S^z_tot conservation: the reference H maps the sector into itself
        rest = np.setdiff1d(np.arange(len(H_ref)), idx)
        assert np.abs(H_ref[np.ix_(rest, idx)]).max(initial=0.0) == 0.0
        covered[idx] += 1
    assert (covered == 1).all()                 # the sectors tile the full space


def test_full_spin_space_shell_and_sector_labels():
    n_p, n_a, p0, spacer, L = 2, 1, 2, 1, 7
    model = model_of(n_p, n_a, p0, spacer, L)
    shell = HamiltonianShell(model, SpinSpace.full(model.layers), MPI.COMM_SELF)
    H = dense_matrix(shell)
    idx = reference_indices(shell.sector, n_p, n_a, L)
    H_ref = ref.build_hamiltonian(L, p0, n_p, spacer, n_a, gamma=model.hopping, j_sd=model.j_sd,
                                  j=model.j, jz_ratio=model.jz / model.j).toarray()
    np.testing.assert_allclose(H, H_ref[np.ix_(idx, idx)], atol=1e-13)
    # S^z_tot of every amplitude: no element of H connects different values
    sz = np.concatenate([np.full(blk.size, sector_of(3, e, blk.K)) for e, blk, _ in
                         shell.sector.iter_parts()])
    sz = np.repeat(sz, L)
    rows, cols = np.nonzero(np.abs(H) > 0)
    assert (sz[rows] == sz[cols]).all()


@pytest.mark.parametrize("n_p,n_a,p0,spacer,L", GEOMS[:2])
def test_spectral_bounds_contain_the_spectrum(n_p, n_a, p0, spacer, L):
    model = model_of(n_p, n_a, p0, spacer, L)
    lo, hi = model.spectral_bounds()
    H_ref = ref.build_hamiltonian(L, p0, n_p, spacer, n_a, gamma=model.hopping, j_sd=model.j_sd,
                                  j=model.j, jz_ratio=model.jz / model.j).toarray()
    e = np.linalg.eigvalsh(H_ref)
    assert lo <= e[0] + 1e-12 and e[-1] <= hi + 1e-12
