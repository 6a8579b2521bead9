"""Enrichment speed on a real engine: previous prompts against current ones, in one run.

A fixed small corpus (``bench/corpus/speed``: a class and functions in Python, Go and
TypeScript) goes through the built-in engine's llama.cpp server (xllamacpp, 2 threads, without
its supervisor) twice: first as issue 16 found it, with the prompt builder of prompt version 2
(``legacy_prompt.py``, a copy kept for this comparison: span-specific request JSON first, reply
bounds that ignore the span's size) and the reply schema sent as ``json_schema`` (llama.cpp's
grammar then lets the model write line breaks and indentation); then as spanlens asks today:
the current prompt builder (stable-first, reply bounded by the span's size) and, where the
engine has llguidance, the schema as a grammar for compact JSON. Each span is sent on its
own, a file's spans one after another, through spanlens' own OpenAI backend (capabilities
detected), with one retry after an invalid or truncated reply (a truncated one with twice the
reply room), as the cascade does; a reply is stored when the validator accepts it.

Reported per variant: spans stored, spans stored per minute of wall time, spans done per
minute (a span is done when it is stored or its tries are spent: the pace, whatever today's
checks make of the replies), prompt and reply tokens per stored span (the server's ``usage``)
and prompt-cache reuse: the share of prompt tokens the engine did not evaluate again because
the previous prompt began the same way, read from the server's log (``prompt eval time = …
/ N tokens``: the tokens it did evaluate). The model is
Qwen2.5-Coder-1.5B-Instruct from the model cache when installed (``spanlens model install``),
else SmolLM2-135M from ``.cache/models``; ``--model PATH`` or ``SPANLENS_BENCH_MODEL`` picks
another, ``--spans N`` (``SPANLENS_BENCH_SPEED_SPANS``) bounds the spans per variant, and
``--corpus DIR`` runs another corpus (``bench/corpus/quality``: 31 spans, a steadier ratio than
the 8 spans of the default, where one reply more or less stored moves it by a third).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.llama_engine import running_builtin_server

import legacy_prompt
from bench_enrichment import index
from run import print_table
from spanlens_lsp.config import settings_from_dict
from spanlens_lsp.enrichment.backends.base import BackendFailure, ChatRequest, FailureKind
from spanlens_lsp.enrichment.backends.capabilities import OutputForm
from spanlens_lsp.enrichment.backends.openai import OpenAIBackend
from spanlens_lsp.enrichment.planning.sources import load_sources
from spanlens_lsp.enrichment.prompt.build import Prompt, build_prompt, with_more_reply_room
from spanlens_lsp.enrichment.prompt.source import SpanSource
from spanlens_lsp.enrichment.reply.validate import validate_reply
from spanlens_lsp.localmodel.engine import engine_grammar
from spanlens_lsp.store.db import open_store

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "corpus" / "speed"
N_CTX = 4096
QWEN = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
SMOLLM2 = REPO / ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
_EVALUATED = re.compile(r"prompt eval time =\s*[\d.]+ ms /\s*(\d+) tokens")

Builder = Callable[[list[SpanSource], int], Prompt]


def default_model() -> Path:
    """SPANLENS_BENCH_MODEL, else the installed Qwen2.5-Coder-1.5B, else SmolLM2-135M."""
    named = os.environ.get("SPANLENS_BENCH_MODEL")
    if named:
        return Path(named)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    for folder in (cache / "spanlens" / "models", Path("/work/.model-cache/models")):
        if (folder / QWEN).is_file():
            return folder / QWEN
    return SMOLLM2


@dataclass
class Variant:
    """What one prompt builder cost on the corpus."""

    name: str
    #: Whether the replies were asked for as compact JSON (an llguidance grammar).
    compact: bool = False
    spans: int = 0
    stored: int = 0
    calls: int = 0
    truncated: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    reused: int = 0
    #: Prompt tokens and reused tokens of each span's first call only (a retry resends the
    #: same prompt, which an engine reuses whole: that says nothing about the ordering).
    first_in: int = 0
    first_reused: int = 0
    seconds: float = 0.0
    #: The stored enrichments by span name, to read.
    replies: dict[str, Any] = field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        per = max(1, self.stored)
        return {
            "spans": self.spans,
            "stored": self.stored,
            "calls": self.calls,
            "truncated": self.truncated,
            "seconds": round(self.seconds, 1),
            "compact_json": self.compact,
            "spans_per_minute": round(60 * self.stored / max(self.seconds, 1e-9), 2),
            "spans_done_per_minute": round(60 * self.spans / max(self.seconds, 1e-9), 2),
            "prompt_tokens_per_stored_span": round(self.tokens_in / per, 1),
            "reply_tokens_per_stored_span": round(self.tokens_out / per, 1),
            "evaluated_prompt_tokens_per_stored_span": round(
                (self.tokens_in - self.reused) / per, 1
            ),
            "cache_reuse": round(self.reused / max(1, self.tokens_in), 3),
            "cache_reuse_first_calls": round(self.first_reused / max(1, self.first_in), 3),
            "replies": self.replies,
        }


def _sources(root: Path, legacy: bool) -> list[SpanSource]:
    """Every span of the corpus, file by file, in line order."""
    store = open_store(root)
    try:
        spans = [s for path in sorted(store.file_rows()) for s in store.spans_in_file(path)]
        spans.sort(key=lambda s: (s.path, s.start_line))
        loaded = load_sources(store, lambda p: (root / p).read_text(), spans)
        sources = [source for _, source, _ in loaded if source is not None]
        if legacy:
            rebuilt = []
            for source in sources:
                span = source.span
                lines = (root / span.path).read_text().split("\n")
                context = legacy_prompt.enclosing_context(
                    span, store.spans_in_file(span.path), lines
                )
                rebuilt.append(SpanSource(span, source.lines, context, source.names))
            sources = rebuilt
        return sources
    finally:
        store.close()


class EngineLog:
    """The engine's log file, read request by request for the prompt tokens it evaluated."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def evaluated_since_last(self) -> int | None:
        """Prompt tokens evaluated since the last read; None when the log says nothing."""
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            text = handle.read().decode("utf-8", "replace")
            self.offset = handle.tell()
        found = _EVALUATED.findall(text)
        return sum(int(n) for n in found) if found else None


