"""Claims: two processes on one workspace never call a model for the same span twice.

A span in flight is claimed in the store under a lease; another engine (a second `enrich`
run, or the language server beside it) leaves it alone and waits for it. Pending work stays
derived: a claimed span is still pending, and a process killed with -9 frees its claims (at
once on this machine; elsewhere when the lease runs out).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.replies import request_span_ids, valid_responder
from tests.support.standin import StandinModelServer
from tests.unit.test_enrich_faults import functions_workspace, settings_for, state_counts

from spanlens_lsp.app import enrich_workspace, open_engine
from spanlens_lsp.scheduling.queue import Priority
from spanlens_lsp.scheduling.scheduler import Scheduler
from spanlens_lsp.states import ENRICHMENT_VERSION, DeferralKind
from spanlens_lsp.store import claims as leases
from spanlens_lsp.store.db import db_path_for, open_store
from spanlens_lsp.store.enrichments import CLAIMED_ELSEWHERE, enrichment_for
from spanlens_lsp.store.worker import StoreWorker

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def server() -> Iterator[StandinModelServer]:
    with StandinModelServer(responder=valid_responder) as standin:
        yield standin


def test_a_lease_holds_until_it_expires_and_its_owner_may_renew_it(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    try:
        assert leases.claim_hashes(store, ["h1", "h2"], "a", 100.0, 10.0) == {"h1", "h2"}
        assert leases.claim_hashes(store, ["h1", "h3"], "b", 105.0, 10.0) == {"h3"}
        assert leases.claim_hashes(store, ["h1"], "a", 108.0, 10.0) == {"h1"}  # renewed
        assert leases.claim_hashes(store, ["h1"], "b", 115.0, 10.0) == set()
        assert leases.claim_hashes(store, ["h1", "h2"], "b", 118.5, 10.0) == {"h1", "h2"}
        leases.release_claims(store, ["h1"], "b")
        assert leases.claim_owners(store, ["h1", "h2", "h3"]) == {"h2": "b", "h3": "b"}
    finally:
        store.close()


async def test_two_runs_on_one_workspace_do_the_work_once(
    tmp_path: Path, server: StandinModelServer
) -> None:
    spans = functions_workspace(tmp_path, 4, 30)
    server.latency = 0.02
    settings = settings_for(server.url, batch=False)
    first, second = await asyncio.gather(
        enrich_workspace(tmp_path, settings), enrich_workspace(tmp_path, settings)
    )
    assert len(server.chat_requests) == spans  # one call per span, none twice
    assert first.calls + second.calls == spans  # each summary counts only its own calls
    assert first.succeeded + second.succeeded == spans
    assert first.succeeded + first.elsewhere == spans == second.succeeded + second.elsewhere
    assert first.pending == second.pending == 0


def test_two_enrich_processes_do_the_work_once(tmp_path: Path, server: StandinModelServer) -> None:
    spans = functions_workspace(tmp_path, 4, 30)
    server.latency = 0.02
    env = cli_env(server.url)
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "spanlens_lsp.cli", "enrich", str(tmp_path), "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    summaries = []
    for process in runs:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        summaries.append(json.loads(out))
    assert len(server.chat_requests) == spans  # one call per span, none twice
    assert sum(s["calls"] for s in summaries) == spans, summaries  # each counts only its own
    assert sum(s["succeeded"] for s in summaries) == spans
    assert state_counts(tmp_path, 3)["fresh"] == spans


def test_a_run_killed_with_9_frees_its_claims_for_the_next_run_at_once(
    tmp_path: Path, server: StandinModelServer
) -> None:
    spans = functions_workspace(tmp_path, 1, 8)
    server.latency = 30  # every call hangs: the run is killed with calls in flight
    process = subprocess.Popen(
        [sys.executable, "-m", "spanlens_lsp.cli", "enrich", str(tmp_path)],
        env=cli_env(server.url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        server.wait_for_requests(1, timeout=60)
        store = open_store(tmp_path)
        try:
            held = store.conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0]
        finally:
            store.close()
        assert held >= 1
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    server.latency = 0
    before = len(server.chat_requests)
    # Its claims are free at once (its pid is gone), not after the lease of a minute.
    settings = settings_for(server.url, batch=False, give_up_after=5)
    run = asyncio.run(enrich_workspace(tmp_path, settings))
    assert run.succeeded == spans and run.pending == 0 and run.elsewhere == 0
    assert len(server.chat_requests) - before == spans


async def test_the_engine_a_server_uses_leaves_a_claimed_span_alone(
    tmp_path: Path, server: StandinModelServer
) -> None:
    functions_workspace(tmp_path, 1, 2)
    server.latency = 0.5
    settings = settings_for(server.url, batch=False)
    cli_engine, editor_engine = (
        open_engine(tmp_path, settings),
        open_engine(tmp_path, settings),
    )
    try:
        span = cli_engine.pending()[0]
        working = asyncio.create_task(cli_engine.enrich([span]))
        await asyncio.to_thread(server.wait_for_requests, 1)
        [outcome] = await editor_engine.enrich([span])
        assert (outcome.status, outcome.error, outcome.transient) == (
            "deferred",
            CLAIMED_ELSEWHERE,
            True,
        )
        assert outcome.deferral is not None and outcome.deferral.kind is DeferralKind.CLAIMED
        # Still pending (derived), only not available to a second process.
        assert span.id in [s.id for s in editor_engine.pending()]
        [landed] = await working
        assert landed.status == "enriched"
        assert len(server.chat_requests) == 1
    finally:
        await cli_engine.aclose()
        await editor_engine.aclose()


async def test_claiming_never_blocks_the_event_loop_on_the_write_lock(
    tmp_path: Path, server: StandinModelServer
) -> None:
    functions_workspace(tmp_path, 1, 1)
    engine = open_engine(tmp_path, settings_for(server.url))
    holder = sqlite3.connect(db_path_for(tmp_path), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process is writing
        task = asyncio.create_task(engine.enrich(engine.pending()))
        await asyncio.sleep(0.2)
        # Only reachable while enrich waits for the lock off the loop: a claim made on the
        # loop would hold it here until the busy timeout failed the claim.
        assert not task.done()
        holder.execute("COMMIT")
        [outcome] = await task
    finally:
        holder.close()
        await engine.aclose()
    assert outcome.status == "enriched"


def cli_env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPANLENS_")}
    backends = [{"name": "local", "tier": "small", "url": url, "max_parallel": 4}]
    env.update(
        {
            "SPANLENS_BACKENDS": json.dumps(backends),
            "SPANLENS_GPU_ENABLED": "false",
            "SPANLENS_ENRICHMENT_BATCH": "false",
            "PYTHONPATH": str(REPO / "server"),
        }
    )
    return env


def test_ctrl_c_stops_a_run_cleanly_and_frees_its_claims(
    tmp_path: Path, server: StandinModelServer
) -> None:
    spans = functions_workspace(tmp_path, 1, 8)
    server.latency = 30
    process = subprocess.Popen(
        [sys.executable, "-m", "spanlens_lsp.cli", "enrich", str(tmp_path)],
        env=cli_env(server.url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        server.wait_for_requests(1, timeout=60)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert err.strip().splitlines() == ["spanlens: interrupted"]
    store = open_store(tmp_path)
    try:
        assert store.conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0
    finally:
        store.close()
    assert state_counts(tmp_path, 3)["pending"] == spans


async def test_the_server_leaves_spans_claimed_by_a_cli_run_and_holds_nothing_back(
    tmp_path: Path, server: StandinModelServer
) -> None:
    functions_workspace(tmp_path, 1, 3)
    settings = settings_for(server.url, batch=False)
    settings.lsp.idle_seconds = 0
    store = open_store(tmp_path)
    worker = StoreWorker(tmp_path, "test")
    engine = open_engine(tmp_path, settings)
    scheduler = Scheduler(store, worker, engine, settings)
    scheduler.paused = "backlog"
    scheduler.start()
    try:
        spans = {s.name: s for s in store.spans_in_file("module_0.py")}
        # A CLI run on another machine sharing the workspace holds f0_0.
        leases.claim_hashes(store, [spans["f0_0"].content_hash], "elsewhere:1:x", 1e12, 60)
        scheduler.push([spans["f0_0"].id, spans["f0_1"].id], Priority.SAVED)
        await until(lambda: enrichment_for(store, spans["f0_1"].content_hash, ENRICHMENT_VERSION))
        await asyncio.sleep(0.2)
        assert [request_span_ids(r) for r in server.chat_requests] == [[spans["f0_1"].id]]
        # Nothing else waits for the claimed span: no back-off, a later save goes at once.
        assert scheduler.snapshot()["deferredSeconds"] == 0
        scheduler.push([spans["f0_2"].id], Priority.SAVED)
        await until(lambda: enrichment_for(store, spans["f0_2"].content_hash, ENRICHMENT_VERSION))
        assert len(server.chat_requests) == 2
    finally:
        await scheduler.aclose(drain_seconds=0.5)
        await engine.aclose()
        await worker.aclose()
        store.close()


async def until(condition: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)
