"""A stand-in model server: real HTTP/1.1 on 127.0.0.1 speaking the Ollama and OpenAI protocols.

LLM backends are tested against a real socket, never a mocked client. The server runs in a
background thread with its own asyncio event loop, so synchronous tests, async tests, the
language server in a subprocess and benchmarks can all talk to it::

    with StandinModelServer(latency=0.05) as server:
        server.script(Reply.json({"summary": "adds"}), Reply.rate_limited(2))
        ...  # point a backend at server.url
        assert server.chat_requests[0].json["format"]["type"] == "object"

Embedding requests (``POST /api/embed``, ``POST /v1/embeddings``) take the replies of
:meth:`StandinModelServer.script_embeddings` (``Reply.vectors`` for a reply of your own, or any
fault), and otherwise get :func:`standin_vector` of each input: the same text, the same vector.

Chat requests (``POST /api/chat``, ``POST /v1/chat/completions``) take scripted replies in
order; when the script is empty the ``responder`` is asked, and without one the server answers
500 "no scripted reply" so that a test notices. Each :class:`Reply` is rendered in the shape of
the endpoint that was hit. Requests that fail validation (streaming, unknown model, missing API
key, a rejected json_schema) are answered by the server itself and consume no scripted reply.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hashlib
import inspect
import itertools
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any, Literal

__all__ = [
    "CHAT_PATHS",
    "RecordedRequest",
    "Reply",
    "Responder",
    "StandinModelServer",
    "closed_port_url",
    "standin_vector",
]

Provider = Literal["ollama", "openai"]

OLLAMA_CHAT = "/api/chat"
OPENAI_CHAT = "/v1/chat/completions"
CHAT_PATHS = frozenset({OLLAMA_CHAT, OPENAI_CHAT})
OLLAMA_EMBED = "/api/embed"
#: llama.cpp's refusal (HTTP 400) of an embedding input longer than the model's context.
LLAMA_CPP_TOO_LONG = "the request exceeds the available context size, try increasing it"
#: llama.cpp's refusal (HTTP 500) of one longer than its batch (``-ub``).
LLAMA_CPP_TOO_LARGE = "input is too large to process. increase the physical batch size"
OPENAI_EMBED = "/v1/embeddings"

#: What ``GET /api/version`` reports: a real Ollama release, so version checks pass.
OLLAMA_VERSION = "0.12.6"
#: Largest request head (request line + headers) accepted; bodies are bounded by Content-Length.
_MAX_HEAD_BYTES = 256 * 1024
_DEFAULT_MID_BODY_TEXT = '{"summary": "Returns the sum of its two arguments.", "inputs": []}'


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the stand-in received it. Also readable as ``request["json"]``."""

    method: str
    #: Path without the query string.
    path: str
    #: Header names in lower case; repeated headers joined with ", ".
    headers: dict[str, str]
    #: The decoded JSON body, or None when the body is empty or not JSON.
    json: Any
    #: "openai" for paths under /v1, else "ollama".
    provider: Provider
    body: bytes = b""
    query: str = ""
    #: Serial number of the TCP connection it came on (equal numbers = keep-alive reuse).
    connection: int = 0
    #: time.monotonic() when the request was fully read.
    received_at: float = 0.0

    @property
    def is_chat(self) -> bool:
        """True for the two chat endpoints."""
        return self.path in CHAT_PATHS and self.method == "POST"

    @property
    def model(self) -> str | None:
        """The ``model`` field of a JSON body, if any."""
        value = self.json.get("model") if isinstance(self.json, dict) else None
        return value if isinstance(value, str) else None

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The chat ``messages`` (empty for other requests)."""
        value = self.json.get("messages") if isinstance(self.json, dict) else None
        return value if isinstance(value, list) else []

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


@dataclasses.dataclass(frozen=True)
class Reply:
    """What the stand-in does with one chat request. Build one with the class methods."""

    kind: Literal["content", "error", "disconnect", "disconnect_mid_body", "drip", "vectors"]
    text: str = ""
    tokens_in: int = 100
    tokens_out: int = 50
    finish: str = "stop"
    status: int = 200
    #: Error body: dict/list (sent as JSON), str/bytes (sent verbatim), None (protocol default).
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()
    #: A well-known error rendered in each protocol's own words ("context_overflow", ...).
    problem: str | None = None
    #: Extra seconds to wait before acting (on top of the server's latency).
    delay: float = 0.0
    #: For ``drip``: seconds between two body bytes.
    interval: float = 0.0
    #: For ``vectors``: the embeddings sent as they are (NaN included).
    vectors: Any = None

    @classmethod
    def vectors_of(cls, vectors: Any, *, tokens_in: int = 10, body: Any = None) -> Reply:
        """An embedding reply carrying ``vectors`` verbatim, whatever their count or shape;
        with ``body``, that JSON body instead."""
        return cls("vectors", vectors=vectors, tokens_in=tokens_in, body=body)

    @classmethod
    def content(
        cls, text: str, *, tokens_in: int = 100, tokens_out: int = 50, finish: str = "stop"
    ) -> Reply:
        """A 200 whose assistant message content is ``text`` verbatim.

        Use it for prose-wrapped, fenced, invalid or truncated JSON (with ``finish="length"``).
        """
        return cls("content", text=text, tokens_in=tokens_in, tokens_out=tokens_out, finish=finish)

    @classmethod
    def json(
        cls, obj: Any, *, tokens_in: int = 100, tokens_out: int = 50, finish: str = "stop"
    ) -> Reply:
        """A 200 whose content is ``json.dumps(obj)``."""
        return cls.content(
            json.dumps(obj), tokens_in=tokens_in, tokens_out=tokens_out, finish=finish
        )

    @classmethod
    def error(
        cls, status: int, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> Reply:
        """An HTTP error; without ``body``, the protocol's usual error JSON for ``status``."""
        return cls("error", status=status, body=body, headers=tuple((headers or {}).items()))

    @classmethod
    def rate_limited(cls, retry_after: float = 1) -> Reply:
        """429 with a ``Retry-After`` header (seconds)."""
        seconds = int(retry_after) if float(retry_after).is_integer() else retry_after
        return cls(
            "error",
            status=429,
            headers=(("Retry-After", str(seconds)),),
            problem="rate_limited",
        )

    @classmethod
    def slow(cls, seconds: float, then: Reply) -> Reply:
        """Wait ``seconds`` more, then act as ``then`` (for client timeouts)."""
        return dataclasses.replace(then, delay=then.delay + seconds)

    @classmethod
    def disconnect(cls) -> Reply:
        """Close the connection without sending any response."""
        return cls("disconnect")

    @classmethod
    def disconnect_mid_body(cls, text: str = _DEFAULT_MID_BODY_TEXT) -> Reply:
        """Send the headers and half of a 200 body (announced in full), then close."""
        return cls("disconnect_mid_body", text=text)

    @classmethod
    def drip(cls, interval: float = 1.0, text: str = _DEFAULT_MID_BODY_TEXT) -> Reply:
        """A 200 whose headers come at once and whose body then trickles in one byte every
        ``interval`` seconds: every read succeeds, the reply just never ends in time."""
        return cls("drip", text=text, interval=interval)

    @classmethod
    def malformed(
        cls, body: str = '{"model": "qwen2.5-coder:7b", "message": {"content": '
    ) -> Reply:
        """A complete 200 reply (Content-Length honoured) whose body is not valid JSON."""
        return cls("error", status=200, body=body)

    @classmethod
    def context_overflow(cls) -> Reply:
        """400 with the error each provider gives for a prompt longer than the context."""
        return cls("error", status=400, problem="context_overflow")


