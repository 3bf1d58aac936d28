"""Pipeline sweeps: expand the workflow config into one job config per sweep point.

(How each job is sized and submitted: :mod:`spinvalve.pipeline.cluster`.)

The Snakemake workflow (``Snakefile``, ``workflow/rules/*.smk``) is a thin
shell over this module and the ``spinvalve`` CLI. Here live the pieces that
are worth testing without Snakemake:

* which simulation families are enabled (``enabled: true | false``);
* the product of each family's sweep lists, one :class:`Job` per point, whose
  output path names its parameters (``spins_per_layer~4/T_gibbs~100``);
* the job config of every point (``job`` base, then the family's ``job``
  overrides, then the sweep values), validated with
  :func:`spinvalve.config.load_config` so that a bad key stops the pipeline
  before any job starts, with a message naming the key;
* which job files feed which figure.

A family is one kind of simulation:

==============  ======================================  ====================
family          sweep (path keys)                       figures
==============  ======================================  ====================
closed          spins_per_layer                         2, 3, 4, 5, 7
gibbs           spins_per_layer x T_gibbs               3(d) dotted, gibbs
bath            spins_per_layer x T_bb [x Gamma]        3(d) solid + band, bath_lifetime,
                [x omega_max] x batch                   trajectory_count, bath_coupling
multi_electron  n_electrons                             6
boundary        spins_per_layer                         boundary
==============  ======================================  ====================

The bath couplings (``bath.couplings``: Gamma in eV, ``bath.cutoffs``:
omega_max in eV) are sweep axes whose path keys (``Gamma~0.00012``,
``omega_max~0.01``) are always in the bath paths; an absent list is the job
config's one value, so adding couplings later reruns only the new ones. Every
bath figure but ``fig_bath_coupling`` shows the first coupling and the first
cutoff of those lists.

``boundary`` runs closed-system jobs on the paper's literal chain
(``chain.leads: none``, L = 201), whose ends reflect the electron back into
the layers inside the window; ``fig_boundary`` draws them beside the
clean-lead ``closed`` jobs. Every other single-electron job must have
``reflection_time > t_end`` (:func:`validate`), so no other figure shows a
chain-end artefact.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import yaml

from ..config import ConfigError, load_config
from ..errors import PipelineConfigError
from ..figures.catalog import FIGURES  # noqa: F401  (re-exported: the workflow's figure list)

FAMILIES = ("closed", "gibbs", "bath", "multi_electron", "boundary")


#: Sweep keys of each family, in path order: (config list key, path key).
SWEEPS: dict[str, tuple[tuple[str, str], ...]] = {
    "closed": (("spins_per_layer", "spins_per_layer"),),
    "gibbs": (("spins_per_layer", "spins_per_layer"), ("temperatures", "T_gibbs")),
    "bath": (("spins_per_layer", "spins_per_layer"), ("temperatures", "T_bb"),
             ("couplings", "Gamma"), ("cutoffs", "omega_max"), ("batches", "batch")),
    "multi_electron": (("n_electrons", "n_electrons"),),
    "boundary": (("spins_per_layer", "spins_per_layer"),),
}

RESULTS = "results"

#: Bath sweep lists that default to the job config's own value, and that value's key.
COUPLING_KEYS = {"couplings": "gamma", "cutoffs": "omega_max"}

#: Families whose figures must not show chain-end reflections (reflection_time > t_end).
REFLECTION_FREE = ("closed", "gibbs", "bath")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def deep_merge(base: Mapping, *updates: Mapping | None) -> dict:
    """Recursive merge of mappings; later values win, lists are replaced."""
    out = copy.deepcopy(dict(base))
    for upd in updates:
        for key, value in (upd or {}).items():
            if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
                out[key] = deep_merge(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
    return out


def fmt_value(value: Any) -> str:
    """Canonical path spelling of a sweep value: 4, 100, 0.5, 1e-05."""
    if isinstance(value, bool):
        raise TypeError("boolean sweep value")
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()
                                  and abs(value) < 1e15):
        return str(int(value))
    return format(float(value), "g")


def family_status(config: Mapping) -> dict[str, tuple[bool, str]]:
    """(enabled, reason) per family: ``enabled`` (default true) of its section; a family
    section missing from the config counts as ``enabled: false``."""
    status = {}
    for fam in FAMILIES:
        section = config.get(fam)
        on = section is not None and bool((section or {}).get("enabled", True))
        status[fam] = (on, "enabled in the config" if on else
                       ("disabled in the config" if section is not None else "no section"))
    return status


def describe_status(status: Mapping[str, tuple[bool, str]]) -> str:
    on = [f for f, (en, _) in status.items() if en]
    off = [f"{f} ({why})" for f, (en, why) in status.items() if not en]
    lines = ["spinvalve pipeline: enabled families: " + (", ".join(on) or "none")]
    if off:
        lines.append("spinvalve pipeline: disabled families: " + "; ".join(off))
    return "\n".join(lines)


def check_schema(config: Mapping, schema: Mapping) -> None:
    """JSON-schema check of the workflow config with a message naming the dotted key.

    (``snakemake.utils.validate`` runs afterwards to fill in defaults; this gives
    the first error as ``closed.spins_per_layer[2]: -1 is less than the minimum of 1``.)
    """
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = list(validator.iter_errors(config))
    if not errors:
        return
    err = min(errors, key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    err = jsonschema.exceptions.best_match([err]) or err

    def dotted(path) -> str:
        out = ""
        for part in path:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        return out or "(top level)"

    key = dotted(err.absolute_path)
    if err.validator == "additionalProperties" and isinstance(err.instance, Mapping):
        allowed = set((err.schema.get("properties") or {}))
        extra = sorted(str(k) for k in err.instance if k not in allowed)
        name = f"{key}.{extra[0]}" if err.absolute_path else extra[0]
        raise PipelineConfigError(f"{name}: unknown key (allowed here: {sorted(allowed)})")
    if err.validator == "required":
        raise PipelineConfigError(f"{key}: {err.message}")
    raise PipelineConfigError(f"{key}: {err.message}")


# ---------------------------------------------------------------------------
# jobs
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Job:
    """One simulation: a family and one point of its sweep."""

    family: str
    point: tuple[tuple[str, Any], ...]  # ((path key, value), ...)
    mapping: dict = field(compare=False, hash=False, repr=False)

    @property
    def params(self) -> str:
        """Parameter part of the paths: ``spins_per_layer~4/T_gibbs~100``."""
        return "/".join(f"{k}~{fmt_value(v)}" for k, v in self.point)

    @property
    def stem(self) -> str:
        return f"{RESULTS}/jobs/{self.family}/{self.params}"

    @property
    def config_path(self) -> str:
        return self.stem + ".yaml"

    @property
    def output(self) -> str:
        return self.stem + ".nc"

    @property
    def log(self) -> str:
        return f"{RESULTS}/logs/jobs/{self.family}/{self.params}.log"

    @property
    def yaml(self) -> str:
        """The job config file: the explicit (non-default) keys of this job."""
        head = (f"# spinvalve job config written by the workflow: {self.family} "
                f"{self.params}\n# keys not listed take the paper's values "
                "(spinvalve config --config <this file> prints them all)\n")
        return head + yaml.safe_dump(self.mapping, sort_keys=True)

    def value(self, key: str) -> Any:
        return dict(self.point)[key]


def _job_mapping(config: Mapping, family: str, point: Mapping[str, Any]) -> dict:
    fam = config.get(family) or {}
    sweep: dict = {}
    if "spins_per_layer" in point:
        n = int(point["spins_per_layer"])
        sweep["layers"] = {"n_p": n, "n_a": n}
    if family == "gibbs":
        sweep["temperature"] = {"gibbs": float(point["T_gibbs"])}
    if family == "bath":
        per = int(fam.get("trajectories_per_batch", 200))
        sweep["bath"] = {"temperature": float(point["T_bb"])}
        sweep["bath"].update(gamma=float(point["Gamma"]), omega_max=float(point["omega_max"]))
        # bands come from the merge of the batches (results/merged/bath), not from each batch
        sweep["trajectories"] = {"first": int(point["batch"]) * per, "count": per, "bands": False}
    if family == "multi_electron":
        sweep["multi_electron"] = {"n_electrons": int(point["n_electrons"])}
    if family == "boundary":
        sweep["chain"] = {"leads": "none"}     # the paper's literal chain: what the family is
    return deep_merge(config.get("job") or {}, fam.get("job") or {}, sweep)


def parallel_settings(config: Mapping, family: str) -> dict:
    """The family's ``parallel`` section: the job config's ``parallel.*`` keys, given to the
    job on its command line (``--set parallel.<key>=<value>``), never written to its job
    file, so changing them reruns no job and leaves its checkpoint valid."""
    return dict((config.get(family) or {}).get("parallel") or {})


def parallel_args(config: Mapping, family: str) -> str:
    """``spinvalve simulate`` options of the family's parallel settings ('' without any)."""
    return " ".join(f"--set parallel.{k}={v}" for k, v in sorted(parallel_settings(config, family).items()))


