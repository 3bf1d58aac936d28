"""The environment that `make install` builds is sane: complex PETSc/SLEPc,
MPI, numpy < 2, and the `spinvalve` console script."""
import os
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
