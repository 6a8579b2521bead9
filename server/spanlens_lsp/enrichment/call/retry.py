"""The retry policy: what to do after each call of a request, as one typed decision.

Every structured call — a span, a batch, a file overview — is retried by this policy, through
the one loop that carries its decisions out (:meth:`CallPath.ask_tier
<spanlens_lsp.enrichment.call.path.CallPath.ask_tier>`). Within a tier the least-busy usable
endpoint is called; after each call :meth:`TierTries.after_call` says what comes next:

- ``DONE``: the reply is usable.
- ``RETRY``: call the same endpoint again after ``delay`` seconds. Transport failures and
  server errors back off exponentially with jitter (``backoff_base · 2ⁿ``, capped at
  ``backoff_max``, times a random factor from ½ to 1); a Retry-After is honoured when it is
  not longer than ``backoff_max``; an invalid reply is asked again at once (the endpoint is
  fine). At most ``retries`` retries an endpoint.
- ``MORE_ROOM``: the reply was cut off at the token limit: ask the same endpoint again at
  once with twice the reply room — once a tier, and only for a request that can grow.
- ``FAIL_OVER``: the tier's next endpoint. Either the endpoint's retries are spent, or the
  endpoint's state (a rate limit longer than we wait, its breaker opened, a
  misconfiguration) stopped it; the latter is not the request's fault and is noted as a
  problem.
- ``ESCALATE``: the tier is spent on the reply's merits: ``max_invalid_per_tier`` invalid or
  truncated replies, a context overflow, or a truncated batch (too big for one reply: the
  engine splits it instead).
- ``DEFER``: the tier ended because of endpoint state (a cool-down, an open breaker, a
  misconfiguration, endpoints not usable now): the request is to be tried again later,
  not failed.

Rate limits and misconfiguration never count against the request (a span's failure
record); every other failure does.

Endpoint health is not kept here: :func:`~spanlens_lsp.enrichment.call.endpoints.update_health`
updates each endpoint's breaker and cool-down after every call, in the call path, and this
policy reads it (``cooldown_until``, ``blocked_reason``).

What this policy does not answer is when a span whose job ended deferred or failed is tried
again *later*. That is another question, with other state and other clocks. This policy
waits while a worker holds the request, so each wait is bounded by ``backoff_max`` and the
count of tries lives only as long as one request in one tier. A span tried again later holds
nothing while it waits:

- a failed span waits on its failure record in the store (``failure_retry_base`` doubling
  to ``failure_retry_max``: minutes to an hour, per content hash, across processes), and
  `spanlens enrich` puts it back at the end of its queue until it is failed for good;
- a deferred span is not to blame, so it waits on the endpoints' own clocks (the cool-down a
  Retry-After set, the breaker's reset: :func:`~spanlens_lsp.enrichment.call.endpoints.stall_of`),
  which `spanlens enrich` polls; the server's scheduler gates all deferred work behind one
  global back-off (1 s doubling to 30 s, cleared when a span is enriched or the engine
  changes) so that its lanes do not spin while nothing can be called.

Taking this policy's delays there would tie a queue's pacing to the in-call retry settings
(tests set ``backoff_base`` to milliseconds; a GPU-limited deferral has no endpoint clock at
all) and change both.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from spanlens_lsp.enrichment.backends.base import BackendFailure, FailureKind
from spanlens_lsp.enrichment.call.endpoints import Endpoint
from spanlens_lsp.settings import EnrichmentSettings

R = TypeVar("R")


class Step(enum.Enum):
    """What to do next with a request (see the module docstring)."""

    DONE = "done"
    RETRY = "retry"
    MORE_ROOM = "more room"
    FAIL_OVER = "fail over"
    ESCALATE = "escalate"
    DEFER = "defer"


@dataclass(frozen=True, slots=True)
class Decision(Generic[R]):
    """One decision of the policy."""

    step: Step
    #: Seconds to wait before the next call (RETRY; 0 asks again at once).
    delay: float = 0.0
    #: The request to send instead (MORE_ROOM: the same one with more reply room).
    request: R | None = None
    #: Why the endpoint, not the request, stopped (FAIL_OVER): one line for the user.
    problem: str | None = None


class Judged(Protocol):
    """What the policy reads of a judged reply (a ``Verdict`` of the call path)."""

    @property
    def failure(self) -> BackendFailure | None:
        """Why the reply is not usable; None when it is."""
        ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The limits of retrying one request (from ``[enrichment]``)."""

    #: Retries of one endpoint before failing over to the next.
    retries: int = 2
    backoff_base: float = 0.5
    #: The longest wait (a backoff, a Retry-After, a cool-down) before calling again.
    backoff_max: float = 30.0
    #: Invalid or truncated replies in one tier before escalating.
    max_invalid_per_tier: int = 2
    #: A number in [0, 1) for the jitter of each backoff.
    jitter: Callable[[], float] = random.random

    @classmethod
    def from_settings(cls, settings: EnrichmentSettings) -> RetryPolicy:
        """The policy the settings describe."""
        return cls(
            settings.retries,
            settings.backoff_base,
            settings.backoff_max,
            settings.max_invalid_per_tier,
        )

    def backoff(self, attempt_number: int, retry_after: float | None) -> float | None:
        """Seconds to wait before retry ``attempt_number + 1``: exponential, capped, with
        jitter, never less than a Retry-After; None when the Retry-After is longer than we
        wait (the endpoint cools down instead: see ``update_health``)."""
        base = min(self.backoff_max, self.backoff_base * 2**attempt_number)
        delay = base * (0.5 + self.jitter() / 2)
        if retry_after is not None:
            if retry_after > self.backoff_max:
                return None
            delay = max(delay, retry_after)
        return delay

    def tier(self, *, truncated_escalates: bool = False) -> TierTries:
        """The policy's memory of one request in one tier. ``truncated_escalates``: a reply
        cut off at the token limit ends the tier at once (a batch, split instead)."""
        return TierTries(self, truncated_escalates)


