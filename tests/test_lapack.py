"""Two-stage Hermitian eigenvalues against numpy's one-stage routine."""

import numpy as np
import pytest

from spinvalve import lapack


@pytest.mark.skipif(not lapack.have_two_stage(), reason="no LAPACKE zheevd_2stage found")
@pytest.mark.parametrize("n", [1, 7, 300])
def test_two_stage_matches_numpy(n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    a = x + x.conj().T
    want = np.linalg.eigvalsh(a)
    got = lapack.eigvalsh(a, min_two_stage=0)
    np.testing.assert_allclose(got, want, atol=1e-11 * np.abs(want).max())
    # overwrite: no copy, same answer, and the input is consumed
    b = a.copy()
    np.testing.assert_allclose(lapack.eigvalsh(b, overwrite=True, min_two_stage=0), want,
                               atol=1e-11 * np.abs(want).max())


def test_lower_triangle_is_what_counts():
    """Only the lower triangle (C order) is read, as for numpy.linalg.eigvalsh."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((50, 50)) + 1j * rng.standard_normal((50, 50))
    a = x + x.conj().T
    junk = np.tril(a) + np.triu(rng.standard_normal((50, 50)), 1)
    np.testing.assert_allclose(lapack.eigvalsh(junk, min_two_stage=0), np.linalg.eigvalsh(a),
                               atol=1e-11 * np.abs(a).max())
