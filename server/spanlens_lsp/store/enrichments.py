"""Named queries for enrichments, attempts and failures; every such SQL statement lives here.

Pending work is derived, never stored: a span is pending while no enrichment exists for its
(content_hash, version) and its failure record (if any) neither marks it failed nor asks to
wait. Killing the process therefore loses nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from spanlens_lsp.states import EMBED_TIER
from spanlens_lsp.store.errors import StoreError
from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.rows import (
    ENRICHMENT_COLUMNS,
    SPAN_SELECT,
    SpanRow,
    enrichment_record,
    span_row,
    stored_json,
)
from spanlens_lsp.store.states import NEEDS_MODEL, NOT_FRESH, STATE_CASE, UNFINISHED

#: Why a span is not enriched now: another spanlens process (a CLI run, an editor) holds its
#: claim. Shared by the engine (which defers such spans) and the scheduler.
CLAIMED_ELSEWHERE = "being enriched by another spanlens process"


class StoreWriteFailed(StoreError):
    """A write to the index failed (disk full, read-only database, lost lock): work whose
    result cannot be recorded must stop. The message is one line for the user."""


@dataclass(slots=True)
class Attempt:
    """One model call as the ``attempts`` table records it."""

    started_at: float
    span_hashes: list[str]
    tier: str
    backend: str
    host: str
    model: str
    #: ``ok`` (every span enriched), ``partial`` (some), or ``failed``.
    outcome: str
    tokens_in: int = 0
    tokens_out: int = 0
    duration_ms: float = 0.0
    failure_type: str | None = None
    detail: str | None = None
    gpu: dict[str, Any] | None = None
    cost: float = 0.0
    #: Spans this call enriched (for a batch, the entries that validated).
    enriched: int = 0


@dataclass(slots=True)
class BackendStats:
    """Aggregates of one (tier, backend) over the attempts table, for `spanlens stats`."""

    tier: str
    backend: str
    host: str
    model: str
    calls: int = 0
    succeeded: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    batch_calls: int = 0
    #: Spans that batched calls enriched, and how many of those calls enriched at least one.
    batch_spans: int = 0
    batch_calls_enriching: int = 0
    durations_ms: list[float] = field(default_factory=list)
    gpu: list[dict[str, Any]] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)


def pending_spans(
    store: Store,
    version: str,
    max_failures: int,
    now: float,
    limit: int | None = None,
    paths: Sequence[str] | None = None,
) -> list[SpanRow]:
    """Spans to enrich now, ordered by path then line.

    Pending = no enrichment for (content_hash, version), fewer than ``max_failures`` failures,
    and past the failure record's ``next_retry_at``
    (:data:`~spanlens_lsp.store.states.NEEDS_MODEL`).
    """
    sql = SPAN_SELECT + "WHERE " + NEEDS_MODEL
    params: list[Any] = [version, max_failures, now]
    if paths is not None:
        if not paths:
            return []
        sql += f"AND f.path IN ({','.join('?' * len(paths))}) "
        params.extend(paths)
    sql += "ORDER BY f.path, s.start_line, s.start_col"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [span_row(row, store.conn) for row in store.conn.execute(sql, params).fetchall()]


def span_to_enrich(
    store: Store,
    span_id: int,
    version: str,
    max_failures: int,
    now: float,
    *,
    asked: bool = False,
    waiting_too: bool = False,
) -> SpanRow | None:
    """Span ``span_id`` as it is now if it still needs a model, else None (gone, enriched,
    failed for good or waiting to retry): the rule of :func:`pending_spans`, for one span.

    A span ``asked`` for by a command needs only to lack an enrichment at ``version``: the
    user's request overrides its failure record. With ``waiting_too``, a span waiting for
    its retry time still counts (:data:`~spanlens_lsp.store.states.UNFINISHED`): it is not done.
    """
    params: list[Any]
    if asked:
        rule, params = NOT_FRESH, [version]
    elif waiting_too:
        rule, params = UNFINISHED, [version, max_failures]
    else:
        rule, params = NEEDS_MODEL, [version, max_failures, now]
    row = store.conn.execute(
        SPAN_SELECT + "WHERE s.id = ? AND " + rule, [span_id, *params]
    ).fetchone()
    return span_row(row, store.conn) if row else None


def unfinished_count(
    store: Store, version: str, max_failures: int, paths: Sequence[str] | None = None
) -> int:
    """Spans without an enrichment at ``version`` that are not failed (waiting ones included);
    only those of ``paths`` when given."""
    sql = "SELECT COUNT(*) FROM spans s WHERE " + UNFINISHED
    params: list[Any] = [version, max_failures]
    if paths is not None:
        marks = ",".join("?" * len(paths)) or "NULL"
        sql += f" AND s.file_id IN (SELECT id FROM files WHERE path IN ({marks}))"
        params.extend(paths)
    row = store.conn.execute(sql, params).fetchone()
    return int(row[0])


def enrichment_for(store: Store, content_hash: str, version: str) -> dict[str, Any] | None:
    """The enrichment of exactly this hash and schema version, with its provenance."""
    row = store.conn.execute(
        f"SELECT {ENRICHMENT_COLUMNS} FROM enrichments "
        "WHERE content_hash = ? AND schema_version = ?",
        (content_hash, version),
    ).fetchone()
    return enrichment_record(row, store.conn) if row else None


def latest_enrichment(store: Store, hashes: Sequence[str]) -> dict[str, Any] | None:
    """The newest enrichment of any of ``hashes`` at any schema version (for stale display)."""
    hashes = [h for h in hashes if h]
    if not hashes:
        return None
    marks = ",".join("?" * len(hashes))
    row = store.conn.execute(
        f"SELECT {ENRICHMENT_COLUMNS} FROM enrichments "
        f"WHERE content_hash IN ({marks}) ORDER BY created_at DESC LIMIT 1",
        hashes,
    ).fetchone()
    return enrichment_record(row, store.conn) if row else None


def failure_for(store: Store, content_hash: str) -> dict[str, Any] | None:
    """The failure record of a hash: count, last error, next retry time."""
    row = store.conn.execute(
        "SELECT count, last_error, next_retry_at FROM failures WHERE content_hash = ?",
        (content_hash,),
    ).fetchone()
    if not row:
        return None
    return {"count": row[0], "last_error": row[1], "next_retry_at": row[2]}


def state_counts(store: Store, version: str, max_failures: int) -> dict[str, int]:
    """Spans by state: fresh, stale, pending, failed (each span in exactly one)."""
    rows = store.conn.execute(
        "SELECT " + STATE_CASE + " AS state, COUNT(*) FROM spans s GROUP BY state",
        (version, max_failures),
    ).fetchall()
    counts = {"fresh": 0, "stale": 0, "pending": 0, "failed": 0}
    counts.update({state: n for state, n in rows})
    return counts


def put_enrichment(
    store: Store,
    content_hash: str,
    version: str,
    data: dict[str, Any],
    *,
    model: str,
    tier: str,
    backend: str,
    host: str,
    tokens_in: int = 0,
    tokens_out: int = 0,
    duration_ms: float = 0.0,
    now: float | None = None,
) -> bool:
    """Store a validated enrichment, only while some span still has ``content_hash``.

    Marks those spans enriched and clears the hash's failure record, in one transaction.
    Returns False (and writes nothing) when no span has the hash any more.
    """
    now = time.time() if now is None else now
    with store.transaction() as conn:
        still_there = conn.execute(
            "SELECT 1 FROM spans WHERE content_hash = ? LIMIT 1", (content_hash,)
        ).fetchone()
        if still_there is None:
            return False
        conn.execute(
            "INSERT OR REPLACE INTO enrichments (content_hash, schema_version, data, model, tier, "
            "backend, host, tokens_in, tokens_out, duration_ms, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                content_hash,
                version,
                json.dumps(data, ensure_ascii=False),
                model,
                tier,
                backend,
                host,
                tokens_in,
                tokens_out,
                duration_ms,
                now,
            ),
        )
        conn.execute(
            "UPDATE spans SET enriched_hash = ? WHERE content_hash = ?",
            (content_hash, content_hash),
        )
        conn.execute("DELETE FROM failures WHERE content_hash = ?", (content_hash,))
    return True


def record_attempt(store: Store, attempt: Attempt) -> None:
    """Append one model call to ``attempts``."""
    store.conn.execute(
        "INSERT INTO attempts (started_at, span_hashes, batch_size, tier, backend, host, model, "
        "tokens_in, tokens_out, duration_ms, outcome, failure_type, detail, gpu, cost, enriched) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            attempt.started_at,
            json.dumps(attempt.span_hashes),
            len(attempt.span_hashes),
            attempt.tier,
            attempt.backend,
            attempt.host,
            attempt.model,
            attempt.tokens_in,
            attempt.tokens_out,
            attempt.duration_ms,
            attempt.outcome,
            attempt.failure_type,
            attempt.detail,
            json.dumps(attempt.gpu) if attempt.gpu is not None else None,
            attempt.cost,
            attempt.enriched,
        ),
    )


def record_failure(
    store: Store,
    content_hash: str,
    error: str,
    now: float,
    retry_base: float,
    retry_max: float,
) -> int:
    """Count one more failure of ``content_hash``; the next retry waits base * 2**(n-1), capped.

    Returns the new failure count.
    """
    with store.transaction() as conn:
        row = conn.execute(
            "SELECT count FROM failures WHERE content_hash = ?", (content_hash,)
        ).fetchone()
        count = (int(row[0]) if row else 0) + 1
        delay = min(retry_max, retry_base * 2 ** (count - 1))
        conn.execute(
            "INSERT INTO failures (content_hash, count, last_error, next_retry_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(content_hash) DO UPDATE SET "
            "count = excluded.count, last_error = excluded.last_error, "
            "next_retry_at = excluded.next_retry_at, updated_at = excluded.updated_at",
            (content_hash, count, error, now + delay, now),
        )
    return count


def clear_failures(store: Store, hashes: Iterable[str]) -> int:
    """Forget the failure records of ``hashes``: those spans are pending again at once."""
    removed = 0
    with store.transaction() as conn:
        for content_hash in hashes:
            removed += conn.execute(
                "DELETE FROM failures WHERE content_hash = ?", (content_hash,)
            ).rowcount
    return removed


def retry_failed(store: Store, paths: Sequence[str] | None = None) -> int:
    """Forget every failure record (of spans in ``paths``, when given); returns how many."""
    if paths is None:
        with store.transaction() as conn:
            return int(conn.execute("DELETE FROM failures").rowcount)
    if not paths:
        return 0
    marks = ",".join("?" * len(paths))
    hashes = [
        row[0]
        for row in store.conn.execute(
            "SELECT DISTINCT s.content_hash FROM spans s JOIN files f ON f.id = s.file_id "
            f"WHERE f.path IN ({marks})",
            list(paths),
        )
    ]
    return clear_failures(store, hashes)


def attempt_totals(store: Store, since: float = 0.0) -> dict[str, int]:
    """Calls, successful calls, tokens in/out and spans enriched by calls from ``since`` on."""
    row = store.conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(outcome != 'failed'), 0), COALESCE(SUM(tokens_in), 0), "
        "COALESCE(SUM(tokens_out), 0), COALESCE(SUM(enriched), 0) FROM attempts "
        "WHERE started_at >= ?",
        (since,),
    ).fetchone()
    return {
        "calls": int(row[0]),
        "calls_ok": int(row[1]),
        "tokens_in": int(row[2]),
        "tokens_out": int(row[3]),
        "spans_enriched": int(row[4]),
    }


def enriched_by_tier(store: Store, since: float = 0.0) -> dict[str, int]:
    """Spans enriched per tier by calls from ``since`` on."""
    rows = store.conn.execute(
        "SELECT tier, SUM(enriched) FROM attempts WHERE started_at >= ? AND enriched > 0 "
        "GROUP BY tier ORDER BY tier",
        (since,),
    ).fetchall()
    return {str(tier): int(n) for tier, n in rows}


def backend_stats(store: Store) -> list[BackendStats]:
    """Per (tier, backend): calls, successes, tokens, cost, batching, latencies, GPU, failures."""
    groups: dict[tuple[str, str], BackendStats] = {}
    rows = store.conn.execute(
        "SELECT tier, backend, host, model, outcome, failure_type, tokens_in, tokens_out, cost, "
        "batch_size, enriched, duration_ms, gpu FROM attempts ORDER BY started_at"
    )
    for row in rows:
        tier, backend, host, model, outcome, failure, t_in, t_out, cost = row[:9]
        size, enriched, ms, gpu = row[9:]
        stats = groups.get((tier, backend))
        if stats is None:
            stats = groups[(tier, backend)] = BackendStats(tier, backend, host, model)
        stats.calls += 1
        stats.succeeded += int(outcome != "failed")
        stats.tokens_in += t_in
        stats.tokens_out += t_out
        stats.cost += cost
        if size > 1 and tier != EMBED_TIER:
            stats.batch_calls += 1
            stats.batch_spans += enriched
            stats.batch_calls_enriching += int(enriched > 0)
        stats.durations_ms.append(ms)
        if gpu:
            stats.gpu.append(stored_json(store.conn, gpu, "attempts.gpu"))
        if failure:
            stats.failures[failure] = stats.failures.get(failure, 0) + 1
    return list(groups.values())


def recent_rejections(store: Store, failure_type: str, limit: int = 10) -> list[str]:
    """The newest lines of the details of attempts that failed (wholly or partly) with
    ``failure_type`` (for invalid output: one line per rejected span, its name and the rule
    it broke), newest call first, at most ``limit``."""
    rows = store.conn.execute(
        "SELECT detail FROM attempts WHERE failure_type = ? AND detail IS NOT NULL "
        "ORDER BY started_at DESC, id DESC LIMIT ?",
        (failure_type, limit),
    ).fetchall()
    lines = [line for (detail,) in rows for line in str(detail).splitlines() if line.strip()]
    return lines[:limit]


def enrichment_rows(store: Store, version: str) -> list[tuple[str, dict[str, Any]]]:
    """(content_hash, data) of every enrichment at ``version`` (for checks and benchmarks)."""
    rows = store.conn.execute(
        "SELECT content_hash, data FROM enrichments WHERE schema_version = ?", (version,)
    ).fetchall()
    return [(str(h), stored_json(store.conn, d, "enrichments.data")) for h, d in rows]


#: Consecutive batched calls that stored nothing after which a tier's model enriches one span
#: a call (see :func:`batching_off`).
BATCH_FAILURES_BEFORE_FALLBACK = 3


def batching_off(
    store: Store, window: int = BATCH_FAILURES_BEFORE_FALLBACK
) -> list[tuple[str, str]]:
    """(tier, model) pairs whose last ``window`` batched calls all stored nothing: a small
    model that cannot answer for several spans at once gets single spans.

    Derived from the attempts, so it survives restarts and `spanlens stats` can say so; a new
    model on the tier starts batching again."""
    rows = store.conn.execute(
        "SELECT tier, model, enriched FROM attempts WHERE batch_size > 1 AND tier != ? "
        "ORDER BY id DESC LIMIT 500",
        (EMBED_TIER,),
    ).fetchall()
    recent: dict[tuple[str, str], list[int]] = {}
    for tier, model, enriched in rows:
        recent.setdefault((str(tier), str(model)), []).append(int(enriched or 0))
    return sorted(
        key
        for key, enriched in recent.items()
        if len(enriched) >= window and not any(enriched[:window])
    )
