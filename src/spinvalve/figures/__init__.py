"""The pipeline's figures: aggregation and plotting (which job files feed a figure:
:mod:`spinvalve.pipeline.sweeps`).

* :mod:`.catalog` holds one module per figure (its inputs, its figure-ready dataset,
  its drawing), registered in ``catalog.FIGURES``;
* :mod:`.aggregate` reads and merges job NetCDF files (shared by every figure) and
  writes the figure-ready NetCDF with its provenance;
* :mod:`.plot` holds the shared drawing helpers and draws a figure from its file only;
* :mod:`.bath` the bath statistics (MLN lifetime, bootstrap over trajectory batches);
* :mod:`.cli` adds ``spinvalve aggregate`` and ``spinvalve plot``.
"""

from .catalog import FIGURES  # noqa: F401
