"""``spinvalve aggregate`` and ``spinvalve plot``: the workflow's aggregate and plot stages.

    spinvalve aggregate fig3 --closed a.nc --gibbs b.nc --bath c.nc -o fig3.nc
    spinvalve aggregate bath_batches --bath batch~0.nc batch~1.nc -o merged.nc
    spinvalve plot fig3 fig3.nc -o fig3.png fig3.pdf [--time-unit hbar_over_gamma]

Bad input exits with status 2 and a message naming the file or option.
"""

from __future__ import annotations

import argparse
import sys

import yaml

from .catalog import FIGURES


def _aggregate(args: argparse.Namespace) -> int:
    from .aggregate import write_bath_merge, write_figure_data
    from ..config import load_yaml
    from ..errors import AggregationError, SpinvalveError
    try:
        settings = load_yaml(args.settings) if args.settings else {}
        if args.figure == "bath_batches":
            if not args.bath:
                raise AggregationError("bath_batches: give the batch files with --bath")
            write_bath_merge(args.bath, args.output)
        else:
            inputs = {"closed": args.closed or [], "gibbs": args.gibbs or [],
                      "bath": args.bath or [], "multi_electron": args.multi_electron or [],
                      "boundary": args.boundary or []}
            write_figure_data(args.figure, inputs, args.output, settings)
    except (SpinvalveError, FileNotFoundError, yaml.YAMLError) as exc:
        print(f"spinvalve aggregate: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _plot(args: argparse.Namespace) -> int:
    from .plot import draw, save
    from ..errors import SpinvalveError
    try:
        fig = draw(args.figure, args.data, args.time_unit)
        save(fig, args.output, dpi=args.dpi)
    except (SpinvalveError, FileNotFoundError) as exc:
        print(f"spinvalve plot: error: {exc}", file=sys.stderr)
        return 2
    return 0


def add_subcommands(subparsers) -> None:
    """Add ``aggregate`` and ``plot`` to the ``spinvalve`` command line."""
    p = subparsers.add_parser("aggregate", help="merge job files into one figure-ready NetCDF")
    p.add_argument("figure", choices=list(FIGURES) + ["bath_batches"])
    p.add_argument("--closed", nargs="*", metavar="NC", help="closed-system (T = 0) job files")
    p.add_argument("--gibbs", nargs="*", metavar="NC", help="Gibbs initial-state job files")
    p.add_argument("--bath", nargs="*", metavar="NC",
                   help="bath job files (merged per point; batches for bath_batches)")
    p.add_argument("--multi-electron", nargs="*", metavar="NC", dest="multi_electron",
                   help="multi-electron (tDMRG) job files")
    p.add_argument("--boundary", nargs="*", metavar="NC",
                   help="closed-system job files on the paper's literal chain (chain.leads: none)")
    p.add_argument("--settings", help="figure settings (YAML/JSON) recorded as provenance")
    p.add_argument("--output", "-o", required=True)
    p.set_defaults(func=_aggregate)

    p = subparsers.add_parser("plot", help="draw one figure (PNG/PDF) from its aggregated file")
    p.add_argument("figure", choices=list(FIGURES))
    p.add_argument("data", help="aggregated NetCDF (results/figures/<figure>.nc)")
    p.add_argument("--output", "-o", nargs="+", required=True,
                   help="image files; the format follows the suffix (.png, .pdf, .svg)")
    p.add_argument("--time-unit", choices=["fs", "hbar_over_gamma"], default="fs")
    p.add_argument("--dpi", type=int, default=150)
    p.set_defaults(func=_plot)
