"""Command line: ``spinvalve simulate | aggregate | plot | config``.

One job per ``simulate`` call. Every error of :mod:`spinvalve.errors` is printed as
one line naming the key or file: bad input (config, output path, MPI launch) exits
with status 2 before any computation starts, a failed run (invariant drift, DMRG
not converged, unusable checkpoint) with status 1. A job stopped by SIGTERM/SIGUSR1
writes its checkpoint and exits with status 75; rerunning the command resumes it.
"""

from __future__ import annotations

import argparse
import sys

from .config import load_config
from .errors import Interrupted, SpinvalveError


def _error(exc: SpinvalveError) -> int:
    """Print ``exc`` as the one line every CLI error is, return its exit status."""
    print(f"spinvalve: error: {exc}", file=sys.stderr)
    return exc.exit_code


def _simulate(args: argparse.Namespace) -> int:
    from .launch import check_rank_count, expected_rank_count
    announced = expected_rank_count()   # before MPI initialises (it may set its own variables)
    try:
        cfg = load_config(args.config, args.set or [])
        from .io import check_writable
        from .simulate import check_resources
        check_resources(cfg)
        check_writable(args.output)
        from mpi4py import MPI
        check_rank_count(MPI.COMM_WORLD.size, announced or ("", MPI.COMM_WORLD.size))
    except SpinvalveError as exc:
        return _error(exc)
    from .simulate import reflection_warning, run_job
    warning = reflection_warning(cfg)
    if warning:
        print(warning, file=sys.stderr)
    try:
        run_job(cfg, args.output)
    except Interrupted as exc:
        print(exc.message, file=sys.stderr)
        return exc.code
    except SpinvalveError as exc:
        return _error(exc)
    return 0


def _show_config(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config, args.set or [])
    except SpinvalveError as exc:
        return _error(exc)
    print(cfg.to_yaml(), end="")
    geo = cfg.geometry
    print(f"# whole chain: {geo.n_sites} sites (lead sites added: {geo.lead_left} left, "
          f"{geo.lead_right} right), localized spins on sites {list(geo.spin_sites)}, "
          f"packet at x0 = {geo.x0:g}; chain-end reflection reaches a layer at "
          f"t = {geo.reflection_time:.2f} fs")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spinvalve", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="run one job and write one NetCDF file")
    p.add_argument("--config", help="job config (YAML); omitted keys take the paper's values")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override one dotted key, e.g. layers.n_p=2 (repeatable)")
    p.add_argument("--output", "-o", required=True, help="output NetCDF file")
    p.set_defaults(func=_simulate)

    p = sub.add_parser("config", help="print the resolved, validated job config")
    p.add_argument("--config")
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    p.set_defaults(func=_show_config)

    try:
        from .figures import cli as figures_cli
    except ImportError:
        figures_cli = None
    if figures_cli is not None:
        figures_cli.add_subcommands(sub)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
