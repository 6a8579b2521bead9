"""TEST-ONLY: a model endpoint that misbehaves a given share of the time, in mixed ways.

:func:`faulty_responder` answers like a perfect model (``valid_reply``) except for a share of
calls, which get one of the faults a real, overloaded server produces: a 500, a 429 with
Retry-After, a malformed 200 body, prose instead of JSON, a reply cut off at the token limit,
or a dropped connection. Seeded, so a run's mix is reproducible (its order depends on timing).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable

from tests.support.replies import valid_reply
from tests.support.standin import RecordedRequest, Reply

FAULTS = ("server_error", "rate_limited", "malformed", "prose", "truncated", "disconnect")


def fault_reply(kind: str, request: RecordedRequest, retry_after: float) -> Reply:
    """The reply for one fault ``kind`` (one of :data:`FAULTS`)."""
    if kind == "server_error":
        return Reply.error(500)
    if kind == "rate_limited":
        return Reply.rate_limited(retry_after)
    if kind == "malformed":
        return Reply.malformed()
    if kind == "prose":
        return Reply.content("Sure! This function adds two numbers and returns the result.")
    if kind == "truncated":
        text = valid_reply(request).text
        return Reply.content(text[: len(text) // 2], finish="length")
    if kind == "disconnect":
        return Reply.disconnect()
    raise ValueError(kind)


class FaultyResponder:
    """A stand-in ``responder``: valid replies, except ``rate`` of them are faults drawn
    evenly from ``kinds``. ``counts`` tells what was served."""

    def __init__(
        self,
        rate: float = 0.3,
        *,
        retry_after: float = 1.0,
        kinds: tuple[str, ...] = FAULTS,
        seed: int = 7,
    ) -> None:
        self.rate = rate
        self.retry_after = retry_after
        self.kinds = kinds
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def __call__(self, request: RecordedRequest) -> Reply:
        with self._lock:
            kind = self._random.choice(self.kinds) if self._random.random() < self.rate else "valid"
            self.counts[kind] += 1
        if kind == "valid":
            return valid_reply(request)
        return fault_reply(kind, request, self.retry_after)


def faulty_responder(rate: float = 0.3, **options: object) -> Callable[[RecordedRequest], Reply]:
    """Shorthand for :class:`FaultyResponder`."""
    return FaultyResponder(rate, **options)  # type: ignore[arg-type]
