"""Enrichment quality of the built-in default model on a fixed corpus (issue 16 §2).

Opt-in: it runs the real model (Qwen2.5-Coder-1.5B through the built-in engine) for many
minutes on a laptop CPU, so ``make bench`` skips it unless ``SPANLENS_BENCH_QUALITY=1`` is set
(or ``python bench/bench_quality.py`` is run directly). It needs the model installed
(``spanlens model install``; ``SPANLENS_CACHE_DIR`` names the cache) and the ``[local]`` extra.

The corpus (``bench/corpus/quality``: Python, Go and TypeScript; functions with parameters,
raises/throws/errors, I/O side effects and pure ones, a class's methods) is indexed in a
temporary workspace and enriched exactly as a user with nothing configured gets it:
:func:`~spanlens_lsp.enrichment.backends.defaults.resolve_default_backends` picks the built-in
engine and :func:`~spanlens_lsp.app.enrich_workspace` runs the default settings (one span a
call for the built-in engine, retries, validation; ``--batch`` batches small spans instead).
Every reply the model sends is recorded (stored or rejected), with the span's
code and facts and the validator's verdict, and written to ``bench/results/quality_replies.json``
(``--save-replies PATH`` elsewhere): the raw material of the hand-reviewed fixture
``tests/fixtures/qwen15_replies.json``.

Reported, over the corpus's spans: share of span hashes stored; calls per stored span;
parameters described (an ``inputs`` entry per parameter, ``self``/``this`` aside); raises named
(each exception or error the facts list, named somewhere in the enrichment); side effects
agreeing with the facts (claims none exactly when the facts show no certain effect);
identical summaries among stored spans; prompt echoes stored; seconds per span.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench_enrichment import index
from run import print_table
from spanlens_lsp.app import enrich_workspace
from spanlens_lsp.config import load_settings
from spanlens_lsp.enrichment.backends.base import BackendFailure, ChatReply, ChatRequest
from spanlens_lsp.enrichment.backends.defaults import backend_source, resolve_default_backends
from spanlens_lsp.enrichment.backends.openai import OpenAIBackend
from spanlens_lsp.enrichment.planning.sources import load_sources
from spanlens_lsp.enrichment.prompt.certain import CERTAIN_EFFECTS
from spanlens_lsp.enrichment.prompt.names import WorkspaceNames
from spanlens_lsp.enrichment.reply import contradictions
from spanlens_lsp.enrichment.reply.validate import validate_batch_reply, validate_reply
from spanlens_lsp.store.db import open_store
from spanlens_lsp.store.enrichments import latest_enrichment

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "corpus" / "quality"
OPT_IN = "SPANLENS_BENCH_QUALITY"
_REQUEST_OPEN, _REQUEST_CLOSE = "<spanlens-request>", "</spanlens-request>"


class Recorder:
    """Every chat call the backend makes: the request's span ids and the raw reply."""

    def __init__(self, log: Path | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self._original = OpenAIBackend.chat
        #: Each call is also appended here as it completes (JSON lines), so that a run cut
        #: short still leaves its replies.
        self.log = log

    @classmethod
    def from_log(cls, log: Path) -> Recorder:
        """The calls of an earlier (possibly unfinished) run's log."""
        recorder = cls()
        lines = log.read_text(encoding="utf-8").splitlines()
        recorder.calls = [json.loads(line) for line in lines if line.strip()]
        return recorder

    def __enter__(self) -> Recorder:
        original = self._original
        calls, log = self.calls, self.log

        async def chat(backend: OpenAIBackend, request: ChatRequest) -> Any:
            started = time.perf_counter()
            result = await original(backend, request)
            calls.append(
                {
                    "request": _request_json(request),
                    "max_tokens": request.max_tokens,
                    "seconds": round(time.perf_counter() - started, 2),
                    "reply": result.text if isinstance(result, ChatReply) else None,
                    "failure": (
                        f"{result.kind.value}: {result.detail}"[:300]
                        if isinstance(result, BackendFailure)
                        else None
                    ),
                    "tokens_in": getattr(result, "tokens_in", 0),
                    "tokens_out": getattr(result, "tokens_out", 0),
                }
            )
            if log is not None:
                with log.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(calls[-1], ensure_ascii=False) + "\n")
            return result

        OpenAIBackend.chat = chat  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        OpenAIBackend.chat = self._original  # type: ignore[method-assign]


def _request_json(request: ChatRequest) -> dict[str, Any] | None:
    text = str(request.messages[-1].get("content", ""))
    if _REQUEST_OPEN not in text:
        return None
    body = text.split(_REQUEST_OPEN, 1)[1].split(_REQUEST_CLOSE, 1)[0]
    return json.loads(body)  # type: ignore[no-any-return]


