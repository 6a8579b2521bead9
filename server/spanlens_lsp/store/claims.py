"""Claims: leases that keep two processes from enriching one span at once (enrichment.claims)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from spanlens_lsp.store.handle import Store


def claim_hashes(
    store: Store, hashes: Sequence[str], owner: str, now: float, lease: float
) -> set[str]:
    """Claim ``hashes`` for ``owner`` until ``now + lease``, in one transaction; returns the
    hashes ``owner`` holds now. A hash held by another owner whose lease has not run out is
    left alone; an expired one is taken over; ``owner``'s own claims are renewed."""
    if not hashes:
        return set()
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO claims (content_hash, owner, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT(content_hash) DO UPDATE SET owner = excluded.owner, "
            "expires_at = excluded.expires_at "
            "WHERE claims.owner = excluded.owner OR claims.expires_at <= ?",
            ((h, owner, now + lease, now) for h in hashes),
        )
        return _owned(conn, hashes, owner)


def _in_chunks(hashes: Sequence[str], size: int = 500) -> Iterator[tuple[list[str], str]]:
    """``hashes`` without repeats, in parts small enough for one ``IN (...)`` each, with the
    placeholders for that part."""
    unique = list(dict.fromkeys(hashes))
    for start in range(0, len(unique), size):
        part = unique[start : start + size]
        yield part, ",".join("?" * len(part))


def _owned(conn: Any, hashes: Sequence[str], owner: str) -> set[str]:
    held: set[str] = set()
    for part, marks in _in_chunks(hashes):
        held.update(
            str(row[0])
            for row in conn.execute(
                f"SELECT content_hash FROM claims WHERE owner = ? AND content_hash IN ({marks})",
                [owner, *part],
            )
        )
    return held


def claim_owners(store: Store, hashes: Sequence[str]) -> dict[str, str]:
    """Who holds each of ``hashes`` (hashes nobody claims are left out)."""
    owners: dict[str, str] = {}
    for part, marks in _in_chunks(hashes):
        owners.update(
            (str(h), str(o))
            for h, o in store.conn.execute(
                f"SELECT content_hash, owner FROM claims WHERE content_hash IN ({marks})", part
            )
        )
    return owners


def release_claims(store: Store, hashes: Iterable[str] | None, owner: str) -> None:
    """Give up ``owner``'s claims on ``hashes`` (all of its claims when None)."""
    with store.transaction() as conn:
        if hashes is None:
            conn.execute("DELETE FROM claims WHERE owner = ?", (owner,))
        else:
            conn.executemany(
                "DELETE FROM claims WHERE content_hash = ? AND owner = ?",
                ((h, owner) for h in hashes),
            )


def drop_claims_of(store: Store, owners: Iterable[str]) -> None:
    """Forget every claim of ``owners`` (processes known to be gone)."""
    with store.transaction() as conn:
        conn.executemany("DELETE FROM claims WHERE owner = ?", ((o,) for o in owners))


def claimed_elsewhere(store: Store, hashes: Sequence[str], owner: str, now: float) -> set[str]:
    """Which of ``hashes`` another owner holds under a lease that has not run out."""
    held: set[str] = set()
    for part, marks in _in_chunks(hashes):
        held.update(
            str(row[0])
            for row in store.conn.execute(
                "SELECT content_hash FROM claims WHERE owner != ? AND expires_at > ? "
                f"AND content_hash IN ({marks})",
                [owner, now, *part],
            )
        )
    return held
