"""The embedding run: every current span's vector for one embedder, kept current.

Derive first, then work only for the misses: the store says, in one query, which spans' text
inputs (kind, name, fresh summary, signature, docstring) differ from those stored beside their
hash's vector (:func:`~spanlens_lsp.store.embeddings.pending_spans`); only those spans' texts
(:func:`embedding_text`, never an invented summary) are built and hashed. A span whose stored
vector is of the same text is confirmed without a call; a text already embedded for another
span reuses that vector without a call; the rest go to the endpoint ``batch_size`` texts a
request. A remote embedder never receives a
span of an ignored or secret-looking file, nor a text that looks like it holds a credential
(the rule enrichment applies to remote tiers): such spans are skipped and counted.

Reads and writes run in store threads (``reads`` and ``writes``): nothing on the event loop
waits on SQLite.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from spanlens_lsp.embedding.endpoints import Embedder, EmbedFailure
from spanlens_lsp.embedding.text import MAX_DOC_CHARS, TEXT_VERSION, embedding_text, text_hash
from spanlens_lsp.enrichment.planning.privacy import remote_allowed
from spanlens_lsp.states import ENRICHMENT_VERSION
from spanlens_lsp.store.embeddings import (
    PendingSpan,
    pending_spans,
    put_embeddings,
    set_sources,
    span_hash_count,
    vector_for_text,
)
from spanlens_lsp.store.handle import Store

T = TypeVar("T")


class StoreThread(Protocol):
    """A thread that owns a store connection (:class:`~spanlens_lsp.store.worker.StoreWorker`)."""

    async def run(self, fn: Callable[[Store], T]) -> T: ...

    async def run_first(self, fn: Callable[[Store], T]) -> T: ...


@dataclass(slots=True)
class EmbedRun:
    """What one run did, span by span (a span counted once, whatever its path)."""

    embedder: str
    model: str
    #: Spans looked at.
    spans: int = 0
    #: Spans that needed a vector when the run began.
    todo: int = 0
    #: Spans whose stored vector is of their current text: nothing to do.
    up_to_date: int = 0
    #: Spans given a vector computed by a call of this run.
    embedded: int = 0
    #: Spans given the stored vector of the same text, without a call.
    reused: int = 0
    #: Spans never sent because the embedder is remote and their file or text is private.
    private_skipped: int = 0
    #: Spans left without a vector because their call failed.
    failed: int = 0
    #: Spans left for a later run (``max_texts`` reached).
    left: int = 0
    calls: int = 0
    tokens: int = 0
    seconds: float = 0.0
    #: Why the last failed call failed (one line).
    error: str | None = None

    @property
    def changed(self) -> int:
        """Spans whose vector this run stored."""
        return self.embedded + self.reused

    def as_json(self) -> dict[str, Any]:
        """The run as `--json` prints it."""
        return {**dataclasses.asdict(self), "seconds": round(self.seconds, 3)}

    def summary(self) -> str:
        """One line for the terminal."""
        parts = [
            f"{self.embedded} embedded in {self.calls} calls ({self.tokens} tokens, "
            f"{self.seconds:.1f} s)",
            f"{self.reused} reused",
            f"{self.up_to_date} up to date",
        ]
        if self.private_skipped:
            parts.append(f"{self.private_skipped} private (never sent to a remote endpoint)")
        if self.left:
            parts.append(f"{self.left} left for later")
        if self.failed:
            parts.append(f"{self.failed} failed: {self.error}")
        return f"embeddings ({self.embedder}, {self.model}): " + ", ".join(parts)


@dataclass(slots=True)
class EmbedPlan:
    """The texts a run must embed: text hash -> (text, {content hash: source} of its spans)
    (a span's :func:`~spanlens_lsp.store.embeddings.embedding_source`, stored beside its
    vector)."""

    run: EmbedRun
    texts: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    #: ``(content_hash, source)`` of hashes whose stored vector is of their current text but
    #: whose row does not say so yet (written before migration 8, or a re-enrichment with
    #: the same summary): recorded without a call.
    confirmed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def spans(self) -> int:
        """Span hashes still to embed."""
        return sum(len(hashes) for _, hashes in self.texts.values())


ProgressFn = Callable[[EmbedRun], None]
#: Texts sent in one request: ``(text hash, (text, {content hash: source}))``.
Batch = list[tuple[str, tuple[str, dict[str, str]]]]


async def plan_embeddings(
    root: Path,
    embedder: Embedder,
    reads: StoreThread,
    *,
    paths: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
) -> EmbedPlan:
    """What ``embedder`` has to embed (of ``paths`` when given), from the store as it is.

    The spans to look at are derived in SQL (:func:`pending_spans`): with nothing to do, a
    plan costs that query and a count, and no span's text is built in Python."""
    pending = await reads.run(
        functools.partial(
            pending_spans,
            model=embedder.model,
            version=ENRICHMENT_VERSION,
            text_version=TEXT_VERSION,
            doc_chars=MAX_DOC_CHARS,
            paths=paths,
        )
    )
    total = await reads.run(functools.partial(span_hash_count, paths=paths))
    run = EmbedRun(embedder.name, embedder.model)
    plan = await asyncio.to_thread(_plan, root, pending, run, embedder.remote, list(exclude))
    run.spans = total
    run.up_to_date = total - run.todo - run.private_skipped
    return plan


