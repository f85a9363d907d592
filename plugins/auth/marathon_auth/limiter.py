"""Failed logins counted per client address, so passwords cannot be guessed at speed."""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable

import attrs

__all__ = ["FailureLimiter"]

#: Addresses remembered at most; the stalest are forgotten first (memory stays bounded).
MAX_CLIENTS = 10_000


@attrs.define
class FailureLimiter:
    """At most ``max_failures`` failed attempts per address in any ``window`` seconds.

    Once an address reaches the limit, every attempt with credentials from it is
    refused unchecked until its oldest failure leaves the window: a right guess looks
    exactly like a wrong one, so guessing gains nothing.
    """

    max_failures: int
    window: float
    clock: Callable[[], float] = time.monotonic
    _failures: collections.OrderedDict[str, collections.deque[float]] = attrs.field(
        factory=collections.OrderedDict
    )

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or None if it may now."""
        failures = self._recent(client)
        if failures is None or len(failures) < self.max_failures:
            return None
        return max(1, math.ceil(failures[0] + self.window - self.clock()))

    def failed(self, client: str) -> None:
        failures = self._recent(client)
        if failures is None:
            failures = self._failures[client] = collections.deque(maxlen=self.max_failures)
            while len(self._failures) > MAX_CLIENTS:
                self._failures.popitem(last=False)
        failures.append(self.clock())
        self._failures.move_to_end(client)

    def _recent(self, client: str) -> collections.deque[float] | None:
        failures = self._failures.get(client)
        if failures is None:
            return None
        horizon = self.clock() - self.window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return None
        return failures
