#!/usr/bin/env bash
# Idempotent set-up of spinvalve on Debian 12 (bookworm). Called by `make install`
# (and so by `make run` / `make test`). Run as root, or as a user with sudo.
#
#   1. Debian packages: complex-scalar PETSc/SLEPc bindings, Open MPI, venv.
#      Nothing is installed (and apt-get update is not run) when all are present.
#   2. .venv/ from Debian's /usr/bin/python3 with --system-site-packages, so the
#      Debian petsc4py/slepc4py/mpi4py are visible inside it.
#   3. A .pth file that puts the *complex* PETSc/SLEPc builds first on sys.path.
#   4. pip install -e ".[workflow,tdmrg,test]" -- skipped when the stamp in
#      .venv/ matches pyproject.toml + constraints, the extras asked for were
#      installed already and the import check passes.
#
# Usage: scripts/install.sh [EXTRAS]   EXTRAS: comma-separated pyproject extras
#        (default workflow,tdmrg,test; `make bench` adds bench). Extras installed
#        once stay: a later call with fewer extras installs nothing.
# See docs/install.md for the other routes (conda-forge, PETSc from source).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
VENV=$ROOT/.venv
PY=$VENV/bin/python
log() { printf '[install] %s\n' "$*"; }
EXTRAS=${1:-workflow,tdmrg,test}

# ---------------------------------------------------------------- 1. Debian
APT_PKGS=(python3-petsc4py-complex python3-slepc4py-complex python3-mpi4py
          openmpi-bin libopenmpi-dev python3-venv python3-dev git build-essential)
missing=()
for p in "${APT_PKGS[@]}"; do
    [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]})); then
    SUDO=; [[ $(id -u) == 0 ]] || SUDO=sudo
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q "${missing[@]}"
fi

# ---------------------------------------------------------------- 2. venv
# Recreate the venv if it is missing or was made by another interpreter
# (e.g. a pyenv python that happened to be first on PATH).
if ! [[ -x $PY ]] || ! grep -qx 'home = /usr/bin' "$VENV/pyvenv.cfg" 2>/dev/null \
   || ! grep -qx 'include-system-site-packages = true' "$VENV/pyvenv.cfg"; then
    log "creating $VENV from /usr/bin/python3"
    rm -rf "$VENV"
    /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi

# ---------------------------------------------------------------- 3. .pth
SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
PTH=$SITE/00-spinvalve-complex-petsc.pth
want_pth=$(ls -d /usr/lib/petscdir/petsc*/*-complex/lib/python3/dist-packages \
                 /usr/lib/slepcdir/slepc*/*-complex/lib/python3/dist-packages | sort -V)
if [[ $(cat "$PTH" 2>/dev/null) != "$want_pth" ]]; then
    log "writing $PTH"
    printf '%s\n' "$want_pth" > "$PTH"
fi

# ---------------------------------------------------------------- 4. pip
# petsc4py/slepc4py are built against Debian's numpy 1.x: never let pip bring numpy 2.
CONSTRAINTS='numpy<2
scipy<1.16'
STAMP=$VENV/.spinvalve-install-stamp
EXTRAS_FILE=$VENV/.spinvalve-extras
want_stamp=$( { cat pyproject.toml; printf '%s\n' "$CONSTRAINTS" "$want_pth"; } | sha256sum | cut -d' ' -f1)
# extras installed under this stamp before, and the union with those asked for now
have_extras=
# (a stamp from before the extras file: the default extras)
[[ $(cat "$STAMP" 2>/dev/null) == "$want_stamp" ]] && have_extras=$(cat "$EXTRAS_FILE" 2>/dev/null || echo workflow,tdmrg,test)
all_extras=$(printf '%s\n' ${have_extras//,/ } ${EXTRAS//,/ } | sort -u | paste -sd, -)
missing_extras=$(comm -13 <(printf '%s\n' ${have_extras//,/ } | sort -u) \
                          <(printf '%s\n' ${EXTRAS//,/ } | sort -u) | paste -sd, -)

CHECK='
import sys, pathlib
import numpy, scipy, xarray, netCDF4, yaml, jsonschema, matplotlib, snakemake, tenpy, pytest, hypothesis
from mpi4py import MPI
from petsc4py import PETSc
from slepc4py import SLEPc
import spinvalve
assert numpy.lib.NumpyVersion(numpy.__version__) < "2.0.0", numpy.__version__
assert numpy.dtype(PETSc.ScalarType).kind == "c", "PETSc build is not complex"
assert pathlib.Path(spinvalve.__file__).resolve().is_relative_to(pathlib.Path(sys.argv[1]) / "src"), spinvalve.__file__
if "bench" in sys.argv[2].split(","):
    import qutip
'
import_check() { "$PY" -c "$CHECK" "$ROOT" "$all_extras"; }

if [[ -z $missing_extras ]] && [[ $(cat "$STAMP" 2>/dev/null) == "$want_stamp" ]] \
   && import_check >/dev/null 2>&1; then
    log "environment up to date ($VENV, extras $all_extras)"
    exit 0
fi
log "pip install -e .[$all_extras]"
rm -f "$STAMP"
printf '%s\n' "$CONSTRAINTS" > "$VENV/constraints.txt"
"$PY" -m pip install -q --disable-pip-version-check \
    -c "$VENV/constraints.txt" -e ".[$all_extras]"
import_check || { log "import check failed after pip install (see above)"; exit 1; }
echo "$all_extras" > "$EXTRAS_FILE"
echo "$want_stamp" > "$STAMP"
log "done ($VENV)"