def _params(facts: dict[str, Any]) -> list[str]:
    params = facts.get("params") or []
    names = [str(p.get("name", "")).lstrip("*&.") for p in params if isinstance(p, dict)]
    return [n for n in names if n and n not in ("self", "cls", "this")]


def _raises(facts: dict[str, Any]) -> list[str]:
    raised = facts.get("raises") or []
    return [str(r).split("(", 1)[0].rpartition(".")[2] for r in raised if str(r).strip()]


def _text(data: dict[str, Any]) -> str:
    return json.dumps({k: data.get(k) for k in ("summary", "outputs", "pitfalls", "side_effects")})


def measure(root: Path, recorder: Recorder, seconds: float) -> dict[str, Any]:
    """The figures, and every recorded reply judged again against its span."""
    store = open_store(root)
    try:
        spans = [s for path in sorted(store.file_rows()) for s in store.spans_in_file(path)]
        read = lambda p: (root / p).read_text()  # noqa: E731
        loaded = load_sources(store, read, spans, WorkspaceNames())
        sources = {span.id: source for span, source, _ in loaded if source is not None}
        stored = {
            s.id: (latest_enrichment(store, [s.content_hash]) or {}).get("data") for s in spans
        }
    finally:
        store.close()
    by_id = {s.id: s for s in spans}
    replies: list[dict[str, Any]] = []
    for number, call in enumerate(recorder.calls):
        request = call["request"]
        if request is None:
            continue
        # One span's request holds its id; a batch's, each span's.
        ids = [int(s["span_id"]) for s in request.get("spans", [request])]
        contexts = [sources[i].validation_context() for i in ids if i in sources]
        verdicts: dict[int, Any] = {}
        if call["reply"] is not None and len(contexts) == len(ids):
            if len(ids) == 1:
                verdicts = {ids[0]: validate_reply(call["reply"], contexts[0])}
            else:
                verdicts = dict(validate_batch_reply(call["reply"], contexts))
        for span_id in ids:
            span = by_id[span_id]
            result = verdicts.get(span_id)
            replies.append(
                {
                    "call": number,
                    "batch": len(ids),
                    "span": span.name,
                    "path": span.path,
                    "language": span.language,
                    "kind": span.kind,
                    "code": sources[span_id].code if span_id in sources else None,
                    "context": sources[span_id].context if span_id in sources else None,
                    "facts": span.facts,
                    "raw": call["reply"],
                    "failure": call["failure"],
                    "seconds": call["seconds"],
                    "parsed": result.data if result is not None else None,
                    "ok": bool(result is not None and result.ok),
                    "errors": result.errors if result is not None else [],
                }
            )
    kept = {i: d for i, d in stored.items() if d}
    wanted = spans
    params = described = raises = named = agree = echoes = 0
    for span_id, data in kept.items():
        facts = by_id[span_id].facts
        names = _params(facts)
        params += len(names)
        described += sum(
            any(str(i).split(":", 1)[0].strip(" `*.") == n for i in data["inputs"]) for n in names
        )
        text = _text(data)
        errors = _raises(facts)
        raises += len(errors)
        named += sum(e in text for e in errors)
        effects = facts.get("side_effects")
        certain = bool(CERTAIN_EFFECTS.intersection(effects or []))
        agree += certain == bool(data["side_effects"])
        echoes += bool(contradictions.echo_errors(data))
    summaries = Counter(d["summary"].strip().lower() for d in kept.values())
    identical = sum(n for n in summaries.values() if n > 1)
    calls = sum(1 for c in recorder.calls if c["request"] is not None)
    return {
        "spans": len(wanted),
        "stored": len(kept),
        "stored_share": round(len(kept) / max(1, len(wanted)), 3),
        "calls": calls,
        "calls_per_stored_span": round(calls / max(1, len(kept)), 2),
        "parameters": params,
        "parameters_described": described,
        "raises": raises,
        "raises_named": named,
        "side_effects_agreeing": agree,
        "identical_summaries": identical,
        "prompt_echoes_stored": echoes,
        "replies": len(replies),
        "replies_rejected": sum(not r["ok"] for r in replies),
        "prompt_echoes_in_replies": sum(
            any("prompt" in e for e in r["errors"]) for r in replies if r["parsed"] is not None
        ),
        "seconds": round(seconds, 1),
        "seconds_per_span": round(seconds / max(1, len(wanted)), 1),
        "reply_log": replies,
        "stored_enrichments": {by_id[i].name: d for i, d in kept.items()},
    }


