"""spanlens.installModel: the built-in model installed from the editor, with work-done
progress and cancellation (protocol.md: Commands, Progress).

The model is a small fake served over HTTPS on 127.0.0.1 (tests/support/file_server.py) and
named by a test catalog (SPANLENS_MODEL_CATALOG); the server's cache is a temp folder.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from tests.lsp.conftest import Editor, wait_for
from tests.support.file_server import HttpsFileServer
from tests.support.localmodel import write_tiny_catalog
from tests.support.standin import closed_port_url

DATA = bytes(range(256)) * 16 * 1024  # 4 MiB
TITLE = "spanlens: installing tiny"


def use_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> Path:
    """Point the server (started after this) at a one-model catalog and a temp cache."""
    catalog = write_tiny_catalog(tmp_path, DATA, [url])
    monkeypatch.setenv("SPANLENS_MODEL_CATALOG", str(catalog))
    monkeypatch.setenv("SPANLENS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


def install_reports(editor: Editor) -> list[Any]:
    """The messages of the install's progress token (the one whose begin has its title)."""
    for reports in editor.client.progress_reports.values():
        if reports and getattr(reports[0], "title", None) == TITLE:
            return list(reports)
    return []


async def test_the_model_installs_with_progress_and_a_second_call_does_nothing(
    editor: Editor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with HttpsFileServer(tmp_path, {"/tiny.gguf": DATA}, delay=0.02) as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))
        models = use_catalog(tmp_path, monkeypatch, server.url("/tiny.gguf"))
        await editor.start()

        result = await editor.command("spanlens.installModel", {})
        again = await editor.command("spanlens.installModel", {"name": "tiny"})

    assert result["installed"] is True and result["name"] == "tiny"
    assert result["note"] is None  # the workspace has its backends
    assert result["path"] == str(models / "tiny.gguf")
    assert result["source"] == server.url("/tiny.gguf")
    assert (models / "tiny.gguf").read_bytes() == DATA
    assert again["installed"] is False
    reports = install_reports(editor)
    assert isinstance(reports[0], types.WorkDoneProgressBegin) and reports[0].cancellable
    assert isinstance(reports[-1], types.WorkDoneProgressEnd)
    assert reports[-1].message == "installed"
    middle = reports[1:-1]
    assert middle and all(isinstance(r, types.WorkDoneProgressReport) for r in middle)
    assert any("MiB of 4 MiB" in (r.message or "") for r in middle)
    assert [r.percentage for r in middle] == sorted(r.percentage for r in middle)


async def test_cancelling_the_progress_stops_the_download_and_keeps_its_bytes(
    editor: Editor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with HttpsFileServer(tmp_path, {"/tiny.gguf": DATA}, delay=0.1) as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))
        models = use_catalog(tmp_path, monkeypatch, server.url("/tiny.gguf"))
        await editor.start()
        running = asyncio.ensure_future(editor.command("spanlens.installModel", {}))

        def downloading() -> Any:
            reports = install_reports(editor)
            return any((r.percentage or 0) > 0 for r in reports[1:]) and reports

        reports = await wait_for(downloading, what="the download to start")
        token = next(t for t, r in editor.client.progress_reports.items() if r == reports)
        editor.client.window_work_done_progress_cancel(
            types.WorkDoneProgressCancelParams(token=token)
        )
        with pytest.raises(JsonRpcException) as caught:
            await asyncio.wait_for(running, 15)
        assert caught.value.code == -32800
        assert "run it again to resume" in caught.value.message
        await wait_for(lambda: server.requests, what="the download to stop")

    assert install_reports(editor)[-1].message == "cancelled"
    assert not (models / "tiny.gguf").exists()
    kept = (models / "tiny.gguf.partial").stat().st_size
    assert 0 < kept < len(DATA)
    assert len(server.requests) == 1 and server.requests[0].sent < len(DATA)


