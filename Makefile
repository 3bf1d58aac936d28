# spinvalve -- the two commands:  make run   |   make test
# Both install whatever is missing first (scripts/install.sh, idempotent).
SHELL       := /bin/bash
VENV        := $(CURDIR)/.venv
PY          := $(VENV)/bin/python
RUN_TIMEOUT ?= 3600
PYTEST_ARGS ?=

# Tools launched by the workflow and the tests (python, spinvalve, mpiexec
# children) must come from the venv, not from whatever python is first on PATH.
export PATH := $(VENV)/bin:$(PATH)
# Open MPI refuses to run as root without these; oversubscribe lets >2 ranks
# run on a 2-core machine.
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
export OMPI_MCA_rmaps_base_oversubscribe := 1

.PHONY: run test install bench clean

run: install  ## main job: the quick pipeline
	timeout $(RUN_TIMEOUT) $(VENV)/bin/snakemake --cores 2 \
	    --configfile config/config.yaml --profile workflow/profiles/local

test: install  ## whole test suite
	$(PY) -m pytest -q $(PYTEST_ARGS)

install:  ## Debian packages + .venv (a no-op when everything is there)
	@bash scripts/install.sh

bench:  ## every benchmarks/*.py (installs the `bench` extra: QuTiP, once)
	@bash scripts/install.sh workflow,tdmrg,test,bench
	@set -e; for f in benchmarks/*.py; do \
	    [ -e "$$f" ] || { echo "no benchmarks"; break; }; \
	    echo "== $$f"; $(PY) "$$f"; done

clean:  ## results and snakemake state only (keeps .venv)
	rm -rf results .snakemake