def _plan(
    root: Path,
    pending: list[PendingSpan],
    run: EmbedRun,
    remote: bool,
    exclude: list[str],
) -> EmbedPlan:
    plan = EmbedPlan(run)
    seen: set[str] = set()
    for item in pending:
        span = item.span
        if span.content_hash in seen:
            continue  # identical code elsewhere: one vector serves both
        text = embedding_text(span, item.summary)
        key = text_hash(text)
        if remote and not remote_allowed(root, span.path, exclude, text):
            continue  # another span of this hash may be allowed; counted below if none is
        seen.add(span.content_hash)
        if item.stored_text_hash == key:
            plan.confirmed.append((span.content_hash, item.source))
            continue
        plan.texts.setdefault(key, (text, {}))[1][span.content_hash] = item.source
    run.private_skipped = len({item.span.content_hash for item in pending} - seen)
    run.todo = plan.spans
    return plan


async def embed_planned(
    plan: EmbedPlan,
    embedder: Embedder,
    reads: StoreThread,
    writes: StoreThread,
    *,
    max_texts: int | None = None,
    progress: ProgressFn | None = None,
) -> EmbedRun:
    """Store a vector for every text of ``plan``: reused when the store has one for the same
    text, else from ``embedder`` (at most ``max_texts`` texts sent; the rest are ``left``).
    A failed call leaves its spans without a vector (``failed``); once the endpoint's breaker
    is open, the batches left fail at once, without a call. A batch the endpoint refuses (a
    text longer than its model's context, an HTTP 4xx) is halved until the text at fault fails
    alone, its span named in ``error`` and its call in an attempts row; the others are
    embedded. Store errors propagate."""
    run, started = plan.run, time.monotonic()
    model = embedder.model
    if plan.confirmed:
        await writes.run_first(functools.partial(set_sources, model=model, sources=plan.confirmed))
        _report(progress, run)
    texts = dict(plan.texts)
    known = await reads.run(functools.partial(_stored_vectors, model=model, keys=list(texts)))
    if known:
        reused = {key: texts.pop(key)[1] for key in known}
        rows = [(h, key, known[key]) for key, spans in reused.items() for h in spans]
        sources = {h: source for spans in reused.values() for h, source in spans.items()}
        await writes.run_first(
            functools.partial(put_embeddings, model=model, rows=rows, sources=sources)
        )
        run.reused += len(rows)
        _report(progress, run)
    todo = list(texts.items())
    if max_texts is not None and len(todo) > max_texts:
        run.left += sum(len(hashes) for _, (_, hashes) in todo[max_texts:])
        todo = todo[:max_texts]
    size = max(1, embedder.batch_size)
    batches = [todo[i : i + size] for i in range(0, len(todo), size)]

    def failed(batch: Batch, exc: EmbedFailure) -> None:
        run.failed += sum(len(spans) for _, (_, spans) in batch)
        # One text alone: say which span it is (its text begins with kind and name).
        first_line = batch[0][1][0].split("\n", 1)[0]
        run.error = f"{first_line}: {exc}" if len(batch) == 1 else str(exc)

    async def embed_batch(batch: Batch) -> bool:
        """Embed ``batch``; True when some of its texts got a vector. A batch the endpoint
        refuses is halved, so that a text too long for it fails alone."""
        hashes = [h for _, (_, spans) in batch for h in sorted(spans)]
        try:
            result = await embedder.embed([text for _, (text, _) in batch], hashes)
        except EmbedFailure as exc:
            if len(batch) == 1 or not exc.input_refused:
                failed(batch, exc)
                return False
            half = len(batch) // 2
            first = await embed_batch(batch[:half])
            if not first and not exc.too_long:
                # A refusal no text got past: the request, not one text, is refused.
                failed(batch[half:], exc)
                return False
            return await embed_batch(batch[half:]) or first
        run.calls += 1
        run.tokens += result.tokens
        rows = [
            (h, key, vector)
            for (key, (_, spans)), vector in zip(batch, result.vectors, strict=True)
            for h in spans
        ]
        sources = {h: source for _, (_, spans) in batch for h, source in spans.items()}
        await writes.run_first(
            functools.partial(put_embeddings, model=model, rows=rows, sources=sources)
        )
        run.embedded += len(rows)
        _report(progress, run)
        return True

    queue = list(reversed(batches))

    async def worker() -> None:
        while queue:
            await embed_batch(queue.pop())

    await asyncio.gather(*(worker() for _ in range(max(1, embedder.settings.max_parallel))))
    run.seconds += time.monotonic() - started
    return run


async def embed_pending(
    root: Path,
    embedder: Embedder,
    reads: StoreThread,
    writes: StoreThread,
    *,
    paths: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    max_texts: int | None = None,
    progress: ProgressFn | None = None,
) -> EmbedRun:
    """Bring ``embedder``'s vectors of every current span (of ``paths`` when given) up to
    date: :func:`plan_embeddings`, then :func:`embed_planned`."""
    plan = await plan_embeddings(root, embedder, reads, paths=paths, exclude=exclude)
    return await embed_planned(
        plan, embedder, reads, writes, max_texts=max_texts, progress=progress
    )


def _stored_vectors(store: Store, model: str, keys: list[str]) -> dict[str, bytes]:
    found = {key: vector_for_text(store, model, key) for key in keys}
    return {key: blob for key, blob in found.items() if blob is not None}


def _report(progress: ProgressFn | None, run: EmbedRun) -> None:
    if progress is not None:
        progress(run)
