"""What the scheduler needs of the enrichment engine, as protocols (imports point down: the
engine lives above, in ``spanlens_lsp.enrichment``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from spanlens_lsp.states import Deferral, Status
from spanlens_lsp.store.rows import SpanRow


class Outcome(Protocol):
    """What the engine reports per span (``spanlens_lsp.enrichment.engine.SpanOutcome``)."""

    span_id: int
    content_hash: str
    status: Status
    error: str | None
    #: Set for ``deferred`` outcomes.
    deferral: Deferral | None


class Enricher(Protocol):
    """The part of ``EnrichmentEngine`` the enrichment lanes use."""

    async def enrich(self, spans: list[SpanRow], *, tier: str | None = None) -> list[Any]:
        """Enrich ``spans``; never raises for model failures."""
        ...

    def capacity(self) -> int:
        """Useful number of concurrent :meth:`enrich` calls."""
        ...

    def health(self) -> dict[str, Any]:
        """Per-endpoint state."""
        ...

    async def aclose(self) -> None:
        """Close clients."""
        ...


ResultFn = Callable[[list[SpanRow], list[Any]], None]
