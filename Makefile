# The two commands: `make run` (embedded stack at http://127.0.0.1:8000/graphql) and `make test`.
# `make run-scaled`: the production topology on loopback (needs nginx), at http://127.0.0.1:8080.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)

.PHONY: run run-scaled test bench lint

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

run: $(STAMP)
	$(BIN)/python -m devstack

run-scaled: $(STAMP)
	$(BIN)/python -m devstack.scaled

# Lint, the import layers (pyproject's [tool.importlinter]) and types first: each fails in seconds.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python -m mypy
