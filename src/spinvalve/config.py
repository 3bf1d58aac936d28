"""Job configuration: one YAML tree, validated once into frozen dataclasses.

Every key has a default (the paper's value, see ``config/README.md``); an
unknown key, a wrong type, an out-of-range value or an impossible geometry
raises :class:`ConfigError` naming the dotted key, before any computation.
Nothing downstream reads raw dicts.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from . import HBAR
from .errors import ConfigError


# ---------------------------------------------------------------------------
# YAML: numbers like 1e-12 are floats (PyYAML follows YAML 1.1, which needs a dot)
# ---------------------------------------------------------------------------

#: A YAML 1.2 float that YAML 1.1 (PyYAML) reads as a string: an exponent without a dot,
#: ``1e-12``, ``-2E5``, ``+3e+2``.
_EXPONENT_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$")


class YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader that also reads ``1e-12`` (no dot) as a float, as YAML 1.2 does."""


YamlLoader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+0123456789"))


def load_yaml(text_or_stream) -> Any:
    """Parse YAML with :class:`YamlLoader`; every config reader of the package uses it."""
    return yaml.load(text_or_stream, Loader=YamlLoader)  # noqa: S506 - a SafeLoader subclass


def yaml_numbers(tree: Any) -> Any:
    """A copy of a parsed YAML tree with every string that is a YAML 1.2 float without
    a dot (``"1e-12"``) turned into a float: for trees read by another YAML 1.1 loader
    (e.g. Snakemake's ``--configfile``) before they are validated as numbers."""
    if isinstance(tree, Mapping):
        return {k: yaml_numbers(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [yaml_numbers(v) for v in tree]
    if isinstance(tree, str) and _EXPONENT_FLOAT.match(tree):
        return float(tree.replace("_", ""))
    return tree


def _f(default: Any, *, lo: float | None = None, lo_open: bool = False,
       hi: float | None = None, hi_open: bool = False,
       choices: tuple | None = None, doc: str = "") -> Any:
    """Dataclass field with validation metadata."""
    meta = {"lo": lo, "lo_open": lo_open, "hi": hi, "hi_open": hi_open,
            "choices": choices, "doc": doc}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Chain:
    n_sites: int = _f(201, lo=1, doc="number of chain sites L")
    hopping: float = _f(1.0, lo=0.0, lo_open=True, doc="hopping gamma (eV)")
    leads: str = _f("none", choices=("none", "auto"),
                    doc="none: the chain is n_sites long (the paper's literal geometry); auto: "
                        "lead sites added so that no amplitude reflected by a chain end reaches "
                        "a layer before t_end (layers and packet shifted together; "
                        "single-electron jobs)")


@dataclass(frozen=True)
class Layers:
    n_p: int = _f(4, lo=0, doc="localized spins in FM_p")
    n_a: int = _f(4, lo=0, doc="localized spins in FM_a")
    fm_p_start: int = _f(43, lo=0, doc="0-based site of the first FM_p spin")
    spacer: int = _f(4, lo=0, doc="empty (NM) sites between the layers")

    @property
    def fm_a_start(self) -> int:
        return self.fm_p_start + self.n_p + self.spacer

    @property
    def n_spins(self) -> int:
        return self.n_p + self.n_a

    @property
    def sites(self) -> tuple[int, ...]:
        """Chain site of every localized spin, FM_p first."""
        return (tuple(range(self.fm_p_start, self.fm_p_start + self.n_p))
                + tuple(range(self.fm_a_start, self.fm_a_start + self.n_a)))


@dataclass(frozen=True)
class Couplings:
    j_sd: float = _f(0.5, doc="sd exchange J_sd (eV)")
    j: float = _f(0.1, doc="in-layer XY exchange J (eV)")
    jz_ratio: float = _f(1.005, doc="J_z / J")

    @property
    def jz(self) -> float:
        return self.jz_ratio * self.j


@dataclass(frozen=True)
class Pulse:
    x0: float = _f(20.0, doc="packet centre (0-based site)")
    k: float = _f(math.pi / 2, doc="carrier wave number (1/site)")
    dk: float = _f(0.2, lo=0.0, lo_open=True, doc="momentum width (1/site)")


@dataclass(frozen=True)
class Time:
    t_end: float = _f(100.0, lo=0.0, lo_open=True, doc="final time (fs)")
    dt_out: float = _f(0.5, lo=0.0, lo_open=True, doc="output interval (fs)")

    @property
    def n_out(self) -> int:
        """Number of output intervals (t_end is rounded to a multiple of dt_out)."""
        return int(round(self.t_end / self.dt_out))


@dataclass(frozen=True)
class Chebyshev:
    """Options of the ``chebyshev`` integrator (also the open system's non-Hermitian one)."""
    tolerance: float = _f(1e-12, lo=0.0, lo_open=True, hi=1e-3,
                          doc="truncation of the Chebyshev series per output interval "
                              "(bound on the neglected coefficients)")
    spectral_bounds: str = _f("terms", choices=("terms", "lanczos"),
                              doc="how the spectral interval is found: a bound from the "
                                  "Hamiltonian's terms, or Lanczos")


@dataclass(frozen=True)
class Krylov:
    """Options of the ``krylov`` integrator (SLEPc MFN)."""
    tolerance: float = _f(1e-12, lo=0.0, lo_open=True, hi=1e-3,
                          doc="SLEPc MFN tolerance per output interval")


@dataclass(frozen=True)
class RK4:
    """Options of the ``rk4`` integrator (PETSc TS, a reference only)."""
    dt: float = _f(0.002, lo=0.0, lo_open=True, doc="largest RK4 step (fs)")


@dataclass(frozen=True)
class Numerics:
    integrator: str = _f("chebyshev", choices=("chebyshev", "krylov", "rk4"),
                         doc="propagator (registered name); its options: numerics.<integrator>")
    chebyshev: Chebyshev = field(default_factory=Chebyshev)
    krylov: Krylov = field(default_factory=Krylov)
    rk4: RK4 = field(default_factory=RK4)
    invariant_tolerance: float = _f(1e-8, lo=0.0, lo_open=True,
                                    doc="allowed drift of norm, S^z_tot and energy")

    @property
    def options(self):
        """The options section of the chosen integrator."""
        return getattr(self, self.integrator)


@dataclass(frozen=True)
class Parallel:
    """How a job uses its MPI ranks and memory. Not part of the job's identity: left out
    of the checkpoint hash and of the pipeline's job files (``<family>.parallel`` in the
    pipeline config), so changing it reruns nothing and keeps checkpoints valid."""
    ranks_per_member: int = _f(0, lo=0, doc="MPI ranks per ensemble member (0: all; 1: the "
                                            "ranks also measure in turn)")
    memory_limit_gb: float = _f(16.0, lo=0.0, lo_open=True,
                                doc="refuse jobs whose state vectors need more")
    overlap_limit_gb: float = _f(1.0, lo=0.0,
                                 doc="largest rho_FM Gram-factor set (all members, GB) measured by "
                                     "the ranks in turn while the others propagate; larger: rank 0 "
                                     "measures every output time while the others wait")


#: Keys of earlier versions and where they live now (a config using one gets told).
MOVED = {
    "numerics.tolerance": "numerics.chebyshev.tolerance (or numerics.krylov.tolerance)",
    "numerics.spectral_bounds": "numerics.chebyshev.spectral_bounds",
    "numerics.rk4_dt": "numerics.rk4.dt",
    "numerics.ranks_per_member": "parallel.ranks_per_member",
    "numerics.memory_limit_gb": "parallel.memory_limit_gb",
    "numerics.overlap_limit_gb": "parallel.overlap_limit_gb",
}


@dataclass(frozen=True)
class Observables:
    k_values: tuple[float, ...] = _f((math.pi / 6, math.pi / 2),
                                     doc="QFI momentum transfers (1/site)")
    qfi_exact_max_dim: int = _f(8192, lo=0,
                                doc="largest rank of a rho_FM block diagonalised for the exact QFI")
    negativity_max_dim: int = _f(16384, lo=0,
                                 doc="largest rho^{T_a} charge-imbalance block diagonalised "
                                     "(larger: MLN not computed, NaN)")
    negativity_stride: int = _f(1, lo=1, doc="compute the MLN at every n-th output time only "
                                             "(NaN in between; for costly large N)")


@dataclass(frozen=True)
class Temperature:
    gibbs: float = _f(0.0, lo=0.0, doc="Gibbs temperature of the localized spins (K)")
    h_pin: float = _f(0.01, lo=0.0, doc="pinning field of the Gibbs state (eV)")
    weight_cutoff: float = _f(1e-6, lo=0.0, hi=1.0, hi_open=True,
                              doc="drop Gibbs members with smaller weight")


@dataclass(frozen=True)
class Bath:
    temperature: float = _f(100.0, lo=0.0, doc="bath temperature T_bb (K)")
    gamma: float = _f(1.2e-4, lo=0.0, doc="bath strength Gamma (eV)")
    omega_max: float = _f(0.01, lo=0.0, lo_open=True, doc="cutoff omega_m (eV)")
    components: str = _f("xyz", choices=("x", "y", "z", "xy", "xz", "yz", "xyz"),
                         doc="Pauli components summed into X_i")
    jump_operators: str = _f("exact", choices=("exact", "series"),
                             doc="eigenbasis form or the ad_H power series (Eq. 18)")
    series_order: int = _f(8, lo=0, hi=30, doc="order of the Eq. 18 series")


@dataclass(frozen=True)
class Trajectories:
    count: int = _f(200, lo=1, doc="number of trajectories in this job")
    seed: int = _f(20221012, lo=0, doc="master seed")
    first: int = _f(0, lo=0, doc="index of this job's first trajectory")
    bands: bool = _f(True, doc="bootstrap bands in this job (false: sums only, for a merge of slices)")


@dataclass(frozen=True)
class MultiElectron:
    n_electrons: int = _f(2, lo=2, doc="electrons in the pulse (even)")
    n_conf: int = _f(10, lo=1, doc="sites of the confining well")
    well_depth: float = _f(2.0, lo=0.0, doc="well depth V (eV)")
    pin_field: float = _f(10.0, lo=0.0, doc="pinning field for t <= 0 (eV)")
    dt: float = _f(0.1, lo=0.0, lo_open=True, doc="time step (hbar/gamma)")
    chi_start: int = _f(100, lo=1, doc="initial bond dimension")
    chi_max: int = _f(400, lo=1, doc="maximal bond dimension")
    trunc_cut: float = _f(1e-7, lo=0.0, lo_open=True, doc="truncation error")
    method: str = _f("tebd", choices=("tdvp", "tebd"),
                     doc="time evolution: 4th-order TEBD or two-site TDVP")


@dataclass(frozen=True)
class Checkpoint:
    interval: float = _f(600.0, lo=0.0, lo_open=True,
                         doc="wall-clock seconds between checkpoints")
    path: str = _f("", doc="checkpoint file ('' : <output>.ckpt)")


@dataclass(frozen=True)
class JobConfig:
    chain: Chain = field(default_factory=Chain)
    layers: Layers = field(default_factory=Layers)
    couplings: Couplings = field(default_factory=Couplings)
    pulse: Pulse = field(default_factory=Pulse)
    time: Time = field(default_factory=Time)
    numerics: Numerics = field(default_factory=Numerics)
    observables: Observables = field(default_factory=Observables)
    temperature: Temperature = field(default_factory=Temperature)
    checkpoint: Checkpoint = field(default_factory=Checkpoint)
    parallel: Parallel = field(default_factory=Parallel)
    bath: Bath | None = None
    trajectories: Trajectories | None = None
    multi_electron: MultiElectron | None = None

    @property
    def geometry(self):
        """The whole chain (leads applied): :class:`spinvalve.geometry.Geometry`."""
        from .geometry import geometry
        return geometry(self)

    def to_dict(self) -> dict:
        """Plain nested dict (tuples as lists), suitable for YAML."""
        def conv(obj):
            if dataclasses.is_dataclass(obj):
                return {f.name: conv(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
            if isinstance(obj, (tuple, list)):
                return [conv(v) for v in obj]
            return obj
        return conv(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------

_OPTIONAL_SECTIONS = {"bath": Bath, "trajectories": Trajectories,
                      "multi_electron": MultiElectron}


def _check_scalar(key: str, value: Any, typ: Any, meta: Mapping) -> Any:
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ConfigError(f"{key}: expected an integer, got {value!r}")
    elif typ is float:
        if isinstance(value, str) and _EXPONENT_FLOAT.match(value.strip()):
            value = float(value.strip().replace("_", ""))  # "1e-12" from a YAML 1.1 reader
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{key}: must be finite, got {value!r}")
    elif typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"{key}: must be one of {list(choices)}, got {value!r}")
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and (value < lo or (meta.get("lo_open") and value == lo)):
        rel = ">" if meta.get("lo_open") else ">="
        raise ConfigError(f"{key}: must be {rel} {lo}, got {value!r}")
    if hi is not None and (value > hi or (meta.get("hi_open") and value == hi)):
        rel = "<" if meta.get("hi_open") else "<="
        raise ConfigError(f"{key}: must be {rel} {hi}, got {value!r}")
    return value


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{prefix}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(map(str, raw)) - names)
    moved = [f"{prefix}.{k}" for k in unknown if f"{prefix}.{k}" in MOVED]
    if moved:
        raise ConfigError(f"{moved[0]}: moved to {MOVED[moved[0]]}")
    if unknown:
        raise ConfigError(f"{prefix}.{unknown[0]}: unknown key (allowed: {sorted(names)})"
                          if prefix else f"{unknown[0]}: unknown key (allowed: {sorted(names)})")
    kwargs = {}
    for f in dataclasses.fields(cls):
        key = f"{prefix}.{f.name}" if prefix else f.name
        if f.name not in raw:
            continue
        value = raw[f.name]
        typ = hints[f.name]
        origin = typing.get_origin(typ)
        if dataclasses.is_dataclass(typ):
            kwargs[f.name] = _build(typ, value, key)
        elif f.name in _OPTIONAL_SECTIONS:
            kwargs[f.name] = None if value is None else _build(_OPTIONAL_SECTIONS[f.name], value, key)
        elif origin is tuple:
            if not isinstance(value, (list, tuple)) or len(value) == 0:
                raise ConfigError(f"{key}: expected a non-empty list, got {value!r}")
            (elt,) = set(typing.get_args(typ)) - {Ellipsis}
            kwargs[f.name] = tuple(_check_scalar(f"{key}[{i}]", v, elt, f.metadata)
                                   for i, v in enumerate(value))
        else:
            kwargs[f.name] = _check_scalar(key, value, typ, f.metadata)
    return cls(**kwargs)


#: Largest charge block of the localized spins diagonalised for a Gibbs state.
MAX_GIBBS_BLOCK = 6000
#: Largest layer whose bath jump operators are built (dense 2^n x 2^n).
MAX_LAYER_SPINS = 12


def _check_rules(cfg: JobConfig) -> None:
    """Every rule between keys (geometry, time grid, family limits): checked once, when a
    config is loaded, so the pipeline's plan refuses a job before any job starts."""
    lay, L = cfg.layers, cfg.chain.n_sites
    if lay.n_spins > 24:
        raise ConfigError(f"layers: n_p + n_a = {lay.n_spins} exceeds the supported 24 spins")
    if lay.n_spins and lay.fm_a_start + lay.n_a > L:
        raise ConfigError(
            f"layers: FM_a ends on site {lay.fm_a_start + lay.n_a - 1} but chain.n_sites = {L} "
            "(fm_p_start + n_p + spacer + n_a must be <= n_sites)")
    if cfg.multi_electron is None and not 0 <= cfg.pulse.x0 <= L - 1:
        # the packet of single-electron jobs; the tDMRG electrons start in the well instead
        raise ConfigError(f"pulse.x0: {cfg.pulse.x0} is off the chain [0, {L - 1}]")
    if cfg.time.n_out < 1 or not math.isclose(cfg.time.n_out * cfg.time.dt_out, cfg.time.t_end,
                                              rel_tol=1e-9, abs_tol=1e-12):
        raise ConfigError(f"time.t_end: {cfg.time.t_end} is not a positive multiple of "
                          f"time.dt_out = {cfg.time.dt_out}")
    me = cfg.multi_electron
    if me is not None:
        if me.n_electrons % 2:
            raise ConfigError(f"multi_electron.n_electrons: must be even, got {me.n_electrons}")
        if me.n_conf > L:
            raise ConfigError(f"multi_electron.n_conf: {me.n_conf} exceeds chain.n_sites = {L}")
        if me.chi_start > me.chi_max:
            raise ConfigError("multi_electron.chi_start: larger than multi_electron.chi_max")
        if me.n_electrons > 2 * me.n_conf:
            raise ConfigError(f"multi_electron.n_electrons: {me.n_electrons} electrons do not fit "
                              f"in the well of multi_electron.n_conf = {me.n_conf} sites")
        step = me.dt * HBAR / cfg.chain.hopping
        ratio = cfg.time.dt_out / step
        n = int(round(ratio))
        if n < 1 or abs(ratio - n) > 1e-6 * max(1.0, ratio):
            n = max(1, n)
            raise ConfigError(
                f"time.dt_out: {cfg.time.dt_out} fs is not a multiple of the tDMRG step "
                f"multi_electron.dt * hbar / gamma = {step:.10g} fs; use e.g. "
                f"time.dt_out = {n * step:.10g} ({n} steps)")
    if cfg.bath is not None and cfg.temperature.gibbs > 0:
        raise ConfigError("temperature.gibbs: a Gibbs initial state with a bath is not supported; "
                          "set temperature.gibbs to 0 or remove the bath section")
    if cfg.bath is not None and cfg.numerics.integrator != "chebyshev":
        raise ConfigError(f"numerics.integrator: open systems propagate H_eff by the "
                          f"non-Hermitian Chebyshev expansion only, got {cfg.numerics.integrator!r}")
    if cfg.bath is not None and max(lay.n_p, lay.n_a) > MAX_LAYER_SPINS:
        raise ConfigError(f"layers: a layer of {max(lay.n_p, lay.n_a)} spins; the bath's jump "
                          f"operators are built for at most {MAX_LAYER_SPINS} spins per layer")
    if cfg.temperature.gibbs > 0 and cfg.multi_electron is None:
        from .basis import SpinLayers
        spins = SpinLayers(lay.n_p, lay.n_a)
        largest = max(spins.block(K).size for K in range(lay.n_spins + 1))
        if largest > MAX_GIBBS_BLOCK:
            raise ConfigError(f"temperature.gibbs: the Gibbs state of {lay.n_p}+{lay.n_a} spins "
                              f"needs a charge block of {largest} states diagonalised (limit "
                              f"{MAX_GIBBS_BLOCK}); use fewer spins")


def load_config(source: Mapping | str | Path | None = None,
                overrides: list[str] | tuple[str, ...] = ()) -> JobConfig:
    """Validate a raw config (mapping, YAML path or None for defaults).

    ``overrides`` are ``dotted.key=value`` strings; values are parsed as YAML.
    """
    if source is None:
        raw: Any = {}
    elif isinstance(source, (str, Path)):
        path = Path(source)
        try:
            raw = load_yaml(path.read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    else:
        raw = source
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config: expected a mapping at top level, got {type(raw).__name__}")
    raw = _deep_copy(raw)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected dotted.key=value")
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"{key}: {part} is not a section")
            node = nxt
        try:
            node[parts[-1]] = load_yaml(value)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{key}: value {value!r} is not valid YAML") from exc
    cfg = _build(JobConfig, raw, "")
    _check_rules(cfg)
    return cfg


def _deep_copy(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _deep_copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_deep_copy(v) for v in obj]
    return obj


def describe() -> list[tuple[str, Any, str]]:
    """(dotted key, default, doc) for every key: the source of config/README.md tables."""
    rows = []

    def walk(cls, prefix):
        for f in dataclasses.fields(cls):
            key = f"{prefix}.{f.name}" if prefix else f.name
            typ = typing.get_type_hints(cls)[f.name]
            sub = _OPTIONAL_SECTIONS.get(f.name) if not prefix else None
            if dataclasses.is_dataclass(typ):
                walk(typ, key)
            elif sub is not None:
                walk(sub, key)
            else:
                default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
                rows.append((key, default, f.metadata.get("doc", "")))
    walk(JobConfig, "")
    return rows
