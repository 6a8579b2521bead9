"""A class's side effects are its methods': the class's own reply holds none (the schema allows
none, the validator drops any), and its hover lists its methods' side effects and pitfalls,
each named by its method and in that method's stored words."""

from __future__ import annotations

from pathlib import Path

from markdown_it import MarkdownIt

from spanlens_lsp.indexing.indexer import index_files
from spanlens_lsp.presentation.markdown import (
    MAX_METHOD_ITEMS,
    render_markdown,
    render_plaintext,
)
from spanlens_lsp.presentation.state import span_view
from spanlens_lsp.states import ENRICHMENT_VERSION
from spanlens_lsp.store import enrichments as queries
from spanlens_lsp.store.db import open_store

PY = """\
class Inventory:
    def __init__(self, path):
        self.path = path
        self.items = {}

    def remove(self, name):
        return self.items.pop(name)

    def save(self):
        with open(self.path, "w") as f:
            f.write(str(self.items))

    class Entry:
        def touch(self):
            self.seen = True


class Other:
    def drop(self):
        self.gone = True
"""

GO = """\
package store

type Cache struct {
\tentries map[string]string
}

func (c *Cache) Put(key, value string) {
\tc.entries[key] = value
}
"""


def _enrich(store, span, data, version=ENRICHMENT_VERSION):
    full = {
        "summary": f"About {span.name}.",
        "inputs": [],
        "outputs": [],
        "side_effects": [],
        "pitfalls": [],
        "tags": [],
        "usage_snippet": None,
        "evidence": [],
    } | data
    queries.put_enrichment(
        store, span.content_hash, version, full, model="m", tier="small", backend="b", host="h"
    )


def _workspace(tmp_path: Path):
    (tmp_path / "inv.py").write_text(PY)
    (tmp_path / "cache.go").write_text(GO)
    store = open_store(tmp_path)
    index_files(tmp_path, store, workers=1)
    spans = {s.name: s for p in ("inv.py", "cache.go") for s in store.spans_in_file(p)}
    return store, spans


def test_a_class_hover_lists_its_methods_side_effects_and_pitfalls_by_method(
    tmp_path: Path,
) -> None:
    store, spans = _workspace(tmp_path)
    _enrich(store, spans["Inventory.save"], {"side_effects": ["writes the items to path"]})
    _enrich(
        store,
        spans["Inventory.remove"],
        {
            "side_effects": ["deletes the name from self.items"],
            "pitfalls": ["KeyError when the name is missing"],
        },
    )
    # Not its methods: a nested class's method, another class's method.
    _enrich(store, spans["Inventory.Entry.touch"], {"side_effects": ["marks the entry seen"]})
    _enrich(store, spans["Other.drop"], {"side_effects": ["sets gone"]})
    # The class itself, enriched or not, shows them.
    view = span_view(store, spans["Inventory"], with_methods=True)
    text = render_markdown(view)
    effects = text.split("**Side effects of its methods**\n", 1)[1].split("\n\n", 1)[0]
    assert effects.splitlines() == [
        "- `remove`: deletes the name from self.items",
        "- `save`: writes the items to path",
    ]
    assert "**Pitfalls of its methods**\n- ⚠ `remove`: KeyError when the name is missing" in text
    plain = render_plaintext(view)
    assert "Side effects of its methods:\n  - remove: deletes the name from self.items" in plain
    assert "Pitfalls of its methods:\n  - remove: KeyError when the name is missing" in plain
    _enrich(store, spans["Inventory"], {"summary": "Counts items and saves them."})
    text = render_markdown(span_view(store, spans["Inventory"], with_methods=True))
    assert text.index("Counts items") < text.index("**Side effects of its methods**")
    assert text.index("**Pitfalls of its methods**") < text.index("**Parser facts**")
    # A method's own hover does not list anything of the kind.
    assert "of its methods" not in render_markdown(
        span_view(store, spans["Inventory.save"], with_methods=True)
    )


def test_a_go_structs_methods_count_as_its_own(tmp_path: Path) -> None:
    store, spans = _workspace(tmp_path)
    _enrich(store, spans["Cache.Put"], {"side_effects": ["stores value under key in entries"]})
    text = render_markdown(span_view(store, spans["Cache"], with_methods=True))
    assert "**Side effects of its methods**\n- `Put`: stores value under key in entries" in text


def test_a_stale_methods_enrichment_is_not_listed_for_its_class(tmp_path: Path) -> None:
    store, spans = _workspace(tmp_path)
    _enrich(store, spans["Inventory.save"], {"side_effects": ["writes to a file"]}, "old")
    text = render_markdown(span_view(store, spans["Inventory"], with_methods=True))
    assert "of its methods" not in text and "writes to a file" not in text


def test_a_class_hover_escapes_its_methods_model_text_and_caps_the_list(tmp_path: Path) -> None:
    store, spans = _workspace(tmp_path)
    many = [f"changes field {i}" for i in range(MAX_METHOD_ITEMS + 4)]
    _enrich(
        store,
        spans["Inventory.save"],
        {
            "side_effects": ["[click](command:evil) writes <b>files</b>", *many],
        },
    )
    text = render_markdown(span_view(store, spans["Inventory"], with_methods=True))
    section = text.split("**Side effects of its methods**\n", 1)[1].split("\n\n", 1)[0]
    lines = section.splitlines()
    html = MarkdownIt("commonmark", {"html": True}).render(section)
    assert "<a" not in html and "<b>" not in html
    assert "<code>save</code>: [click](command:evil) writes &lt;b&gt;files&lt;/b&gt;" in html
    assert len(lines) == MAX_METHOD_ITEMS and lines[-1] == "- (+6 more)"
