"""The stand-in model server: both protocols, every scripted fault, concurrency, lifecycle."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.support.standin import RecordedRequest, Reply, StandinModelServer, closed_port_url

MODEL = "qwen2.5-coder:7b"
SCHEMA = {"type": "object", "properties": {"summary": {"type": "string"}}}


def ollama_body(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "what does add() do?"}],
        "format": SCHEMA,
        "stream": False,
        "keep_alive": "30m",
        "options": {"temperature": 0.1, "num_ctx": 8192},
    }
    return {**body, **extra}


def openai_body(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "what does add() do?"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "enrichment", "schema": SCHEMA, "strict": True},
        },
        "temperature": 0.1,
        "max_tokens": 512,
    }
    return {**body, **extra}


@pytest.fixture
def server() -> Iterator[StandinModelServer]:
    with StandinModelServer() as running:
        yield running


@pytest.fixture
def client(server: StandinModelServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=5) as http:
        yield http


# -- protocols -------------------------------------------------------------------------------


def test_ollama_chat_returns_scripted_content_in_ollama_shape(
    server: StandinModelServer, client: httpx.Client
) -> None:
    server.script(Reply.content("Sure! ```json\n{}\n```", tokens_in=321, tokens_out=12))

    response = client.post("/api/chat", json=ollama_body())

    assert response.status_code == 200
    data = response.json()
    assert data["model"] == MODEL
    assert data["message"] == {"role": "assistant", "content": "Sure! ```json\n{}\n```"}
    assert data["done"] is True and data["done_reason"] == "stop"
    assert (data["prompt_eval_count"], data["eval_count"]) == (321, 12)
    assert data["created_at"].endswith("Z")
    durations = [data[k] for k in ("load_duration", "prompt_eval_duration", "eval_duration")]
    assert all(isinstance(d, int) and d >= 0 for d in durations)
    assert sum(durations) == data["total_duration"] > 0


def test_openai_chat_returns_scripted_json_in_openai_shape(
    server: StandinModelServer, client: httpx.Client
) -> None:
    server.script(Reply.json({"summary": "adds"}, tokens_in=70, tokens_out=9))

    response = client.post("/v1/chat/completions", json=openai_body())

    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "chat.completion" and data["model"] == MODEL
    assert data["id"] and isinstance(data["created"], int)
    (choice,) = data["choices"]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"] == {"role": "assistant", "content": json.dumps({"summary": "adds"})}
    assert data["usage"] == {"prompt_tokens": 70, "completion_tokens": 9, "total_tokens": 79}


def test_truncated_reply_reports_length_in_each_protocol(
    server: StandinModelServer, client: httpx.Client
) -> None:
    server.script(
        Reply.content('{"summary": "ad', finish="length"),
        Reply.content('{"summary": "ad', finish="length"),
    )

    ollama = client.post("/api/chat", json=ollama_body()).json()
    openai = client.post("/v1/chat/completions", json=openai_body()).json()

    assert ollama["done_reason"] == "length" and ollama["message"]["content"] == '{"summary": "ad'
    assert openai["choices"][0]["finish_reason"] == "length"


def test_requests_are_recorded_with_lower_case_headers_and_provider(
    server: StandinModelServer, client: httpx.Client
) -> None:
    server.script(Reply.json({}), Reply.json({}))

    client.get("/api/tags")
    client.post("/api/chat", json=ollama_body(), headers={"X-Trace": "a"})
    client.post("/v1/chat/completions?debug=1", json=openai_body())

    assert [(r.method, r.path, r.provider) for r in server.requests] == [
        ("GET", "/api/tags", "ollama"),
        ("POST", "/api/chat", "ollama"),
        ("POST", "/v1/chat/completions", "openai"),
    ]
    ollama_chat, openai_chat = server.chat_requests
    assert ollama_chat.headers["x-trace"] == "a"
    assert ollama_chat.json == ollama_body() and ollama_chat["json"] == ollama_body()
    assert ollama_chat.model == MODEL and ollama_chat.messages[0]["role"] == "user"
    assert openai_chat.query == "debug=1"


def test_model_listings_and_version(server: StandinModelServer, client: httpx.Client) -> None:
    server.models = ("qwen2.5-coder:7b", "qwen2.5-coder:32b")

    tags = client.get("/api/tags").json()
    models = client.get("/v1/models").json()
    version = client.get("/api/version").json()

    assert [m["name"] for m in tags["models"]] == list(server.models)
    assert all(m["model"] == m["name"] and m["size"] > 0 for m in tags["models"])
    assert models["object"] == "list"
    assert [(m["id"], m["object"]) for m in models["data"]] == [
        ("qwen2.5-coder:7b", "model"),
        ("qwen2.5-coder:32b", "model"),
    ]
    assert version["version"].count(".") == 2


def test_unknown_path_and_wrong_method_are_json_errors(client: httpx.Client) -> None:
    missing = client.get("/api/nothing")
    missing_v1 = client.post("/v1/audio/speech", json={})
    wrong_method = client.get("/api/chat")

    assert missing.status_code == 404 and "error" in missing.json()
    assert missing_v1.status_code == 404 and "message" in missing_v1.json()["error"]
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"


def test_streaming_requests_are_refused_without_consuming_the_script(
    server: StandinModelServer, client: httpx.Client
) -> None:
    server.script(Reply.json({}))
    ollama_default = ollama_body()
    del ollama_default["stream"]  # Ollama streams unless told otherwise

    refused = [
        client.post("/api/chat", json=ollama_body(stream=True)),
        client.post("/api/chat", json=ollama_default),
        client.post("/v1/chat/completions", json=openai_body(stream=True)),
    ]

    assert [r.status_code for r in refused] == [400, 400, 400]
    assert server.unused_replies == 1


def test_unknown_model_is_404_in_each_protocol(client: httpx.Client) -> None:
    ollama = client.post("/api/chat", json=ollama_body(model="llama3:70b"))
    openai = client.post("/v1/chat/completions", json=openai_body(model="gpt-4o"))

    assert ollama.status_code == 404 and "not found" in ollama.json()["error"]
    assert openai.status_code == 404 and openai.json()["error"]["code"] == "model_not_found"


def test_untagged_ollama_model_name_resolves_to_latest() -> None:
    with StandinModelServer(models=("llama3:latest",)) as server:
        server.script(Reply.json({}))
        response = httpx.post(f"{server.url}/api/chat", json=ollama_body(model="llama3"))
    assert response.status_code == 200


# -- scripting -------------------------------------------------------------------------------


def test_empty_script_without_responder_answers_500(client: httpx.Client) -> None:
    response = client.post("/api/chat", json=ollama_body())

    assert response.status_code == 500
    assert response.json() == {"error": "no scripted reply"}


def test_responder_answers_once_the_script_is_used_up(client: httpx.Client) -> None:
    seen: list[RecordedRequest] = []

    def respond(request: RecordedRequest) -> Reply:
        seen.append(request)
        return Reply.content(f"echo {request.messages[-1]['content']}")

    with StandinModelServer(responder=respond) as server:
        server.script(Reply.content("scripted"))
        with httpx.Client(base_url=server.url) as http:
            first = http.post("/api/chat", json=ollama_body())
            second = http.post("/api/chat", json=ollama_body())

    assert first.json()["message"]["content"] == "scripted"
    assert second.json()["message"]["content"] == "echo what does add() do?"
    assert len(seen) == 1


async def test_async_responder_and_responder_failure() -> None:
    async def respond(request: RecordedRequest) -> Reply:
        await asyncio.sleep(0)
        if request.provider == "openai":
            raise RuntimeError("boom")
        return Reply.json({"ok": True})

    with StandinModelServer(responder=respond) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            ok = await http.post("/api/chat", json=ollama_body())
            failed = await http.post("/v1/chat/completions", json=openai_body())

    assert json.loads(ok.json()["message"]["content"]) == {"ok": True}
    assert failed.status_code == 500 and "boom" in failed.json()["error"]["message"]


# -- faults ----------------------------------------------------------------------------------


def test_error_replies_default_to_each_protocols_error_shape(
    server: StandinModelServer, client: httpx.Client
) -> None:
    server.script(Reply.error(503), Reply.error(503))

    ollama = client.post("/api/chat", json=ollama_body())
    openai = client.post("/v1/chat/completions", json=openai_body())

    assert ollama.status_code == 503 and isinstance(ollama.json()["error"], str)
    assert openai.status_code == 503 and openai.json()["error"]["type"] == "server_error"


def test_error_reply_with_custom_body_and_headers(
    server: StandinModelServer, client: httpx.Client
) -> None:
    server.script(
        Reply.error(404, {"error": "gone"}, headers={"X-Request-Id": "r1"}),
        Reply.error(502, "<html>Bad Gateway</html>"),
    )

    as_json = client.post("/api/chat", json=ollama_body())
    as_text = client.post("/api/chat", json=ollama_body())

    assert as_json.status_code == 404 and as_json.json() == {"error": "gone"}
    assert as_json.headers["x-request-id"] == "r1"
    assert as_text.status_code == 502 and as_text.text == "<html>Bad Gateway</html>"
    assert as_text.headers["content-type"].startswith("text/plain")


def test_rate_limited_sends_429_with_retry_after(
    server: StandinModelServer, client: httpx.Client
) -> None:
    server.script(Reply.rate_limited(7), Reply.rate_limited(0.5))

    openai = client.post("/v1/chat/completions", json=openai_body())
    ollama = client.post("/api/chat", json=ollama_body())

    assert openai.status_code == 429 and openai.headers["retry-after"] == "7"
    assert openai.json()["error"]["code"] == "rate_limit_exceeded"
    assert ollama.status_code == 429 and ollama.headers["retry-after"] == "0.5"


def test_context_overflow_in_each_protocols_words(
    server: StandinModelServer, client: httpx.Client
) -> None:
    server.script(Reply.context_overflow(), Reply.context_overflow())

    ollama = client.post("/api/chat", json=ollama_body())
    openai = client.post("/v1/chat/completions", json=openai_body())

    assert ollama.status_code == 400 and "context length" in ollama.json()["error"]
    assert openai.status_code == 400
    error = openai.json()["error"]
    assert error["code"] == "context_length_exceeded" and error["type"] == "invalid_request_error"
    assert "maximum context length" in error["message"]


def test_slow_reply_outlasts_a_client_timeout(server: StandinModelServer) -> None:
    server.script(Reply.slow(0.5, Reply.json({})))

    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{server.url}/api/chat", json=ollama_body(), timeout=0.05)


def test_disconnect_closes_without_a_response(
    server: StandinModelServer, client: httpx.Client
) -> None:
    server.script(Reply.disconnect(), Reply.json({"after": "reconnect"}))

    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/v1/chat/completions", json=openai_body())
    again = client.post("/v1/chat/completions", json=openai_body())

    assert again.status_code == 200


def test_disconnect_mid_body_sends_headers_then_part_of_the_body(
    server: StandinModelServer, client: httpx.Client
) -> None:
    server.script(Reply.disconnect_mid_body())

    with client.stream("POST", "/api/chat", json=ollama_body()) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            response.read()


def test_api_key_is_required_on_openai_endpoints_only() -> None:
    with StandinModelServer(require_api_key="sk-test") as server:
        server.script(Reply.json({}), Reply.json({}))
        with httpx.Client(base_url=server.url) as http:
            missing = http.post("/v1/chat/completions", json=openai_body())
            wrong = http.get("/v1/models", headers={"Authorization": "Bearer nope"})
            right = http.post(
                "/v1/chat/completions",
                json=openai_body(),
                headers={"Authorization": "Bearer sk-test"},
            )
            ollama = http.post("/api/chat", json=ollama_body())

    assert missing.status_code == 401 and wrong.status_code == 401
    assert missing.json()["error"]["code"] == "invalid_api_key"
    assert right.status_code == 200 and ollama.status_code == 200


def test_rejected_json_schema_leaves_the_reply_for_the_json_object_retry() -> None:
    with StandinModelServer(reject_json_schema=True) as server:
        server.script(Reply.json({"summary": "adds"}))
        with httpx.Client(base_url=server.url) as http:
            schema = http.post("/v1/chat/completions", json=openai_body())
            fallback = http.post(
                "/v1/chat/completions",
                json=openai_body(response_format={"type": "json_object"}),
            )

    assert schema.status_code == 400
    assert schema.json() == {"error": {"message": "response_format json_schema not supported"}}
    assert fallback.status_code == 200
    assert json.loads(fallback.json()["choices"][0]["message"]["content"]) == {"summary": "adds"}


def test_malformed_json_schema_request_is_refused(client: httpx.Client) -> None:
    nameless = {"type": "json_schema", "json_schema": {"schema": SCHEMA}}

    response = client.post("/v1/chat/completions", json=openai_body(response_format=nameless))

    assert response.status_code == 400


# -- HTTP and concurrency --------------------------------------------------------------------


async def test_parallel_requests_are_all_in_flight_at_once() -> None:
    with StandinModelServer(latency=0.2, responder=lambda _: Reply.json({})) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            responses = await asyncio.gather(
                *(http.post("/api/chat", json=ollama_body()) for _ in range(8))
            )

    assert [r.status_code for r in responses] == [200] * 8
    assert server.max_in_flight == 8 and server.in_flight == 0


async def test_max_concurrency_queues_the_rest() -> None:
    with StandinModelServer(
        latency=0.02, max_concurrency=2, responder=lambda _: Reply.json({})
    ) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            responses = await asyncio.gather(
                *(http.post("/v1/chat/completions", json=openai_body()) for _ in range(6))
            )

    assert [r.status_code for r in responses] == [200] * 6
    assert server.max_in_flight == 2


def test_keep_alive_reuses_one_connection(server: StandinModelServer, client: httpx.Client) -> None:
    server.script(*[Reply.json({"n": n}) for n in range(3)])

    contents = [client.post("/api/chat", json=ollama_body()).json() for _ in range(3)]

    assert [json.loads(c["message"]["content"]) for c in contents] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert len({r.connection for r in server.requests}) == 1


def test_chunked_request_body_is_read(server: StandinModelServer, client: httpx.Client) -> None:
    server.script(Reply.json({}))
    payload = json.dumps(ollama_body()).encode()

    response = client.post("/api/chat", content=iter([payload[:10], payload[10:]]))

    assert response.status_code == 200
    assert server.chat_requests[0].json == ollama_body()


def test_garbage_on_the_socket_gets_400(server: StandinModelServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"NOT HTTP\r\n\r\n")
        reply = sock.recv(4096)

    assert reply.startswith(b"HTTP/1.1 400 ")


def test_wait_for_requests_returns_once_enough_arrived(server: StandinModelServer) -> None:
    server.script(Reply.json({}))
    sender = threading.Thread(
        target=httpx.post, args=(f"{server.url}/api/chat",), kwargs={"json": ollama_body()}
    )
    sender.start()

    (request,) = server.wait_for_requests(1, timeout=5)
    sender.join()

    assert request.path == "/api/chat"
    with pytest.raises(TimeoutError):
        server.wait_for_requests(2, timeout=0.01)


def test_stop_drops_replies_in_progress_and_the_port() -> None:
    server = StandinModelServer().start()
    server.script(Reply.slow(30, Reply.json({})))
    url = server.url
    failures: list[BaseException] = []

    def call() -> None:
        try:
            httpx.post(f"{url}/api/chat", json=ollama_body(), timeout=10)
        except httpx.HTTPError as exc:
            failures.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    server.wait_for_requests(1)
    server.stop()
    caller.join(timeout=5)

    assert not caller.is_alive()
    assert len(failures) == 1 and isinstance(failures[0], httpx.RemoteProtocolError)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/api/tags")
    server.stop()  # a second stop is harmless


def test_closed_port_url_refuses_connections() -> None:
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{closed_port_url()}/api/tags", timeout=5)