def run_config(config: Mapping, family: str, job: Job):
    """The validated JobConfig a job runs with: its job file's keys and the family's
    parallel settings."""
    return load_config(deep_merge(job.mapping, {"parallel": parallel_settings(config, family)}))


def sweep_lists(config: Mapping, family: str) -> dict[str, list]:
    """The values of each sweep list of a family, duplicates dropped, order kept.

    ``batches`` defaults to [0]; an absent ``bath.couplings`` / ``bath.cutoffs`` to the
    job config's own ``bath.gamma`` / ``bath.omega_max`` (package default if unset), so
    that switching the coupling axis on later reruns only the new couplings."""
    from ..config import Bath
    fam = config.get(family) or {}
    out = {}
    for list_key, _ in SWEEPS[family]:
        values = fam.get(list_key)
        if values is None and list_key in COUPLING_KEYS:
            base = deep_merge(config.get("job") or {}, fam.get("job") or {}).get("bath") or {}
            name = COUPLING_KEYS[list_key]
            values = [base.get(name, getattr(Bath(), name))]
        elif values is None:
            values = [0] if list_key == "batches" else []
        out[list_key] = list(dict.fromkeys(values))
    return out


def family_jobs(config: Mapping, family: str) -> list[Job]:
    """Every sweep point of one family (whether or not it is enabled)."""
    keys = SWEEPS[family]
    lists = sweep_lists(config, family)
    jobs = []
    for combo in itertools.product(*(lists[lk] for lk, _ in keys)):
        point = tuple((path_key, v) for (_, path_key), v in zip(keys, combo))
        jobs.append(Job(family, point, _job_mapping(config, family, dict(point))))
    return jobs


