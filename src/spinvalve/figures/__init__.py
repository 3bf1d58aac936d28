"""The pipeline's figures: sweep expansion for the workflow, aggregation, plotting.

* :mod:`.jobs` expands the workflow config into one job config per sweep point;
* :mod:`.catalog` holds one module per figure (its inputs, its figure-ready dataset,
  its drawing), registered in ``catalog.FIGURES``;
* :mod:`.aggregate` reads and merges job NetCDF files (shared by every figure) and
  writes the figure-ready NetCDF with its provenance;
* :mod:`.plot` holds the shared drawing helpers and draws a figure from its file only;
* :mod:`.bath` the bath statistics (MLN lifetime, bootstrap over trajectory batches);
* :mod:`.cli` adds ``spinvalve aggregate`` and ``spinvalve plot``.
"""

from .catalog import FIGURES  # noqa: F401
