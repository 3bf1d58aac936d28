"""envs/spinvalve.yaml: complex-scalar PETSc/SLEPc pins of the current conda-forge form, and
every third-party module the package imports listed (the file cannot be resolved here: no
conda-forge channel is reachable from the development machines)."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
ENV = REPO / "envs" / "spinvalve.yaml"

#: import name -> conda-forge package
CONDA_NAME = {
    "numpy": "numpy", "scipy": "scipy", "xarray": "xarray", "netCDF4": "netcdf4",
    "yaml": "pyyaml", "jsonschema": "jsonschema", "matplotlib": "matplotlib-base",
    "numba": "numba", "threadpoolctl": "threadpoolctl", "mpi4py": "mpi4py",
    "petsc4py": "petsc4py", "slepc4py": "slepc4py", "tenpy": "physics-tenpy",
}


def env_specs() -> dict[str, str]:
    """{package: full spec} of the conda dependencies (pip section left out)."""
    deps = yaml.safe_load(ENV.read_text())["dependencies"]
    out = {}
    for d in deps:
        if isinstance(d, str):
            out[re.split(r"[=<>!\s\[]", d, maxsplit=1)[0]] = d
    return out


def package_imports() -> set[str]:
    """Top-level names of every absolute import in src/spinvalve (not the package itself)."""
    names = set()
    for path in (REPO / "src" / "spinvalve").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "spinvalve"}


def test_petsc_slepc_pins_select_current_complex_builds():
    specs = env_specs()
    for lib, binding in (("petsc", "petsc4py"), ("slepc", "slepc4py")):
        # library: version and build glob "complex_*" (conda-forge: complex_h<hash>_<n>)
        m = re.fullmatch(r"(\w+)=(\d+)\.(\d+)\.\*=complex_\*", specs[lib])
        assert m, f"{specs[lib]!r}: want {lib}=X.Y.*=complex_*"
        # binding: version only (its build string has no scalar prefix since 3.21.x); the
        # same minor version as the library
        b = re.fullmatch(r"(\w+)=(\d+)\.(\d+)\.\*", specs[binding])
        assert b, f"{specs[binding]!r}: want {binding}=X.Y.* (no build glob)"
        assert b.group(2, 3) == m.group(2, 3), (specs[lib], specs[binding])
        assert (int(m.group(2)), int(m.group(3))) >= (3, 22), specs[lib]
    assert specs["petsc"].split("=")[1] == specs["slepc"].split("=")[1]


def test_env_lists_every_third_party_import():
    imports = package_imports()
    unknown = sorted(imports - set(CONDA_NAME))
    assert not unknown, f"map these imports to conda packages in tests/test_env.py: {unknown}"
    missing = sorted(CONDA_NAME[n] for n in imports if CONDA_NAME[n] not in env_specs())
    assert not missing, f"envs/spinvalve.yaml lacks {missing}"
    # the netCDF backend xarray writes with, and the MPI the bindings run on
    assert {"netcdf4", "python"} <= set(env_specs())
    assert {"openmpi", "mpich"} & set(env_specs())


def test_env_file_says_it_is_not_resolvable_here():
    text = ENV.read_text()
    assert re.search(r"not\s+resolvable", text, re.I)
    assert "conda-forge" in yaml.safe_load(text)["channels"]
