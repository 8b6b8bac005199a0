# The README's two commands: `make demo` (set up, then the main job) and `make test` (set up, then tests).
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo-out
# One pytest worker per CPU; a test file's tests stay on one worker, so they share its fixtures.
PYTEST_ARGS ?= -n auto --dist loadfile

.PHONY: setup demo test test-fast lint format clean

setup:
	@VENV=$(VENV) bash scripts/setup.sh

demo: setup
	$(BIN)/edge-mnv2 demo -o $(DEMO_DIR)

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# ruff's lint rules and format are in pyproject.toml ([tool.ruff]); `make format` applies both
lint: setup
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .

format: setup
	$(BIN)/python -m ruff check --fix .
	$(BIN)/python -m ruff format .

test-fast: setup
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf build $(DEMO_DIR) .pytest_cache
