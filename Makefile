# streamer — the two set-up commands are `make dev` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KAFKA := tools/kafka/kafka

.PHONY: install dev test test-cluster check lint typecheck unit kafka-start kafka-stop bench bench-portfolio schemas constraints clean

# constraints.txt: the versions the tests passed on (also used by the Dockerfile).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,embedded]'
	touch $(STAMP)

install: $(STAMP)

kafka-start:
	$(KAFKA) start

kafka-stop:
	$(KAFKA) stop

dev: install kafka-start
	$(BIN)/streamer dev

test: install kafka-start
	bash tools/compose-check/install
	bash tools/browser/install
	$(BIN)/pytest -q -p no:cacheprovider

# The three-broker tests start (and stop) their own cluster on free ports, beside the single broker.
test-cluster: install
	$(BIN)/pytest -q -p no:cacheprovider -m cluster

check: install lint typecheck unit

lint:
	$(BIN)/ruff check streamer tests bench
	$(BIN)/ruff format --check streamer tests bench

typecheck:
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -q tests/unit

schemas: install
	$(BIN)/streamer schemas

# After changing a dependency and seeing the tests pass: pin what the venv holds now.
constraints: install
	{ grep '^#' constraints.txt; $(BIN)/pip freeze --exclude-editable | grep -iv '^streamer=='; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

bench: install kafka-start
	$(BIN)/python bench/producer.py
	$(BIN)/python bench/processor.py
	$(BIN)/python bench/processor.py --shape day
	$(BIN)/python bench/points_table.py
	$(BIN)/python bench/e2e.py

# Not in `make bench`: 35+ minutes (1,000 sites x 200 points, then 1 site x 50,000 points, each caught up
# from 1 h back, then 10 minutes of steady state; with --lookback 600 the first took 18 min on a shared
# machine), on a private broker (port 19192) so the shared one is not loaded.
PORTFOLIO_KAFKA := 19192
bench-portfolio: install
	KAFKA_PORT=$(PORTFOLIO_KAFKA) $(KAFKA) start
	$(BIN)/python bench/portfolio.py --bootstrap 127.0.0.1:$(PORTFOLIO_KAFKA) && \
	  $(BIN)/python bench/portfolio.py --bootstrap 127.0.0.1:$(PORTFOLIO_KAFKA) --sites 1 --points 50000; \
	  status=$$?; KAFKA_PORT=$(PORTFOLIO_KAFKA) $(KAFKA) stop; exit $$status

clean:
	rm -rf .streamer .kafka $(VENV)
