# ibkr-trader: two commands set everything up on a fresh clone.
#   make run   one full dry-run cycle against the built-in simulated IB Gateway
#   make test  lint, formatting, strict types and the test suite with coverage

SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
RUN := $(UV) run --frozen --no-sync
SRC := src/ibkr_trader

.PHONY: run test test-dates lint types pytest bench chaos sim clean env

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	@touch $@

env: $(VENV)/.synced

# the journal in ./var; the kill switch is the one `ibkr-trader halt` uses (the configuration's,
# else $$IBKR_TRADER_KILL_SWITCH, else ~/.ibkr-trader/HALT), so a halt stops `make run` too
run: env
	IBKR_TRADER_HOME=$${IBKR_TRADER_HOME:-$(CURDIR)/var} IBKR_TRADER__PATHS__GAMEPLAN=$${IBKR_TRADER__PATHS__GAMEPLAN:-$(CURDIR)/examples/gameplan.toml} $(RUN) ibkr-trader run --mode dry_run --once

lint: env
	$(RUN) ruff check src tests bench
	$(RUN) black --check src tests bench

types: env
	$(RUN) mypy --strict src

# TEST_JOBS pytest-xdist workers (default 4: twice the cores of a 2-core machine, since the
# tests wait on sockets about as much as they compute; TEST_JOBS=1 runs in one process)
pytest: env
	$(RUN) pytest --cov=ibkr_trader --cov-report=term --cov-fail-under=85 -q -n $${TEST_JOBS:-4}

test: lint types pytest

# the date sweep: every date- and time-sensitive test (pytest -m dates) once with the rig's clock
# at each instant of ibkr_trader.testing.SWEEP (a Monday open, a Tuesday, a Friday close,
# Thanksgiving eve, an early close, two DST Sunday nights, New Year's Eve), in one pytest run over
# DATES_JOBS xdist workers
test-dates: env
	$(RUN) python -m ibkr_trader.testing.sweep --jobs $${DATES_JOBS:-4}

# every benchmark; the soak runs SOAK_CYCLES cycles (10,000 for the long soak)
# then the issue-18 table (goal / target / measured / verdict) from their JSON in BENCH_OUT
bench: env
	@export BENCH_OUT=$${BENCH_OUT:-$(CURDIR)/.bench}; for b in bench/bench_*.py; do \
	  echo "== $$b"; \
	  if [ "$$b" = bench/bench_soak.py ]; then $(RUN) python $$b --cycles $${SOAK_CYCLES:-1000} || exit 1; \
	  else $(RUN) python $$b || exit 1; fi; \
	done; echo "== issue 18: the order path"; $(RUN) python bench/report.py

# the long runs: CHAOS_SCENARIOS seeded chaos scenarios, then FUZZ_EXAMPLES bad-input examples
chaos: env
	$(RUN) python bench/chaos_run.py --scenarios $${CHAOS_SCENARIOS:-1000} --seed $${CHAOS_SEED:-0} --jobs $${CHAOS_JOBS:-4}
	IBKR_TRADER_FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-10000} $(RUN) pytest tests/fuzz -q -p no:cacheprovider --timeout 3600

sim: env
	$(RUN) ibkr-trader sim

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache .coverage
