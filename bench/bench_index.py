"""Indexing speed and memory: cold, warm (in-process and whole process), one-line edit, RSS.

Corpus: the Python standard library of this machine plus a generated multi-language corpus
(JavaScript, TypeScript, Go, Rust, Java). Baseline measured in the same run: a bare
tree-sitter parse of every file on one core, with no facts, hashing or store writes.
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

from run import print_table
from spanlens_lsp.indexing.indexer import index_files, index_text
from spanlens_lsp.indexing.languages import language_for_path
from spanlens_lsp.store.db import open_store

GENERATED_FILES_PER_LANGUAGE = 40


def build_corpus(dest: Path) -> None:
    """Copy the stdlib (no site-packages) and write the generated multi-language corpus."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    shutil.copytree(
        stdlib,
        dest / "stdlib",
        ignore=shutil.ignore_patterns("site-packages", "__pycache__", "*.pyc", "*.so"),
        symlinks=True,
    )
    rng = random.Random(7)
    gen = dest / "generated"
    writers = {
        "js": _js,
        "ts": _ts,
        "go": _go,
        "rs": _rust,
        "java": _java,
    }
    for ext, writer in writers.items():
        folder = gen / ext
        folder.mkdir(parents=True)
        for i in range(GENERATED_FILES_PER_LANGUAGE):
            name = f"Module{i}.{ext}" if ext == "java" else f"module_{i}.{ext}"
            (folder / name).write_text(writer(i, rng))


def _js(i: int, rng: random.Random) -> str:
    parts = []
    for c in range(5):
        methods = "\n".join(
            f"  m{m}(a, b) {{\n    if (a > {m}) {{ return a + b; }}\n"
            f"    for (const x of b) {{ a += x; }}\n    return a;\n  }}"
            for m in range(rng.randint(3, 8))
        )
        parts.append(f"/** Class {c}. */\nclass C{i}_{c} {{\n{methods}\n}}\n")
        parts.append(f"function f{i}_{c}(x, y = 2) {{\n  return x * y;\n}}\n")
        parts.append(f"const g{i}_{c} = (z) => {{ return z + {c}; }};\n")
    return "\n".join(parts)


def _ts(i: int, rng: random.Random) -> str:
    parts = []
    for c in range(5):
        parts.append(f"interface I{i}_{c} {{ id: number; name(): string; }}\n")
        methods = "\n".join(
            f"  m{m}(a: number, b: string[]): number {{\n    if (a > {m}) {{ return a; }}\n"
            f"    return b.length;\n  }}"
            for m in range(rng.randint(3, 8))
        )
        parts.append(f"export class K{i}_{c} {{\n{methods}\n}}\n")
        parts.append(f"export function t{i}_{c}(x: number): number {{\n  return x + 1;\n}}\n")
    return "\n".join(parts)


def _go(i: int, rng: random.Random) -> str:
    parts = [f"package p{i}\n"]
    for c in range(5):
        parts.append(f"// S{c} holds state.\ntype S{c} struct {{\n\tA int\n\tB string\n}}\n")
        for m in range(rng.randint(3, 8)):
            parts.append(
                f"func (s *S{c}) M{m}(x int) int {{\n\tif x > {m} {{\n\t\treturn x\n\t}}\n"
                f"\tfor i := 0; i < x; i++ {{\n\t\ts.A += i\n\t}}\n\treturn s.A\n}}\n"
            )
    return "\n".join(parts)


def _rust(i: int, rng: random.Random) -> str:
    parts = []
    for c in range(5):
        parts.append(f"/// P{c} point.\npub struct P{c} {{ x: i64, y: i64 }}\n")
        methods = "\n".join(
            f"    pub fn m{m}(&self, k: i64) -> i64 {{\n        if k > {m} {{ return k; }}\n"
            f"        self.x + self.y * k\n    }}"
            for m in range(rng.randint(3, 8))
        )
        parts.append(f"impl P{c} {{\n{methods}\n}}\n")
    return "\n".join(parts)


