"""spinvalve: a current pulse entangling two distant ferromagnets in a spin valve.

Reproduces and extends Suresh et al., arXiv:2210.06634. Units: eV, fs, K,
lattice sites (0-based). See ``docs/physics.md`` for conventions.
"""

__version__ = "0.1.0"

HBAR = 0.6582119569  # eV fs
K_B = 8.617333262e-5  # eV / K