#: Called for a chat request when no scripted reply is left; may be a coroutine function.
Responder = Callable[[RecordedRequest], Reply | Awaitable[Reply]]


@dataclasses.dataclass
class _Response:
    """An HTTP response about to be written."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    #: Send only this many body bytes, then close the connection.
    cut_body_at: int | None = None
    #: Close the connection without writing anything.
    drop: bool = False
    #: Write the body one byte every this many seconds.
    drip: float | None = None

    def encode(self, keep_alive: bool) -> tuple[bytes, bytes]:
        """(head, body) ready for the socket."""
        try:
            reason = HTTPStatus(self.status).phrase
        except ValueError:
            reason = "Unknown"
        own = {name.lower() for name, _ in self.headers}
        lines = [f"HTTP/1.1 {self.status} {reason}"]
        if "content-type" not in own:
            lines.append(f"Content-Type: {self.content_type}")
        lines.append(f"Content-Length: {len(self.body)}")
        lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
        lines.append("Server: spanlens-standin")
        lines.extend(f"{name}: {value}" for name, value in self.headers)
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), self.body


def _json_response(status: int, obj: Any, headers: tuple[tuple[str, str], ...] = ()) -> _Response:
    return _Response(status, json.dumps(obj).encode(), headers=headers)


@dataclasses.dataclass
class _RawRequest:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


class _BadRequest(Exception):
    """The bytes on the wire are not an HTTP/1.x request we can answer."""


async def _read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> _RawRequest | None:
    """Read one request; None when the client closed the connection between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise _BadRequest("incomplete request head") from None
        return None
    except asyncio.LimitOverrunError:
        raise _BadRequest("request head too large") from None
    lines = head[:-4].decode("latin-1").lstrip("\r\n").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
        raise _BadRequest(f"malformed request line: {lines[0][:80]!r}")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise _BadRequest(f"malformed header line: {line[:80]!r}")
        key, value = name.lower(), value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise _BadRequest("invalid Content-Length") from None
        if length < 0:
            raise _BadRequest("invalid Content-Length")
        body = await reader.readexactly(length)
    else:
        body = b""
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    keep_alive = "close" not in tokens if version == "HTTP/1.1" else "keep-alive" in tokens
    return _RawRequest(method, target, headers, body, keep_alive)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _BadRequest("invalid chunk size") from None
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailers are read and ignored
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise _BadRequest("chunk not terminated by CRLF")