def all_jobs(config: Mapping, status: Mapping[str, tuple[bool, str]] | None = None
             ) -> dict[tuple[str, str], Job]:
    """``{(family, params): Job}`` over the enabled families."""
    status = status if status is not None else family_status(config)
    out = {}
    for fam in FAMILIES:
        if status[fam][0]:
            for job in family_jobs(config, fam):
                out[(fam, job.params)] = job
    return out


def validate(config: Mapping, status: Mapping[str, tuple[bool, str]] | None = None) -> None:
    """Validate every job config of the enabled families and the figure choices.

    Raises :class:`PipelineConfigError` naming the key: ``job.chain.foo``,
    ``closed.job.layers.n_p``, ``closed.spins_per_layer = 30 (layers: ...)``,
    ``figures.reference_spins_per_layer``.
    """
    status = status if status is not None else family_status(config)

    def check(mapping: Mapping, prefix: str) -> None:
        try:
            load_config(mapping)
        except ConfigError as exc:
            raise PipelineConfigError(f"{prefix}{exc}") from None

    check(config.get("job") or {}, "job.")
    for fam in FAMILIES:
        if not status[fam][0]:
            continue
        fsec = config.get(fam) or {}
        for list_key, _ in SWEEPS[fam]:
            if list_key not in ("batches", *COUPLING_KEYS) and not fsec.get(list_key):
                raise PipelineConfigError(f"{fam}.{list_key}: required (a non-empty list) "
                                          f"when {fam} is enabled")
        # the family's own overrides on top of the base (sweep values not applied)
        check(deep_merge(config.get("job") or {}, fsec.get("job") or {}), f"{fam}.job: ")
        for where, sec in (("job", config.get("job") or {}), (f"{fam}.job", fsec.get("job") or {})):
            if "parallel" in sec:
                raise PipelineConfigError(
                    f"{where}.parallel: parallel settings go in {fam}.parallel (in the job file "
                    "a change of them would rerun the job)")
        check({"parallel": parallel_settings(config, fam)}, f"{fam}.")
        for job in family_jobs(config, fam):
            where = ", ".join(f"{k} = {fmt_value(v)}" for k, v in job.point)
            sweep_keys = "/".join(f"{fam}.{lk}" for lk, _ in SWEEPS[fam])
            try:
                cfg = run_config(config, fam, job)
            except ConfigError as exc:
                raise PipelineConfigError(
                    f"{sweep_keys}: the job at {where} is invalid: {exc}") from None
            t_r = cfg.geometry.reflection_time
            if fam in REFLECTION_FREE and t_r <= cfg.time.t_end:
                raise PipelineConfigError(
                    f"{fam}.job: the job at {where} would show chain-end reflections: amplitude "
                    f"reflected by a chain end reaches the layers at t = {t_r:.1f} fs < "
                    f"time.t_end = {cfg.time.t_end:g} fs; set job.chain.leads: auto (the "
                    "boundary family shows the paper's literal chain)")
    figs = config.get("figures") or {}
    if status["closed"][0]:
        closed = set(int(n) for n in (config.get("closed") or {}).get("spins_per_layer") or [])
        ref = figs.get("reference_spins_per_layer")
        if ref is not None and int(ref) not in closed:
            raise PipelineConfigError(
                f"figures.reference_spins_per_layer: {ref} is not in closed.spins_per_layer "
                f"{sorted(closed)}")
        for key in ("fig4_spins_per_layer", "fig7_spins_per_layer"):
            sel = figs.get(key)
            bad = sorted(set(int(n) for n in sel or []) - closed)
            if bad:
                raise PipelineConfigError(
                    f"figures.{key}: {bad} not in closed.spins_per_layer {sorted(closed)}")
    if status["boundary"][0] and status["closed"][0]:
        closed = set(int(n) for n in (config.get("closed") or {}).get("spins_per_layer") or [])
        bad = sorted(set(int(n) for n in (config.get("boundary") or {}).get("spins_per_layer")
                         or []) - closed)
        if bad:
            raise PipelineConfigError(
                f"boundary.spins_per_layer: {bad} not in closed.spins_per_layer {sorted(closed)} "
                "(fig_boundary draws each beside its clean-lead run)")
    if status["bath"][0]:
        temps = [float(t) for t in (config.get("bath") or {}).get("temperatures") or []]
        for key in ("fig_trajectory_count_temperature", "fig_bath_coupling_temperature"):
            t_fig = figs.get(key)
            if t_fig is not None and float(t_fig) not in temps:
                raise PipelineConfigError(
                    f"figures.{key}: {t_fig} is not in bath.temperatures {temps}")


