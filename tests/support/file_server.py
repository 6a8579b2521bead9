"""An HTTPS file server on 127.0.0.1 for download tests: Range requests, dropped connections.

Its certificate comes from a throwaway authority (trustme); point a client at ``ca_file``
(``SSL_CERT_FILE`` for httpx)::

    with HttpsFileServer(tmp_path, {"/m.gguf": data}, drop_after=1_000_000) as server:
        ...  # GET server.url("/m.gguf") stops after 1 MB, once
        assert server.requests[-1].headers.get("Range") == "bytes=1000000-"
"""

from __future__ import annotations

import dataclasses
import http.server
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import trustme


@dataclasses.dataclass(frozen=True)
class FileRequest:
    """One request the server answered: path, headers, status and body bytes sent."""

    path: str
    headers: dict[str, str]
    status: int
    sent: int


class HttpsFileServer:
    """Serves ``files`` (path → bytes) over HTTPS on 127.0.0.1.

    ``drop_after`` closes the connection after that many body bytes, for the first
    ``drops`` requests; ``honour_range=False`` answers every request with the whole file
    (200), as servers without Range support do; ``delay`` sleeps between 64 KiB writes.
    """

    def __init__(
        self,
        folder: Path,
        files: dict[str, bytes],
        *,
        drop_after: int | None = None,
        drops: int = 1,
        honour_range: bool = True,
        delay: float = 0.0,
    ) -> None:
        self.files = files
        self.drop_after = drop_after
        self.drops_left = drops if drop_after is not None else 0
        self.honour_range = honour_range
        self.delay = delay
        self._requests: list[FileRequest] = []
        self._lock = threading.Lock()
        #: Signalled when a request has been answered (see :attr:`requests`).
        self._answered = threading.Condition(self._lock)
        self._answering = 0
        authority = trustme.CA()
        self.ca_file = folder / "test-ca.pem"
        authority.cert_pem.write_to_path(str(self.ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        authority.issue_cert("127.0.0.1").configure_cert(context)
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        """The https URL of ``path`` on this server."""
        return f"https://127.0.0.1:{self._server.server_address[1]}{path}"

    def __enter__(self) -> HttpsFileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def requests(self) -> list[FileRequest]:
        """The requests answered so far. Requests still being answered are waited for (10 s
        at most): a client can have read the last byte before the server's thread records
        its request, and a test reads this right after its client finished."""
        with self._answered:
            self._answered.wait_for(lambda: self._answering == 0, timeout=10)
            return list(self._requests)

    def _begin(self) -> None:
        with self._lock:
            self._answering += 1

    def _record(self, request: FileRequest) -> None:
        with self._answered:
            self._requests.append(request)
            self._answering -= 1
            self._answered.notify_all()

    def _take_drop(self) -> int | None:
        with self._lock:
            if self.drops_left > 0:
                self.drops_left -= 1
                return self.drop_after
            return None

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                owner._begin()  # before any byte is sent: see HttpsFileServer.requests
                answered = FileRequest(self.path, dict(self.headers.items()), 0, 0)
                try:
                    answered = self.answer()
                finally:  # also when the client went away mid-answer
                    owner._record(answered)

            def answer(self) -> FileRequest:
                headers = dict(self.headers.items())
                data = owner.files.get(self.path)
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return FileRequest(self.path, headers, 404, 0)
                start = 0
                wanted = self.headers.get("Range", "")
                if owner.honour_range and wanted.startswith("bytes=") and wanted.endswith("-"):
                    start = int(wanted[len("bytes=") : -1])
                if start >= len(data) and start:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return FileRequest(self.path, headers, 416, 0)
                status = 206 if start else 200
                self.send_response(status)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("ETag", '"v1"')
                self.end_headers()
                body = data[start:]
                limit = owner._take_drop()
                sent = 0
                try:
                    for offset in range(0, len(body), 64 * 1024):
                        piece = body[offset : offset + 64 * 1024]
                        if limit is not None and sent + len(piece) > limit:
                            piece = piece[: limit - sent]
                            self.wfile.write(piece)
                            self.wfile.flush()
                            sent += len(piece)
                            self.close_connection = True
                            self.connection.shutdown(socket.SHUT_RDWR)
                            break
                        self.wfile.write(piece)
                        sent += len(piece)
                        if owner.delay:
                            time.sleep(owner.delay)
                except OSError:
                    pass
                return FileRequest(self.path, headers, status, sent)

        return Handler
