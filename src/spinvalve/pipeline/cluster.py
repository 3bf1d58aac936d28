"""How the pipeline's jobs are sized and submitted: site settings, the time-limit warning
signal, requests from the cost model (:mod:`spinvalve.cost`), the plan of a run.

* site settings (partition / account / QoS / extra sbatch options) from the config's
  ``cluster`` and ``<family>.cluster`` sections, as resources of either SLURM executor;
* the warning signal (``--signal=USR1@<lead>``) of the jobs that checkpoint on it;
* ranks, BLAS threads, memory and runtime of every job from the cost model, the config's
  ``<family>.resources`` winning, growing with the attempt;
* :func:`plan`: every job with its request and predicted cost (``results/plan.tsv``).
"""

from __future__ import annotations

import math
from typing import Mapping

from ..config import load_config
from .sweeps import FAMILIES, RESULTS, Job, bath_groups, run_config


#: Site settings of a job (config ``cluster:`` at the top, then ``<family>.cluster:``) and the
#: resource each becomes (snakemake-executor-plugin-slurm names; ``sbatch_flags`` carries all
#: of them for the cluster-generic submit line).
SITE_KEYS = {"partition": "slurm_partition", "account": "slurm_account", "qos": "qos"}


def site_settings(config: Mapping, family: str) -> dict[str, str]:
    """partition / account / qos / extra of a family: the config's top-level ``cluster``,
    then the family's ``cluster`` (merge_bath_batches: the bath family's)."""
    out = dict(config.get("cluster") or {})
    out.update((config.get(family) or {}).get("cluster") or {})
    return {k: str(v) for k, v in out.items() if v not in (None, "")}


def site_keys(config: Mapping) -> set[str]:
    """The site settings set anywhere in the config: only these become rule resources, so a
    setting the config leaves out comes from the user's profile (default-resources)."""
    keys = set((config.get("cluster") or {}).keys())
    for fam in FAMILIES:
        keys |= set(((config.get(fam) or {}).get("cluster") or {}).keys())
    return keys


def warning_signal(family: str) -> list[str]:
    """The sbatch option that asks for SIGUSR1 ``warning_lead(family)`` s before the time
    limit (the job checkpoints and exits 75; the retry resumes)."""
    return [f"--signal=USR1@{warning_lead(family)}"]


def sbatch_flags(config: Mapping, family: str, signal: bool = False) -> str:
    """The family's site settings as sbatch options, with the warning signal when the job
    checkpoints on it (``signal``): the cluster-generic submit line's ``{resources.sbatch_flags}``
    and, without partition/account/qos (the slurm executor has resources of their own), its
    ``slurm_extra``."""
    s = site_settings(config, family)
    flags = [f"--{k}={s[k]}" for k in ("partition", "account", "qos") if k in s]
    return " ".join(flags + slurm_extra(config, family, signal).split()).strip()


def slurm_extra(config: Mapping, family: str, signal: bool = False) -> str:
    """The slurm executor's ``slurm_extra``: the warning signal (``signal``) and the site's
    ``extra`` options."""
    s = site_settings(config, family)
    return " ".join((warning_signal(family) if signal else [])
                    + ([s["extra"]] if "extra" in s else []))


def user_resources(config: Mapping, family: str, job: Job | None) -> dict[str, int]:
    """The config's ``resources`` of a family (then ``resources_by_spins``): what the user fixed."""
    fam = config.get(family) or {}
    res = dict(fam.get("resources") or {})
    if job is not None and "spins_per_layer" in dict(job.point):
        n = job.value("spins_per_layer")
        for rule in fam.get("resources_by_spins") or []:
            if n >= rule.get("min_spins_per_layer", 0):
                res.update({k: v for k, v in rule.items() if k != "min_spins_per_layer"})
    return {k: int(v) for k, v in res.items()}


#: Seconds between SLURM's warning signal (SIGUSR1, ``--signal=USR1@<lead>``) and the time
#: limit. The job checkpoints at the next point it can: closed, Gibbs and bath jobs between
#: output times or charge-imbalance blocks; tDMRG jobs only after a whole output interval
#: (TeNPy's 4th-order TEBD merges consecutive steps, so an interval is not split), which for a
#: paper N_e = 8 job can take minutes: its lead is longer.
WARNING_LEAD_S = {"multi_electron": 900}
DEFAULT_WARNING_LEAD_S = 300


def warning_lead(family: str) -> int:
    """Warning lead (s) of a family's jobs; their runtime request stays 5 minutes above it."""
    return int(WARNING_LEAD_S.get(family, DEFAULT_WARNING_LEAD_S))


def _min_runtime(config: Mapping, family: str) -> int:
    return max(int(sizing(config)["min_runtime"]), math.ceil(warning_lead(family) / 60) + 5)


#: Defaults of the config's ``sizing`` section (config/README.md).
SIZING = {"safety": 2.0, "min_runtime": 10, "min_mem_mb": 500, "measure_threads": 1}


def sizing(config: Mapping) -> dict:
    return {**SIZING, **(config.get("sizing") or {})}