# ---------------------------------------------------------------------------
# figure inputs
# ---------------------------------------------------------------------------

def bath_merged_path(spins: int, t_bb: Any, gamma: Any = None, omega_max: Any = None) -> str:
    """The merged file of one bath point (coupling: the package defaults if not given)."""
    from ..config import Bath
    gamma = Bath().gamma if gamma is None else gamma
    omega_max = Bath().omega_max if omega_max is None else omega_max
    return (f"{RESULTS}/merged/bath/spins_per_layer~{fmt_value(spins)}/T_bb~{fmt_value(t_bb)}"
            f"/Gamma~{fmt_value(gamma)}/omega_max~{fmt_value(omega_max)}.nc")


def merged_of(job: Job) -> str:
    """The merged file a bath batch job feeds."""
    p = dict(job.point)
    return bath_merged_path(p["spins_per_layer"], p["T_bb"], p["Gamma"], p["omega_max"])


def bath_groups(jobs: Mapping[tuple[str, str], Job]) -> dict[str, list[Job]]:
    """Bath batch jobs grouped by their merged file."""
    groups: dict[str, list[Job]] = {}
    for (fam, _), job in jobs.items():
        if fam == "bath":
            groups.setdefault(merged_of(job), []).append(job)
    return groups


def reference_coupling(config: Mapping, job: Job) -> bool:
    """Whether a bath job has the first of ``bath.couplings`` and ``bath.cutoffs`` (when swept):
    the coupling every bath figure but fig_bath_coupling shows."""
    lists = sweep_lists(config, "bath")
    return (float(job.value("Gamma")) == float(lists["couplings"][0])
            and float(job.value("omega_max")) == float(lists["cutoffs"][0]))