async def test_failures_are_one_readable_error(
    editor: Editor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = use_catalog(tmp_path, monkeypatch, closed_port_url() + "/tiny.gguf")
    await editor.start()

    with pytest.raises(JsonRpcException) as offline:
        await editor.command("spanlens.installModel", {})
    with pytest.raises(JsonRpcException) as unknown:
        await editor.command("spanlens.installModel", {"name": "llama-70b"})
    with pytest.raises(JsonRpcException) as bad:
        await editor.command("spanlens.installModel", {"name": 7})

    assert offline.value.code == -32803
    assert offline.value.message.startswith("cannot install tiny: http://127.0.0.1:")
    assert "unreachable" in offline.value.message and "\n" not in offline.value.message
    assert install_reports(editor)[-1].message == "failed"
    assert not models.exists() or [p.name for p in models.iterdir()] == ["tiny.gguf.lock"]
    assert (unknown.value.code, unknown.value.message) == (
        -32602,
        "unknown model 'llama-70b' (known: tiny)",
    )
    assert bad.value.code == -32602


async def test_a_client_token_carries_the_progress_and_cancels_the_install(
    editor: Editor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that shows the install itself (VS Code's notification) sends its own
    workDoneToken: the progress goes there, no token is created, cancelling it stops."""
    with HttpsFileServer(tmp_path, {"/tiny.gguf": DATA}, delay=0.1) as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))
        models = use_catalog(tmp_path, monkeypatch, server.url("/tiny.gguf"))
        await editor.start()
        token = "client-install-1"
        editor.client.progress_reports[token] = []  # the client made it: no create request
        running = asyncio.ensure_future(
            editor.client.workspace_execute_command_async(
                types.ExecuteCommandParams(
                    command="spanlens.installModel", arguments=[{}], work_done_token=token
                )
            )
        )

        def downloading() -> bool:
            reports = editor.client.progress_reports[token]
            return any((getattr(r, "percentage", 0) or 0) > 0 for r in reports[1:])

        await wait_for(downloading, what="the download to start")
        editor.client.window_work_done_progress_cancel(
            types.WorkDoneProgressCancelParams(token=token)
        )
        with pytest.raises(JsonRpcException) as caught:
            await asyncio.wait_for(running, 15)

    assert caught.value.code == -32800
    reports = editor.client.progress_reports[token]
    assert isinstance(reports[0], types.WorkDoneProgressBegin)
    assert reports[0].title == TITLE and reports[0].cancellable
    assert isinstance(reports[-1], types.WorkDoneProgressEnd)
    assert reports[-1].message == "cancelled"
    titled = [t for t, r in editor.client.progress_reports.items() if r and r[0].title == TITLE]
    assert titled == [token]
    assert not (models / "tiny.gguf").exists()


async def test_a_facts_only_workspace_uses_the_model_once_it_is_installed(
    editor: Editor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first-run action's promise: after the install the server serves the built-in
    model without a restart (modelSource goes from none to built-in)."""
    # Nothing configured (and no Ollama here); no backlog run (it would start the engine on
    # the fake model).
    (editor.root / "spanlens.toml").write_text(
        '[local]\nmodel = "tiny"\n\n[lsp]\nidle_seconds = 3600\n'
    )
    with HttpsFileServer(tmp_path, {"/tiny.gguf": DATA}) as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))
        use_catalog(tmp_path, monkeypatch, server.url("/tiny.gguf"))
        await editor.start()
        assert editor.last_status()["modelSource"] == "none"

        result = await editor.command("spanlens.installModel", {})
        assert result["note"] is None

        status = await wait_for(
            lambda: editor.last_status().get("modelSource") == "built-in" and editor.last_status(),
            what="the built-in model in the status",
        )
    assert status["state"] != "facts_only"
    assert [e["provider"] for e in status["backends"]["endpoints"]] == ["local"]
    # The engine's own line for status items (sampled off the loop within 5 s).
    engine = await wait_for(
        lambda: editor.last_status().get("localEngine"), what="the engine in the status"
    )
    assert set(engine) == {"model", "state", "memory_mb", "tokens_per_s"}
    assert engine["model"] == "tiny"
    assert engine["state"] in {"stopped", "starting", "running", "failed"}
    facts_only = [s["localEngine"] for s in editor.statuses if s["modelSource"] == "none"]
    assert facts_only and all(engine is None for engine in facts_only)


async def test_a_server_without_the_engine_says_why_the_model_is_not_used(
    editor: Editor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server without the [local] extra (the one bundled in the VS Code extension) installs
    the model, stays facts only, and its answer says why, for the editor to show."""
    hidden = tmp_path / "no-engine"
    hidden.mkdir()
    (hidden / "sitecustomize.py").write_text("import sys\nsys.modules['xllamacpp'] = None\n")
    monkeypatch.setenv("PYTHONPATH", f"{hidden}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    (editor.root / "spanlens.toml").write_text('[local]\nmodel = "tiny"\n')
    with HttpsFileServer(tmp_path, {"/tiny.gguf": DATA}) as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))
        use_catalog(tmp_path, monkeypatch, server.url("/tiny.gguf"))
        await editor.start()
        result = await editor.command("spanlens.installModel", {})

    assert result["installed"] is True
    assert result["note"] == (
        "the built-in model is installed but not its engine: "
        "install the [local] extra: pip install 'spanlens-lsp[local]'"
    )
    assert editor.last_status()["modelSource"] == "none"


async def test_cancelling_the_request_stops_the_install_and_a_later_one_resumes(
    editor: Editor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``$/cancelRequest`` on the command (what an editor sends when the user gives up on
    it) ends the request as cancelled and stops the download: no model is installed behind
    the user's back, and the next install resumes from the bytes already fetched."""
    with HttpsFileServer(tmp_path, {"/tiny.gguf": DATA}, delay=0.1) as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))
        models = use_catalog(tmp_path, monkeypatch, server.url("/tiny.gguf"))
        await editor.start()
        params = types.ExecuteCommandParams(command="spanlens.installModel", arguments=[{}])
        # A raw request: pygls's client cannot take a late answer to a request it cancelled.
        future = editor.client.protocol.send_request(
            types.WORKSPACE_EXECUTE_COMMAND, params, msg_id="install-1"
        )

        def downloading() -> bool:
            return any((r.percentage or 0) > 0 for r in install_reports(editor)[1:])

        await wait_for(downloading, what="the download to start")
        editor.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="install-1"))
        with pytest.raises(JsonRpcException) as caught:
            await asyncio.wait_for(asyncio.wrap_future(future), 15)
        assert caught.value.code == -32800
        ended = await wait_for(
            lambda: (
                isinstance(install_reports(editor)[-1], types.WorkDoneProgressEnd)
                and install_reports(editor)[-1]
            ),
            what="the install's progress to end",
        )
        assert ended.message == "cancelled"
        await wait_for(lambda: server.requests, what="the download to stop")
        assert not (models / "tiny.gguf").exists()
        kept = (models / "tiny.gguf.partial").stat().st_size
        assert 0 < kept < len(DATA)
        assert server.requests[0].sent < len(DATA)

        server.delay = 0
        result = await editor.command("spanlens.installModel", {})

    assert result["installed"] is True
    assert (models / "tiny.gguf").read_bytes() == DATA
    resumed = server.requests[-1].headers.get("Range", "")
    assert resumed.startswith("bytes=") and int(resumed[6:-1]) >= kept  # not from the start