def _openai_error(
    status: int, message: str, *, type_: str | None = None, code: str | None = None
) -> dict[str, Any]:
    if type_ is None:
        type_ = "server_error" if status >= 500 else "invalid_request_error"
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def _error_body(provider: Provider, status: int, message: str, **kw: Any) -> dict[str, Any]:
    """The protocol's error JSON: Ollama ``{"error": str}``, OpenAI ``{"error": {...}}``."""
    if provider == "ollama":
        return {"error": message}
    return _openai_error(status, message, **kw)


def _rfc3339_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


#: The chat completion parameters OpenAI's API takes (a hosted API refuses any other).
_OPENAI_CHAT_FIELDS = frozenset(
    {
        "model", "messages", "temperature", "top_p", "n", "stream", "stop", "max_tokens",
        "max_completion_tokens", "presence_penalty", "frequency_penalty", "logit_bias", "user",
        "response_format", "seed", "tools", "tool_choice", "logprobs", "top_logprobs",
    }
)  # fmt: skip


class StandinModelServer:
    """A scriptable Ollama + OpenAI-compatible model server on 127.0.0.1 (random free port).

    ``latency`` delays every chat reply (asyncio.sleep, never blocking other requests);
    ``max_concurrency`` lets at most that many chat requests be processed at once, like a GPU
    with that many slots; ``require_api_key`` makes /v1 requests need ``Authorization: Bearer
    <key>``; ``reject_json_schema`` makes the OpenAI endpoint refuse ``response_format``
    json_schema (so a client's json_object fallback can be tested). ``latency``, ``responder``,
    ``models``, ``require_api_key`` and ``reject_json_schema`` are read per request and may be
    changed while the server runs.

    ``engine`` makes the OpenAI side speak like a real engine: ``"llama.cpp"`` (``owned_by``
    llamacpp, ``/props`` with ``n_ctx`` per slot and ``total_slots``, ``/tokenize``) or
    ``"llama-cpp-python"`` (``owned_by`` me, ``/extras/tokenize/count``, ``json_schema``
    refused with HTTP 500 and its validation message, ``json_object`` + ``schema`` taken).
    Their tokenizers count ``chars_per_token`` characters a token; ``probe_latency`` (read per
    request) delays ``/props`` and their tokenizer endpoints, like a server busy with a completion.
    ``reject_unknown_fields`` makes the OpenAI endpoint refuse a chat body with a field outside
    OpenAI's own parameters (HTTP 400, "Unrecognized request argument supplied"), as hosted
    APIs do. ``llguidance=False`` makes a llama.cpp stand-in refuse an llguidance ``grammar``
    (HTTP 400, llama.cpp's message), as a llama.cpp built without it does.
    """

    def __init__(
        self,
        models: Iterable[str] = ("qwen2.5-coder:7b",),
        latency: float = 0.0,
        max_concurrency: int | None = None,
        responder: Responder | None = None,
        require_api_key: str | None = None,
        reject_json_schema: bool = False,
        engine: str | None = None,
        n_ctx: int = 4096,
        slots: int = 4,
        chars_per_token: float = 2.75,
        probe_latency: float = 0.0,
        reject_unknown_fields: bool = False,
        llguidance: bool = True,
        embedding_dims: int = 8,
        embedding_max_chars: int | None = None,
        embedding_refusal: tuple[int, str] = (400, LLAMA_CPP_TOO_LONG),
    ) -> None:
        self.models: tuple[str, ...] = tuple(models)
        self.embedding_dims = embedding_dims
        #: An embedding request with a text longer than this is refused whole, with
        #: ``embedding_refusal`` (status, message), as llama.cpp refuses one longer than its
        #: model's context.
        self.embedding_max_chars = embedding_max_chars
        self.embedding_refusal = embedding_refusal
        self._embed_script: collections.deque[Reply] = collections.deque()
        self.latency = latency
        self.max_concurrency = max_concurrency
        self.responder = responder
        self.require_api_key = require_api_key
        self.reject_json_schema = reject_json_schema
        self.engine = engine
        self.n_ctx = n_ctx
        self.slots = slots
        self.chars_per_token = chars_per_token
        self.probe_latency = probe_latency
        self.reject_unknown_fields = reject_unknown_fields
        self.llguidance = llguidance

        self._lock = threading.Lock()
        self._recorded = threading.Condition(self._lock)
        self._requests: list[RecordedRequest] = []
        self._script: collections.deque[Reply] = collections.deque()
        self._in_flight = 0
        self._max_in_flight = 0
        self._connection_ids = itertools.count(1)
        self._reply_ids = itertools.count(1)

        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._slots: asyncio.Semaphore | None = None
        self._connections: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        self._port: int | None = None
        self._routes: dict[str, dict[str, Callable[[RecordedRequest], Awaitable[_Response]]]] = {
            "/": {"GET": self._ollama_root},
            "/api/version": {"GET": self._ollama_version},
            "/api/tags": {"GET": self._ollama_tags},
            OLLAMA_CHAT: {"POST": self._chat},
            "/v1/models": {"GET": self._openai_models},
            OPENAI_CHAT: {"POST": self._chat},
            "/props": {"GET": self._llama_props},
            "/tokenize": {"POST": self._llama_tokenize},
            "/extras/tokenize/count": {"POST": self._llama_python_count},
            OLLAMA_EMBED: {"POST": self._embed},
            OPENAI_EMBED: {"POST": self._embed},
        }

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> StandinModelServer:
        """Start listening; returns self. Raises if the server cannot start."""
        if self._thread is not None:
            raise RuntimeError("stand-in model server already started")
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(ready, failure), name="standin-model-server", daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout=10):
            raise RuntimeError("stand-in model server did not start within 10 s")
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listener and every connection (replies in progress are dropped), then
        stop the loop and join the thread. Safe to call twice."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        try:
            if loop.is_running():
                done = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
                done.result(timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            self._thread = None
            self._port = None

    def __enter__(self) -> StandinModelServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The TCP port it listens on."""
        if self._port is None:
            raise RuntimeError("stand-in model server is not running")
        return self._port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:43127`` (append /v1 for OpenAI SDK-style bases)."""
        return f"http://127.0.0.1:{self.port}"

    # -- scripting and inspection --------------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next chat requests, in order of arrival."""
        for reply in replies:
            if not isinstance(reply, Reply):
                raise TypeError(f"script() takes Reply objects, got {type(reply).__name__}")
        with self._lock:
            self._script.extend(replies)

    def script_embeddings(self, *replies: Reply) -> None:
        """Queue replies for the next embedding requests, in order of arrival."""
        with self._lock:
            self._embed_script.extend(replies)

    @property
    def embed_requests(self) -> list[RecordedRequest]:
        """The embedding requests received so far, whatever their outcome."""
        with self._lock:
            return [r for r in self._requests if r.path in (OLLAMA_EMBED, OPENAI_EMBED)]

    @property
    def embedded_texts(self) -> list[str]:
        """Every text the embedding requests carried, in order."""
        return [t for r in self.embed_requests for t in as_json_dict(r.json).get("input", [])]

    @property
    def unused_replies(self) -> int:
        """How many scripted replies no request has consumed yet."""
        with self._lock:
            return len(self._script)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far (a copy), in order of arrival."""
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The chat requests received so far, whatever their outcome."""
        with self._lock:
            return [r for r in self._requests if r.is_chat]

    @property
    def in_flight(self) -> int:
        """Chat requests being processed right now (holding a slot, waiting out latency)."""
        return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """The most chat requests that were ever processed at the same time."""
        return self._max_in_flight

    def reset(self) -> None:
        """Forget recorded requests, unused scripted replies (embeddings' too) and the
        in-flight maximum."""
        with self._lock:
            self._requests.clear()
            self._script.clear()
            self._embed_script.clear()
            self._max_in_flight = self._in_flight

    def wait_for_requests(
        self, count: int, *, chat_only: bool = True, timeout: float = 5.0
    ) -> list[RecordedRequest]:
        """Block until at least ``count`` (chat) requests were received; return them all.

        Raises TimeoutError. For the language server in a subprocess, which calls the model
        on its own schedule; from async code use ``await asyncio.to_thread(...)``.
        """

        def matching() -> list[RecordedRequest]:
            return [r for r in self._requests if r.is_chat or not chat_only]

        with self._recorded:
            if not self._recorded.wait_for(lambda: len(matching()) >= count, timeout):
                got = len(matching())
                raise TimeoutError(f"expected {count} requests within {timeout} s, got {got}")
            return matching()

    # -- event loop side -----------------------------------------------------------------------

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(self._open())
        except BaseException as exc:
            failure.append(exc)
            loop.close()
            ready.set()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _open(self) -> asyncio.Server:
        if self.max_concurrency is not None:
            if self.max_concurrency < 1:
                raise ValueError("max_concurrency must be at least 1")
            self._slots = asyncio.Semaphore(self.max_concurrency)
        # A large backlog: a benchmark opening hundreds of connections at once must not see
        # SYN retransmits (a 1 s stall each) when the accept queue overflows.
        server = await asyncio.start_server(
            self._serve_connection, "127.0.0.1", 0, backlog=4096, limit=_MAX_HEAD_BYTES
        )
        self._port = server.sockets[0].getsockname()[1]
        return server

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = list(self._connections)
        for task, writer in list(self._connections.items()):
            writer.transport.abort()
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        connection = next(self._connection_ids)
        try:
            while True:
                try:
                    raw = await _read_request(reader, writer)
                except _BadRequest as exc:
                    await self._write(writer, _json_response(400, {"error": str(exc)}), False)
                    break
                if raw is None:
                    break
                keep_open = await self._write(
                    writer, await self._handle(raw, connection), raw.keep_alive
                )
                if not keep_open:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away; nothing to answer
        except asyncio.CancelledError:
            # stop() cancels connections; ending normally keeps Python 3.11's stream callback
            # from logging the cancellation as an unhandled error.
            pass
        finally:
            self._connections.pop(task, None)
            writer.transport.close()

    async def _write(
        self, writer: asyncio.StreamWriter, response: _Response, keep_alive: bool
    ) -> bool:
        """Write a response; return whether the connection stays open."""
        if response.drop or writer.transport.is_closing():
            return False
        keep_alive = keep_alive and response.cut_body_at is None
        head, body = response.encode(keep_alive)
        if response.cut_body_at is not None:
            body = body[: response.cut_body_at]
        if response.drip is not None:
            writer.write(head)
            await writer.drain()
            for index in range(len(body)):
                await asyncio.sleep(response.drip)
                if writer.transport.is_closing():
                    return False
                writer.write(body[index : index + 1])
                await writer.drain()
            return keep_alive
        writer.write(head + body)
        await writer.drain()
        return keep_alive

    def _record(self, raw: _RawRequest, connection: int) -> RecordedRequest:
        path, _, query = raw.target.partition("?")
        try:
            body_json = json.loads(raw.body) if raw.body else None
        except ValueError:
            body_json = None
        request = RecordedRequest(
            method=raw.method,
            path=path,
            headers=raw.headers,
            json=body_json,
            provider="openai" if path == "/v1" or path.startswith("/v1/") else "ollama",
            body=raw.body,
            query=query,
            connection=connection,
            received_at=time.monotonic(),
        )
        with self._recorded:
            self._requests.append(request)
            self._recorded.notify_all()
        return request

    async def _handle(self, raw: _RawRequest, connection: int) -> _Response:
        request = self._record(raw, connection)
        provider = request.provider
        methods = self._routes.get(request.path)
        if methods is None:
            return _json_response(
                404, _error_body(provider, 404, f"404 page not found: {request.path}")
            )
        if provider == "openai":
            denied = self._check_api_key(request)
            if denied is not None:
                return denied
        handler = methods.get(request.method)
        if handler is None:
            body = _error_body(provider, 405, f"method {request.method} not allowed")
            return _json_response(405, body, (("Allow", ", ".join(methods)),))
        return await handler(request)

    def _check_api_key(self, request: RecordedRequest) -> _Response | None:
        key = self.require_api_key
        if key is None or request.headers.get("authorization") == f"Bearer {key}":
            return None
        message = (
            "You didn't provide an API key."
            if "authorization" not in request.headers
            else "Incorrect API key provided."
        )
        return _json_response(401, _openai_error(401, message, code="invalid_api_key"))

    # -- endpoints -----------------------------------------------------------------------------

    async def _ollama_root(self, request: RecordedRequest) -> _Response:
        return _Response(200, b"Ollama is running", content_type="text/plain; charset=utf-8")

    async def _ollama_version(self, request: RecordedRequest) -> _Response:
        return _json_response(200, {"version": OLLAMA_VERSION})

    async def _ollama_tags(self, request: RecordedRequest) -> _Response:
        models = [
            {
                "name": name,
                "model": name,
                "modified_at": "2025-01-01T00:00:00Z",
                "size": 4_683_087_332,
                "digest": hashlib.sha256(name.encode()).hexdigest(),
                "details": {"format": "gguf", "family": "standin", "quantization_level": "Q4_K_M"},
            }
            for name in self.models
        ]
        return _json_response(200, {"models": models})

    def _tokens_of(self, text: Any) -> int:
        return int(len(str(text)) / self.chars_per_token) + 1

    async def _llama_props(self, request: RecordedRequest) -> _Response:
        if self.engine != "llama.cpp":
            return _json_response(404, {"detail": "Not Found"})
        if self.probe_latency:
            await asyncio.sleep(self.probe_latency)
        settings = {"n_ctx": self.n_ctx // max(1, self.slots)}
        return _json_response(
            200, {"default_generation_settings": settings, "total_slots": self.slots}
        )

    async def _llama_tokenize(self, request: RecordedRequest) -> _Response:
        if self.engine != "llama.cpp":
            return _json_response(404, {"detail": "Not Found"})
        if self.probe_latency:
            await asyncio.sleep(self.probe_latency)
        count = self._tokens_of(as_json_dict(request.json).get("content", ""))
        return _json_response(200, {"tokens": list(range(count))})

    async def _llama_python_count(self, request: RecordedRequest) -> _Response:
        if self.engine != "llama-cpp-python":
            return _json_response(404, {"detail": "Not Found"})
        if self.probe_latency:
            await asyncio.sleep(self.probe_latency)
        return _json_response(
            200, {"count": self._tokens_of(as_json_dict(request.json).get("input", ""))}
        )

    async def _openai_models(self, request: RecordedRequest) -> _Response:
        owner = {"llama.cpp": "llamacpp", "llama-cpp-python": "me"}.get(
            self.engine or "", "standin"
        )
        data = [
            {"id": name, "object": "model", "created": 1_735_689_600, "owned_by": owner}
            for name in self.models
        ]
        return _json_response(200, {"object": "list", "data": data})

    async def _chat(self, request: RecordedRequest) -> _Response:
        provider = request.provider
        problem = self._validate_chat(request)
        if problem is not None:
            return problem
        with self._lock:
            reply: Reply | None = self._script.popleft() if self._script else None
        if reply is None:
            if self.responder is None:
                return _json_response(500, _error_body(provider, 500, "no scripted reply"))
            try:
                produced = self.responder(request)
                reply = await produced if inspect.isawaitable(produced) else produced
            except Exception as exc:
                message = f"responder raised {type(exc).__name__}: {exc}"
                return _json_response(500, _error_body(provider, 500, message))
            if not isinstance(reply, Reply):
                message = f"responder returned {type(reply).__name__}, not Reply"
                return _json_response(500, _error_body(provider, 500, message))
        async with self._in_flight_slot():
            started = time.monotonic()
            wait = self.latency + reply.delay
            if wait > 0:
                await asyncio.sleep(wait)
            elapsed = time.monotonic() - started
        return self._render(reply, request, elapsed)

    async def _embed(self, request: RecordedRequest) -> _Response:
        provider, body = request.provider, as_json_dict(request.json)
        texts = body.get("input")
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return _json_response(400, _error_body(provider, 400, "input must be a list"))
        if not self._knows_model(str(body.get("model"))):
            return _json_response(404, _error_body(provider, 404, "model not found"))
        limit = self.embedding_max_chars
        if limit is not None and any(len(t) > limit for t in texts):
            status, message = self.embedding_refusal
            return _json_response(status, _error_body(provider, status, message))
        with self._lock:
            reply = self._embed_script.popleft() if self._embed_script else None
        reply = reply or Reply.vectors_of(
            [standin_vector(t, self.embedding_dims) for t in texts], tokens_in=len(texts) * 5
        )
        async with self._in_flight_slot():
            if self.latency + reply.delay > 0:
                await asyncio.sleep(self.latency + reply.delay)
        if reply.kind != "vectors":
            return self._render(reply, request, 0.0)
        if reply.body is not None:
            return _json_response(200, reply.body)
        if provider == "ollama":
            reply_body: Any = {
                "model": request.model,
                "embeddings": reply.vectors,
                "prompt_eval_count": reply.tokens_in,
            }
        else:
            data = [
                {"object": "embedding", "index": i, "embedding": v}
                for i, v in enumerate(reply.vectors or [])
            ]
            usage = {"prompt_tokens": reply.tokens_in, "total_tokens": reply.tokens_in}
            reply_body = {"object": "list", "data": data, "model": request.model, "usage": usage}
        return _json_response(200, reply_body)

    @asynccontextmanager
    async def _in_flight_slot(self) -> AsyncIterator[None]:
        """Hold one of ``max_concurrency`` slots (if limited) and count the request in flight."""
        if self._slots is not None:
            await self._slots.acquire()
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
            if self._slots is not None:
                self._slots.release()

    def _validate_chat(self, request: RecordedRequest) -> _Response | None:
        """The server's own answer to a chat request it would refuse, else None."""
        provider, body = request.provider, request.json

        def bad(status: int, message: str, **kw: Any) -> _Response:
            return _json_response(status, _error_body(provider, status, message, **kw))

        if not isinstance(body, dict):
            return bad(400, "request body must be a JSON object")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return bad(400, "model is required")
        # Ollama streams unless told otherwise; OpenAI does not.
        if body.get("stream", provider == "ollama"):
            return bad(400, 'the stand-in server does not stream; send "stream": false')
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return bad(400, "messages must be a non-empty list")
        if not self._knows_model(model):
            if provider == "ollama":
                return _json_response(
                    404, {"error": f'model "{model}" not found, try pulling it first'}
                )
            message = f"The model `{model}` does not exist or you do not have access to it."
            return bad(404, message, code="model_not_found")
        if provider == "ollama":
            fmt = body.get("format")
            if fmt not in (None, "", "json") and not isinstance(fmt, dict):
                return bad(400, f"invalid format: {json.dumps(fmt)[:80]}")
            return None
        unknown = sorted(set(body) - _OPENAI_CHAT_FIELDS) if self.reject_unknown_fields else []
        if unknown:
            return bad(400, f"Unrecognized request argument supplied: {unknown[0]}")
        grammar = body.get("grammar")
        if self.engine == "llama.cpp" and isinstance(grammar, str):
            if grammar.startswith("%llguidance") and not self.llguidance:
                return bad(400, "llguidance (cmake -DLLAMA_LLGUIDANCE=ON) is not enabled")
            if "response_format" in body:
                return bad(400, "Either json_schema or grammar can be specified, but not both")
        response_format = body.get("response_format")
        if response_format is None:
            return None
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if kind not in ("text", "json_object", "json_schema"):
            return bad(400, f"invalid response_format type: {kind!r}")
        if kind == "json_schema" and self.engine == "llama-cpp-python":
            message = (
                "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', "
                "'response_format', 'type'), 'msg': \"Input should be 'text' or 'json_object'\"}"
            )
            return _json_response(
                500, {"error": {"message": message, "type": "internal_server_error"}}
            )
        if kind == "json_schema":
            if self.reject_json_schema:
                return _json_response(
                    400, {"error": {"message": "response_format json_schema not supported"}}
                )
            spec = response_format.get("json_schema")
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                return bad(400, "Missing required parameter: 'response_format.json_schema.name'.")
            if not isinstance(spec.get("schema"), dict):
                return bad(400, "response_format.json_schema.schema must be a JSON schema object")
        return None

    def _knows_model(self, model: str) -> bool:
        # Ollama resolves a name without a tag to ":latest".
        return model in self.models or ("/" not in model and f"{model}:latest" in self.models)

    def _render(self, reply: Reply, request: RecordedRequest, elapsed: float) -> _Response:
        provider = request.provider
        if reply.kind == "disconnect":
            return _Response(0, drop=True)
        if reply.kind == "error":
            return self._render_error(reply, provider)
        response = _json_response(200, self._completion(reply, request, elapsed))
        if reply.kind == "disconnect_mid_body":
            response.cut_body_at = len(response.body) // 2
        if reply.kind == "drip":
            response.drip = reply.interval
        return response

    def _render_error(self, reply: Reply, provider: Provider) -> _Response:
        status, body = reply.status, reply.body
        if isinstance(body, (bytes, str)):
            raw = body.encode() if isinstance(body, str) else body
            return _Response(status, raw, "text/plain; charset=utf-8", reply.headers)
        if body is None:
            body = self._problem_body(reply, provider)
        return _json_response(status, body, reply.headers)

    @staticmethod
    def _problem_body(reply: Reply, provider: Provider) -> dict[str, Any]:
        status = reply.status
        if reply.problem == "context_overflow":
            if provider == "ollama":
                return {"error": "the input length exceeds the context length"}
            message = (
                "This model's maximum context length is 8192 tokens. However, you requested "
                "9216 tokens (8704 in the messages, 512 in the completion). Please reduce the "
                "length of the messages or completion."
            )
            return _openai_error(400, message, code="context_length_exceeded")
        if reply.problem == "rate_limited":
            retry = dict(reply.headers).get("Retry-After", "1")
            message = f"Rate limit reached for requests. Please try again in {retry}s."
            return _error_body(
                provider, status, message, type_="requests", code="rate_limit_exceeded"
            )
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = f"HTTP {status}"
        return _error_body(provider, status, phrase)

    def _completion(self, reply: Reply, request: RecordedRequest, elapsed: float) -> Any:
        model = request.model
        if request.provider == "ollama":
            total = max(int(elapsed * 1e9), 1_000)
            load, prompt = total // 20, total // 5
            return {
                "model": model,
                "created_at": _rfc3339_now(),
                "message": {"role": "assistant", "content": reply.text},
                "done": True,
                "done_reason": reply.finish,
                "total_duration": total,
                "load_duration": load,
                "prompt_eval_count": reply.tokens_in,
                "prompt_eval_duration": prompt,
                "eval_count": reply.tokens_out,
                "eval_duration": total - load - prompt,
            }
        return {
            "id": f"chatcmpl-standin-{next(self._reply_ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.text},
                    "logprobs": None,
                    "finish_reason": reply.finish,
                }
            ],
            "usage": {
                "prompt_tokens": reply.tokens_in,
                "completion_tokens": reply.tokens_out,
                "total_tokens": reply.tokens_in + reply.tokens_out,
            },
        }


# Sockets bound (never listening) by closed_port_url(): holding them keeps the port ours, so
# nothing else can start listening there during the test session.
_RESERVED_PORTS: list[socket.socket] = []


def closed_port_url() -> str:
    """``http://127.0.0.1:PORT`` where nothing listens: connecting is refused at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    _RESERVED_PORTS.append(sock)
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


def standin_vector(text: str, dims: int = 8) -> list[float]:
    """The stand-in's embedding of ``text``: ``dims`` numbers from its SHA-256 (not normalised,
    so a client must normalise it)."""
    digest = hashlib.sha256(text.encode()).digest()
    return [digest[i % len(digest)] - 127.5 for i in range(dims)]


def as_json_dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}
