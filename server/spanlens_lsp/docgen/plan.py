"""Which docs to write: cross-references, the two freshness keys, candidates and coverage.

A doc's **overview key** hashes what its model-written overview depends on (the file's source
sha256, its spans' enrichments, the prompt version, the model): a change costs one model call.
Its **render key** adds what only the rendered page depends on (the signatures of the spans it
links to, the set of its callers): a change re-renders without any model call. Both sit in the
doc's header, so the docs folder itself says what is fresh; no queue is stored.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from spanlens_lsp.states import SpanState, is_settled
from spanlens_lsp.store.docs import DocFile, DocSpan

#: Files sampled per candidate search (random seek instead of a queue).
SAMPLE_SIZE = 10
#: Up to this many indexed files, a sample that is all fresh is followed by a look at every
#: other file (as cheap as the coverage count the job makes anyway).
FULL_SCAN_FILES = 5000
#: A call name matching more spans than this elsewhere in the workspace is not linked.
MAX_LINKS_PER_CALL = 3

DOC_FRESH = "fresh"
DOC_STALE = "stale"  # the render key changed; a model call only if the overview key did too
DOC_MISSING = "missing"
DOC_WAITING = "waiting"  # some span is still pending enrichment


@dataclass(frozen=True, slots=True)
class SpanRef:
    """A span another doc links to."""

    path: str
    name: str
    signature: str

    @property
    def anchor(self) -> str:
        """The span's anchor in its doc."""
        return anchor_of(self.name)


@dataclass(slots=True)
class FilePlan:
    """Everything needed to decide about, and write, one file's doc."""

    doc: DocFile
    calls: dict[int, list[SpanRef]] = field(default_factory=dict)
    callers: dict[int, list[SpanRef]] = field(default_factory=dict)
    overview_key: str = ""
    render_key: str = ""

    @property
    def path(self) -> str:
        """The source file's workspace-relative path."""
        return self.doc.path

    @property
    def ready(self) -> bool:
        """Every span is enriched or failed for good: nothing would be invented."""
        return all(is_settled(s.state) for s in self.doc.spans)


def anchor_of(name: str) -> str:
    """A stable HTML anchor for a span name (``Config.load`` -> ``config-load``)."""
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-") or "span"


def signature_of(span: DocSpan) -> str:
    """The span's signature from its facts (its name when the parser gave none)."""
    value = span.span.facts.get("signature")
    return str(value) if value else f"{span.span.kind} {span.span.name}"


def _call_names(span: DocSpan) -> list[str]:
    calls = span.span.facts.get("calls") or []
    names = []
    for call in calls if isinstance(calls, list) else []:
        bare = str(call).replace("()", "").rsplit(".", 1)[-1].strip()
        if bare and bare not in names:
            names.append(bare)
    return names