@dataclass(slots=True)
class TierTries:
    """One request's tries in one tier: which endpoints were tried, how many invalid replies
    came back, whether the reply room grew, and what stopped the tier that was not the
    request's fault."""

    policy: RetryPolicy
    truncated_escalates: bool = False
    #: Endpoints tried (by id), each at most once a tier.
    tried: set[int] = field(default_factory=set)
    #: Invalid or truncated replies so far in this tier.
    invalid: int = 0
    #: The reply room already grew once in this tier.
    grew: bool = False
    #: Retries used on the current endpoint.
    attempt: int = 0
    #: Endpoint state (not the request) stopped a try: the tier defers rather than escalates.
    interrupted: bool = False
    #: Why, in one line each (rate limited, circuit open, misconfigured, ...).
    problems: list[str] = field(default_factory=list)
    #: The last failure that counts against the request (not a rate limit or a
    #: misconfiguration); None when none did.
    failure: FailureKind | None = None

    def begin(self, endpoint: Endpoint) -> None:
        """Start trying ``endpoint``."""
        self.tried.add(id(endpoint))
        self.attempt = 0

    def wait_before_call(self, endpoint: Endpoint, now: float) -> float | None:
        """Seconds to wait out the endpoint's cool-down before calling it (0 when none); None
        when it is longer than we wait (fail over: the problem is noted)."""
        remaining = endpoint.cooldown_until - now
        if remaining <= 0:
            return 0.0
        if remaining > self.policy.backoff_max:
            self._stopped_by(f"backend {endpoint.settings.name} rate limited")
            return None
        return remaining

    def roomier(
        self, verdict: Judged | None, grow: Callable[[], R | None] | None
    ) -> Decision[R] | None:
        """MORE_ROOM with the grown request when ``verdict`` was cut off at the token limit,
        the request can grow (``grow`` gives it, or None at its ceiling) and has not grown
        in this tier yet; otherwise None (decide with :meth:`after_call`)."""
        failure = verdict.failure if verdict is not None else None
        if self.grew or grow is None or failure is None:
            return None
        if failure.kind is not FailureKind.TRUNCATED:
            return None
        grown = grow()
        if grown is None:
            return None
        self.grew = True
        return Decision(Step.MORE_ROOM, request=grown)

    def after_call(self, endpoint: Endpoint, verdict: Judged | None, now: float) -> Decision[Any]:
        """What to do after one call to ``endpoint``; ``verdict`` None means the call was
        not made (a cool-down or an open breaker began while it waited for a slot)."""
        name = endpoint.settings.name
        if verdict is None:
            return self._stopped_by(f"backend {name} {endpoint.blocked_reason(now)}")
        failure = verdict.failure
        if failure is None:
            return Decision(Step.DONE)
        kind = failure.kind
        if kind is FailureKind.MISCONFIGURED:
            return self._stopped_by(endpoint.misconfigured or kind.value)
        last = self.attempt >= self.policy.retries
        if kind is FailureKind.RATE_LIMITED:
            if last:
                return self._stopped_by(f"backend {name} rate limited")
        else:
            self.failure = kind
        if kind in (FailureKind.INVALID_OUTPUT, FailureKind.TRUNCATED):
            self.invalid += 1
            # A batch cut off at the token limit is too big for one reply: split it at once.
            # A garbled one is asked again first, like a single span: splitting costs a call
            # per span.
            too_long = self.truncated_escalates and kind is FailureKind.TRUNCATED
            if too_long or self.invalid >= self.policy.max_invalid_per_tier:
                return Decision(Step.ESCALATE)
        if kind is FailureKind.CONTEXT_OVERFLOW:
            return Decision(Step.ESCALATE)
        if not kind.retryable or last:
            return Decision(Step.FAIL_OVER)
        if kind is FailureKind.INVALID_OUTPUT:
            self.attempt += 1
            return Decision(Step.RETRY)  # the endpoint is fine; ask again at once
        delay = self.policy.backoff(self.attempt, failure.retry_after)
        if delay is None:
            # The endpoint cools down (see update_health); try the next one.
            self.interrupted = self.interrupted or kind is FailureKind.RATE_LIMITED
            return Decision(Step.FAIL_OVER)
        self.attempt += 1
        return Decision(Step.RETRY, delay)

    def end(self, endpoints: list[Endpoint]) -> Step:
        """How a tier ends once no endpoint is left to call: DEFER when endpoint state
        stopped a try or kept an endpoint from being tried, else ESCALATE."""
        untried = any(id(ep) not in self.tried for ep in endpoints)
        return Step.DEFER if self.interrupted or untried else Step.ESCALATE

    def _stopped_by(self, problem: str) -> Decision[Any]:
        self.interrupted = True
        self.problems.append(problem)
        return Decision(Step.FAIL_OVER, problem=problem)
