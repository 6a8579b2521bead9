"""A real LiteLLM proxy (PyPI ``litellm[proxy]``, `make litellm-deps`) routing one model name
to two OpenAI-compatible servers that speak like llama.cpp, with `spanlens enrich` pointed at
the proxy as one backend: every span stored, both servers used, the bounded structured-output
form and the repetition control passed through to them, usage counted, the key sent.

The proxy runs offline: its model cost map is read from the package, not fetched. The two
upstreams are stand-ins (one slot each), so the test is about the proxy, not the model.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from tests.support.replies import valid_responder
from tests.support.standin import StandinModelServer
from tests.unit.test_enrichment_engine import SMALL_FILE, assert_every_row_valid, attempts, stored

from spanlens_lsp.localmodel.engine import free_port
from spanlens_lsp.localmodel.supervise import stop_process

ROOT = Path(__file__).resolve().parents[2]
LITELLM = Path(os.environ.get("SPANLENS_TEST_LITELLM", ROOT / ".cache/litellm/bin/litellm"))
#: The proxy refuses to start without a master key; spanlens sends it as its API key.
MASTER_KEY = "sk-spanlens-test-3f9c2a71d4e8b6055a1c"

Cli = Callable[..., tuple[int, str, str]]


def _config(first: str, second: str) -> str:
    # least-busy sends a request to the deployment with fewer in flight: with two requests
    # at once, one goes to each server.
    return (
        "model_list:\n"
        "  - model_name: code-small\n"
        f'    litellm_params: {{model: openai/smol-a, api_base: "{first}/v1", api_key: none}}\n'
        "  - model_name: code-small\n"
        f'    litellm_params: {{model: openai/smol-b, api_base: "{second}/v1", api_key: none}}\n'
        "router_settings:\n"
        "  routing_strategy: least-busy\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
    )


@pytest.fixture
def litellm_proxy(
    tmp_path: Path,
) -> Iterator[tuple[str, StandinModelServer, StandinModelServer]]:
    """(proxy URL, first upstream, second upstream), the proxy always stopped."""
    if not LITELLM.is_file():
        pytest.fail(f"{LITELLM} is missing: run `make litellm-deps`")
    with (
        StandinModelServer(
            models=("smol-a",),
            responder=valid_responder,
            engine="llama.cpp",
            slots=1,
            max_concurrency=1,
            latency=1.0,
        ) as first,
        StandinModelServer(
            models=("smol-b",),
            responder=valid_responder,
            engine="llama.cpp",
            slots=1,
            max_concurrency=1,
            latency=1.0,
        ) as second,
    ):
        config = tmp_path / "litellm.yaml"
        config.write_text(_config(first.url, second.url))
        port = free_port()
        env = {
            **os.environ,
            "LITELLM_MASTER_KEY": MASTER_KEY,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no download of the cost map at start
            "LITELLM_TELEMETRY": "False",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        log = open(tmp_path / "litellm.log", "wb")  # noqa: SIM115
        command = [str(LITELLM), "--config", str(config), "--host", "127.0.0.1"]
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
        url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {MASTER_KEY}"}
        try:
            deadline = time.monotonic() + 120
            while True:
                if process.poll() is not None:
                    tail = (tmp_path / "litellm.log").read_text(errors="replace")[-2000:]
                    pytest.fail(f"litellm exited with {process.returncode}:\n{tail}")
                try:
                    if httpx.get(f"{url}/v1/models", headers=headers, timeout=2).is_success:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail("the LiteLLM proxy did not answer within 120 s")
                time.sleep(0.5)
            yield url, first, second
        finally:
            stop_process(process, grace=15)
            log.close()


def test_spanlens_enrich_through_a_real_litellm_proxy_over_two_servers(
    tmp_path: Path,
    litellm_proxy: tuple[str, StandinModelServer, StandinModelServer],
    monkeypatch: pytest.MonkeyPatch,
    cli: Cli,
) -> None:
    url, first, second = litellm_proxy
    project = tmp_path / "project"
    project.mkdir()
    (project / "calc.py").write_text(SMALL_FILE)
    backend = {
        "name": "pool",
        "tier": "small",
        "provider": "openai",
        "url": url,
        "model": "code-small",
        "engine": "llama.cpp",  # the proxy hides the engine behind it
        "max_parallel": 2,  # one slot on each server
        "context_tokens": 4096,
        "api_key_env": "SPANLENS_TEST_LITELLM_KEY",
    }
    monkeypatch.setenv("SPANLENS_BACKENDS", json.dumps([backend]))
    monkeypatch.setenv("SPANLENS_TEST_LITELLM_KEY", MASTER_KEY)
    monkeypatch.setenv("SPANLENS_GPU_ENABLED", "false")
    monkeypatch.setenv("SPANLENS_ENRICHMENT_BATCH", "false")  # one span a call: four calls

    code, out, err = cli("enrich", str(project), "--json")

    assert code == 0, err
    summary = json.loads(out)
    assert summary["succeeded"] == 4 and summary["failed"] == 0 and summary["pending"] == 0
    assert len(stored(project)) == 4
    assert_every_row_valid(project)
    # Both servers behind the one model name did some of the work.
    assert first.chat_requests and second.chat_requests
    assert {r.json["model"] for r in first.chat_requests} == {"smol-a"}
    assert {r.json["model"] for r in second.chat_requests} == {"smol-b"}
    upstream = [r.json for r in first.chat_requests + second.chat_requests]
    assert len(upstream) == 4
    # The bounded json_schema form and llama.cpp's repetition control came through the proxy.
    for body in upstream:
        form = body["response_format"]
        assert form["type"] == "json_schema"
        assert '"maxLength"' in json.dumps(form["json_schema"]["schema"])
        assert body["repeat_penalty"] == 1.1
        assert 0 < body["max_tokens"] < 4096
    # Every schema holds the outputs' pattern; three name parameters (ping() has none).
    schemas = [b["response_format"]["json_schema"]["schema"] for b in upstream]
    assert all('"pattern"' in json.dumps(schema["properties"]["outputs"]) for schema in schemas)
    assert sum('"pattern"' in json.dumps(schema["properties"]["inputs"]) for schema in schemas) == 3
    # Usage as the upstreams reported it, through the proxy, on every call.
    rows = attempts(project)
    assert len(rows) == 4
    assert all(r["tokens_in"] > 0 and r["tokens_out"] > 0 for r in rows), rows
    assert summary["tokens_in"] == sum(r["tokens_in"] for r in rows) > 0
    assert summary["tokens_out"] == sum(r["tokens_out"] for r in rows) > 0
