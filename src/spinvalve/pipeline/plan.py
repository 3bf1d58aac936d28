"""``spinvalve-plan CONFIG``: every job of a workflow config with its request and predicted cost.

    spinvalve-plan config/paper.yaml                 # the table on stdout, a summary on stderr
    spinvalve-plan config/paper.yaml -o plan.tsv     # ... and into a file

The same table as ``results/plan.tsv``, which every Snakemake run (dry runs
included) writes: the config is validated like the workflow does it
(workflow/schemas/config.schema.yaml, then every job config), then each job is
sized by :mod:`spinvalve.cost` (:func:`spinvalve.pipeline.cluster.resources`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

SCHEMA = Path(__file__).resolve().parents[3] / "workflow" / "schemas" / "config.schema.yaml"


def _with_defaults(config: dict, schema: dict) -> dict:
    """The schema's defaults filled in (as snakemake.utils.validate does)."""
    import jsonschema

    def fill(validator, properties, instance, schema_):
        for key, sub in properties.items():
            if isinstance(instance, dict) and "default" in sub and key not in instance:
                instance[key] = yaml.safe_load(yaml.safe_dump(sub["default"]))
        yield from jsonschema.Draft202012Validator.VALIDATORS["properties"](
            validator, properties, instance, schema_)

    cls = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"properties": fill})
    for err in cls(schema).iter_errors(config):
        raise ValueError(err.message)
    return config


def main(argv: list[str] | None = None) -> int:
    from ..config import load_yaml
    from . import cluster, sweeps
    ap = argparse.ArgumentParser(prog="spinvalve-plan", description=__doc__.splitlines()[0])
    ap.add_argument("config", help="workflow config (config/config.yaml, config/paper.yaml, ...)")
    ap.add_argument("-o", "--output", help="also write the table to this file")
    args = ap.parse_args(argv)
    try:
        config = load_yaml(Path(args.config).read_text()) or {}
        if SCHEMA.is_file():
            schema = yaml.safe_load(SCHEMA.read_text())
            sweeps.check_schema(config, schema)
            config = _with_defaults(config, schema)
        status = sweeps.family_status(config)
        sweeps.validate(config, status)
        rows = cluster.plan(config, sweeps.all_jobs(config, status))
    except (OSError, ValueError) as exc:
        print(f"spinvalve-plan: {args.config}: {exc}", file=sys.stderr)
        return 2
    text = cluster.plan_text(rows)
    sys.stdout.write(text)
    if args.output:
        Path(args.output).write_text(text)
    print(cluster.plan_summary(rows), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
