"""Embeddings in the server (both capability profiles): the idle queue embeds every span after
enrichment and before docgen, and a saved file's spans are embedded right after their new
enrichments land, without waiting for the idle queue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.lsp.conftest import Editor, toml_settings, wait_for
from tests.support.replies import parse_docgen_request, parse_request, valid_reply
from tests.support.standin import RecordedRequest, Reply, StandinModelServer

MODELS = ("qwen2.5-coder:7b", "nomic-embed-text")
FILES = {
    "a.py": "def helper(y):\n    return y + 1\n",
    "b.py": "from a import helper\n\n\ndef main(x):\n    return helper(x)\n",
}


def _workspace(root: Path, url: str, docgen: bool, idle_seconds: float = 0.3) -> None:
    root.mkdir(exist_ok=True)
    for name, text in FILES.items():
        (root / name).write_text(text)
    embeddings = f'\n[[embeddings]]\nname = "vec"\nurl = "{url}"\nmodel = "nomic-embed-text"\n'
    (root / "spanlens.toml").write_text(
        toml_settings(url, docgen=docgen, idle_seconds=idle_seconds) + embeddings
    )


def _kind(request: RecordedRequest) -> str:
    if request.path in ("/api/embed", "/v1/embeddings"):
        return "embed"
    if parse_docgen_request(request) is not None:
        return "docgen"
    return "enrich" if parse_request(request) is not None else "other"


@pytest.mark.parametrize("profile", ["neovim", "visual-studio-code"])
async def test_the_idle_queue_embeds_after_enrichment_and_before_docgen(
    tmp_path: Path, profile: str
) -> None:
    with StandinModelServer(models=MODELS, responder=valid_reply) as server:
        root = tmp_path / "ws"
        _workspace(root, server.url, docgen=True)
        editor = Editor(profile=profile, root=root)
        try:
            await editor.start()
            docs = root / ".spanlens/docs"
            await wait_for(lambda: len(list(docs.glob("*.md"))) == 2, 30, "two docs")
            kinds = [_kind(r) for r in server.requests if _kind(r) != "other"]
            # Runs of one kind, in order: every enrichment, then the vectors, then the docs.
            runs = [k for i, k in enumerate(kinds) if i == 0 or kinds[i - 1] != k]
            assert runs == ["enrich", "embed", "docgen"], kinds
            texts = server.embedded_texts
            assert sorted(t.splitlines()[0] for t in texts) == ["function helper", "function main"]
            # Each text carries the summary that enrichment had just stored.
            assert all(not t.splitlines()[1].startswith("def ") for t in texts)
        finally:
            await editor.stop()


async def test_a_saved_files_spans_are_embedded_right_after_their_enrichment(
    tmp_path: Path,
) -> None:
    with StandinModelServer(models=MODELS, responder=valid_reply) as server:
        root = tmp_path / "ws"
        # A long quiet period: after the edit below, the idle queue cannot run in this test.
        _workspace(root, server.url, docgen=False, idle_seconds=60)
        editor = Editor(profile="neovim", root=root)
        try:
            await editor.start()
            # The idle queue embeds both spans once (a job waits for its recheck: ~30 s).
            await wait_for(lambda: len(server.embedded_texts) == 2, 60, "every span embedded")
            edited = "def helper(y, z):\n    return y + z\n"
            editor.open("a.py")
            editor.replace("a.py", edited, version=2)
            (root / "a.py").write_text(edited)
            editor.save("a.py")
            await wait_for(
                lambda: any("def helper(y, z)" in t for t in server.embedded_texts),
                30,
                "the saved span's new text embedded",
            )
            enriched = [i for i, r in enumerate(server.requests) if _kind(r) == "enrich"]
            embedded = [
                i
                for i, r in enumerate(server.requests)
                if _kind(r) == "embed" and "helper(y, z)" in str(r.json)
            ]
            assert enriched[-1] < embedded[0]  # after the saved span's enrichment landed
            assert len(server.embedded_texts) == 3  # main was not sent again
        finally:
            await editor.stop()


async def test_the_status_counts_the_spans_as_they_get_embedded(tmp_path: Path) -> None:
    """``spanlens/status`` names the embedding model and counts its spans: pending while the
    (slow) embedding call runs, embedded once its vectors are stored."""
    with StandinModelServer(models=MODELS, responder=valid_reply) as server:
        server.script_embeddings(Reply.slow(3.0, Reply.vectors_of([[1.0] + [0.0] * 7] * 2)))
        root = tmp_path / "ws"
        _workspace(root, server.url, docgen=False)
        editor = Editor(profile="neovim", root=root)
        try:
            await editor.start()
            before = {"embedded": 0, "pending": 2, "running": True}

            def embeddings() -> list[dict[str, Any]]:
                return [s["embeddings"] for s in editor.statuses if s.get("embeddings")]

            def shows(counts: dict[str, Any]) -> bool:
                return any(counts.items() <= e.items() for e in embeddings())

            await wait_for(lambda: shows(before), 30, "two spans pending while embedding")
            after = {"embedded": 2, "pending": 0, "running": False, "last_error": None}
            await wait_for(lambda: shows(after), 30, "both spans embedded")
            last = embeddings()[-1]
            assert last == {
                "model": "nomic-embed-text",
                "source": "configured",
                **after,
                "engine": None,
            }
            assert len(server.embed_requests) == 1
            report = await editor.command("spanlens.statusReport")
            lines = report["markdown"].splitlines()
            assert "- embeddings: nomic-embed-text (configured): 2 embedded, 0 pending" in lines
        finally:
            await editor.stop()
