"""The environment that `make install` builds is sane: complex PETSc/SLEPc,
MPI, numpy < 2, and the `spinvalve` console script."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_numpy_below_2():
    # petsc4py/slepc4py are compiled against numpy 1.x
    assert np.lib.NumpyVersion(np.__version__) < "2.0.0"


def test_petsc_has_complex_scalars():
    from petsc4py import PETSc

    assert np.dtype(PETSc.ScalarType) == np.complex128
    v = PETSc.Vec().createSeq(3, comm=PETSc.COMM_SELF)
    v.setArray(np.array([1j, 2, 3 - 1j]))
    assert v.sum() == pytest.approx(5 + 0j)
    v.destroy()


def test_slepc_solves_complex_hermitian_problem():
    from petsc4py import PETSc
    from slepc4py import SLEPc

    h = np.array([[1.0, 1j], [-1j, 1.0]])  # eigenvalues 0 and 2
    A = PETSc.Mat().createDense(2, array=h.copy(), comm=PETSc.COMM_SELF)
    A.assemble()
    eps = SLEPc.EPS().create(comm=PETSc.COMM_SELF)
    eps.setOperators(A)
    eps.setProblemType(SLEPc.EPS.ProblemType.HEP)
    eps.setWhichEigenpairs(SLEPc.EPS.Which.SMALLEST_REAL)
    eps.solve()
    assert eps.getConverged() >= 1
    assert eps.getEigenvalue(0) == pytest.approx(0.0, abs=1e-10)
    eps.destroy()
    A.destroy()


def test_mpi4py_imports():
    from mpi4py import MPI

    assert MPI.COMM_WORLD.Get_size() >= 1
    assert MPI.Get_version()[0] >= 3


@pytest.mark.mpi
def test_mpiexec_two_ranks():
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("mpiexec not on PATH")
    env = dict(os.environ)
    if os.geteuid() == 0:  # Open MPI refuses root without these
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    env.setdefault("OMPI_MCA_rmaps_base_oversubscribe", "1")
    code = (
        "from mpi4py import MPI; from petsc4py import PETSc;"
        "v = PETSc.Vec().createMPI(4, comm=PETSc.COMM_WORLD); v.set(1j);"
        "s = v.sum(); assert s == 4j, s;"
        "n = MPI.COMM_WORLD.allreduce(1);"
        "MPI.COMM_WORLD.Get_rank() == 0 and print('ranks', n)"
    )
    out = subprocess.run(
        [mpiexec, "-n", "2", sys.executable, "-c", code],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ranks", "2"], out.stdout


def test_spinvalve_console_script():
    if not (ROOT / "src" / "spinvalve" / "cli.py").exists():
        pytest.skip("src/spinvalve/cli.py not written yet")
    # .venv/bin/spinvalve for `make install`; <env>/bin/spinvalve under conda
    script = Path(sys.executable).parent / "spinvalve"
    assert script.exists(), script
    if Path(sys.prefix).resolve() == (ROOT / ".venv").resolve():
        assert (ROOT / ".venv" / "bin" / "spinvalve").exists()


def test_bench_extra_covers_what_the_benchmarks_import():
    """`make bench` installs the `bench` extra: every third-party module a benchmark
    imports is a dependency, in the bench extra, or one of Debian's MPI/PETSc bindings."""
    import ast
    import tomllib
    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[<>=!\[ ;]", d)[0].lower().replace("-", "_")
                for d in project["dependencies"] + project["optional-dependencies"]["bench"]
                + project["optional-dependencies"]["tdmrg"]}
    # distributions whose module has another name
    aliases = {"physics_tenpy": "tenpy", "pyyaml": "yaml"}
    declared |= {aliases[d] for d in declared if d in aliases}
    local = {p.stem for p in (root / "benchmarks").glob("*.py")} | {
        p.stem for p in (root / "tests").glob("*.py")} | {"spinvalve"}
    debian = {"mpi4py", "petsc4py", "slepc4py"}
    modules = set()
    for path in (root / "benchmarks").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    third_party = {m for m in modules if m not in sys.stdlib_module_names} - local - debian
    assert "qutip" in third_party
    missing = sorted(m for m in third_party if m.lower() not in declared)
    assert not missing, f"add to pyproject.toml's bench extra: {missing}"
    makefile = (root / "Makefile").read_text()
    bench = makefile[makefile.index("\nbench:"):].split("\n\n")[0]
    assert "scripts/install.sh" in bench and "bench" in bench.split("install.sh", 1)[1].splitlines()[0]
