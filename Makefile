# Workflows: the two commands a person types are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
AZURITE := tools/azurite/node_modules/.bin/azurite-blob
PYTEST_ARGS ?=

.PHONY: venv run up down test test-faults lint fmt bench migrate clean lock

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

$(AZURITE): tools/azurite/package.json
	npm ci --prefix tools/azurite --no-audit --no-fund --loglevel=error
	touch $(AZURITE)

run: venv
	$(BIN)/wf up --foreground

up: venv
	$(BIN)/wf up

down:
	@if [ -x $(BIN)/wf ]; then $(BIN)/wf down; else echo "nothing to stop"; fi

test: venv $(AZURITE)
	$(BIN)/pytest -m "not faults" $(PYTEST_ARGS)

# Two sessions: tests/faults restarts its own PostgreSQL and Kafka, and a faults-marked test elsewhere
# that ran first in the same session would have bound the session-wide fixtures to the shared ones.
test-faults: venv
	$(BIN)/pytest -m faults tests/faults $(PYTEST_ARGS)
	$(BIN)/pytest -m faults --ignore=tests/faults $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared services wf bench

fmt: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: venv
	$(BIN)/pip install -q -e '.[dev,bench]'
	@command -v wrk >/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk)
	$(BIN)/python -m bench

# The image's pinned, hash-checked runtime dependencies (Dockerfile), from pyproject's dependencies.
lock: venv
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url \
	  --no-emit-find-links --output-file=requirements.lock pyproject.toml

migrate: venv
	$(BIN)/wf migrate

clean: down
	rm -rf .run
