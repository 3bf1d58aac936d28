"""Workflow hygiene: `snakemake --lint` clean, site-neutral workflow profiles, the plan."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "workflow" / "profiles"

pytestmark = pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import snakemake"], capture_output=True).returncode,
    reason="snakemake is not installed in this interpreter (pip install -e '.[workflow]')")


def _snakemake(tmp_path: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("SNAKEMAKE_PROFILE", None)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return subprocess.run([sys.executable, "-m", "snakemake", "--snakefile",
                           str(REPO / "Snakefile"), "--directory", str(tmp_path), *args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path)


@pytest.mark.parametrize("configfile", ["config/config.yaml", "config/paper.yaml"])
def test_snakemake_lint_is_clean(tmp_path, configfile):
    proc = _snakemake(tmp_path, "--lint", "--configfile", str(REPO / configfile))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "Lints for" not in out, out[-4000:]


@pytest.mark.parametrize("name", ["slurm", "cluster-generic"])
def test_workflow_profiles_hold_no_site_settings(name):
    """Site settings come from the user's profile or the config, never the project's."""
    cfg = yaml.safe_load((PROFILES / name / "config.yaml").read_text())
    # a workflow profile wins over --profile and replaces its whole default-resources
    assert "default-resources" not in cfg and "set-resources" not in cfg
    assert "slurm-status-command" not in cfg and "keep-going" not in cfg
    assert not re.search(r"partition|account|qos", yaml.safe_dump(cfg), re.I)
    assert cfg["retries"] >= 1 and cfg["rerun-incomplete"] is True
    if name == "cluster-generic":
        submit = cfg["cluster-generic-submit-cmd"]
        # the warning signal comes with sbatch_flags (only the jobs that checkpoint get it),
        # so a rule of the user's own needs no resource beyond the ones it names
        assert "{resources.sbatch_flags}" in submit and "--signal" not in submit


def test_dry_run_writes_the_plan_with_site_settings_per_family(tmp_path):
    """`snakemake -n` writes results/plan.tsv (every job, its request and predicted cost)
    and a summary line; config site settings reach the jobs per family."""
    cfg = yaml.safe_load((REPO / ".test" / "config.yaml").read_text())
    cfg["cluster"] = {"partition": "short", "account": "proj1"}
    cfg["multi_electron"]["cluster"] = {"partition": "long", "qos": "big"}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = _snakemake(tmp_path, "-n", "-p", "--configfile", str(path), "--cores", "2")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    m = re.search(r"spinvalve plan: (\d+) jobs, ([\d.e+-]+) core-hours predicted", out)
    assert m, out[-3000:]
    rows = [line.split("\t") for line in (tmp_path / "results" / "plan.tsv").read_text()
            .splitlines()]
    head, body = rows[0], rows[1:]
    assert int(m.group(1)) == len(body)
    col = {k: i for i, k in enumerate(head)}
    jobs = {r[col["job"]] for r in body}
    assert "closed/spins_per_layer~2" in jobs and "multi_electron/n_electrons~2" in jobs
    assert any(j.startswith("merged/bath/") for j in jobs)
    total = sum(float(r[col["core_hours"]]) for r in body)
    assert abs(total - float(m.group(2))) <= 0.01 * total + 1e-3
    for r in body:
        assert int(r[col["runtime_min"]]) >= 10 and int(r[col["mem_mb"]]) >= 500
        assert float(r[col["wall_s"]]) > float(r[col["startup_s"]]) > 0
    # the closed 2+2 job is dearer than the 1+1 one
    wall = {r[col["job"]]: float(r[col["wall_s"]]) for r in body}
    assert wall["closed/spins_per_layer~2"] > wall["closed/spins_per_layer~1"]
