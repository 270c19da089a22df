# The two commands: `make demo` runs the whole network with simulated homes, `make test` tests it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test bench lint schema compose-config screenshots clean

$(BIN)/homecare: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	@touch $@

demo: $(BIN)/homecare
	$(BIN)/homecare demo

test: $(BIN)/homecare
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(BIN)/homecare
	$(BIN)/ruff check homecare launch gateway services devices console tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

schema: $(BIN)/homecare
	$(BIN)/homecare contract schema --out contract/schema

compose-config: $(BIN)/homecare
	$(BIN)/docker-compose --env-file deploy/.env.example -f deploy/docker-compose.yml config --quiet

clean:
	rm -rf $(VENV) .pytest_cache

screenshots: $(BIN)/homecare
	HOMECARE_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q tests/browser
