"""Claims: a span in flight is claimed in the store, so that two processes on one workspace
(two CLI runs, a CLI run beside an editor) never call a model for it twice.

Pending work stays derived: a claimed span is still pending, only not available. Every claim
write goes through the engine's store writer (a worker thread), so waiting on the database's
write lock never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import sqlite3
import time
import uuid

from spanlens_lsp.store import claims as leases
from spanlens_lsp.store import enrichments as queries
from spanlens_lsp.store.errors import StoreError
from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.rows import SpanRow
from spanlens_lsp.store.worker import StoreWrites

log = logging.getLogger(__name__)

#: How long a claim holds without renewal: a process killed with -9 frees its spans after
#: this (at once on the same machine, where a dead owner is recognised by its pid).
CLAIM_LEASE_SECONDS = 60.0
#: How often a live engine renews the claims it holds.
CLAIM_RENEW_SECONDS = 20.0


def new_owner() -> str:
    """Who holds a claim in the ``claims`` table: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class Claims:
    """The claims one engine holds, taken, renewed and released through ``writer``."""

    def __init__(self, writer: StoreWrites, owner: str) -> None:
        self.writer = writer
        self.owner = owner
        self.held: set[str] = set()
        self._renewer: asyncio.Task[None] | None = None

    async def take(self, hashes: list[str]) -> set[str]:
        """Claim what nobody else holds (a dead local owner's claims are taken over).
        Raises the store's error when the claim cannot be written."""
        owner = self.owner
        got = await self.writer.run_first(lambda store: take_claims(store, hashes, owner))
        self.held |= got
        if got and (self._renewer is None or self._renewer.done()):
            self._renewer = asyncio.get_running_loop().create_task(self._renew())
        return got

    def forget(self, hashes: set[str]) -> None:
        """Stop holding ``hashes`` without writing (the store takes no writes)."""
        self.held -= hashes

    async def release(self, hashes: set[str]) -> None:
        self.held -= hashes
        owner = self.owner
        try:
            await self.writer.run_first(lambda store: leases.release_claims(store, hashes, owner))
        except (sqlite3.Error, StoreError) as exc:
            # The lease runs out by itself; nothing is lost.
            log.debug("releasing %d claims failed: %s", len(hashes), exc)

    async def close(self, release: bool) -> None:
        """Stop renewing; with ``release``, give up every claim of this owner at once."""
        if self._renewer is not None:
            self._renewer.cancel()
            self._renewer = None
        self.held = set()
        if not release:
            return
        owner = self.owner
        try:
            await self.writer.run_first(lambda store: leases.release_claims(store, None, owner))
        except (sqlite3.Error, StoreError, RuntimeError):
            pass  # the lease runs out by itself (RuntimeError: the writer is already closed)

    async def _renew(self) -> None:
        while self.held:
            await asyncio.sleep(CLAIM_RENEW_SECONDS)
            renew = functools.partial(_renew_claims, hashes=list(self.held), owner=self.owner)
            try:
                await self.writer.run_first(renew)
            except (sqlite3.Error, StoreError) as exc:
                log.warning("renewing claims failed: %s", exc)


def _renew_claims(store: Store, hashes: list[str], owner: str) -> None:
    leases.claim_hashes(store, hashes, owner, time.time(), CLAIM_LEASE_SECONDS)


def take_claims(store: Store, hashes: list[str], owner: str) -> set[str]:
    """Claim ``hashes`` for ``owner`` in ``store`` (in the writer's thread)."""
    got = leases.claim_hashes(store, hashes, owner, time.time(), CLAIM_LEASE_SECONDS)
    missing = [h for h in hashes if h not in got]
    if missing:
        dead = [
            other
            for other in set(leases.claim_owners(store, missing).values())
            if owner_is_dead(other)
        ]
        if dead:
            leases.drop_claims_of(store, dead)
            got |= leases.claim_hashes(store, missing, owner, time.time(), CLAIM_LEASE_SECONDS)
    return got


def owner_is_dead(owner: str) -> bool:
    """Whether a claim's owner is a process of this machine that no longer runs."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def settled_elsewhere(
    store: Store, spans: list[SpanRow], version: str, max_failures: int, owner: str
) -> tuple[list[int], list[int]]:
    """Of spans another process claimed: (ids now enriched, failed for good or gone;
    ids nobody holds any more, free to take).

    Done is the store's pending rule (:func:`~spanlens_lsp.store.enrichments.span_to_enrich`),
    waiting for a retry time aside: such a span is not done, it only waits."""
    finished: list[int] = []
    open_spans: list[SpanRow] = []
    now = time.time()
    for span in spans:
        current = queries.span_to_enrich(
            store, span.id, version, max_failures, now, waiting_too=True
        )
        if current is None or current.content_hash != span.content_hash:
            finished.append(span.id)
        else:
            open_spans.append(span)
    held = leases.claimed_elsewhere(store, [s.content_hash for s in open_spans], owner, now)
    if held:
        owners = leases.claim_owners(store, list(held))
        held = {h for h, owner in owners.items() if not owner_is_dead(owner)}
    free = [s.id for s in open_spans if s.content_hash not in held]
    return finished, free