def _prediction(config: Mapping, family: str, job: Job):
    from .. import cost
    user = user_resources(config, family, job)
    cfg = run_config(config, family, job)
    if family == "multi_electron":
        threads = user.get("threads", 1)
        return user, cost.predict(cfg, 1, threads)
    ranks = user.get("ranks", 1)
    if "threads" in user:
        threads = user["threads"]
    else:
        # BLAS threads for the measuring rank where measurement dominates and its blocks are
        # large enough for threaded LAPACK (spinvalve.measure.THREADED_MIN)
        from ..measure import THREADED_MIN
        one = cost.predict(cfg, ranks, 1)
        want = int(sizing(config)["measure_threads"])
        threads = want if (one.measurement_dominates and one.largest_block >= THREADED_MIN) else 1
        if threads == 1:
            return user, one
    return user, cost.predict(cfg, ranks, threads)


def resources(config: Mapping, family: str, job: Job | None, attempt: int = 1) -> dict[str, int]:
    """ranks / threads / mem_mb / runtime of a job: the cost model's prediction (runtime with
    ``sizing.safety``, both growing with ``attempt``), the config's ``resources`` winning.

    ``threads``: BLAS threads per rank of an MPI job (its ``cpus_per_task``), the threads
    of a tDMRG job. A user-given runtime / mem_mb grows with the attempt too.
    """
    if job is None:
        return {"ranks": 1, "threads": 1, "mem_mb": 2000, "runtime": 60, **user_resources(
            config, family, None)}
    return _request(config, family, *_prediction(config, family, job), attempt)


def _request(config: Mapping, family: str, user: Mapping, pred, attempt: int) -> dict[str, int]:
    """:func:`resources` from a job's user resources and its cost prediction."""
    from .. import cost
    sz = sizing(config)
    req = cost.request(pred, safety=float(sz["safety"]), attempt=attempt,
                       min_runtime=_min_runtime(config, family), min_mem_mb=int(sz["min_mem_mb"]))
    attempt = max(1, int(attempt))
    out = {"ranks": pred.ranks, "threads": pred.threads, **req}
    if "runtime" in user:
        out["runtime"] = user["runtime"] * attempt
    if "mem_mb" in user:
        out["mem_mb"] = int(user["mem_mb"] * (1 + 0.5 * (attempt - 1)))
    return out


def merge_resources(config: Mapping, merged: str, batches: list[Job], attempt: int = 1
                    ) -> dict[str, int]:
    """mem_mb / runtime of the merge of one bath point's batches (bootstrap bands)."""
    from .. import cost
    cfg = load_config(batches[0].mapping)
    pred = cost.predict_merge(cfg, len(batches))
    sz = sizing(config)
    return cost.request(pred, safety=float(sz["safety"]), attempt=attempt,
                        min_runtime=_min_runtime(config, "bath"), min_mem_mb=int(sz["min_mem_mb"]))


PLAN_COLUMNS = ("job", "ranks", "cpus_per_task", "mem_mb", "runtime_min", "startup_s",
                "propagation_s", "measurement_s", "wall_s", "predicted_mem_mb_per_rank",
                "core_hours")


def plan(config: Mapping, jobs: Mapping[tuple[str, str], Job]) -> list[dict]:
    """Every job of a run with its request and predicted cost (results/plan.tsv)."""
    from .. import cost
    rows = []
    for (fam, params), job in sorted(jobs.items()):
        user, pred = _prediction(config, fam, job)
        res = _request(config, fam, user, pred, 1)
        rows.append({"job": f"{fam}/{params}", "ranks": res["ranks"],
                     "cpus_per_task": res["threads"], "mem_mb": res["mem_mb"],
                     "runtime_min": res["runtime"], "startup_s": pred.startup_s,
                     "propagation_s": pred.propagation_s, "measurement_s": pred.measurement_s,
                     "wall_s": pred.wall_s, "predicted_mem_mb_per_rank": pred.mem_mb,
                     "core_hours": pred.core_hours})
    for merged, batches in sorted(bath_groups(jobs).items()):
        pred = cost.predict_merge(load_config(batches[0].mapping), len(batches))
        res = merge_resources(config, merged, batches)
        rows.append({"job": merged.removeprefix(f"{RESULTS}/").removesuffix(".nc"), "ranks": 1,
                     "cpus_per_task": 1, "mem_mb": res["mem_mb"], "runtime_min": res["runtime"],
                     "startup_s": pred.startup_s, "propagation_s": 0.0,
                     "measurement_s": pred.measurement_s, "wall_s": pred.wall_s,
                     "predicted_mem_mb_per_rank": pred.mem_mb, "core_hours": pred.core_hours})
    return rows


def plan_text(rows: list[dict]) -> str:
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    lines = ["\t".join(PLAN_COLUMNS)]
    lines += ["\t".join(fmt(r[k]) for k in PLAN_COLUMNS) for r in rows]
    return "\n".join(lines) + "\n"


def plan_summary(rows: list[dict]) -> str:
    total = sum(r["core_hours"] for r in rows)
    requested = sum(r["runtime_min"] / 60 * r["ranks"] * r["cpus_per_task"] for r in rows)
    longest = max(rows, key=lambda r: r["wall_s"]) if rows else None
    tail = (f"; longest {longest['job']} {longest['wall_s'] / 3600:.2f} h predicted"
            if longest else "")
    return (f"spinvalve plan: {len(rows)} jobs, {total:.3g} core-hours predicted, "
            f"{requested:.3g} core-hours requested{tail}")


def mpi_launcher(executor_name: str) -> str:
    """The MPI launcher: srun under SLURM (the slurm executor on the submit host, or a SLURM
    allocation: SLURM_JOB_ID set), mpiexec otherwise."""
    import os
    return "srun" if "slurm" in executor_name or os.environ.get("SLURM_JOB_ID") else "mpiexec"