def _java(i: int, rng: random.Random) -> str:
    methods = "\n".join(
        f"    /** Method {m}. */\n    public int m{m}(int a, String b) {{\n"
        f"        if (a > {m}) {{ return a; }}\n        return b.length();\n    }}"
        for m in range(rng.randint(10, 30))
    )
    return f"package gen;\n\npublic class Module{i} {{\n{methods}\n}}\n"


def corpus_stats(root: Path) -> tuple[int, int]:
    """(indexable files, bytes) in the corpus."""
    files = 0
    size = 0
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            if language_for_path(name):
                files += 1
                size += os.path.getsize(os.path.join(dirpath, name))
    return files, size


def bare_parsers() -> dict[str, Any]:
    """A plain tree-sitter parser per language, straight from the grammar wheels."""
    import tree_sitter_go
    import tree_sitter_java
    import tree_sitter_javascript
    import tree_sitter_python
    import tree_sitter_rust
    import tree_sitter_typescript
    from tree_sitter import Language, Parser

    grammars = {
        "python": tree_sitter_python.language(),
        "javascript": tree_sitter_javascript.language(),
        "typescript": tree_sitter_typescript.language_typescript(),
        "tsx": tree_sitter_typescript.language_tsx(),
        "go": tree_sitter_go.language(),
        "rust": tree_sitter_rust.language(),
        "java": tree_sitter_java.language(),
    }
    return {name: Parser(Language(grammar)) for name, grammar in grammars.items()}


def parse_only_seconds(root: Path) -> float:
    """Baseline: tree-sitter parse of every file, one core, nothing else."""
    parsers = bare_parsers()
    started = time.perf_counter()
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            language = language_for_path(name)
            if not language:
                continue
            with open(os.path.join(dirpath, name), "rb") as handle:
                parsers[language].parse(handle.read())
    return time.perf_counter() - started


def whole_process_seconds(root: Path) -> tuple[float, int]:
    """Wall time and peak RSS (KiB, largest process) of `spanlens index ROOT --json`."""
    exe = shutil.which("spanlens", path=str(Path(sys.executable).parent)) or "spanlens"
    started = time.perf_counter()
    proc = subprocess.run([exe, "index", str(root), "--json"], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip())
    import resource

    return elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def edit_timings(tmp: Path) -> list[float]:
    """Median cost of re-indexing a 1,000-line file after a one-line edit."""
    root = tmp / "edit"
    root.mkdir()
    funcs = []
    for i in range(100):
        funcs.append(
            f"def function_{i}(a, b=1):\n    '''Doc {i}.'''\n    total = a + b\n"
            f"    for x in range(a):\n        if x % 2:\n            total += x\n"
            f"        else:\n            total -= 1\n    return total\n"
        )
    text = "\n".join(funcs)
    path = root / "big.py"
    path.write_text(text)
    assert 990 <= text.count("\n") <= 1010, text.count("\n")
    store = open_store(root)
    index_files(root, store, workers=1)
    times = []
    for i in range(60):
        edited = text.replace("total = a + b", f"total = a + b + {i}", 1)
        started = time.perf_counter()
        diff = index_text(store, root, "big.py", edited.encode())
        times.append(time.perf_counter() - started)
        assert diff is not None and len(diff.changed) == 1
    store.close()
    return times


def _long_line_js(size: int, separator: str) -> bytes:
    """JavaScript of about ``size`` bytes: functions and classes joined by ``separator``."""
    parts: list[str] = []
    total = 0
    while total < size:
        i = len(parts)
        part = (
            f"function f{i}(a,b){{if(a>{i}){{return a+b;}}for(let x=0;x<b;x++){{a+=x;}}"
            f"return g{i}(a);}}class C{i}{{m(a){{return a*{i};}}n(b){{return this.m(b)+1;}}}}"
        )
        parts.append(part)
        total += len(part) + len(separator)
    return separator.join(parts).encode()


