"""Search by meaning (issue 19): recall@10 and MRR@10 of names-only, FTS, embeddings and hybrid.

Corpus: ``bench/corpus/retrieval`` (Python, Go and TypeScript; 129 spans, 109 with a
docstring or doc comment), plus the fixtures of ``tests/fixtures`` and the other bench corpora
as distractors that no query asks for. Queries (``bench/corpus/retrieval/queries.json``): the
first sentence of each docstring or doc comment (a Go comment's leading name dropped), each
with its expected span; ``--write-queries`` derives the file again from the corpus, and every
run checks that it still matches.

What is indexed is a copy of the corpus with every docstring and doc comment removed from the
source (:func:`strip_docs`) before indexing, so no span's facts, name search or embedded text
can see the sentence its query was made from; the run asserts that no indexed span kept one.
There are no summaries: the real model needs ~38 s a span on the 2-core machine, so the FTS
row is today's search over names (and empty summaries).

Rows, in one run over the same index:

* names: the name list of the hybrid ranking, :func:`spanlens_lsp.search.names.name_matches`
  (every query word in the name);
* name words, any: query words matched against the words of span names (any word, a 4-letter
  prefix counts), the most words first: a looser bench-side baseline of what names can do;
* FTS: today's workspace/symbol search, :func:`spanlens_lsp.store.symbols.search_spans`;
* embeddings alone and hybrid (opt-in, ``SPANLENS_BENCH_RETRIEVAL=1``): the spans embedded by
  :func:`spanlens_lsp.app.embed_workspace` (the text of :mod:`spanlens_lsp.embedding.text`) through
an
  ``[[embeddings]]`` endpoint of provider ``openai``, each query by the same embedder, then
  :func:`spanlens_lsp.search.vectors.nearest_spans` and :func:`spanlens_lsp.search.hybrid.rank`.

The embedding endpoint: ``SPANLENS_BENCH_EMBED_URL`` and ``SPANLENS_BENCH_EMBED_MODEL`` name
a running OpenAI-compatible one; otherwise the bench starts llama.cpp's server (xllamacpp, the
``[local]`` extra) in embedding mode on ``SPANLENS_BENCH_EMBED_GGUF`` (default: the installed
all-MiniLM-L6-v2 of ``spanlens model install all-minilm-l6-v2``, converted from its PyPI wheel;
``SPANLENS_CACHE_DIR`` names the cache) with
``SPANLENS_BENCH_EMBED_POOLING`` (mean, last or cls; default mean) on
``SPANLENS_BENCH_EMBED_THREADS`` threads (default 1: on 2 shared, loaded cores, 2 threads made
every call ~12x slower, each waiting on the other at every step of the graph). The
server is started here (``--serve``), so pooling and threads can be varied.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from run import print_table
from spanlens_lsp.app import embed_workspace
from spanlens_lsp.config import load_settings
from spanlens_lsp.embedding.endpoints import close_embedders, embedders_from_settings
from spanlens_lsp.indexing.indexer import index_files
from spanlens_lsp.localmodel.catalog import EMBEDDING_MODEL
from spanlens_lsp.localmodel.paths import installed_model_path
from spanlens_lsp.search.hybrid import rank
from spanlens_lsp.search.names import name_matches
from spanlens_lsp.search.vectors import nearest_spans
from spanlens_lsp.settings import Settings
from spanlens_lsp.store.db import open_store
from spanlens_lsp.store.handle import Store
from spanlens_lsp.store.rows import SPAN_SELECT, SpanRow, span_row
from spanlens_lsp.store.symbols import search_spans

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CORPUS = HERE / "corpus" / "retrieval"
QUERIES = CORPUS / "queries.json"
#: Indexed beside the corpus, asked for by no query.
DISTRACTORS = {
    "fixtures": REPO / "tests" / "fixtures",
    "quality": HERE / "corpus" / "quality",
    "speed": HERE / "corpus" / "speed",
}
OPT_IN = "SPANLENS_BENCH_RETRIEVAL"
#: Hits looked at per query.
K = 10

_C_STYLE = {".go", ".ts", ".tsx", ".js", ".jsx", ".rs", ".java"}
_BLOCK_COMMENT = re.compile(r"^[ \t]*/\*.*?\*/[ \t]*\n", re.DOTALL | re.MULTILINE)
_LINE_COMMENT = re.compile(r"^[ \t]*//.*\n", re.MULTILINE)


def strip_docs(text: str, suffix: str) -> str:
    """``text`` without docstrings (Python) or comments standing on their own lines (Go,
    TypeScript, JavaScript, Rust, Java: doc comments are such comments)."""
    if suffix == ".py":
        tree = ast.parse(text)
        lines = text.splitlines(keepends=True)
        drop: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                body = node.body
                if (
                    body
                    and isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)
                ):
                    first = body[0]
                    drop.update(range(first.lineno - 1, (first.end_lineno or first.lineno)))
                    if len(body) == 1:  # a body of only a docstring still needs a statement
                        indent = lines[first.lineno - 1][: first.col_offset]
                        lines[first.lineno - 1] = f"{indent}pass\n"
                        drop.discard(first.lineno - 1)
        return "".join(line for i, line in enumerate(lines) if i not in drop)
    if suffix in _C_STYLE:
        return _LINE_COMMENT.sub("", _BLOCK_COMMENT.sub("", text))
    return text


def _copy_stripped(source: Path, dest: Path) -> None:
    for path in sorted(source.rglob("*")):
        if not path.is_file() or path.suffix not in _C_STYLE | {".py"}:
            continue
        target = dest / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(strip_docs(path.read_text(encoding="utf-8"), path.suffix))


def build_workspace(root: Path) -> None:
    """The indexed workspace: the corpus under ``retrieval/`` and the distractors, all with
    their docstrings and doc comments removed."""
    _copy_stripped(CORPUS, root / "retrieval")
    for name, source in DISTRACTORS.items():
        _copy_stripped(source, root / "other" / name)


def index_bytes(store: Store) -> int:
    """The index's size as SQLite counts it (pages in use, the write-ahead log's included)."""
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    return int(pages) * int(store.conn.execute("PRAGMA page_size").fetchone()[0])


def all_spans(store: Store) -> list[SpanRow]:
    """Every span of the index, in id order."""
    rows = store.conn.execute(SPAN_SELECT + "ORDER BY s.id").fetchall()
    return [span_row(row, store.conn) for row in rows]


def span_doc(span: SpanRow) -> str:
    """The docstring or doc comment the indexer found for ``span`` ('' when none)."""
    return str(span.facts.get("docstring") or span.facts.get("doc") or "").strip()


def first_sentence(doc: str, name: str) -> str:
    """A query from a docstring: its first sentence, without a Go comment's leading name,
    rST backquotes or the closing full stop."""
    text = " ".join(doc.split())
    sentence = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0].rstrip(".")
    short = name.rsplit(".", 1)[-1]
    if sentence.startswith(short + " "):
        sentence = sentence[len(short) + 1 :]
    return sentence.replace("``", "")


def queries_from_docs() -> list[dict[str, str]]:
    """The queries the corpus's docstrings give, with their expected spans (path, name)."""
    with tempfile.TemporaryDirectory(prefix="spanlens-bench-retrieval-") as tmp:
        root = Path(tmp)
        shutil.copytree(CORPUS, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.json"))
        store = open_store(root)
        try:
            index_files(root, store, workers=1)
            spans = all_spans(store)
        finally:
            store.close()
    return [
        {"query": first_sentence(span_doc(s), s.name), "path": s.path, "name": s.name}
        for s in sorted(spans, key=lambda s: (s.path, s.start_line))
        if span_doc(s)
    ]


def load_queries() -> list[dict[str, str]]:
    """The committed queries; refuses to run when they no longer match the corpus."""
    committed = json.loads(QUERIES.read_text(encoding="utf-8"))
    if committed != queries_from_docs():
        raise RuntimeError(
            f"{QUERIES} is out of date: run bench/bench_retrieval.py --write-queries"
        )
    return list(committed)


#: Words of a query that say nothing about a name.
_STOP = frozenset(
    "a an and are as at be by for from given has how in into is it its of on or so such "  # noqa: SIM905
    "than that the their them then this to up when which whose with without".split()
)
_NAME_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def _words(text: str) -> list[str]:
    return [w.lower() for w in _NAME_WORD.findall(text)]


def _same_word(a: str, b: str) -> bool:
    return a == b or (len(a) >= 4 and len(b) >= 4 and a[:4] == b[:4])


def names_only(spans: Sequence[SpanRow], query: str, limit: int = K) -> list[SpanRow]:
    """Spans whose name shares words with ``query``, the most shared words first (then the
    shorter name)."""
    wanted = [w for w in _words(query) if w not in _STOP and len(w) >= 3]
    scored = []
    for span in spans:
        name_words = _words(span.name)
        score = sum(any(_same_word(w, n) for n in name_words) for w in wanted)
        if score:
            scored.append((-score, len(span.name), span.id, span))
    return [entry[3] for entry in sorted(scored)[:limit]]


@dataclass(slots=True)
class Scores:
    """recall@K and MRR@K of one way of ranking over the queries."""

    recall: float
    mrr: float
    found: int


def score(
    queries: Sequence[dict[str, str]],
    expected: Sequence[int],
    rank: Callable[[str], Sequence[int]],
) -> Scores:
    """Score ``rank`` (a query's span ids, best first) against the expected span ids."""
    found = 0
    reciprocal = 0.0
    for query, want in zip(queries, expected, strict=True):
        ids = list(rank(query["query"]))[:K]
        if want in ids:
            found += 1
            reciprocal += 1.0 / (ids.index(want) + 1)
    return Scores(found / len(queries), reciprocal / len(queries), found)


def expected_ids(spans: Sequence[SpanRow], queries: Sequence[dict[str, str]]) -> list[int]:
    """The span id each query expects (paths in the workspace are under ``retrieval/``)."""
    by_key = {(s.path, s.name): s.id for s in spans}
    return [by_key[(f"retrieval/{q['path']}", q["name"])] for q in queries]


#: Rows in table order: key, label.
ROWS = (
    ("names", "names (hybrid's name list)"),
    ("name_words_any", "name words, any (bench baseline)"),
    ("fts", "FTS names+summaries (today)"),
    ("keywords_hybrid", "hybrid without embeddings (names + keywords, RRF)"),
    ("embeddings", "embeddings alone"),
    ("hybrid", "hybrid (names + FTS + embeddings, RRF)"),
)


def keyword_rows(
    store: Store, spans: Sequence[SpanRow], queries: Sequence[dict[str, str]]
) -> dict[str, Scores]:
    """The rows that need no model: names, any name word, and today's FTS search."""
    expected = expected_ids(spans, queries)

    def ids(found: Sequence[SpanRow]) -> list[int]:
        return [s.id for s in found]

    return {
        "names": score(queries, expected, lambda q: ids(name_matches(store, q, K))),
        "name_words_any": score(queries, expected, lambda q: ids(names_only(spans, q))),
        "fts": score(queries, expected, lambda q: ids(search_spans(store, q, K))),
        "keywords_hybrid": score(
            queries, expected, lambda q: ids([hit.span for hit in rank(store, q, limit=K).hits])
        ),
    }


@dataclass(slots=True)
class Embedded:
    """The model rows and what embedding cost."""

    rows: dict[str, Scores]
    model: str
    spans_embedded: int
    embed_seconds: float
    embed_tokens: int
    embed_calls: int
    query_seconds: float
    query_tokens: int
    #: The index's size after the vectors were stored.
    index_bytes: int


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def embedding_server(gguf: Path, pooling: str, threads: int) -> Iterator[str]:
    """llama.cpp's server in embedding mode on ``gguf`` (this file's ``--serve``); yields its
    URL once ``/health`` answers."""
    port = _free_port()
    command = [sys.executable, __file__, "--serve", str(gguf), "--port", str(port)]
    command += ["--pooling", pooling, "--threads", str(threads)]
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_healthy(url, proc, log)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            last = (log.read().decode(errors="replace").strip().splitlines() or [""])[-1]
            raise RuntimeError(f"the embedding server exited ({proc.returncode}): {last}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError("the embedding server did not start in 300 s")


def serve(gguf: str, port: int, pooling: str, threads: int) -> int:
    """Run llama.cpp's server (xllamacpp) in embedding mode until SIGTERM."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = gguf
    params.model_alias = {Path(gguf).stem}
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.embedding = True
    params.pooling_type = getattr(
        xllamacpp.llama_pooling_type, f"LLAMA_POOLING_TYPE_{pooling.upper()}"
    )
    params.n_ctx = 4096
    params.n_batch = params.n_ubatch = 2048  # a span's text is embedded in one batch
    params.n_parallel = 1
    params.cache_ram_mib = 0
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server = xllamacpp.Server(params)
    stop.wait()
    del server
    return 0


def _endpoint() -> tuple[contextlib.AbstractContextManager[str], str]:
    """The embedding endpoint's URL (as a context) and the model name the vectors are kept
    under."""
    url = os.environ.get("SPANLENS_BENCH_EMBED_URL")
    if url:
        return contextlib.nullcontext(url), os.environ.get("SPANLENS_BENCH_EMBED_MODEL", "")
    gguf_env = os.environ.get("SPANLENS_BENCH_EMBED_GGUF")
    gguf = Path(gguf_env) if gguf_env else installed_model_path(EMBEDDING_MODEL)
    if gguf is None or not gguf.is_file():
        raise RuntimeError(
            "no embedding model: set SPANLENS_BENCH_EMBED_GGUF, or run "
            f"`spanlens model install {EMBEDDING_MODEL}`"
        )
    pooling = os.environ.get("SPANLENS_BENCH_EMBED_POOLING", "mean")
    threads = int(os.environ.get("SPANLENS_BENCH_EMBED_THREADS", "1"))
    return embedding_server(gguf, pooling, threads), f"{gguf.stem} ({pooling} pooling)"


async def _embed_queries(settings: Settings, texts: list[str]) -> tuple[list[list[float]], int]:
    embedders = embedders_from_settings(settings)
    try:
        embedder = embedders[0]
        vectors: list[list[float]] = []
        tokens = 0
        for start in range(0, len(texts), embedder.batch_size):
            result = await embedder.embed(texts[start : start + embedder.batch_size])
            vectors.extend(result.vectors)
            tokens += result.tokens
        return vectors, tokens
    finally:
        await close_embedders(embedders)


def model_rows(root: Path, queries: Sequence[dict[str, str]]) -> Embedded:
    """Embed the indexed workspace and the queries; score embeddings alone and hybrid."""
    context, model = _endpoint()
    with context as url:
        entry = {"name": "bench", "provider": "openai", "url": url, "model": model, "timeout": 600}
        settings = load_settings(root, {"embeddings": [entry]})
        (run_,) = asyncio.run(embed_workspace(root, settings))
        if run_.failed or run_.error:
            raise RuntimeError(f"embedding failed: {run_.error}")
        started = time.perf_counter()
        vectors, query_tokens = asyncio.run(_embed_queries(settings, [q["query"] for q in queries]))
        query_seconds = time.perf_counter() - started
    store = open_store(root)
    try:
        spans = all_spans(store)
        expected = expected_ids(spans, queries)
        by_hash: dict[str, int] = {}
        for span in spans:
            by_hash.setdefault(span.content_hash, span.id)
        vector_of = {q["query"]: v for q, v in zip(queries, vectors, strict=True)}

        def nearest(query: str) -> list[int]:
            found, _missing = nearest_spans(store, model, vector_of[query], K)
            return [by_hash[h] for h, _similarity in found]

        def hybrid(query: str) -> list[int]:
            result = rank(store, query, query_vector=vector_of[query], model=model, limit=K)
            if not result.meaning:
                raise RuntimeError(f"hybrid ranking used no vectors: {result.note}")
            return [hit.span.id for hit in result.hits]

        rows = {
            "embeddings": score(queries, expected, nearest),
            "hybrid": score(queries, expected, hybrid),
        }
        size = index_bytes(store)
    finally:
        store.close()
    return Embedded(
        rows,
        model,
        run_.embedded + run_.reused,
        run_.seconds,
        run_.tokens,
        run_.calls,
        query_seconds,
        query_tokens,
        size,
    )


def run(force: bool = False) -> dict[str, Any]:
    """Run the retrieval benchmark; print a table; return the figures. The model rows run
    only when opted in (``SPANLENS_BENCH_RETRIEVAL=1``) or ``force``."""
    queries = load_queries()
    with tempfile.TemporaryDirectory(prefix="spanlens-bench-retrieval-") as tmp:
        root = Path(tmp)
        build_workspace(root)
        store = open_store(root)
        try:
            index_files(root, store, workers=1)
            spans = all_spans(store)
            leaked = [s.name for s in spans if span_doc(s)]
            if leaked:
                raise RuntimeError(f"docstrings left in the indexed copy: {leaked[:5]}")
            rows = keyword_rows(store, spans, queries)
            size_before = index_bytes(store)
        finally:
            store.close()
        embedded = model_rows(root, queries) if force or os.environ.get(OPT_IN) else None
    if embedded is not None:
        rows.update(embedded.rows)
    result: dict[str, Any] = {
        "queries": len(queries),
        "spans": len(spans),
        "summaries": 0,
        "rows": {
            key: {"recall_at_10": round(s.recall, 3), "mrr_at_10": round(s.mrr, 3)}
            for key, s in rows.items()
        },
    }
    table = [("corpus", f"{len(queries)} queries, {len(spans)} spans, no summaries", "")]
    table += [
        (f"{label}: recall@10 / MRR@10", f"{rows[key].recall:.2f} / {rows[key].mrr:.2f}", "")
        for key, label in ROWS
        if key in rows
    ]
    if embedded is None:
        table.append(("embeddings, hybrid", f"skipped: set {OPT_IN}=1", "a real model"))
    else:
        today = max(rows["fts"].recall, rows["names"].recall)
        any_word = rows["name_words_any"].recall
        hybrid = rows["hybrid"].recall
        result.update(
            model=embedded.model,
            hybrid_recall_vs_today=round(hybrid / today, 2) if today else None,
            hybrid_recall_vs_name_words_any=round(hybrid / any_word, 2) if any_word else None,
            embed_spans=embedded.spans_embedded,
            embed_seconds=round(embedded.embed_seconds, 2),
            embed_tokens=embedded.embed_tokens,
            embed_calls=embedded.embed_calls,
            query_embed_seconds=round(embedded.query_seconds, 2),
            query_tokens=embedded.query_tokens,
            index_bytes_before=size_before,
            index_bytes_after=embedded.index_bytes,
        )
        table += [
            ("embedding model", embedded.model, ""),
            (
                "hybrid recall@10 / today's (FTS, names)",
                f"{hybrid / today:.2f}x" if today else "today finds none",
                ">= 1.5x",
            ),
            (
                "hybrid recall@10 / name words, any",
                f"{hybrid / any_word:.2f}x" if any_word else "name words find none",
                "",
            ),
            (
                "embed the corpus",
                f"{embedded.spans_embedded} spans, {embedded.embed_seconds:.1f} s, "
                f"{embedded.embed_tokens} tokens, {embedded.embed_calls} calls",
                "",
            ),
            (
                "index size, before / after the vectors",
                f"{size_before / 1024:.0f} / {embedded.index_bytes / 1024:.0f} KiB",
                "",
            ),
            (
                "embed the queries",
                f"{len(queries)} queries, {embedded.query_seconds:.1f} s, "
                f"{embedded.query_tokens} tokens",
                "",
            ),
        ]
    print_table(table)
    return result


def main(argv: list[str] | None = None) -> int:
    """``python bench/bench_retrieval.py [--write-queries]`` (the model rows always run)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write-queries", action="store_true", help=f"rewrite {QUERIES.name}")
    parser.add_argument("--serve", metavar="GGUF", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--pooling", default="mean", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.serve, args.port, args.pooling, args.threads)
    if args.write_queries:
        queries = queries_from_docs()
        QUERIES.write_text(json.dumps(queries, indent=1, ensure_ascii=False) + "\n")
        print(f"{len(queries)} queries -> {QUERIES}")
        return 0
    result = run(force=True)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_retrieval.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
