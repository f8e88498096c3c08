# Piazza: `make run` starts everything, `make test` runs the suite. `make help` lists the rest.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# `make run` defaults; the bootstrap token is a development convenience refused in any other PIAZZA_ENV.
run: export PIAZZA_BOOTSTRAP_TOKEN ?= dev-token
run: export PIAZZA_PORT ?= 8000
run: export PIAZZA_DATA_DIR ?= .data
run: export PIAZZA_LOG_FORMAT ?= console
demo: export PIAZZA_BOOTSTRAP_TOKEN ?= dev-token
demo: export PIAZZA_PORT ?= 8000
demo: export PIAZZA_DATA_DIR ?= .data-demo
demo: export PIAZZA_LOG_FORMAT ?= console
demo-reddit: export PIAZZA_BOOTSTRAP_TOKEN ?= dev-token
demo-reddit: export PIAZZA_PORT ?= 8000
demo-reddit: export PIAZZA_DATA_DIR ?= .data-demo-reddit
demo-reddit: export PIAZZA_LOG_FORMAT ?= console

.PHONY: help install run demo demo-reddit test test-fast lint format bench clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Piazza needs Python 3.11 or newer (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install Piazza with its development tools

run: $(STAMP) ## Start the whole system on http://127.0.0.1:$PIAZZA_PORT (Ctrl-C stops it)
	$(BIN)/piazza run

demo: $(STAMP) ## Like run, with a fake Telegram whose chats keep talking (data in .data-demo)
	$(BIN)/piazza demo telegram

demo-reddit: $(STAMP) ## Like run, with a fake Reddit whose subreddit and inbox keep talking (data in .data-demo-reddit)
	$(BIN)/piazza demo reddit

# Two workers: most tests wait on NATS, the database or a child process, so two halve the wall time
# on a 2-core machine; each worker has its own nats-server and databases (the fixtures are per session).
test: $(STAMP) ## Run the whole suite (SQLite always; PostgreSQL too when TEST_DATABASE_URL is set)
	$(BIN)/pytest -n 2

test-fast: $(STAMP) ## Run the unit tests only
	$(BIN)/pytest -m unit

lint: $(STAMP) ## Lint, check formatting and type-check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP) ## Format the code
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP) ## Measure raw limits, the pipeline, the conversation list, analytics and sentiment; writes docs/benchmarks.md
	$(BIN)/python -m bench

clean: ## Remove the virtualenv, caches and the local data folder
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
	rm -rf $${PIAZZA_DATA_DIR:-.data} .data-demo .data-demo-reddit