async def _call(
    backend: OpenAIBackend, prompt: Prompt, log: EngineLog, variant: Variant, first: bool
) -> Any:
    request = ChatRequest(
        prompt.messages, prompt.schema, prompt.max_tokens, prompt.schema_name, prompt.cache_key
    )
    log.evaluated_since_last()  # skip anything logged between calls
    reply = await backend.chat(request)
    variant.calls += 1
    variant.tokens_in += reply.tokens_in
    variant.tokens_out += reply.tokens_out
    await asyncio.sleep(0.2)  # the server logs its timings just after it answers
    evaluated = log.evaluated_since_last()
    reused = max(0, reply.tokens_in - evaluated) if evaluated is not None else 0
    variant.reused += reused
    if first:
        variant.first_in += reply.tokens_in
        variant.first_reused += reused
    return reply


async def _run_variant(
    name: str,
    builder: Builder,
    sources: list[SpanSource],
    backend: OpenAIBackend,
    log: EngineLog,
) -> Variant:
    variant = Variant(name, spans=len(sources))
    variant.compact = backend.capabilities.form is OutputForm.COMPACT_GRAMMAR
    started = time.perf_counter()
    for source in sources:
        prompt: Prompt | None = builder([source], N_CTX)
        for attempt in range(2):  # one retry, as the cascade's invalid-reply limit allows
            if prompt is None:
                break
            reply = await _call(backend, prompt, log, variant, first=attempt == 0)
            if isinstance(reply, BackendFailure):
                if reply.kind is FailureKind.TRUNCATED:
                    variant.truncated += 1
                    prompt = with_more_reply_room(prompt)
                continue
            result = validate_reply(reply.text, prompt.contexts[0])
            if result.ok and result.data is not None:
                variant.stored += 1
                variant.replies[source.span.name] = result.data
                break
        print(f"  {name}: {source.span.path} {source.span.name}", flush=True)
    variant.seconds = time.perf_counter() - started
    return variant


async def _measure(url: str, sources: dict[str, list[SpanSource]], log: EngineLog) -> list[Variant]:
    settings = settings_from_dict(
        {
            "backends": [
                {
                    "name": "bench",
                    "provider": "openai",
                    "url": url,
                    "model": "smollm2",
                    "context_tokens": N_CTX,
                    "timeout": 600,
                }
            ]
        }
    )
    # As issue 16 found it: the schema as json_schema. Today: compact JSON where it can be.
    before = OpenAIBackend(settings.backends[0])
    after = OpenAIBackend(settings.backends[0], compact_grammar=engine_grammar() == "llguidance")
    try:
        for backend in (before, after):
            await backend.detect(30)
        # Load the weights before timing anything (the first call pays for it).
        warm = ChatRequest([{"role": "user", "content": "Say hi."}], {"type": "object"}, 4)
        await before.chat(warm)
        previous = await _run_variant(
            "previous", legacy_prompt.build_prompt, sources["previous"], before, log
        )
        current = await _run_variant("current", build_prompt, sources["current"], after, log)
    finally:
        await before.aclose()
        await after.aclose()
    return [previous, current]


