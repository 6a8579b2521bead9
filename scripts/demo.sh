#!/usr/bin/env bash
# `make demo`: index this repository, show a few spans as their hovers read, and enrich them
# when a model answers: a configured backend, a running Ollama, or the built-in model (otherwise
# say how to get one). Never invents a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
SPANLENS=${SPANLENS:-.venv/bin/spanlens}
PYTHON=${PYTHON:-$(dirname "$SPANLENS")/python}  # the interpreter beside that spanlens

echo "== spanlens index . =="
"$SPANLENS" index .
echo
echo "== spanlens status . =="
"$SPANLENS" status .

show() {  # show FILE PATTERN: the span whose definition line matches PATTERN
  local line
  line=$(grep -nE "$2" "$1" 2>/dev/null | head -n 1 | cut -d: -f1 || true)
  if [ -z "$line" ]; then  # code moved: say so, and go on with the rest of the demo
    echo "demo: no line matching '$2' in $1 (skipped)" >&2
    return 0
  fi
  echo
  echo "== spanlens show $1:$line =="
  "$SPANLENS" show "$1:$line"
}
SHOWN=(  # spans in small files: the demo enriches every span of each file (6 model calls)
  "server/spanlens_lsp/indexing/hashing.py|^def content_hash"
  "server/spanlens_lsp/presentation/text.py|^def clean_text"
  "server/spanlens_lsp/telemetry/cost.py|^def call_cost"
)
show_all() {
  for item in "${SHOWN[@]}"; do show "${item%%|*}" "${item#*|}"; done
}
show_all

echo
backend_ready() {  # does any configured backend answer and serve its model?
  "$SPANLENS" doctor . --json 2>/dev/null | "$PYTHON" -c '
import json, sys
report = json.load(sys.stdin)
ok = any(b["reachable"] and b["model_present"] is not False for b in report.get("backends", []))
sys.exit(0 if ok else 1)'
}
if backend_ready; then
  only=()
  for item in "${SHOWN[@]}"; do only+=(--only "${item%%|*}"); done
  echo "== a model backend answers: spanlens enrich . ${only[*]} =="
  "$SPANLENS" enrich . "${only[@]}"
  show_all
  echo
  echo "== spanlens stats . =="
  "$SPANLENS" stats .
else
  cat <<'MSG'
== no model backend answered ==
The spans above show parser facts only: spanlens never makes up a summary.
To enrich them with the built-in local model (Qwen2.5-Coder-1.5B, ~1.1 GB, verified):
    .venv/bin/spanlens model install
or start a model server you already use (Ollama answers on its default port by itself),
or point spanlens at any OpenAI-compatible server (llama.cpp, vLLM, LM Studio) in spanlens.toml:
    [[backends]]
    name = "local"
    tier = "small"
    provider = "openai"
    url = "http://127.0.0.1:8080"
    model = "qwen2.5-coder-7b-instruct"
then run `make demo` again, or `.venv/bin/spanlens doctor` to see what is wrong.
MSG
fi
