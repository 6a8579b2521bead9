"""Docgen in the server (both capability profiles): docs appear one file per idle period,
edits and enrichment work go first, and the docgenFile / openDoc commands work."""

from __future__ import annotations

import asyncio
import itertools
import threading
from pathlib import Path
from typing import Any

import pytest
from pygls.exceptions import JsonRpcException
from tests.lsp.conftest import Editor, toml_settings, wait_for
from tests.support.replies import parse_docgen_request, parse_request, valid_reply
from tests.support.standin import RecordedRequest, Reply, StandinModelServer

FILES = {
    "a.py": "def helper(y):\n    return y + 1\n",
    "b.py": "from a import helper\n\n\ndef main(x):\n    return helper(x)\n",
    "c.py": "def other(z):\n    return z * 2\n",
}


def _workspace(root: Path, url: str, **settings: Any) -> None:
    root.mkdir(exist_ok=True)
    for name, text in FILES.items():
        (root / name).write_text(text)
    (root / "spanlens.toml").write_text(toml_settings(url, **settings))


def _docgen_requests(server: StandinModelServer) -> list[RecordedRequest]:
    return [r for r in server.chat_requests if parse_docgen_request(r) is not None]


def _running(editor: Editor) -> str | None:
    docgen = editor.last_status().get("docgen") or {}
    return docgen.get("running")


def _fresh(editor: Editor) -> int:
    docgen = editor.last_status().get("docgen") or {}
    return int(docgen.get("fresh", 0))


@pytest.mark.parametrize("profile", ["neovim", "visual-studio-code"])
async def test_docs_appear_one_file_per_idle_period(tmp_path: Path, profile: str) -> None:
    with StandinModelServer(responder=valid_reply, latency=0.02) as server:
        root = tmp_path / "ws"
        _workspace(root, server.url, docgen=True)
        editor = Editor(profile=profile, root=root)
        try:
            await editor.start()
            await wait_for(lambda: _fresh(editor) == 3, 30, "three fresh docs")
            seen = [int((s.get("docgen") or {}).get("fresh", 0)) for s in editor.statuses]
            # The count of fresh docs climbs one file at a time, never two in one step.
            climbs = [b - a for a, b in itertools.pairwise(seen) if b != a]
            assert climbs == [1, 1, 1]
            docgen_calls = _docgen_requests(server)
            assert len(docgen_calls) == 3  # exactly one model call per file
            # The enrichment tier's model, kept resident: no model swap for docgen.
            models = {r.json["model"] for r in server.chat_requests}
            assert models == {"qwen2.5-coder:7b"}
            assert all("keep_alive" in r.json for r in docgen_calls)
            doc = (root / ".spanlens/docs/b.py.md").read_text()
            assert doc.startswith("<!-- spanlens-doc overview=")
            assert "[`helper`](a.py.md#helper)" in doc  # calls resolve across files
            report = await editor.command("spanlens.statusReport")
            assert report["docgen"]["fresh"] == 3 and report["docgen"]["missing"] == 0
        finally:
            await editor.stop()


@pytest.mark.parametrize("profile", ["neovim", "visual-studio-code"])
async def test_an_edit_during_docgen_goes_first_and_docgen_waits_for_it(
    tmp_path: Path, profile: str
) -> None:
    docgen_gate = threading.Event()
    enrich_gate = threading.Event()
    edited: list[RecordedRequest] = []

    async def respond(request: RecordedRequest) -> Reply:
        if parse_docgen_request(request) is not None:
            while not docgen_gate.is_set():
                await asyncio.sleep(0.02)
            return valid_reply(request)
        parsed = parse_request(request) or {"spans": []}
        if any(span["name"] == "edited" for span in parsed["spans"]):
            edited.append(request)
            while not enrich_gate.is_set():
                await asyncio.sleep(0.02)
        return valid_reply(request)

    with StandinModelServer(responder=respond, latency=0.02) as server:
        root = tmp_path / "ws"
        _workspace(root, server.url, docgen=True)
        editor = Editor(profile=profile, root=root)
        try:
            await editor.start()
            await wait_for(lambda: _docgen_requests(server), 30, "the first docgen call")
            # An edit and a save while the docgen call is in flight.
            text = FILES["c.py"] + "\n\ndef edited(q):\n    return q\n"
            (root / "c.py").write_text(text)
            editor.open("c.py", text)
            editor.replace("c.py", text, version=2)
            editor.save("c.py")
            # The saved span's call starts while docgen's call is still held.
            await wait_for(lambda: edited, 15, "the saved span's enrichment call")
            assert len(_docgen_requests(server)) == 1
            await wait_for(lambda: _running(editor) is not None, 15, "docgen running")
            docgen_gate.set()  # docgen's call in flight finishes (its doc may be stale at once
            # when the file it documented is the one just edited) ...
            await wait_for(lambda: _running(editor) is None, 15, "the first doc's unit to end")
            await asyncio.sleep(1.0)  # several idle periods (lsp.idle_seconds = 0.3)
            # ... but no further file is documented while enrichment work is in flight.
            assert len(_docgen_requests(server)) == 1
            enrich_gate.set()
            await wait_for(lambda: _fresh(editor) == 3, 30, "all docs fresh")
            assert "`edited`" in (root / ".spanlens/docs/c.py.md").read_text()
        finally:
            docgen_gate.set()
            enrich_gate.set()
            await editor.stop()


