"""Open system: localized spins coupled to bosonic baths (paper Sec. III B, Eqs. 14-20).

* :mod:`.ule` -- spectral function and the universal-Lindblad jump operators
  (exact eigenbasis form and the Eq. 18 power series);
* :mod:`.trajectories` -- quantum trajectories by the waiting-time (MCWF) method
  on the full spin space, non-Hermitian Chebyshev propagation, root search for
  the jump times;
* :mod:`.bands` -- trajectory sums, batch means, bootstrap bands, observables
  from the averaged rho_FM, and :func:`combine` of trajectory slices.

Entry points: :func:`run_open` (one job, called by ``spinvalve.simulate.run_job``
when the config has a ``bath`` section) and :func:`combine` (aggregation).
"""

from .bands import combine
from .trajectories import run_open

__all__ = ["run_open", "combine"]
