# make demo: run the example project with a worker and watch a task's log.
# make test: the whole test suite against throwaway PostgreSQL and Redis servers.
# make test-matrix: the suite on the other Pythons, Djangos and MariaDB (noxfile.py); with
# `make test`, the README's "Supported versions".
# make bench: the benchmarks (docs/performance.md) against throwaway servers (PostgreSQL, and
# MariaDB and SQLite for `ingest`); QUICK=1 for a smoke
# run, BENCH="throughput latency" for some of them.

VENV := .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: demo stop test test-matrix lint bench

$(INSTALLED): setup.cfg pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(INSTALLED)
	scripts/demo.sh start

stop:
	scripts/demo.sh stop

test: $(INSTALLED)
	python3 scripts/with_services.py -- $(PYTHON) -m pytest $(PYTEST_ARGS)

test-matrix: $(INSTALLED)
	$(VENV)/bin/nox $(NOX_ARGS)

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .

bench: $(INSTALLED)
	python3 scripts/with_services.py --mariadb --install-only
	$(PYTHON) -m pip install --quiet -e '.[dev,mysql]'
	python3 scripts/with_services.py --durable --mariadb -- $(PYTHON) -m benchmarks $(if $(QUICK),--quick) $(BENCH)
