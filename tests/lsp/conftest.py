"""A real `spanlens serve` over stdio, driven by pytest-lsp's client under two editor profiles.

Every test runs twice: with Neovim's recorded capabilities (no codeLens refresh) and with
VS Code's (codeLens refresh, so the client answers it). The model is a stand-in HTTP server on
127.0.0.1; waits are on conditions with timeouts, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types
from pytest_lsp import LanguageClient, client_capabilities, make_test_lsp_client
from tests.support.replies import parse_request, valid_responder
from tests.support.standin import RecordedRequest, StandinModelServer

PROFILES = ["neovim", "visual-studio-code"]
#: How the stand-in's enrichments begin (tests.support.replies.valid_enrichment).
SUMMARY = "Test enrichment for the"
WAIT_SECONDS = 15.0

SAMPLE = '''\
class Config:
    """Settings read from a file."""

    def load(self, path):
        with open(path) as handle:
            return handle.read()

    def save(self, path, data):
        with open(path, "w") as handle:
            handle.write(data)


def parse_config(text):
    """Parse key=value lines."""
    return dict(line.split("=", 1) for line in text.splitlines())
'''


def toml_settings(url: str, *, docgen: bool = False, **lsp: Any) -> str:
    """A spanlens.toml with one stand-in backend and fast test timings; docgen stays off
    unless asked for (its calls would mix with the enrichment calls tests count)."""
    lsp_settings = {"idle_seconds": 0.3, "debounce_ms": 30, **lsp}
    lines = ["[lsp]"]
    for key, value in lsp_settings.items():
        lines.append(f"{key} = {value!r}" if not isinstance(value, str) else f'{key} = "{value}"')
    lines += [
        "",
        "[gpu]",
        "enabled = false",
        "",
        "[docgen]",
        f"enabled = {'true' if docgen else 'false'}",
        "",
        "[enrichment]",
        "retries = 0",
        "failure_retry_base = 600.0",
        "",
        "[[backends]]",
        'name = "standin"',
        'provider = "ollama"',
        f'url = "{url}"',
        'model = "qwen2.5-coder:7b"',
        "max_parallel = 2",
        "timeout = 10.0",
    ]
    return "\n".join(lines) + "\n"


async def wait_for(
    condition: Callable[[], Any], timeout: float = WAIT_SECONDS, what: str = "condition"
) -> Any:
    """Poll ``condition`` (sync or async) until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