def bath_coupling_point(config: Mapping) -> tuple[int | None, float | None]:
    """(N/2, T_bb) of fig_bath_coupling: N/2 as for fig_trajectory_count; T_bb
    ``figures.fig_bath_coupling_temperature``, by default (null) the first of ``bath.temperatures``."""
    n, _ = trajectory_count_point(config)
    temps = [float(t) for t in (config.get("bath") or {}).get("temperatures") or []]
    if n is None:
        return None, None
    t = (config.get("figures") or {}).get("fig_bath_coupling_temperature")
    return n, (temps[0] if t is None else float(t))


def trajectory_count_point(config: Mapping) -> tuple[int | None, float | None]:
    """(N/2, T_bb) shown by fig_trajectory_count.

    N/2: ``figures.reference_spins_per_layer`` if the bath sweep has it, else the first of
    ``bath.spins_per_layer``; T_bb: ``figures.fig_trajectory_count_temperature``, by default
    (null) the highest of ``bath.temperatures``.
    """
    bath = config.get("bath") or {}
    spins = [int(n) for n in bath.get("spins_per_layer") or []]
    temps = [float(t) for t in bath.get("temperatures") or []]
    if not spins or not temps:
        return None, None
    ref = reference_spins(config)
    n = ref if ref in spins else spins[0]
    t = (config.get("figures") or {}).get("fig_trajectory_count_temperature")
    return n, (max(temps) if t is None else float(t))


def reference_spins(config: Mapping) -> int | None:
    """``figures.reference_spins_per_layer`` (the N/2 of Figs. 2, 3, 5)."""
    ref = (config.get("figures") or {}).get("reference_spins_per_layer")
    return None if ref is None else int(ref)


def of_family(jobs: Mapping[tuple[str, str], Job], family: str) -> list[Job]:
    """The jobs of one family, in sweep order."""
    return [j for (f, _), j in jobs.items() if f == family]


def closed_at(jobs: Mapping[tuple[str, str], Job], spins: Iterable[int]) -> list[str]:
    """Output files of the closed-system jobs with N/2 in ``spins``."""
    spins = set(spins)
    return [j.output for j in of_family(jobs, "closed") if j.value("spins_per_layer") in spins]


def closed_selection(config: Mapping, jobs: Mapping, key: str | None) -> list[str]:
    """Closed-system job files at the reference N (``key`` None) or at the N/2 listed under
    ``figures.<key>`` (all of them when that is null)."""
    closed = of_family(jobs, "closed")
    if key is None:
        ref = reference_spins(config)
        return [j.output for j in closed if j.value("spins_per_layer") == ref]
    sel = (config.get("figures") or {}).get(key)
    if sel is None:
        return [j.output for j in closed]
    return closed_at(jobs, (int(n) for n in sel))


def figure_inputs(config: Mapping, jobs: Mapping[tuple[str, str], Job], figure: str
                  ) -> dict[str, list[str]]:
    """Files feeding one figure, by family: ``{"closed": [...], "gibbs": [...], ...}``.

    Only enabled families contribute (``jobs`` holds the enabled families' jobs),
    so a figure whose family is disabled aggregates what exists.
    """
    from ..figures.catalog import get
    chosen = get(figure).inputs(config, jobs)
    return {fam: list(chosen.get(fam, [])) for fam in FAMILIES}


def figure_settings(config: Mapping, figure: str) -> dict:
    """The part of the workflow config a figure's aggregation records as provenance."""
    from ..figures.catalog import get
    fig = get(figure)
    figs = config.get("figures") or {}
    out = {"figure": figure, **{k: figs.get(k) for k in fig.settings}}
    if fig.shown is not None:
        out["shown"] = fig.shown(config)
    return out


def figure_source_labels(config: Mapping, jobs: Mapping[tuple[str, str], Job], figure: str
                         ) -> list[str]:
    """``family/params`` of the job files a figure shows (report captions)."""
    files = figure_inputs(config, jobs, figure)
    # results/jobs/closed/x.nc -> closed/x; results/merged/bath/x.nc -> bath/x
    return sorted(p.split("/", 2)[2].rsplit(".", 1)[0] for fam in files for p in files[fam])


def prepare_environment(executable: str) -> None:
    """Environment of the jobs: ``executable``'s directory first on PATH (spinvalve, python,
    mpiexec children) and, as root (containers), Open MPI's two permission variables."""
    import os
    bindir = os.path.dirname(executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")


def iter_outputs(jobs: Iterable[Job]) -> list[str]:
    return [j.output for j in jobs]
