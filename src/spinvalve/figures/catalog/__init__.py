"""The pipeline's figures: one module each, registered in :data:`FIGURES`.

A figure module defines ``FIGURE = Figure(...)``: which job files feed it
(``inputs``), how they become one figure-ready dataset (``build``), how that
dataset is drawn (``draw``), and which ``figures.*`` keys of the workflow
config it records as provenance (``settings``). Adding a figure is one module
here, its name in :data:`FIGURES` and its report caption
``workflow/report/<name>.rst``; the workflow, the CLI, the aggregation and the
plots find it through :func:`get`.

The shared pieces live beside this package: job-file reading and merging in
:mod:`spinvalve.figures.aggregate`, drawing helpers in
:mod:`spinvalve.figures.plot`, the sweep and job selection in
:mod:`spinvalve.pipeline.sweeps`, the bath statistics in :mod:`spinvalve.figures.bath`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping

#: Figures drawn by the pipeline, in this order: paper Figs. 2-7, then the project's own
#: (Gibbs sweep, MLN lifetime against T_bb, MLN against the trajectory count, the paper's
#: literal chain beside clean leads, MLN lifetime against the bath coupling).
FIGURES = ("fig2", "fig3", "fig4", "fig5", "fig6", "fig7", "fig_gibbs", "fig_bath_lifetime",
           "fig_trajectory_count", "fig_boundary", "fig_bath_coupling")


@dataclass(frozen=True)
class Figure:
    """One figure of the pipeline.

    Attributes
    ----------
    name, title : the file stem (``results/figures/<name>.nc``) and the NetCDF title.
    inputs : ``inputs(config, jobs) -> {family: [job file, ...]}``; families left out get
        no files. ``jobs`` holds the enabled families' :class:`~spinvalve.pipeline.sweeps.Job`.
    build : ``build({family: [Dataset, ...]}) -> (Dataset, notes)``; ``notes`` say what is
        missing (a partial figure), the Dataset's variables carry units and long_name.
    draw : ``draw(dataset, time_unit) -> matplotlib Figure``, from the built dataset only.
    settings : ``figures.*`` keys of the workflow config recorded with the figure file.
    shown : optional ``shown(config) -> dict``: the sweep point the figure picks, recorded too.
    """

    name: str
    title: str
    inputs: Callable[[Mapping, Mapping], Mapping[str, list[str]]]
    build: Callable[[Mapping[str, list]], tuple[Any, list[str]]]
    draw: Callable[..., Any]
    settings: tuple[str, ...] = ()
    shown: Callable[[Mapping], dict] | None = None


def get(name: str) -> Figure:
    """The registered figure ``name`` (KeyError naming the known ones otherwise)."""
    if name not in FIGURES:
        raise KeyError(f"unknown figure {name!r}; known: {list(FIGURES)}")
    fig = importlib.import_module(f"{__name__}.{name}").FIGURE
    if fig.name != name:
        raise RuntimeError(f"{__name__}.{name} registers the figure {fig.name!r}")
    return fig
