"""A stand-in for a LiteLLM proxy (`litellm --config config.yaml`): one public model name
routed over several upstream OpenAI-compatible servers, as its ``model_list`` does with two
entries of the same ``model_name``.

It speaks what the proxy speaks to spanlens: ``GET /v1/models`` (``owned_by: openai``, the
public names only), ``GET /health/liveliness``, and ``POST /v1/chat/completions`` forwarded
with the upstream's own model name (round-robin, the proxy's ``simple-shuffle`` made
deterministic), the body otherwise passed through, the upstream's status and body returned.
Upstream errors come back with their status (LiteLLM maps them to OpenAI error objects).
The real proxy (PyPI ``litellm[proxy]``, `make litellm-deps`) is tested end to end in
tests/engine/test_litellm_proxy.py; this stand-in keeps the quick unit test of the same
configuration independent of that ~750 MB install.
"""

from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


class LiteLLMProxyStandin:
    """``routes`` maps a public model name to [(upstream base URL, upstream model), ...]."""

    def __init__(self, routes: dict[str, list[tuple[str, str]]]) -> None:
        self.routes = routes
        self._turn = {name: itertools.cycle(targets) for name, targets in routes.items()}
        self._lock = threading.Lock()
        self.forwarded: list[tuple[str, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any) -> None:
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                if self.path == "/v1/models":
                    data = [
                        {"id": name, "object": "model", "created": 1677610602, "owned_by": "openai"}
                        for name in proxy.routes
                    ]
                    self._send(200, {"data": data, "object": "list"})
                elif self.path == "/health/liveliness":
                    self._send(200, b'"I\'m alive!"')
                else:
                    self._send(404, {"detail": "Not Found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path != "/v1/chat/completions":
                    self._send(404, {"detail": "Not Found"})
                    return
                name = body.get("model")
                if name not in proxy.routes:
                    message = f"Invalid model name passed in model={name}"
                    self._send(400, {"error": {"message": message, "type": "None", "code": "400"}})
                    return
                with proxy._lock:
                    url, upstream_model = next(proxy._turn[name])
                    proxy.forwarded.append((url, upstream_model))
                reply = httpx.post(
                    f"{url}/v1/chat/completions",
                    json={**body, "model": upstream_model},
                    timeout=60,
                )
                self._send(reply.status_code, reply.content)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The proxy's base URL."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> LiteLLMProxyStandin:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