@dataclass
class Editor:
    """One server process and its client, with what the server sent us."""

    profile: str
    root: Path
    client: LanguageClient = field(default_factory=make_test_lsp_client)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    enriched: list[dict[str, Any]] = field(default_factory=list)
    lens_refreshes: int = 0
    #: Registrations the server asked for (client/registerCapability).
    registrations: list[types.Registration] = field(default_factory=list)
    #: The server's answer to initialize.
    init_result: types.InitializeResult | None = None
    started: bool = False

    @property
    def supports_refresh(self) -> bool:
        """Whether this profile advertises workspace/codeLens/refresh."""
        caps = client_capabilities(self.profile)
        return bool(
            caps.workspace and caps.workspace.code_lens and caps.workspace.code_lens.refresh_support
        )

    async def start(
        self,
        init_options: dict[str, Any] | None = None,
        configuration: dict[str, Any] | None = None,
        capabilities: types.ClientCapabilities | None = None,
        wait: bool = True,
    ) -> LanguageClient:
        """Start `spanlens serve --stdio`, initialize on ``root`` and wait for the index.

        ``capabilities`` replaces the profile's (tests of what a client lacks); ``wait=False``
        returns right after ``initialized``.
        """
        client = self.client

        @client.feature("spanlens/status")
        def on_status(params: Any) -> None:
            self.statuses.append(_plain(params))

        @client.feature("spanlens/enriched")
        def on_enriched(params: Any) -> None:
            self.enriched.append(_plain(params))

        # Counted under every profile: a client that does not advertise refresh support must
        # never receive one (the count stays 0), one that does answers it.
        @client.feature(types.WORKSPACE_CODE_LENS_REFRESH)
        def on_refresh(params: None) -> None:
            self.lens_refreshes += 1

        @client.feature(types.CLIENT_REGISTER_CAPABILITY)
        def on_register(params: types.RegistrationParams) -> None:
            self.registrations.extend(params.registrations)

        if configuration is not None:
            client.set_configuration(configuration, section="spanlens")
        await client.start_io(sys.executable, "-m", "spanlens_lsp.cli", "serve", "--stdio")
        self.started = True
        self.init_result = await client.initialize_session(
            types.InitializeParams(
                capabilities=capabilities or client_capabilities(self.profile),
                root_uri=self.root.as_uri(),
                workspace_folders=[types.WorkspaceFolder(uri=self.root.as_uri(), name="ws")],
                initialization_options=init_options,
            )
        )
        if wait:
            await wait_for(self.indexed, what="the initial index")
        return client

    def indexed(self) -> bool:
        """Whether a status after the initial index has arrived."""
        return any(s.get("indexed") for s in self.statuses)

    def uri(self, rel: str) -> str:
        """The URI of a workspace file."""
        return (self.root / rel).as_uri()

    def open(self, rel: str, text: str | None = None) -> str:
        """didOpen a workspace file (its disk text unless ``text`` is given)."""
        uri = self.uri(rel)
        content = (self.root / rel).read_text() if text is None else text
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id="python", version=1, text=content
                )
            )
        )
        return uri

    def replace(self, rel: str, text: str, version: int) -> None:
        """didChange with the whole new text."""
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(
                    uri=self.uri(rel), version=version
                ),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    async def hold_open_work(self) -> None:
        """Make the editor busy (an edit in a scratch buffer with no spans) and wait until the
        server says so, so that open-document work queued after this waits for the quiet
        period instead of racing the edit (an edit sent right after didOpen can reach the
        server after that buffer's spans were already dispatched)."""
        self.open("scratch.py", "x = 1\n")
        self.replace("scratch.py", "x = 2\n", version=2)
        await wait_for(lambda: self.last_status().get("idle") is False, what="the edit to register")

    def save(self, rel: str) -> None:
        """didSave."""
        self.client.text_document_did_save(
            types.DidSaveTextDocumentParams(
                text_document=types.TextDocumentIdentifier(uri=self.uri(rel))
            )
        )

    async def hover_text(self, rel: str, line: int, character: int = 8) -> str:
        """The hover's text at (line, character), or ''."""
        result = await self.client.text_document_hover_async(
            types.HoverParams(
                text_document=types.TextDocumentIdentifier(uri=self.uri(rel)),
                position=types.Position(line=line, character=character),
            )
        )
        if result is None:
            return ""
        contents = result.contents
        return contents.value if isinstance(contents, types.MarkupContent) else str(contents)

    async def lens_titles(self, rel: str) -> dict[int, str]:
        """Resolved lens titles by lens line."""
        lenses = await self.client.text_document_code_lens_async(
            types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=self.uri(rel)))
        )
        titles = {}
        for lens in lenses or []:
            resolved = await self.client.code_lens_resolve_async(lens)
            assert resolved.command is not None
            titles[lens.range.start.line] = resolved.command.title
        return titles

    async def command(self, name: str, *arguments: Any) -> Any:
        """workspace/executeCommand."""
        return await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=name, arguments=list(arguments))
        )

    def last_status(self) -> dict[str, Any]:
        """The newest spanlens/status payload."""
        return self.statuses[-1] if self.statuses else {}

    async def stop(self) -> None:
        """shutdown + exit (if the server still runs), then stop the client."""
        if self.started and self.client.error is None:
            try:
                await asyncio.wait_for(self.client.shutdown_session(), 20)
            except Exception:
                pass
        await self.client.stop()


def _plain(value: Any) -> Any:
    """Notification params as plain JSON values (pygls structures them as namedtuples)."""
    if hasattr(value, "_asdict"):
        value = value._asdict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@pytest.fixture
def standin() -> Iterator[StandinModelServer]:
    """A stand-in Ollama answering every chat with valid enrichments."""
    with StandinModelServer(responder=valid_responder, latency=0.05) as server:
        yield server


@pytest.fixture
def workspace(tmp_path: Path, standin: StandinModelServer) -> Path:
    """A workspace with config.py and a spanlens.toml pointing at the stand-in."""
    root = tmp_path / "ws"
    root.mkdir()
    (root / "config.py").write_text(SAMPLE)
    (root / "spanlens.toml").write_text(toml_settings(standin.url))
    return root


@pytest_asyncio.fixture(params=PROFILES)
async def editor(request: pytest.FixtureRequest, workspace: Path) -> AsyncIterator[Editor]:
    """An editor (not yet started) on ``workspace`` under one capability profile."""
    session = Editor(profile=request.param, root=workspace)
    try:
        yield session
    finally:
        await session.stop()


def requested_names(request: RecordedRequest) -> list[str]:
    """The names of the spans one chat request asks about."""
    parsed = parse_request(request)
    return [str(span["name"]) for span in parsed["spans"]] if parsed else []
