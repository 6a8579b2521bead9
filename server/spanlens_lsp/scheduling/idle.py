"""Idle detection: the backlog runs only after a quiet period without edits."""

from __future__ import annotations

import time
from collections.abc import Callable


class IdleClock:
    """Remembers the last edit; idle once ``quiet_seconds`` have passed since."""

    def __init__(self, quiet_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.quiet_seconds = quiet_seconds
        self._clock = clock
        #: Monotonic time of the last edit; -inf until the first one (idle from the start).
        self.last_edit = float("-inf")

    def touch(self) -> None:
        """Record an edit now."""
        self.last_edit = self._clock()

    def is_idle(self) -> bool:
        """True when no edit happened in the last ``quiet_seconds``."""
        return self.seconds_until_idle() <= 0

    def seconds_until_idle(self) -> float:
        """How long until the quiet period is over (0 or less when already idle)."""
        return self.last_edit + self.quiet_seconds - self._clock()
