"""Incremental indexing: keys, hashes, diffs, ignore rules, skipped files, syntax errors."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from spanlens_lsp.indexing.indexer import IndexSummary, index_files, index_text
from spanlens_lsp.indexing.languages import get_extractor, language_for_path
from spanlens_lsp.indexing.languages import python as python_languages
from spanlens_lsp.indexing.parsing import RecentParses, check_text
from spanlens_lsp.indexing.spans import Extraction
from spanlens_lsp.store.db import open_store
from spanlens_lsp.store.handle import Store

SERVICE = '''
class Service:
    """Talks to the database."""

    def start(self, port: int) -> None:
        self.port = port

    def stop(self) -> None:
        self.port = None


def helper(x):
    return x * 2
'''


def index(root: Path) -> tuple[Store, IndexSummary]:
    store = open_store(root)
    return store, index_files(root, store, workers=1)


def spans_by_name(store: Store, path: str) -> dict[str, object]:
    return {s.name: s for s in store.spans_in_file(path)}


def test_cold_then_warm_index_reads_nothing_unchanged(tmp_path: Path, write: Callable) -> None:
    write("pkg/service.py", SERVICE)
    store, first = index(tmp_path)
    assert first.files_indexed == 1
    assert first.spans_added == 4
    assert sorted(spans_by_name(store, "pkg/service.py")) == [
        "Service",
        "Service.start",
        "Service.stop",
        "helper",
    ]
    second = index_files(tmp_path, store, workers=1)
    assert second.files_indexed == 0 and second.files_unchanged == 1
    assert second.spans_added == second.spans_changed == second.spans_removed == 0
    assert second.spans_total == 4


def test_inserting_lines_above_keeps_keys_and_hashes_and_moves_positions(
    tmp_path: Path, write: Callable
) -> None:
    path = write("service.py", SERVICE)
    store, _ = index(tmp_path)
    before = spans_by_name(store, "service.py")
    path.write_text("import os\nimport sys\n\n" + path.read_text())
    os.utime(path, ns=(1, 1))  # a different mtime for certain
    summary = index_files(tmp_path, store, workers=1)
    after = spans_by_name(store, "service.py")
    assert summary.spans_changed == 0 and summary.spans_added == 0
    assert summary.spans_moved == 4
    for name, span in after.items():
        assert span.id == before[name].id
        assert span.content_hash == before[name].content_hash
        assert span.start_line == before[name].start_line + 3


def test_editing_a_method_body_changes_only_that_method(tmp_path: Path, write: Callable) -> None:
    path = write("service.py", SERVICE)
    store, _ = index(tmp_path)
    before = spans_by_name(store, "service.py")
    path.write_text(path.read_text().replace("self.port = port", "self.port = port + 1"))
    os.utime(path, ns=(2, 2))
    summary = index_files(tmp_path, store, workers=1)
    after = spans_by_name(store, "service.py")
    changed = {n for n in after if after[n].content_hash != before[n].content_hash}
    assert changed == {"Service.start"}
    assert summary.spans_changed == 1
    assert summary.changed_span_ids == [after["Service.start"].id]


def test_identical_code_in_two_files_keeps_both_spans(tmp_path: Path, write: Callable) -> None:
    write("a.py", "def twin(x):\n    return x + 1\n")
    write("b.py", "def twin(x):\n    return x + 1\n")
    store, summary = index(tmp_path)
    a = store.spans_in_file("a.py")
    b = store.spans_in_file("b.py")
    assert len(a) == len(b) == 1
    assert a[0].content_hash == b[0].content_hash
    assert summary.spans_total == 2


def test_syntax_error_keeps_spans_that_no_longer_parse(tmp_path: Path, write: Callable) -> None:
    path = write("service.py", SERVICE)
    store, _ = index(tmp_path)
    broken = SERVICE.replace("def stop(self) -> None:", "def stop(self) -> None\n        ((")
    path.write_text(broken)
    os.utime(path, ns=(3, 3))
    summary = index_files(tmp_path, store, workers=1)
    assert summary.files_with_errors == 1
    assert summary.spans_removed == 0
    names = set(spans_by_name(store, "service.py"))
    assert {"helper", "Service.start", "Service.stop"} <= names


def test_file_that_fails_to_parse_entirely_does_not_wipe_its_spans(
    tmp_path: Path, write: Callable
) -> None:
    path = write("service.py", SERVICE)
    store, _ = index(tmp_path)
    path.write_text("}}}} ((( this is not python at all :::\n")
    os.utime(path, ns=(4, 4))
    index_files(tmp_path, store, workers=1)
    assert len(store.spans_in_file("service.py")) == 4


def test_deleted_file_loses_its_spans(tmp_path: Path, write: Callable) -> None:
    path = write("service.py", SERVICE)
    write("other.py", "def keep():\n    pass\n")
    store, _ = index(tmp_path)
    path.unlink()
    summary = index_files(tmp_path, store, workers=1)
    assert summary.files_removed == 1 and summary.spans_removed == 4
    assert store.span_count() == 1


def test_ignore_rules(tmp_path: Path, write: Callable) -> None:
    write(".gitignore", "generated/\n*_tmp.py\n")
    write(".spanlensignore", "scratch.py\n")
    write("sub/.gitignore", "local.py\n")
    write("kept.py", "def a():\n    pass\n")
    write("generated/out.py", "def b():\n    pass\n")
    write("x_tmp.py", "def c():\n    pass\n")
    write("scratch.py", "def d():\n    pass\n")
    write("sub/local.py", "def e():\n    pass\n")
    write("sub/fine.py", "def f():\n    pass\n")
    write("node_modules/lib/index.js", "function g() {}\n")
    write(".venv/lib/site.py", "def h():\n    pass\n")
    write("myenv/pyvenv.cfg", "home = /usr\n")
    write("myenv/lib/thing.py", "def i():\n    pass\n")
    store, _ = index(tmp_path)
    assert sorted(store.file_rows()) == ["kept.py", "sub/fine.py"]


def test_binary_huge_undecodable_and_generated_files_are_skipped_with_reasons(
    tmp_path: Path, write: Callable
) -> None:
    write("ok.py", "def ok():\n    pass\n")
    (tmp_path / "blob.py").write_bytes(b"def x():\n\x00\x01\x02 pass\n")
    (tmp_path / "latin.py").write_bytes("def café():\n    pass\n".encode("latin-1"))
    (tmp_path / "huge.py").write_text("x = 1\n" * 300_000)
    write("bundle.min.js", "function a(){}\n")
    one_line = "".join(f"function f{i}(a){{return a+{i};}}" for i in range(4000))
    (tmp_path / "bundle.js").write_text(one_line + "\n")
    # Long lines alone are fine: one 100 KB line among ordinary ones is no bundle.
    (tmp_path / "data.js").write_text(
        "function f(a) {\n  return a;\n}\n" * 2000 + f"const blob = '{'x' * 100_000}';\n"
    )
    store, summary = index(tmp_path)
    assert summary.skipped == {
        "blob.py": "binary",
        "latin.py": "not valid UTF-8",
        "huge.py": "larger than 1048576 bytes",
        "bundle.min.js": "generated",
        "bundle.js": "minified (lines average over 1000 bytes)",
    }
    assert summary.files_skipped == 5
    assert sorted(store.file_rows()) == ["data.js", "ok.py"]


def test_index_text_reindexes_an_editor_buffer(tmp_path: Path, write: Callable) -> None:
    write("service.py", SERVICE)
    store, _ = index(tmp_path)
    edited = SERVICE.replace("return x * 2", "return x * 3") + "\ndef added():\n    pass\n"
    diff = index_text(store, tmp_path, "service.py", edited.encode())
    assert diff is not None
    changed = {store.span_by_id(i).name for i in diff.changed}
    added = {store.span_by_id(i).name for i in diff.added}
    assert changed == {"helper"} and added == {"added"}
    # The buffer was never saved: the next walk re-reads the disk and goes back.
    summary = index_files(tmp_path, store, workers=1)
    assert summary.spans_removed == 1 and summary.spans_changed == 1


def test_parallel_index_matches_serial(tmp_path: Path) -> None:
    import sysconfig

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    src = tmp_path / "src"
    for name in sorted(os.listdir(stdlib))[:120]:
        if name.endswith(".py"):
            src.mkdir(exist_ok=True)
            shutil.copy(stdlib / name, src / name)
    serial_root = tmp_path / "serial"
    shutil.copytree(src, serial_root)
    serial = index_files(serial_root, open_store(serial_root), workers=1)
    parallel = index_files(src, open_store(src), workers=2)
    assert serial.files_indexed == parallel.files_indexed > 64
    assert serial.spans_total == parallel.spans_total > 0


# --- re-indexing an editor buffer: incremental parsing and known hashes ---------------------

FIXTURES = Path(__file__).parent.parent / "fixtures"
# Typing-sized pieces, several of which break the syntax for a while.
SNIPPETS = [b"(", b")", b"{", b"}", b"\n", b"    ", b"x", b"# c\n", b'"', b"if (a) {", b"\xc3\xa9"]


def random_edit(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data) + 1)
    end = min(len(data), at + rng.randrange(1, 80))
    edit = rng.randrange(4)
    if edit == 0:
        return data[:at] + rng.choice(SNIPPETS) + data[at:]
    if edit == 1:
        return data[:at] + data[end:]
    if edit == 2:
        return data[:at] + data[end:] + data[at:end]  # a block moved down
    lines = data.split(b"\n")
    lines.insert(rng.randrange(len(lines)), rng.choice(lines))
    return b"\n".join(lines)


def extracted(extraction: Extraction) -> tuple[bool, list[tuple[object, ...]]]:
    return extraction.has_errors, [
        (s.key, s.start_line, s.start_col, s.end_line, s.end_col, s.name_start_line,
         s.name_start_col, s.name_end_line, s.name_end_col, s.content_hash, s.facts)
        for s in extraction.spans
    ]  # fmt: skip


@pytest.mark.parametrize(
    "path",
    [
        *sorted(p for p in FIXTURES.rglob("*") if language_for_path(p.name)),
        Path(python_languages.__file__),  # a big real file
    ],
    ids=lambda p: p.name,
)
def test_reparsing_an_edited_file_extracts_what_a_fresh_parse_does(path: Path) -> None:
    language = language_for_path(path.name)
    assert language is not None
    extractor = get_extractor(language)
    rng = random.Random(path.name)
    original = data = path.read_bytes()
    previous = extractor.extract(data).parsed
    for _ in range(40):
        data = original if rng.random() < 0.2 else random_edit(rng, data)
        if check_text(data) is not None:  # a multi-byte character cut in two
            data = original
        incremental = extractor.extract(data, previous)
        previous = incremental.parsed
        assert extracted(incremental) == extracted(extractor.extract(data))


def test_reparsing_into_a_syntax_error_extracts_what_a_fresh_parse_does() -> None:
    # Re-parsed from the old tree, tree-sitter's error recovery finds no spans here at all.
    before = (
        b"    if (item.discount) {\n  function round(value) {\n"
        b"export class Cart extends Base {\n}\n};\n}\nfunction* counter(start) {\n}\n"
    )
    after = b"const handlers = {\n" + before
    extractor = get_extractor("javascript")
    incremental = extractor.extract(after, extractor.extract(before).parsed)
    assert incremental.spans
    assert extracted(incremental) == extracted(extractor.extract(after))


def stored_spans(store: Store, path: str) -> dict[tuple[str, str, int], tuple[str, object]]:
    return {
        (s.name, s.kind, s.ordinal): (s.content_hash, s.facts) for s in store.spans_in_file(path)
    }


LOG_HANDLER = 'def handler(event):\n    """Log the event."""\n    log.info(event)\n'
REJECT_HANDLER = 'def handler(event):\n    """Reject the event."""\n    raise ValueError(event)\n'
NEW_HANDLER = "def handler(event):\n    return event\n"
NESTED = "    def nested(path):\n        return open(path)\n"


def test_a_known_hash_under_a_new_key_keeps_its_facts(tmp_path: Path) -> None:
    # Spans whose hash the file already has are extracted without facts; when such a hash
    # turns up under another key, its facts are copied from the stored span that had it.
    def source(*blocks: str) -> str:
        return "\n".join(blocks)

    first = source(
        LOG_HANDLER, REJECT_HANDLER, f"def outer():\n{NESTED}", "def other():\n    pass\n"
    )
    edits = [
        # The first handler goes: the second one's hash moves from ordinal 1 to 0.
        source(REJECT_HANDLER, f"def outer():\n{NESTED}", "def other():\n    pass\n"),
        # A new handler in front: both known hashes move up an ordinal, one to a new key.
        source(NEW_HANDLER, first),
        # nested moves from outer to other, at the same indentation.
        source(LOG_HANDLER, REJECT_HANDLER, "def outer():\n    pass\n", f"def other():\n{NESTED}"),
    ]
    (tmp_path / "app.py").write_text(first)
    store, _ = index(tmp_path)
    for text in edits:
        index_text(store, tmp_path, "app.py", text.encode())
        fresh_root = tmp_path / "fresh"
        shutil.rmtree(fresh_root, ignore_errors=True)
        fresh_root.mkdir()
        (fresh_root / "app.py").write_text(text)
        fresh, _ = index(fresh_root)
        assert stored_spans(store, "app.py") == stored_spans(fresh, "app.py")
        index_text(store, tmp_path, "app.py", first.encode())


def test_repeated_buffer_edits_leave_the_index_a_fresh_index_would(
    tmp_path: Path, write: Callable
) -> None:
    path = write("service.py", SERVICE)
    store, _ = index(tmp_path)
    text = path.read_text()
    for i in range(5):
        text = text.replace(f"x * {i + 2}", f"x * {i + 3}")
        text += f"\ndef added_{i}(y):\n    return helper(y)\n"
        diff = index_text(store, tmp_path, "service.py", text.encode())
        assert diff is not None and len(diff.changed) == 1 and len(diff.added) == 1
    fresh_root = tmp_path / "fresh"
    fresh_root.mkdir()
    (fresh_root / "service.py").write_text(text)
    fresh, _ = index(fresh_root)
    assert stored_spans(store, "service.py") == stored_spans(fresh, "service.py")


def test_kept_parses_are_bounded_in_files_and_bytes() -> None:
    extractor = get_extractor("python")
    recent = RecentParses(max_files=2, max_bytes=100)
    for name in ("a.py", "b.py", "c.py"):
        recent.put("python", name, extractor.extract(b"x = 1\n").parsed)
    assert recent.take("python", "a.py") is None  # the oldest went
    assert recent.take("python", "c.py") is not None
    assert recent.take("python", "c.py") is None  # taken out while in use
    recent.put("python", "big.py", extractor.extract(b"x = 1\n" * 20).parsed)
    assert recent.take("python", "big.py") is None  # larger than the whole budget
    recent.put("python", "d.py", extractor.extract(b"y = 2\n" * 16).parsed)
    assert recent.take("python", "b.py") is None  # pushed out by bytes


def test_the_write_lock_is_free_while_files_are_parsed(tmp_path: Path, write: Callable) -> None:
    import sqlite3

    for i in range(80):
        write(f"pkg/m{i}.py", SERVICE)
    store = open_store(tmp_path)
    other = sqlite3.connect(store.path, timeout=0, isolation_level=None)
    blocked = []

    def progress(done: int, total: int) -> None:
        # Another process (a CLI run, the server's engine) writing now must not wait.
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("COMMIT")
        except sqlite3.OperationalError:
            blocked.append(done)

    summary = index_files(tmp_path, store, workers=1, progress=progress)
    other.close()
    assert summary.files_indexed == 80
    assert blocked == []


def test_a_file_name_that_is_not_utf8_is_skipped_and_the_rest_indexed(
    tmp_path: Path, write: Callable
) -> None:
    write("good.py", SERVICE)
    (tmp_path / os.fsdecode(b"bad\xff.py")).write_bytes(SERVICE.encode())
    (tmp_path / os.fsdecode(b"sub\xfe")).mkdir()
    (tmp_path / os.fsdecode(b"sub\xfe") / "inner.py").write_bytes(SERVICE.encode())
    store, summary = index(tmp_path)
    assert summary.skipped == {
        "bad\\xff.py": "undecodable file name",
        "sub\\xfe/inner.py": "undecodable file name",
    }
    assert summary.files_indexed == 1 and summary.spans_total == 4
    store.close()


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux /proc")
def test_parser_workers_die_with_a_killed_index(tmp_path: Path) -> None:
    """kill -9 of `spanlens index` must not leave its parser processes running."""
    import signal
    import subprocess
    import sys
    import time

    workers: list[int] = []
    body = "".join(
        f"def f{j}(a, b):\n    return [a + b + {j} for _ in range(3)]\n" for j in range(3000)
    )
    for number in range(96):
        (tmp_path / f"m{number}.py").write_text(body, encoding="utf-8")
    parent = subprocess.Popen(
        [sys.executable, "-m", "spanlens_lsp.cli", "index", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        workers = []
        while not workers and parent.poll() is None and time.monotonic() < deadline:
            workers = _children(parent.pid)
            time.sleep(0.02)
        assert workers, "the index started no worker processes"
        time.sleep(0.3)
        workers = _children(parent.pid) or workers
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in workers if _alive(pid)]
    finally:
        for pid in set(workers) | set(_children(parent.pid)):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