async def _enrich(root: Path, batch: bool, threads: int) -> tuple[float, str]:
    import dataclasses

    settings = load_settings(root)
    if threads:
        settings = dataclasses.replace(
            settings, local=dataclasses.replace(settings.local, threads=threads)
        )
    settings = await resolve_default_backends(settings)
    source = backend_source(settings)
    if source != "built-in":
        return -1.0, source
    # The default for the built-in engine is one span a call; ``--batch`` measures batches.
    settings = dataclasses.replace(
        settings, enrichment=dataclasses.replace(settings.enrichment, batch=batch)
    )
    started = time.perf_counter()
    await enrich_workspace(root, settings)
    return time.perf_counter() - started, str(settings.backends[0].model)


def run(
    force: bool = False,
    batch: bool = False,
    save: Path | None = None,
    threads: int = 0,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """The corpus through the built-in engine with default settings (``threads``: the
    engine's, 0 = its default); skipped unless opted in. ``workdir`` keeps the workspace and
    the call log (``calls.jsonl``) for :func:`measure_unfinished`."""
    if not (force or os.environ.get(OPT_IN)):
        print(f"skipped: runs the real model for many minutes; set {OPT_IN}=1 to run it")
        return {"skipped": f"opt-in: {OPT_IN}=1"}
    with tempfile.TemporaryDirectory(prefix="spanlens-bench-quality-") as tmp:
        work = workdir or Path(tmp)
        root = work / "corpus"
        shutil.copytree(CORPUS, root)
        index(root)
        with Recorder(work / "calls.jsonl") as recorder:
            seconds, model = asyncio.run(_enrich(root, batch, threads))
        if seconds < 0:
            print(f"skipped: no built-in model answers (backends: {model})")
            return {"skipped": f"backends: {model}"}
        result = measure(root, recorder, seconds)
    return _report(result, model, batch, save)


def measure_unfinished(work: Path, seconds: float, batch: bool, save: Path | None) -> dict:
    """The figures of a run cut short (its ``workdir``), over the spans it got to."""
    recorder = Recorder.from_log(work / "calls.jsonl")
    result = measure(work / "corpus", recorder, seconds)
    result["unfinished"] = True
    return _report(result, "qwen2.5-coder-1.5b", batch, save)


def _report(result: dict[str, Any], model: str, batch: bool, save: Path | None) -> dict:
    log = result.pop("reply_log")
    save = save or REPO / "bench" / "results" / "quality_replies.json"
    save.parent.mkdir(parents=True, exist_ok=True)
    save.write_text(
        json.dumps({"model": model, "batch": batch, "replies": log}, indent=1, ensure_ascii=False)
        + "\n"
    )
    r = result
    print(f"model: {model} (built-in engine, default settings, batch={batch})")
    print_table(
        [
            (
                "span hashes stored",
                f"{r['stored']}/{r['spans']} ({r['stored_share']:.0%})",
                "≥ 90 %",
            ),
            ("calls per stored span", f"{r['calls_per_stored_span']:.2f}", ""),
            (
                "parameters described",
                f"{r['parameters_described']}/{r['parameters']}",
                "100 %",
            ),
            ("raises named", f"{r['raises_named']}/{r['raises']}", ""),
            (
                "side effects agreeing with the facts",
                f"{r['side_effects_agreeing']}/{r['stored']}",
                "",
            ),
            ("identical summaries stored", str(r["identical_summaries"]), "0"),
            ("prompt echoes stored", str(r["prompt_echoes_stored"]), "0"),
            ("prompt echoes in all replies (rejected)", str(r["prompt_echoes_in_replies"]), ""),
            ("replies / rejected", f"{r['replies']} / {r['replies_rejected']}", ""),
            ("seconds per span", f"{r['seconds_per_span']:.1f}", ""),
        ]
    )
    print(f"replies -> {save}")
    return {"model": model, "batch": batch, **result}


def main() -> int:
    """``PYTHONPATH=server:. python bench/bench_quality.py [--batch] [--save-replies PATH]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--batch", action="store_true", help="batch small spans (the built-in default is not to)"
    )
    parser.add_argument("--save-replies", type=Path, default=None, help="where the replies go")
    parser.add_argument("--threads", type=int, default=0, help="engine threads (0: default)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the workspace here")
    parser.add_argument(
        "--unfinished-after",
        type=float,
        default=None,
        metavar="SECONDS",
        help="measure the run cut short in --workdir, which ran SECONDS",
    )
    args = parser.parse_args()
    if args.unfinished_after is not None:
        result = measure_unfinished(
            args.workdir, args.unfinished_after, args.batch, args.save_replies
        )
    else:
        result = run(True, args.batch, args.save_replies, args.threads, args.workdir)
    name = "bench_quality_batched.json" if args.batch else "bench_quality.json"
    out = REPO / "bench" / "results" / name
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"-> {out.relative_to(REPO)}")
    return 0 if "skipped" not in result else 1


if __name__ == "__main__":
    sys.exit(main())
