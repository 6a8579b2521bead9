"""Write one file's doc: the overview call when its key changed, then render and write.

Shared by ``spanlens docgen`` and the server's docgen job. SQL runs in :meth:`Docgen.load`
(call it where the store may be used); file writes are synchronous: the server runs
:meth:`Docgen.write` in a thread, under the docs lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spanlens_lsp.docgen.overview import DOCGEN_PROMPT_VERSION, OverviewSpan, OverviewWriter
from spanlens_lsp.docgen.plan import CallGraph, FilePlan, coverage, needs_model_call, signature_of
from spanlens_lsp.docgen.render import render_doc
from spanlens_lsp.docgen.write import doc_path, docs_dir, read_header, remove_orphans, write_atomic
from spanlens_lsp.enrichment.call.path import CallPath
from spanlens_lsp.enrichment.planning.privacy import remote_allowed
from spanlens_lsp.settings import Settings
from spanlens_lsp.states import ENRICHMENT_VERSION
from spanlens_lsp.store.docs import doc_files
from spanlens_lsp.store.handle import Store


@dataclass(slots=True)
class DocResult:
    """What writing one doc did."""

    path: str
    doc: Path | None = None
    written: bool = False
    model_calls: int = 0
    #: Re-rendered from the overview in the old doc, without a model call.
    rendered_only: bool = False
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        """For ``--json`` and the ``docgenFile`` command."""
        return {
            "path": self.path,
            "doc": str(self.doc) if self.doc else None,
            "written": self.written,
            "modelCalls": self.model_calls,
            "renderedOnly": self.rendered_only,
            "error": self.error,
        }


class Docgen:
    """Docs of one workspace: where they go, what is stale, and writing one."""

    def __init__(self, root: Path, settings: Settings, calls: CallPath | None = None):
        """Overviews are asked through ``calls``, the process's one call path (None: no
        overview can be written, e.g. to count docs)."""
        self.root = root
        self.settings = settings
        #: Raises DocPathError when ``docgen.dir`` leaves the workspace or is a link.
        self.folder = docs_dir(root, settings.docgen.dir)
        self.writer = OverviewWriter(settings, calls)
        self.prompt_version = DOCGEN_PROMPT_VERSION

    @property
    def model(self) -> str | None:
        """The overview model (part of every overview key)."""
        return self.writer.model

    def load(self, store: Store) -> CallGraph:
        """The workspace's spans and cross-references as they are in the index now."""
        max_failures = self.settings.enrichment.max_failures
        return CallGraph(doc_files(store, ENRICHMENT_VERSION, max_failures))

    def doc_of(self, path: str) -> Path:
        """Where ``path``'s doc goes (confined to the docs folder)."""
        return doc_path(self.folder, path)

    def header(self, path: str) -> tuple[str, str] | None:
        """The keys in ``path``'s doc, or None without a (spanlens) doc."""
        try:
            found = read_header(self.doc_of(path))
        except ValueError:
            return None
        return (found[0], found[1]) if found else None

    def plan(self, graph: CallGraph, path: str) -> FilePlan:
        """``path``'s plan with its keys."""
        return graph.plan(path, self.prompt_version, self.model)

    def coverage(self, graph: CallGraph) -> dict[str, int]:
        """Files by doc state (fresh, stale, missing, waiting)."""
        return coverage(graph, self.header, self.prompt_version, self.model)

    def remove_orphans(self, graph: CallGraph) -> list[str]:
        """Remove docs whose source file left the index. Hold the docs lock."""
        return remove_orphans(self.folder, graph.files)

    async def overview(self, plan: FilePlan) -> tuple[dict[str, Any] | None, DocResult]:
        """The overview to render: the old doc's when its key still holds, else one call."""
        result = DocResult(plan.path)
        target = self.doc_of(plan.path)
        old = read_header(target)
        if old is not None and not needs_model_call(plan, old[:2]) and old[2] is not None:
            result.rendered_only = True
            return old[2], result
        spans = [
            OverviewSpan(
                s.span.name,
                s.span.kind,
                signature_of(s),
                (s.enrichment or {}).get("summary"),
            )
            for s in plan.doc.spans
        ]
        prompt_text = "\n".join(f"{s.name} {s.signature} {s.summary or ''}" for s in spans)
        local_only = any(b.is_remote for b in self.writer.endpoints) and not remote_allowed(
            self.root, plan.path, self.settings.index.exclude, prompt_text
        )
        reply = await self.writer.write(plan.path, plan.doc.language, spans, local_only=local_only)
        result.model_calls = reply.calls
        result.error = reply.error
        return reply.data, result

    def write(self, plan: FilePlan, overview: dict[str, Any], result: DocResult) -> DocResult:
        """Render and write atomically. Hold the docs lock."""
        target = self.doc_of(plan.path)
        write_atomic(target, render_doc(plan, overview))
        result.doc = target
        result.written = True
        return result


async def write_docs(
    docgen: Docgen, plans: list[FilePlan], progress: Any = None
) -> list[DocResult]:
    """Write each plan's doc in turn (the caller holds the docs lock); ``progress(done,
    total)`` after each. A file whose overview fails is reported and skipped."""
    results = []
    for done, plan in enumerate(plans, 1):
        overview, result = await docgen.overview(plan)
        if overview is not None:
            try:
                docgen.write(plan, overview, result)
            except OSError as exc:
                result.error = f"cannot write {result.path}'s doc: {exc.strerror or exc}"
        results.append(result)
        if progress is not None:
            progress(done, len(plans))
    return results