def long_line_timings() -> dict[str, float]:
    """Extracting spans from 1 MB and 5 MB of JavaScript on one line against the same code
    with a line break between definitions (indexing was quadratic on long lines)."""
    from spanlens_lsp.indexing.parsing import parse_source

    figures: dict[str, float] = {}
    for megabytes in (1, 5):
        for label, separator in (("lines", "\n"), ("one_line", "")):
            data = _long_line_js(megabytes * 1_000_000, separator)
            started = time.perf_counter()
            parse_source("javascript", data)
            figures[f"{megabytes}mb_{label}_seconds"] = round(time.perf_counter() - started, 2)
    return figures


def run() -> dict:
    """Run the indexing benchmark; print a table; return the figures."""
    with tempfile.TemporaryDirectory(prefix="spanlens-bench-") as tmp_name:
        tmp = Path(tmp_name)
        corpus = tmp / "corpus"
        build_corpus(corpus)
        files, size = corpus_stats(corpus)
        parse_s = parse_only_seconds(corpus)

        store = open_store(corpus)
        cold = index_files(corpus, store)
        warm = index_files(corpus, store)
        store.close()
        spans = cold.spans_total
        warm_process_s, _ = whole_process_seconds(corpus)

        shutil.rmtree(corpus / ".spanlens")
        cold_process_s, peak_kib = whole_process_seconds(corpus)

        edits = edit_timings(tmp)
    long_lines = long_line_timings()
    edit_ms = statistics.median(edits) * 1000
    result = {
        "files": files,
        "megabytes": round(size / 1e6, 2),
        "spans": spans,
        "cold_seconds": round(cold.seconds, 3),
        "cold_spans_per_s": round(spans / cold.seconds),
        "cold_files_per_s": round(files / cold.seconds),
        "cold_mb_per_s": round(size / 1e6 / cold.seconds, 2),
        "parse_only_seconds_one_core": round(parse_s, 3),
        "cold_vs_parse_only": round(parse_s / cold.seconds, 2),
        "warm_seconds": round(warm.seconds, 4),
        "warm_speedup": round(cold.seconds / warm.seconds, 1),
        "cold_process_seconds": round(cold_process_s, 3),
        "warm_process_seconds": round(warm_process_s, 3),
        "warm_process_speedup": round(cold_process_s / warm_process_s, 1),
        "edit_reindex_ms_median": round(edit_ms, 2),
        "edit_reindex_ms_p90": round(sorted(edits)[int(len(edits) * 0.9)] * 1000, 2),
        "peak_rss_mb": round(peak_kib / 1024, 1),
        **long_lines,
    }
    print_table(
        [
            ("corpus", f"{files} files, {result['megabytes']} MB, {spans} spans", ""),
            ("cold index", f"{result['cold_seconds']} s", ""),
            ("cold spans/s", str(result["cold_spans_per_s"]), ">= 4000"),
            ("cold files/s", str(result["cold_files_per_s"]), ""),
            ("cold MB/s", str(result["cold_mb_per_s"]), ""),
            ("cold / bare parse (1 core)", f"{result['cold_vs_parse_only']}x", "baseline"),
            ("warm re-index", f"{result['warm_seconds']} s", ""),
            ("warm speedup (in-process)", f"{result['warm_speedup']}x", ">= 20x"),
            ("cold, whole process", f"{result['cold_process_seconds']} s", "ref ~4 s/712 files"),
            ("warm, whole process", f"{result['warm_process_seconds']} s", "ref ~1.6 s"),
            ("warm speedup (process)", f"{result['warm_process_speedup']}x", ""),
            ("1-line edit re-index p50", f"{result['edit_reindex_ms_median']} ms", "<= 5 ms"),
            ("1-line edit re-index p90", f"{result['edit_reindex_ms_p90']} ms", ""),
            ("peak RSS (largest process)", f"{result['peak_rss_mb']} MB", "<= 300 MB"),
            *(
                (
                    f"{mb} MB of JS: one line / line breaks",
                    f"{long_lines[f'{mb}mb_one_line_seconds']} s / "
                    f"{long_lines[f'{mb}mb_lines_seconds']} s",
                    "one line <= 1.5x",
                )
                for mb in (1, 5)
            ),
        ]
    )
    return result
