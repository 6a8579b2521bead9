"""Collect raw SmolLM2-135M replies on click's ``utils.py`` for the validator's fixtures.

Runs one real enrichment (llama-cpp-python's server, batching off, retries as configured)
and writes every reply the cascade judged, with the span it was for, to a JSON Lines file:
span id, name, kind, line range, code, facts, enclosing context, raw reply text, the
validator's verdict at the time. Run it under the shared model lock, bounded:

    flock /work/wt/model.lock timeout 1500 .venv/bin/python bench/collect_real_replies.py OUT.jsonl

``tests/fixtures/real_replies.json`` was built from such a file (see its ``about``).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.llama_engine import running_llama_server

from bench_enrichment import check_rows, index
from bench_real_model import MODEL, N_CTX, settings_for, source_file
from spanlens_lsp.app import enrich_workspace
from spanlens_lsp.enrichment.call import cascade
from spanlens_lsp.store.db import open_store


def main(out: Path) -> None:
    assert MODEL.is_file(), "run `make engine-deps`"
    source = source_file()
    records: list[dict[str, Any]] = []
    original = cascade.Cascade._judge

    def judge(self: Any, reply: Any, prompt: Any) -> Any:
        call = original(self, reply, prompt)
        text = getattr(reply, "text", None)
        with out.open("a", encoding="utf-8") as handle:
            for ctx in prompt.contexts:
                result = call.results.get(ctx.span_id)
                record = {
                    "span_id": ctx.span_id,
                    "first_line": ctx.first_line,
                    "last_line": ctx.last_line,
                    "batch": prompt.is_batch,
                    "max_tokens": prompt.max_tokens,
                    "reply": text,
                    "failure": call.failure.kind.value if call.failure else None,
                    "verdict": (result.describe() if result else None),
                    "ok": bool(result and result.ok),
                }
                records.append(record)
                handle.write(json.dumps(record) + "\n")
        return call

    cascade.Cascade._judge = judge  # type: ignore[method-assign]
    # `timeout` ends a bounded run with SIGTERM: exit through the finally that stops the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="spanlens-collect-") as tmp:
        root = Path(tmp)
        shutil.copy(source, root / source.name)
        spans = index(root)
        started = time.monotonic()
        with running_llama_server(MODEL, N_CTX) as url:
            run = asyncio.run(enrich_workspace(root, settings_for(url, "openai", "smollm2")))
        valid, invalid = check_rows(root)
        store = open_store(root)
        try:
            rows = store.conn.execute(
                "SELECT id, name, kind, start_line, end_line, facts FROM spans"
            ).fetchall()
            stored = store.conn.execute("SELECT content_hash, data FROM enrichments").fetchall()
            hashes = store.conn.execute("SELECT id, content_hash FROM spans").fetchall()
        finally:
            store.close()
    meta = {
        "file": f"click/{source.name}",
        "file_text": source.read_text(encoding="utf-8"),
        "spans_total": spans,
        "stored": run.succeeded,
        "seconds": round(time.monotonic() - started, 1),
        "rows_valid": valid,
        "rows_invalid": invalid,
        "spans": [
            {
                "id": r[0],
                "name": r[1],
                "kind": r[2],
                "start_line": r[3],
                "end_line": r[4],
                "facts": json.loads(r[5]) if r[5] else {},
            }
            for r in rows
        ],
        "span_hashes": {str(i): h for i, h in hashes},
        "enrichments": {h: json.loads(d) for h, d in stored},
    }
    out.with_suffix(".meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    print(f"{len(records)} replies, {run.succeeded}/{spans} spans stored in {meta['seconds']}s")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