class CallGraph:
    """Calls resolved by name across the workspace: a call names a span when the last part of
    the call equals the last part of the span's name, in the same file first."""

    def __init__(self, files: dict[str, DocFile]) -> None:
        self.files = files
        self._by_name: dict[str, list[SpanRef]] = {}
        self._ref: dict[int, SpanRef] = {}
        for doc in files.values():
            for span in doc.spans:
                ref = SpanRef(doc.path, span.span.name, signature_of(span))
                self._ref[span.span.id] = ref
                self._by_name.setdefault(span.span.name.rsplit(".", 1)[-1], []).append(ref)
        self._callers: dict[SpanRef, list[SpanRef]] = {}
        self._calls: dict[int, list[SpanRef]] = {}
        for doc in files.values():
            for span in doc.spans:
                me = self._ref[span.span.id]
                targets = self._resolve(doc.path, span)
                targets = [t for t in targets if t != me]
                self._calls[span.span.id] = targets
                for target in targets:
                    self._callers.setdefault(target, []).append(me)

    def _resolve(self, path: str, span: DocSpan) -> list[SpanRef]:
        found: list[SpanRef] = []
        for name in _call_names(span):
            matches = self._by_name.get(name, [])
            local = [m for m in matches if m.path == path]
            chosen = local or (matches if len(matches) <= MAX_LINKS_PER_CALL else [])
            found.extend(m for m in chosen if m not in found)
        return found

    def plan(self, path: str, prompt_version: str, model: str | None) -> FilePlan:
        """The plan of ``path``'s doc with both keys computed."""
        doc = self.files[path]
        plan = FilePlan(doc)
        for span in doc.spans:
            plan.calls[span.span.id] = self._calls.get(span.span.id, [])
            plan.callers[span.span.id] = sorted(
                set(self._callers.get(self._ref[span.span.id], [])),
                key=lambda r: (r.path, r.name),
            )
        plan.overview_key = _digest(
            {
                "sha256": doc.sha256,
                "spans": [
                    [s.span.name, s.span.content_hash, s.state, _digest(s.enrichment)]
                    for s in doc.spans
                ],
                "prompt": prompt_version,
                "model": model,
            }
        )
        links = sorted(
            {(r.path, r.name, r.signature) for refs in plan.calls.values() for r in refs}
        )
        callers = sorted({(r.path, r.name) for refs in plan.callers.values() for r in refs})
        plan.render_key = _digest(
            {
                "overview": plan.overview_key,
                "links": links,
                "callers": callers,
                "signatures": [signature_of(s) for s in doc.spans],
                "models": [s.model for s in doc.spans],
            }
        )
        return plan


def _digest(value: Any) -> str:
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


#: Reads a doc's header keys: (overview key, render key), or None when there is no doc.
HeaderReader = Callable[[str], "tuple[str, str] | None"]


def doc_state(plan: FilePlan, header: tuple[str, str] | None) -> str:
    """``fresh``, ``stale``, ``missing`` or ``waiting`` for ``plan`` given its doc's header."""
    if not plan.ready:
        return DOC_WAITING
    if header is None:
        return DOC_MISSING
    return DOC_FRESH if header == (plan.overview_key, plan.render_key) else DOC_STALE


def needs_model_call(plan: FilePlan, header: tuple[str, str] | None) -> bool:
    """Whether writing ``plan`` costs a model call (its overview key changed)."""
    return header is None or header[0] != plan.overview_key


def pick_candidate(
    graph: CallGraph,
    read_header: HeaderReader,
    prompt_version: str,
    model: str | None,
    *,
    skip: Callable[[FilePlan], bool] = lambda plan: False,
    rng: random.Random | None = None,
    sample: int = SAMPLE_SIZE,
    scan_all_up_to: int = FULL_SCAN_FILES,
) -> FilePlan | None:
    """Random seek: sample ``sample`` files, return the first whose doc is missing or stale.

    When every sampled file is fresh, waiting or ``skip``ped (backing off) and the index has
    at most ``scan_all_up_to`` files, the rest are looked at too (in random order), so one
    lone stale or missing doc is found at once rather than by chance, cycles later. None when
    no file needs its doc written.
    """
    paths = list(graph.files)
    rng = rng or random.Random()
    rng.shuffle(paths)
    seen = paths[:sample] if len(paths) > scan_all_up_to else paths
    for path in seen:
        plan = graph.plan(path, prompt_version, model)
        if doc_state(plan, read_header(path)) in (DOC_MISSING, DOC_STALE) and not skip(plan):
            return plan
    return None


def coverage(
    graph: CallGraph, read_header: HeaderReader, prompt_version: str, model: str | None
) -> dict[str, int]:
    """Files by doc state: fresh, stale, missing, waiting."""
    counts = {DOC_FRESH: 0, DOC_STALE: 0, DOC_MISSING: 0, DOC_WAITING: 0}
    for path in graph.files:
        plan = graph.plan(path, prompt_version, model)
        counts[doc_state(plan, read_header(path))] += 1
    return counts


def failed_span(span: DocSpan) -> bool:
    """Whether the doc shows ``span`` as failed (facts only, marked)."""
    return span.state == SpanState.FAILED
