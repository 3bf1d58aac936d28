"""Multi-electron current pulses by time-dependent DMRG (paper Sec. III C, Fig. 6).

The only subpackage that imports TeNPy (``physics-tenpy``, extra ``tdmrg``).
``model`` holds the lattice and Hamiltonian (Eq. 7 + Eq. 21), ``evolve`` the ground
state, the real-time evolution (Eq. 22) and the measurements.
"""

from .evolve import ConvergenceError, InvariantError, run_tdmrg, step_fs

__all__ = ["run_tdmrg", "step_fs", "ConvergenceError", "InvariantError"]
