"""Figures of the paper: sweep expansion for the workflow, aggregation, plotting.

* :mod:`.jobs` expands the workflow config into one job config per sweep point;
* :mod:`.aggregate` merges job NetCDF files into one figure-ready NetCDF per figure;
* :mod:`.plot` draws paper Figs. 2-7 from those files only;
* :mod:`.cli` adds ``spinvalve aggregate`` and ``spinvalve plot``.
"""

from .jobs import FIGURES  # noqa: F401
