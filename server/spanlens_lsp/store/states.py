"""The span state rule of :mod:`spanlens_lsp.states` as SQL fragments, over ``spans s``.

Every query that sorts spans into fresh / stale / pending / failed builds on these, so the rule
is written once in SQL (and once in Python, :func:`spanlens_lsp.states.span_state`).
"""

from __future__ import annotations

#: No enrichment at the schema version (parameter 1: the version).
NOT_FRESH = (
    "NOT EXISTS (SELECT 1 FROM enrichments e "
    "  WHERE e.content_hash = s.content_hash AND e.schema_version = ?) "
)

#: Failed for good (parameter 1: max_failures).
FAILED_FOR_GOOD = (
    "EXISTS (SELECT 1 FROM failures fl WHERE fl.content_hash = s.content_hash AND fl.count >= ?) "
)

#: Still to enrich some time: no enrichment at the version and not failed for good
#: (parameters: version, max_failures). Spans waiting for their retry time are included.
UNFINISHED = NOT_FRESH + "AND NOT " + FAILED_FOR_GOOD

#: Its failure record asks to wait until its retry time (parameter 1: now).
BEFORE_RETRY = (
    "EXISTS (SELECT 1 FROM failures fw "
    "  WHERE fw.content_hash = s.content_hash AND fw.next_retry_at > ?) "
)

#: Needs a model now: unfinished and not waiting (parameters: version, max_failures, now).
#: The one pending rule: the pending listing, the scheduler's check of a queued span and
#: the engine's check of a span another process had claimed all use it
#: (:mod:`spanlens_lsp.store.enrichments`).
NEEDS_MODEL = UNFINISHED + "AND NOT " + BEFORE_RETRY

#: An earlier enrichment describes this span (its previous hash, or the hash at another version).
HAS_PREVIOUS = (
    "(s.enriched_hash IS NOT NULL OR EXISTS (SELECT 1 FROM enrichments o "
    "  WHERE o.content_hash = s.content_hash)) "
)

#: The state of ``s`` as a string (parameters: version, max_failures).
STATE_CASE = (
    "CASE WHEN NOT " + NOT_FRESH + "THEN 'fresh' "
    "WHEN " + FAILED_FOR_GOOD + "THEN 'failed' "
    "WHEN " + HAS_PREVIOUS + "THEN 'stale' ELSE 'pending' END"
)