@pytest.mark.parametrize("profile", ["neovim", "visual-studio-code"])
async def test_docgen_file_and_open_doc_commands(tmp_path: Path, profile: str) -> None:
    with StandinModelServer(responder=valid_reply, latency=0.02) as server:
        root = tmp_path / "ws"
        _workspace(root, server.url)  # idle docgen off: only the command writes
        editor = Editor(profile=profile, root=root)
        try:
            await editor.start()
            uri = editor.uri("a.py")
            with pytest.raises(JsonRpcException) as no_doc:
                await editor.command("spanlens.openDoc", {"uri": uri})
            assert no_doc.value.code == -32803 and "no doc yet for a.py" in no_doc.value.message
            await wait_for(lambda: len(editor.enriched) >= 1, 15, "enrichments")

            async def written() -> Any:
                try:
                    return await editor.command("spanlens.docgenFile", {"uri": uri})
                except JsonRpcException as exc:  # spans of a.py may still be pending
                    assert "wait for enrichment" in exc.message
                    return None

            result = await wait_for(written, 15, "docgenFile to write a.py's doc")
            assert result["written"] and result["modelCalls"] == 1
            assert result["uri"] == (root / ".spanlens/docs/a.py.md").as_uri()
            opened = await editor.command("spanlens.openDoc", {"uri": uri})
            assert opened["uri"] == result["uri"]
            assert len(_docgen_requests(server)) == 1
            with pytest.raises(JsonRpcException) as bad:
                await editor.command("spanlens.docgenFile", {})
            assert bad.value.code == -32602
        finally:
            await editor.stop()


@pytest.mark.parametrize("profile", ["neovim", "visual-studio-code"])
async def test_docgen_file_while_the_idle_job_writes_a_doc_waits_for_it(
    tmp_path: Path, profile: str
) -> None:
    """The command and the server's own idle docgen never lock each other out: a command for
    the file being documented gets that doc (one model call), one for another file waits its
    turn. Neither is told "another spanlens process is writing docs"."""
    gate = threading.Event()

    async def respond(request: RecordedRequest) -> Reply:
        if parse_docgen_request(request) is not None:
            while not gate.is_set():
                await asyncio.sleep(0.02)
        return valid_reply(request)

    with StandinModelServer(responder=respond, latency=0.02) as server:
        root = tmp_path / "ws"
        _workspace(root, server.url, docgen=True)
        editor = Editor(profile=profile, root=root)
        try:
            await editor.start()
            [first] = await wait_for(lambda: _docgen_requests(server), 30, "idle docgen's call")
            path = str((parse_docgen_request(first) or {})["path"])
            other = next(name for name in FILES if name != path)
            same = asyncio.ensure_future(
                editor.command("spanlens.docgenFile", {"uri": editor.uri(path)})
            )
            another = asyncio.ensure_future(
                editor.command("spanlens.docgenFile", {"uri": editor.uri(other)})
            )
            await asyncio.sleep(0.5)  # both commands reach the server while the call is held
            gate.set()
            results = await asyncio.wait_for(asyncio.gather(same, another), 30)
            assert [r["written"] for r in results] == [True, True], results
            assert results[1]["modelCalls"] == 1
            calls = [str(d["path"]) for d in map(parse_docgen_request, server.chat_requests) if d]
            assert calls.count(path) == 1  # the doc being written was not written twice
            assert (root / f".spanlens/docs/{path}.md").is_file()
            assert (root / f".spanlens/docs/{other}.md").is_file()
        finally:
            gate.set()
            await editor.stop()
