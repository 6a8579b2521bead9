"""Docgen of a real repository (~120 stdlib modules) against the stand-in model server.

Measures, in one run: seconds and model calls for the first docgen (target: exactly one call
per documented file), then after a one-function signature edit (re-enriched first): model
calls (target: one, for the edited file) and which docs were rewritten (target: that file and
exactly the docs that link to the edited function, computed from the call graph).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.replies import parse_docgen_request, valid_responder
from tests.support.standin import StandinModelServer

from run import print_table
from spanlens_lsp.app import command_calls, enrich_workspace
from spanlens_lsp.config import settings_from_dict
from spanlens_lsp.docgen.generate import Docgen, write_docs
from spanlens_lsp.docgen.plan import DOC_MISSING, DOC_STALE, doc_state
from spanlens_lsp.indexing.indexer import index_files
from spanlens_lsp.store.db import open_store

FILES = 120
MAX_BYTES = 60_000


def _settings(url: str) -> Any:
    return settings_from_dict(
        {"gpu": {"enabled": False}, "backends": [{"name": "standin", "url": url}]}
    )


def _copy_stdlib(dest: Path) -> int:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    chosen = [p for p in sorted(stdlib.glob("*.py")) if p.stat().st_size <= MAX_BYTES][:FILES]
    for path in chosen:
        shutil.copyfile(path, dest / path.name)
    return len(chosen)


def _index(root: Path) -> None:
    store = open_store(root)
    try:
        index_files(root, store)
    finally:
        store.close()


def _docgen(root: Path, settings: Any) -> tuple[Docgen, list[Any], float, Any]:
    docgen = Docgen(root, settings)
    store = open_store(root)
    try:
        graph = docgen.load(store)
    finally:
        store.close()
    plans = [docgen.plan(graph, p) for p in sorted(graph.files)]
    todo = [p for p in plans if doc_state(p, docgen.header(p.path)) in (DOC_MISSING, DOC_STALE)]
    started = time.perf_counter()

    async def go() -> list[Any]:
        async with command_calls(root, settings) as calls:
            docgen.writer.calls = calls
            return await write_docs(docgen, todo)

    results = asyncio.run(go())
    return docgen, results, time.perf_counter() - started, graph


def _calls(server: StandinModelServer) -> int:
    return sum(1 for r in server.chat_requests if parse_docgen_request(r) is not None)


def _edit_one_function(root: Path, graph: Any) -> tuple[str, str, set[str]]:
    """Give a function that other files call a new parameter; returns (path, name, paths of
    the docs that link to it)."""
    for path, doc in sorted(graph.files.items()):
        for item in doc.spans:
            span = item.span
            if span.kind != "function" or "." in span.name:
                continue
            linkers = {
                other.path
                for other in (graph.plan(p, "", None) for p in graph.files if p != path)
                for refs in other.calls.values()
                for ref in refs
                if ref.path == path and ref.name == span.name
            }
            text = (root / path).read_text()
            pattern = re.compile(rf"^def {re.escape(span.name)}\(", re.MULTILINE)
            if linkers and len(pattern.findall(text)) == 1 and f"def {span.name}()" not in text:
                new = pattern.sub(f"def {span.name}(_bench_extra=None, ", text, count=1)
                (root / path).write_text(new)
                return path, span.name, linkers
    raise RuntimeError("no function called from another file")


def run() -> dict[str, Any]:
    """Both docgen runs; prints a table and returns the figures."""
    with tempfile.TemporaryDirectory(prefix="spanlens-bench-docgen-") as tmp:
        root = Path(tmp) / "stdlib"
        root.mkdir()
        files = _copy_stdlib(root)
        _index(root)
        with StandinModelServer(responder=valid_responder) as server:
            settings = _settings(server.url)
            asyncio.run(enrich_workspace(root, settings))
            server.reset()
            _, first, first_seconds, graph = _docgen(root, settings)
            first_calls = _calls(server)
            path, name, linkers = _edit_one_function(root, graph)
            _index(root)
            asyncio.run(enrich_workspace(root, settings))
            server.reset()
            _, second, second_seconds, _ = _docgen(root, settings)
            second_calls = _calls(server)
    documented = sum(1 for r in first if r.written)
    rewritten = {r.path for r in second if r.written}
    expected = {path} | linkers
    print_table(
        [
            ("first docgen: docs written", str(documented), f"{len(graph.files)} files with spans"),
            ("first docgen: model calls per doc", f"{first_calls / max(1, documented):.3f}", "1"),
            ("first docgen: seconds", f"{first_seconds:.2f}", f"context ({files} modules)"),
            ("after one edit: model calls", str(second_calls), "1"),
            (
                "after one edit: docs rewritten",
                str(len(rewritten)),
                f"{len(expected)} (the file and the {len(linkers)} docs linking to {name})",
            ),
            ("after one edit: rewritten == expected", str(rewritten == expected), "True"),
            ("after one edit: seconds", f"{second_seconds:.2f}", "context"),
        ]
    )
    return {
        "files": files,
        "files_with_spans": len(graph.files),
        "first": {"docs": documented, "model_calls": first_calls, "seconds": first_seconds},
        "edit": {
            "path": path,
            "function": name,
            "model_calls": second_calls,
            "rewritten": sorted(rewritten),
            "expected": sorted(expected),
            "seconds": second_seconds,
        },
    }


if __name__ == "__main__":
    run()