async def test_the_embedding_model_installs_by_name_and_serves_search_at_once(
    editor: Editor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Setup's second step: ``{"name": "all-minilm-l6-v2"}`` installs the built-in embedding
    model (kind ``embedding``), the workspace's status names it at once, no restart, and a
    second install is a no-op."""
    vectors = bytes(range(256)) * 1024
    (editor.root / "spanlens.toml").write_text(
        '[local]\nmodel = "tiny"\n\n[lsp]\nidle_seconds = 3600\n'
    )
    with HttpsFileServer(tmp_path, {"/tiny.gguf": DATA, "/minilm.gguf": vectors}) as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))
        models = use_catalog(tmp_path, monkeypatch, server.url("/tiny.gguf"))
        path = tmp_path / "catalog.json"
        raw = json.loads(path.read_text())
        raw["models"].append(
            {
                "name": "all-minilm-l6-v2",
                "label": "all-MiniLM-L6-v2",
                "kind": "embedding",
                "filename": "all-minilm-l6-v2-f32.gguf",
                "size": len(vectors),
                "sha256": hashlib.sha256(vectors).hexdigest(),
                "urls": [server.url("/minilm.gguf")],
            }
        )
        path.write_text(json.dumps(raw))
        await editor.start()
        assert editor.last_status()["embeddings"] is None

        result = await editor.command("spanlens.installModel", {"name": "all-minilm-l6-v2"})
        again = await editor.command("spanlens.installModel", {"name": "all-minilm-l6-v2"})
        chat = await editor.command("spanlens.installModel", {})

    assert (result["kind"], result["installed"], result["note"]) == ("embedding", True, None)
    assert (again["installed"], again["source"]) == (False, None)
    assert (models / "all-minilm-l6-v2-f32.gguf").read_bytes() == vectors
    assert chat["kind"] == "chat"
    embeddings = (
        await wait_for(
            lambda: (editor.last_status().get("embeddings") or {}).get("engine"),
            what="the embedding model and its engine in the status",
        )
        and editor.last_status()["embeddings"]
    )
    assert (embeddings["model"], embeddings["source"]) == ("all-minilm-l6-v2", "built-in")
    assert embeddings["engine"]["model"] == "all-minilm-l6-v2"
    assert set(embeddings["engine"]) == {"model", "state", "memory_mb", "tokens_per_s"}
