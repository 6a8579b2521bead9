"""The workspace layer: one reader of a file's current text, one way to index a single file."""

from __future__ import annotations

from pathlib import Path

from spanlens_lsp.indexing.indexer import index_files
from spanlens_lsp.settings import IndexSettings
from spanlens_lsp.store.db import open_store
from spanlens_lsp.workspace.files import current_text, index_file


def test_current_text_prefers_the_buffer_and_reads_both_like_the_indexer(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_bytes(b"\xef\xbb\xbfx = 1\r\ny = 2\rz = 3\n")
    # The disk: BOM dropped, lone CR as LF, CRLF kept.
    assert current_text(tmp_path, "a.py") == "x = 1\r\ny = 2\nz = 3\n"
    buffers = {"a.py": "\ufeffq = 1\r"}.get
    assert current_text(tmp_path, "a.py", buffers) == "q = 1\n"
    assert current_text(tmp_path, "gone.py", buffers) is None


def test_index_file_applies_the_walks_skip_rules_to_a_single_file(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("ignored.py\n")
    (tmp_path / "ignored.py").write_text("def f():\n    pass\n")
    (tmp_path / "kept.py").write_text("def g():\n    pass\n")
    store = open_store(tmp_path)
    settings = IndexSettings()
    assert index_file(store, tmp_path, "ignored.py", settings) is None
    assert store.file_row("ignored.py") is None
    diff = index_file(store, tmp_path, "kept.py", settings)
    assert diff is not None and [s.name for s in store.spans_in_file("kept.py")] == ["g"]
    # A buffer over the size limit leaves the index, like a file the walk skips.
    small = IndexSettings(max_file_size=8)
    assert index_file(store, tmp_path, "kept.py", small, b"def g():\n    return 1\n") is None
    assert store.file_row("kept.py") is None


def test_index_file_forgets_a_deleted_file(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("def f():\n    pass\n")
    store = open_store(tmp_path)
    index_files(tmp_path, store, workers=1)
    (tmp_path / "a.py").unlink()
    assert index_file(store, tmp_path, "a.py", IndexSettings()) is None
    assert store.file_row("a.py") is None


def test_index_workspace_walks_with_the_index_settings(tmp_path: Path) -> None:
    """The CLI and the server index the workspace through one function, under the settings'
    exclude patterns and size limit, whether the walk is done by it or handed in."""
    from spanlens_lsp.workspace.index import index_workspace as index_all
    from spanlens_lsp.workspace.index import walk_files

    (tmp_path / "gen").mkdir()
    (tmp_path / "gen" / "out.py").write_text("def made():\n    pass\n")
    (tmp_path / "big.py").write_text("def big():\n    return " + "1 + " * 20 + "1\n")
    (tmp_path / "kept.py").write_text("def kept():\n    pass\n")
    settings = IndexSettings(exclude=["gen/"], max_file_size=60, workers=1)
    store = open_store(tmp_path)
    summary = index_all(store, tmp_path, settings)
    assert sorted(store.file_rows()) == ["kept.py"]
    assert "big.py" in summary.skipped
    walk = walk_files(tmp_path, IndexSettings(workers=1))
    assert sorted(c.path for c in walk.candidates) == ["big.py", "gen/out.py", "kept.py"]
    index_all(store, tmp_path, IndexSettings(workers=1), walk=walk)
    assert sorted(store.file_rows()) == ["big.py", "gen/out.py", "kept.py"]
