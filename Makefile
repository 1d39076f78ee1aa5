# streamer — the two set-up commands are `make dev` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KAFKA := tools/kafka/kafka

.PHONY: install dev test check lint typecheck unit kafka-start kafka-stop bench schemas clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
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

bench: install kafka-start
	$(BIN)/python bench/producer.py
	$(BIN)/python bench/processor.py
	$(BIN)/python bench/processor.py --shape day
	$(BIN)/python bench/e2e.py

clean:
	rm -rf .streamer .kafka $(VENV)
