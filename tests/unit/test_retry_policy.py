"""The one retry policy (issue 17 §2: where a call is retried): its decision after each kind
of failure, Retry-After, the retries of an endpoint, a truncated reply's more room, invalid
replies escalating; and a span call and a file overview retried alike against the stand-in
model server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.replies import valid_reply
from tests.support.standin import Reply, StandinModelServer, closed_port_url

from spanlens_lsp.config import settings_from_dict
from spanlens_lsp.docgen.overview import OverviewSpan, OverviewWriter
from spanlens_lsp.enrichment.backends.base import BackendFailure, FailureKind
from spanlens_lsp.enrichment.call.cascade import Cascade
from spanlens_lsp.enrichment.call.endpoints import Endpoint, build_endpoints
from spanlens_lsp.enrichment.call.path import CallPath, Verdict
from spanlens_lsp.enrichment.call.retry import RetryPolicy, Step, TierTries
from spanlens_lsp.enrichment.planning.calls import CallPlan
from spanlens_lsp.enrichment.prompt.source import SpanSource
from spanlens_lsp.indexing.indexer import index_files
from spanlens_lsp.settings import Settings
from spanlens_lsp.states import ENRICHMENT_VERSION
from spanlens_lsp.store import enrichments as queries
from spanlens_lsp.store.db import open_store
from spanlens_lsp.store.enrichments import Attempt

POLICY = RetryPolicy(retries=2, backoff_base=0.5, backoff_max=30.0, max_invalid_per_tier=2)


def _settings(*urls: str, **enrichment: Any) -> Settings:
    return settings_from_dict(
        {
            "enrichment": {"batch": False, **enrichment},
            "gpu": {"enabled": False},
            "docgen": {"enabled": True},
            "backends": [
                {"name": f"ep{i}", "tier": "small", "url": url, "timeout": 5, "max_parallel": 1}
                for i, url in enumerate(urls)
            ],
        }
    )


def _endpoints(count: int = 1) -> list[Endpoint]:
    """Real endpoints (never called: the policy only reads their state)."""
    return build_endpoints(_settings(*[closed_port_url()] * count))["small"]


def _failed(kind: FailureKind, retry_after: float | None = None) -> Verdict[None]:
    return Verdict(None, BackendFailure(kind, "detail", retry_after=retry_after), "failed")


def _tries(policy: RetryPolicy = POLICY, **kw: Any) -> tuple[TierTries, Endpoint]:
    [endpoint] = _endpoints()
    tries = policy.tier(**kw)
    tries.begin(endpoint)
    return tries, endpoint


# kind -> (step after a first failure, a delay > 0, counts against the request)
FIRST_FAILURE = {
    FailureKind.CONNECTION_REFUSED: (Step.FAIL_OVER, False, True),
    FailureKind.TIMEOUT: (Step.RETRY, True, True),
    FailureKind.CONNECTION_LOST: (Step.RETRY, True, True),
    FailureKind.RATE_LIMITED: (Step.RETRY, True, False),
    FailureKind.SERVER_ERROR: (Step.RETRY, True, True),
    FailureKind.CLIENT_ERROR: (Step.FAIL_OVER, False, True),
    FailureKind.INVALID_OUTPUT: (Step.RETRY, False, True),  # asked again at once
    FailureKind.TRUNCATED: (Step.FAIL_OVER, False, True),  # without more room to give
    FailureKind.CONTEXT_OVERFLOW: (Step.ESCALATE, False, True),
    FailureKind.MISCONFIGURED: (Step.FAIL_OVER, False, False),
    FailureKind.BACKEND_ERROR: (Step.FAIL_OVER, False, True),
}


def test_every_failure_kind_has_a_decision() -> None:
    assert set(FIRST_FAILURE) == set(FailureKind)


@pytest.mark.parametrize("kind", list(FailureKind), ids=lambda k: k.name)
def test_the_decision_after_each_kind_of_failure(kind: FailureKind) -> None:
    step, waits, counts = FIRST_FAILURE[kind]
    tries, endpoint = _tries()
    decision = tries.after_call(endpoint, _failed(kind), time.monotonic())
    assert decision.step is step
    assert (decision.delay > 0) is waits
    if waits:  # the first backoff: backoff_base, halved at random
        assert POLICY.backoff_base / 2 <= decision.delay <= POLICY.backoff_base
    assert (tries.failure is kind) is counts


def test_a_usable_reply_is_done_and_counts_nothing() -> None:
    tries, endpoint = _tries()
    assert tries.after_call(endpoint, Verdict(None, None), time.monotonic()).step is Step.DONE
    assert tries.failure is None and tries.problems == []


def test_a_misconfigured_endpoint_is_a_problem_that_defers_the_tier() -> None:
    tries, endpoint = _tries()
    decision = tries.after_call(endpoint, _failed(FailureKind.MISCONFIGURED), 0.0)
    assert decision.problem == "backend misconfigured" and tries.problems == [decision.problem]
    assert tries.end([endpoint]) is Step.DEFER


def test_a_call_not_made_fails_over_with_the_endpoints_reason() -> None:
    tries, endpoint = _tries()
    now = time.monotonic()
    endpoint.cooldown_until = now + 60
    decision = tries.after_call(endpoint, None, now)
    assert decision.step is Step.FAIL_OVER and decision.problem == "backend ep0 rate limited"
    assert tries.end([endpoint]) is Step.DEFER


def test_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    low = RetryPolicy(backoff_base=1.0, backoff_max=5.0, jitter=lambda: 0.0)
    high = RetryPolicy(backoff_base=1.0, backoff_max=5.0, jitter=lambda: 0.999999)
    assert [low.backoff(n, None) for n in range(4)] == [0.5, 1.0, 2.0, 2.5]
    assert [round(high.backoff(n, None) or 0, 3) for n in range(4)] == [1.0, 2.0, 4.0, 5.0]


def test_a_retry_after_is_honoured_up_to_backoff_max() -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_max=30.0, jitter=lambda: 0.0)
    assert policy.backoff(0, 10.0) == 10.0  # longer than the backoff: waited out
    assert policy.backoff(0, 0.1) == 0.25  # shorter: the backoff wins
    assert policy.backoff(0, 31.0) is None  # longer than we wait


def test_a_long_retry_after_fails_over_and_a_rate_limit_defers_the_tier() -> None:
    tries, endpoint = _tries()
    limited = tries.after_call(endpoint, _failed(FailureKind.RATE_LIMITED, 60.0), 0.0)
    assert limited.step is Step.FAIL_OVER and tries.failure is None
    assert tries.end([endpoint]) is Step.DEFER  # not the request's fault: tried later
    tries, endpoint = _tries()
    busy = tries.after_call(endpoint, _failed(FailureKind.SERVER_ERROR, 60.0), 0.0)
    assert busy.step is Step.FAIL_OVER and tries.failure is FailureKind.SERVER_ERROR
    assert tries.end([endpoint]) is Step.ESCALATE


def test_an_endpoint_is_retried_at_most_retries_times_then_failed_over() -> None:
    first, second = _endpoints(2)
    tries = POLICY.tier()
    tries.begin(first)
    steps = [
        tries.after_call(first, _failed(FailureKind.TIMEOUT), 0.0).step
        for _ in range(POLICY.retries + 1)
    ]
    assert steps == [Step.RETRY] * POLICY.retries + [Step.FAIL_OVER]
    assert tries.end([first, second]) is Step.DEFER  # the second endpoint was never tried
    tries.begin(second)  # a fresh endpoint gets its own retries
    assert tries.after_call(second, _failed(FailureKind.TIMEOUT), 0.0).step is Step.RETRY
    assert tries.end([first, second]) is Step.ESCALATE


def test_a_rate_limit_on_the_last_retry_is_the_endpoints_problem() -> None:
    tries, endpoint = _tries(RetryPolicy(retries=0))
    decision = tries.after_call(endpoint, _failed(FailureKind.RATE_LIMITED), 0.0)
    assert decision.step is Step.FAIL_OVER and decision.problem == "backend ep0 rate limited"
    assert tries.failure is None and tries.end([endpoint]) is Step.DEFER


def test_a_cool_down_is_waited_out_only_when_short() -> None:
    tries, endpoint = _tries(RetryPolicy(backoff_max=5.0))
    assert tries.wait_before_call(endpoint, 100.0) == 0.0
    endpoint.cooldown_until = 103.0
    assert tries.wait_before_call(endpoint, 100.0) == 3.0
    assert tries.problems == []
    assert tries.wait_before_call(endpoint, 90.0) is None
    assert tries.problems == ["backend ep0 rate limited"] and tries.interrupted


def test_a_truncated_reply_gets_more_room_once_a_tier() -> None:
    tries = POLICY.tier()
    cut = _failed(FailureKind.TRUNCATED)
    grown = tries.roomier(cut, lambda: "twice the room")
    assert grown is not None and grown.step is Step.MORE_ROOM and grown.request == "twice the room"
    assert tries.roomier(cut, lambda: "four times") is None  # once
    assert tries.roomier(_failed(FailureKind.INVALID_OUTPUT), lambda: "x") is None


def test_no_more_room_for_a_request_at_its_ceiling_or_one_that_cannot_grow() -> None:
    tries = POLICY.tier()
    cut = _failed(FailureKind.TRUNCATED)
    assert tries.roomier(cut, lambda: None) is None
    assert tries.roomier(cut, None) is None
    assert not tries.grew  # still free to grow should a later prompt allow it


def test_a_truncated_batch_escalates_at_once() -> None:
    tries, endpoint = _tries(truncated_escalates=True)
    assert tries.after_call(endpoint, _failed(FailureKind.TRUNCATED), 0.0).step is Step.ESCALATE


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_invalid_replies_escalate_after_max_invalid_per_tier(limit: int) -> None:
    first, second = _endpoints(2)
    tries = RetryPolicy(retries=1, max_invalid_per_tier=limit).tier()
    steps = []
    for endpoint in (first, second):  # counted over the tier, not per endpoint
        tries.begin(endpoint)
        for _ in range(2):
            step = tries.after_call(endpoint, _failed(FailureKind.INVALID_OUTPUT), 0.0).step
            steps.append(step)
            if step is not Step.RETRY:
                break
        if step is Step.ESCALATE:
            break
    expected = {
        1: [Step.ESCALATE],
        2: [Step.RETRY, Step.ESCALATE],
        3: [Step.RETRY, Step.FAIL_OVER, Step.ESCALATE],
    }
    assert steps == expected[limit]


# ------------------------------------------------- a span call and an overview, retried alike

SOURCE = "def add(a, b=1):\n    return a + b\n"

#: Endpoint ep0 answers 500, 429 (no Retry-After: a short cool-down), drops the connection
#: (its retries spent: fail over); ep1 answers garbage (asked again at once), then well.
FIRST = [Reply.error(500, {"error": "down"}), Reply.error(429), Reply.disconnect()]
SECOND = [Reply.content("this is not JSON")]
EXPECTED = [
    ("ep0", "server error"),
    ("ep0", "rate limited"),
    ("ep0", "connection lost"),
    ("ep1", "invalid output"),
    ("ep1", None),
]


class Trace:
    """What one request's retries came to: the attempts rows and the waits."""

    def __init__(self) -> None:
        self.attempts: list[Attempt] = []
        self.sleeps: list[float] = []

    async def record(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(seconds)

    def calls(self) -> list[tuple[str, str | None]]:
        return [(a.backend, a.failure_type) for a in self.attempts]


@contextlib.contextmanager
def _standins() -> Iterator[tuple[StandinModelServer, StandinModelServer]]:
    with (
        StandinModelServer(responder=valid_reply) as first,
        StandinModelServer(responder=valid_reply) as second,
    ):
        first.script(*FIRST)
        second.script(*SECOND)
        yield first, second


def _call_path(settings: Settings, trace: Trace) -> CallPath:
    policy = RetryPolicy.from_settings(settings.enrichment)
    return CallPath(
        build_endpoints(settings),
        settings.enrichment,
        trace.record,
        sleep=trace.sleep,
        retry=RetryPolicy(
            policy.retries,
            policy.backoff_base,
            policy.backoff_max,
            policy.max_invalid_per_tier,
            jitter=lambda: 0.5,
        ),
    )


async def _span_call(root: Path) -> tuple[Trace, bool, list[int]]:
    """One span's job through the cascade: its trace, whether it landed, requests per server."""
    (root / "m.py").write_text(SOURCE)
    store = open_store(root)
    try:
        index_files(root, store, workers=1)
        [span] = queries.pending_spans(store, ENRICHMENT_VERSION, 99, 1e12)
    finally:
        store.close()
    trace = Trace()
    with _standins() as servers:
        settings = _settings(*(s.url for s in servers), backoff_base=0.02, backoff_max=0.5)
        lines = SOURCE.split("\n")[span.start_line : span.end_line + 1]
        result = await Cascade(_call_path(settings, trace)).run(
            CallPlan([SpanSource(span, lines)], ["small"])
        )
        return trace, span.id in result.landed, [len(s.chat_requests) for s in servers]


async def _overview_call() -> tuple[Trace, bool, list[int]]:
    """One file overview: its trace, whether it was written, requests per server."""
    trace = Trace()
    with _standins() as servers:
        settings = _settings(*(s.url for s in servers), backoff_base=0.02, backoff_max=0.5)
        writer = OverviewWriter(settings, _call_path(settings, trace))
        spans = [OverviewSpan("add", "function", "def add(a, b=1)", "Adds two numbers.")]
        overview = await writer.write("m.py", "python", spans, local_only=False)
        return trace, overview.data is not None, [len(s.chat_requests) for s in servers]


async def test_a_span_call_and_an_overview_are_retried_alike(tmp_path: Path) -> None:
    """The same failures get the same decisions: the same calls to the same endpoints, the
    same waits, the same end. (Only a single span's truncated reply differs by design: it
    can grow its reply room, an overview's cannot; see test_a_truncated_reply_gets_more_room.)"""
    span, span_done, span_requests = await _span_call(tmp_path)
    overview, overview_done, overview_requests = await _overview_call()
    assert span.calls() == overview.calls()
    assert span.sleeps == pytest.approx(overview.sleeps, abs=0.005)
    assert (span_done, span_requests) == (overview_done, overview_requests)
    # And they are the policy's: ep0 backs off twice (0.02 and 0.04 at a jitter fixed at
    # 0.75 of them; the 429's cool-down is over by then), fails over after its two retries;
    # ep1's garbled reply is asked again at once, and the second reply is used.
    assert span.calls() == EXPECTED
    assert span.sleeps == pytest.approx([0.015, 0.03])
    assert span_done and span_requests == [3, 2]
