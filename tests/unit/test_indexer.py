"""Incremental indexing: keys, hashes, diffs, ignore rules, skipped files, syntax errors."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from spanlens.indexing.indexer import IndexSummary, index_text, index_workspace
from spanlens.store import Store, open_store

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
    return store, index_workspace(root, store, workers=1)


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
    second = index_workspace(tmp_path, store, workers=1)
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
    summary = index_workspace(tmp_path, store, workers=1)
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
    summary = index_workspace(tmp_path, store, workers=1)
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
    summary = index_workspace(tmp_path, store, workers=1)
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
    index_workspace(tmp_path, store, workers=1)
    assert len(store.spans_in_file("service.py")) == 4


def test_deleted_file_loses_its_spans(tmp_path: Path, write: Callable) -> None:
    path = write("service.py", SERVICE)
    write("other.py", "def keep():\n    pass\n")
    store, _ = index(tmp_path)
    path.unlink()
    summary = index_workspace(tmp_path, store, workers=1)
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
    store, summary = index(tmp_path)
    assert summary.skipped == {
        "blob.py": "binary",
        "latin.py": "not valid UTF-8",
        "huge.py": "larger than 1048576 bytes",
        "bundle.min.js": "generated",
    }
    assert summary.files_skipped == 4
    assert sorted(store.file_rows()) == ["ok.py"]


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
    summary = index_workspace(tmp_path, store, workers=1)
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
    serial = index_workspace(serial_root, open_store(serial_root), workers=1)
    parallel = index_workspace(src, open_store(src), workers=2)
    assert serial.files_indexed == parallel.files_indexed > 64
    assert serial.spans_total == parallel.spans_total > 0
