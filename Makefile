# spanlens: the README's two commands are `make demo` and `make test`; CI runs `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp

.PHONY: setup test unit lint format bench demo clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null || { echo "python3 is required"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

lint: setup
	$(BIN)/ruff check server tests bench
	$(BIN)/ruff format --check server tests bench
	$(BIN)/mypy

format: setup
	$(BIN)/ruff check --fix server tests bench
	$(BIN)/ruff format server tests bench

# pytest exits 5 when it collects no test; that is not a failure of the suite itself.
test: setup
	$(MAKE) lint
	$(BIN)/python -m pytest -q -p no:cacheprovider; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

unit: setup
	$(BIN)/python -m pytest -q tests/unit

bench: setup
	$(BIN)/python bench/run.py

demo: setup
	$(BIN)/python bench/../scripts/demo.py

clean:
	rm -rf $(VENV) .spanlens bench/results
