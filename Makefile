# Every target creates .venv with the project installed on first use.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint fuzz bench demo clean

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) on PATH"; exit 1; }
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/csms serve --config config.toml

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check csms roaming simulator tests
	$(BIN)/lint-imports
	$(BIN)/mypy csms roaming simulator

test: lint
	$(BIN)/pytest -q

# The property-based fuzz tests (OCPP: tests/fuzz; OCPI: tests/e2e/roaming/test_ocpi_fuzz.py)
# with many more examples than `make test` runs.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz OCPI_FUZZ_EXAMPLES=2000 $(BIN)/pytest -q tests/fuzz \
		tests/e2e/roaming/test_ocpi_fuzz.py -o timeout=1800

# make bench BASELINE=REV: the Authorize benchmark also measures REV's CSMS side by side.
bench: $(STAMP)
	$(BIN)/python -m tests.bench $(if $(BASELINE),--baseline $(BASELINE))

demo: $(STAMP)
	$(BIN)/python -m simulator.demo

clean:
	rm -rf $(VENV) var/*.sqlite3*
