"""Numbered schema migrations, recorded in the ``migrations`` table of each database."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from spanlens_lsp.store.errors import StoreTooNew

#: (version, name, SQL). Append only; never edit a migration that has shipped.
MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "initial schema",
        """
        CREATE TABLE files (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            language TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            parse_errors INTEGER NOT NULL DEFAULT 0,
            indexed_at REAL NOT NULL
        );
        CREATE TABLE spans (
            id INTEGER PRIMARY KEY,
            file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            ordinal INTEGER NOT NULL DEFAULT 0,
            start_line INTEGER NOT NULL,
            start_col INTEGER NOT NULL,
            end_line INTEGER NOT NULL,
            end_col INTEGER NOT NULL,
            name_start_line INTEGER NOT NULL,
            name_start_col INTEGER NOT NULL,
            name_end_line INTEGER NOT NULL,
            name_end_col INTEGER NOT NULL,
            content_hash TEXT NOT NULL,
            facts TEXT NOT NULL,
            enriched_hash TEXT,
            UNIQUE (file_id, name, kind, ordinal)
        );
        CREATE INDEX spans_by_hash ON spans(content_hash);
        CREATE INDEX spans_by_position ON spans(file_id, start_line);
        CREATE TABLE enrichments (
            content_hash TEXT NOT NULL,
            schema_version TEXT NOT NULL,
            data TEXT NOT NULL,
            model TEXT NOT NULL,
            tier TEXT NOT NULL,
            backend TEXT NOT NULL,
            host TEXT NOT NULL,
            tokens_in INTEGER NOT NULL DEFAULT 0,
            tokens_out INTEGER NOT NULL DEFAULT 0,
            duration_ms REAL NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            PRIMARY KEY (content_hash, schema_version)
        );
        CREATE TABLE attempts (
            id INTEGER PRIMARY KEY,
            started_at REAL NOT NULL,
            span_hashes TEXT NOT NULL,
            batch_size INTEGER NOT NULL DEFAULT 1,
            tier TEXT NOT NULL,
            backend TEXT NOT NULL,
            host TEXT NOT NULL,
            model TEXT NOT NULL,
            tokens_in INTEGER NOT NULL DEFAULT 0,
            tokens_out INTEGER NOT NULL DEFAULT 0,
            duration_ms REAL NOT NULL DEFAULT 0,
            outcome TEXT NOT NULL,
            failure_type TEXT,
            detail TEXT,
            gpu TEXT,
            cost REAL NOT NULL DEFAULT 0
        );
        CREATE INDEX attempts_by_time ON attempts(started_at);
        CREATE TABLE failures (
            content_hash TEXT PRIMARY KEY,
            count INTEGER NOT NULL,
            last_error TEXT NOT NULL,
            next_retry_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE docs (
            path TEXT PRIMARY KEY,
            source_sha256 TEXT NOT NULL,
            doc_path TEXT NOT NULL,
            generated_at REAL NOT NULL,
            status TEXT NOT NULL
        );
        """,
    ),
    (
        2,
        "full-text search over span names and enrichment summaries",
        # Trigram tokens make substrings match inside snake_case and camelCase names, so
        # "parse config" finds parse_config and parseConfig as well as summaries. Triggers
        # keep the index in step with every writer (indexer, engine, CLI).
        """
        CREATE VIRTUAL TABLE span_search USING fts5(
            name, summary, tokenize = 'trigram case_sensitive 0'
        );
        INSERT INTO span_search (rowid, name, summary)
            SELECT s.id, s.name, COALESCE((
                SELECT json_extract(e.data, '$.summary') FROM enrichments e
                WHERE e.content_hash IN (s.content_hash, s.enriched_hash)
                ORDER BY e.created_at DESC LIMIT 1), '')
            FROM spans s;
        CREATE TRIGGER span_search_insert AFTER INSERT ON spans BEGIN
            INSERT INTO span_search (rowid, name, summary) VALUES (new.id, new.name, COALESCE((
                SELECT json_extract(e.data, '$.summary') FROM enrichments e
                WHERE e.content_hash = new.content_hash
                ORDER BY e.created_at DESC LIMIT 1), ''));
        END;
        CREATE TRIGGER span_search_rename AFTER UPDATE OF name ON spans BEGIN
            UPDATE span_search SET name = new.name WHERE rowid = new.id;
        END;
        CREATE TRIGGER span_search_delete AFTER DELETE ON spans BEGIN
            DELETE FROM span_search WHERE rowid = old.id;
        END;
        CREATE TRIGGER span_search_enriched AFTER INSERT ON enrichments BEGIN
            UPDATE span_search SET summary = COALESCE(json_extract(new.data, '$.summary'), '')
            WHERE rowid IN (SELECT id FROM spans WHERE content_hash = new.content_hash);
        END;
        CREATE TRIGGER span_search_reenriched AFTER UPDATE ON enrichments BEGIN
            UPDATE span_search SET summary = COALESCE(json_extract(new.data, '$.summary'), '')
            WHERE rowid IN (SELECT id FROM spans WHERE content_hash = new.content_hash);
        END;
        """,
    ),
    (
        3,
        "attempts: spans each call enriched (calls saved by batching)",
        """
        ALTER TABLE attempts ADD COLUMN enriched INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX failures_by_retry ON failures(next_retry_at);
        """,
    ),
    (
        4,
        "search index filled on demand, not by a trigger on every span insert",
        # The insert trigger made a cold index several times slower (trigram tokenising per
        # row, inside the indexer's transaction). store.symbols.sync_search_index adds new
        # spans in one statement before a search; deletes still go through their trigger, so
        # the index never holds a span that is gone.
        """
        DROP TRIGGER span_search_insert;
        """,
    ),
    (
        5,
        "claims: spans in flight, leased to one process",
        # Two processes on one workspace (two `enrich` runs, a run beside an editor) must not
        # call a model for the same span twice. A claim is a lease: it expires unless its
        # owner renews it, so a process killed with -9 holds nothing for long. Pending work
        # stays derived from enrichments and failures; a claim only says "not available".
        """
        CREATE TABLE claims (
            content_hash TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            expires_at REAL NOT NULL
        );
        CREATE INDEX claims_by_owner ON claims(owner);
        """,
    ),
    (
        6,
        "doc failures: a file whose doc failed backs off like a span",
        # Held in the store, not in memory, so the backoff holds across server restarts and
        # CLI runs. A row counts only while the file's overview key is the one that failed.
        """
        CREATE TABLE doc_failures (
            path TEXT PRIMARY KEY,
            overview_key TEXT NOT NULL,
            count INTEGER NOT NULL,
            last_error TEXT NOT NULL,
            next_retry_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        """,
    ),
    (
        7,
        "embeddings: one vector per span text and embedding model",
        # Content-addressed like enrichments: keyed by the span's hash and the embedding model,
        # with the hash of the text that was embedded (spanlens_lsp.embedding.text), so a span whose
        # text is unchanged is never sent again and a new span with a known text reuses the
        # vector. Pending work is derived (a span whose current text hash has no row); nothing
        # here says "to do". Vectors are little-endian float32, L2-normalised.
        """
        CREATE TABLE embeddings (
            content_hash TEXT NOT NULL,
            model TEXT NOT NULL,
            text_hash TEXT NOT NULL,
            dims INTEGER NOT NULL,
            vector BLOB NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (content_hash, model)
        );
        CREATE INDEX embeddings_by_text ON embeddings(model, text_hash);
        """,
    ),
    (
        8,
        "embeddings: the inputs of each embedded text, as SQL renders them",
        # What a span's embedded text is made of (kind, name, summary, signature, docstring;
        # spanlens_lsp.store.embeddings.embedding_source), so the idle check finds the spans to
        # embed in one query instead of rebuilding and hashing every span's text in Python.
        # NULL for rows written before: their spans are checked once, in Python, and keep
        # their vectors when the text is unchanged.
        """
        ALTER TABLE embeddings ADD COLUMN source TEXT;
        """,
    ),
]

#: The newest migration this code knows (from the list: never a constant to keep in step).
LATEST_VERSION = max(number for number, _, _ in MIGRATIONS)


def current_version(conn: sqlite3.Connection) -> int:
    """The highest migration applied to ``conn`` (0 for an empty database)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'migrations'"
    ).fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT MAX(version) FROM migrations").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection, path: Path | None = None) -> list[int]:
    """Apply every migration newer than the database, each in its own transaction.

    Safe when several processes open a new database at once: each migration takes the write
    lock first and re-reads the applied version under it, so a migration another process
    applied meanwhile is skipped rather than run twice (``table files already exists``).
    A database from a newer spanlens (a migration above :data:`LATEST_VERSION`) is refused.
    """
    applied: list[int] = []
    version = current_version(conn)
    _refuse_newer(version, path)
    if version == LATEST_VERSION:
        return applied
    for number, name, sql in MIGRATIONS:
        if number <= version:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
            version = current_version(conn)
            _refuse_newer(version, path)
            if number <= version:
                conn.execute("COMMIT")
                continue
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (number, name, time.time()),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        applied.append(number)
    return applied


def _refuse_newer(version: int, path: Path | None) -> None:
    if version > LATEST_VERSION:
        name = path.name if path is not None else "the index"
        where = f" or delete {path}" if path is not None else ""
        raise StoreTooNew(
            f"{name} was written by a newer spanlens (migration {version} > {LATEST_VERSION}); "
            f"upgrade spanlens{where}"
        )


def _statements(sql: str) -> list[str]:
    """Split a migration script into complete statements (trigger bodies hold semicolons)."""
    statements: list[str] = []
    current = ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements
