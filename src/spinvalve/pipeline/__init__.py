"""The Snakemake pipeline's logic, testable without Snakemake (the workflow's rules are a
thin shell over it and the ``spinvalve`` CLI).

* :mod:`.sweeps`: the workflow config expanded into one job config per sweep point,
  validated before any job starts; the job files each figure reads;
* :mod:`.cluster`: site settings, the warning signal, job sizes from the cost model, the
  plan of a run;
* :mod:`.plan`: ``spinvalve-plan CONFIG``, that plan without Snakemake.
"""
