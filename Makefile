# One command per chore, the same for people and CI.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test check bench eval clean system-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## start broker, worker and API on embedded defaults
	$(BIN)/qualmon run

# The tests run the real Prometheus, promtool and Alertmanager (Debian packages), and psql to
# run the dashboards' SQL on PostgreSQL when one is reachable.
system-deps:
	@if ! command -v promtool >/dev/null || ! command -v prometheus-alertmanager >/dev/null \
	    || ! command -v psql >/dev/null; then \
	  echo "installing Debian packages prometheus, prometheus-alertmanager, postgresql-client"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends prometheus prometheus-alertmanager postgresql-client >/dev/null; \
	fi

test: $(STAMP) system-deps  ## install what the tests need and run them all
	$(BIN)/pytest

check: $(STAMP)  ## format check, lint, types
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)  ## throughput of the worker beside a raw consume loop
	$(BIN)/python -m bench.throughput

# The NAB subset is looked for beside the repository; `make eval NAB_DIR=...` points elsewhere.
NAB_DIR ?= ../shared/nab

eval: $(STAMP)  ## detection quality on the NAB subset: qualmon detect beside two baselines
	$(BIN)/python -m bench.nab --nab-dir $(NAB_DIR)

clean:
	rm -rf $(VENV) .qualmon .pytest_cache .mypy_cache .ruff_cache
