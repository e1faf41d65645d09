# Two commands on a fresh clone: `make demo` and `make test`. Each creates .venv
# from pyproject.toml on first use (and again whenever pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit fixtures fixtures-check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/residency-audit demo --out build/demo

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict audit

unit: $(STAMP)
	$(BIN)/pytest -q

fixtures: $(STAMP)
	$(BIN)/python fixtures/generate.py

fixtures-check: $(STAMP)
	$(BIN)/python fixtures/generate.py --check

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(if $(EVENTS),--events $(EVENTS),) $(if $(REPEAT),--repeat $(REPEAT),)

clean:
	rm -rf build .mypy_cache .pytest_cache .ruff_cache
