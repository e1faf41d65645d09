# Two commands on a fresh clone: `make demo` and `make test`. Each creates .venv
# from pyproject.toml on first use (and again whenever pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast format-check lint typecheck imports unit unit-fast fuzz fixtures fixtures-check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/residency-audit demo --out build/demo

# Every gate: formatting, lint, types (audit/, tests/, benchmarks/), the import-layer
# contract (pyproject.toml), then every test with the coverage floor.
test: format-check lint typecheck imports unit

# The inner loop: lint, types and the tests not marked slow, no coverage.
test-fast: lint typecheck unit-fast

format-check: $(STAMP)
	$(BIN)/ruff format --check .

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict

imports: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest -q --cov --cov-report=term

unit-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow"

# Longer property-based fuzzing of every parser (make test runs each target briefly).
FUZZ_EXAMPLES ?= 2000
fuzz: $(STAMP)
	RESIDENCY_AUDIT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q -p no:cacheprovider tests/test_fuzz.py

fixtures: $(STAMP)
	$(BIN)/python fixtures/generate.py

fixtures-check: $(STAMP)
	$(BIN)/python fixtures/generate.py --check

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(if $(EVENTS),--events $(EVENTS),) $(if $(REPEAT),--repeat $(REPEAT),)

clean:
	rm -rf build .mypy_cache .pytest_cache .ruff_cache