def run(
    model: Path | None = None, spans: int | None = None, corpus: Path = CORPUS
) -> dict[str, Any]:
    """Both variants on the corpus with one engine; the table compares them."""
    try:
        import xllamacpp  # noqa: F401
    except ImportError:
        print("skipped: xllamacpp is not installed (run `make setup`: the [local] extra)")
        return {"skipped": "xllamacpp not installed"}
    model = model or default_model()
    spans = spans or int(os.environ.get("SPANLENS_BENCH_SPEED_SPANS", "0")) or None
    if not model.is_file():
        print(f"skipped: no model at {model}")
        return {"skipped": "model missing"}
    with tempfile.TemporaryDirectory(prefix="spanlens-bench-speed-") as tmp:
        root = Path(tmp) / "corpus"
        root.mkdir()
        for path in sorted(corpus.iterdir()):
            (root / path.name).write_text(path.read_text())
        index(root)
        sources = {
            "previous": _sources(root, legacy=True)[:spans],
            "current": _sources(root, legacy=False)[:spans],
        }
        log_path = Path(tmp) / "engine.log"
        with (
            log_path.open("wb") as log,
            running_builtin_server(model, N_CTX, log=log, timeout=180) as url,
        ):
            previous, current = asyncio.run(_measure(url, sources, EngineLog(log_path)))
    before, after = previous.figures(), current.figures()
    # No ratio against prompts that stored nothing (it would print as billions).
    speedup = (
        after["spans_per_minute"] / before["spans_per_minute"]
        if before["spans_per_minute"] > 0
        else None
    )
    done = after["spans_done_per_minute"] / max(before["spans_done_per_minute"], 1e-9)
    print(f"model: {model.name}; engine: the built-in llama.cpp server, 2 threads, n_ctx {N_CTX}")
    print(f"corpus: {corpus.name}, {before['spans']} spans")
    print_table(
        [
            ("spans stored", f"{before['stored']}/{before['spans']} → {after['stored']}", ""),
            (
                "spans stored per minute",
                f"{before['spans_per_minute']:.2f} → {after['spans_per_minute']:.2f}",
                f"≥ 3× ({speedup:.2f}×)" if speedup else "≥ 3× (no ratio: none stored before)",
            ),
            (
                "spans done per minute",
                f"{before['spans_done_per_minute']:.2f} → {after['spans_done_per_minute']:.2f}",
                f"{done:.2f}× (stored or tries spent)",
            ),
            (
                "replies as compact JSON",
                f"{'yes' if before['compact_json'] else 'no'} → "
                f"{'yes' if after['compact_json'] else 'no'}",
                "",
            ),
            (
                "prompt tokens / stored span",
                f"{before['prompt_tokens_per_stored_span']:.0f} → "
                f"{after['prompt_tokens_per_stored_span']:.0f}",
                "fewer",
            ),
            (
                "reply tokens / stored span",
                f"{before['reply_tokens_per_stored_span']:.0f} → "
                f"{after['reply_tokens_per_stored_span']:.0f}",
                "fewer",
            ),
            (
                "prompt tokens evaluated / stored span",
                f"{before['evaluated_prompt_tokens_per_stored_span']:.0f} → "
                f"{after['evaluated_prompt_tokens_per_stored_span']:.0f}",
                "fewer",
            ),
            (
                "prompt-cache reuse, first calls",
                f"{before['cache_reuse_first_calls']:.0%} → {after['cache_reuse_first_calls']:.0%}",
                "more (was ~13%)",
            ),
            (
                "prompt-cache reuse, all calls",
                f"{before['cache_reuse']:.0%} → {after['cache_reuse']:.0%}",
                "retries reuse their whole prompt",
            ),
            ("calls", f"{before['calls']} → {after['calls']}", ""),
            ("truncated replies", f"{before['truncated']} → {after['truncated']}", "0"),
        ]
    )
    return {
        "model": model.name,
        "corpus": corpus.name,
        "speedup": round(speedup, 2) if speedup is not None else None,
        "done_speedup": round(done, 2),
        "previous": before,
        "current": after,
    }


def main() -> int:
    """``PYTHONPATH=server:. python bench/bench_prompt_speed.py [--model PATH] [--spans N]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="a GGUF file")
    parser.add_argument("--spans", type=int, default=None, help="at most N spans per variant")
    parser.add_argument(
        "--corpus", type=Path, default=CORPUS, help="a folder of source files (default: speed)"
    )
    args = parser.parse_args()
    result = run(args.model, args.spans, args.corpus)
    out = Path(__file__).resolve().parent / "results" / "bench_prompt_speed.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"-> {out.relative_to(REPO)}")
    return 0 if "skipped" not in result else 1


if __name__ == "__main__":
    sys.exit(main())
