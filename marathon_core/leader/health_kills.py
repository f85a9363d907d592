"""How fast the leader may kill tasks for failing their health checks.

Marathon kills a task at once when its checks have failed ``maxConsecutiveFailures``
times; when every task of an app fails together (a bad rollout, the leader's network
to the agents down for a minute) that kills the whole app at once. Here a kill takes
a token from two buckets, the app's and one shared by all apps, refilled evenly over
``--health_kill_token_refresh_interval``. The app's bucket scales with the app:
``max(1, ceil(instances * --health_kill_fraction_per_app))`` tokens per interval, so
a big app on bad hosts is replaced in a few intervals, not one task per interval;
``--health_kill_tokens`` per interval bound all apps together (the blast radius).
A bucket may save up one interval's tokens (the burst). A kill that finds a bucket
empty is deferred: the task keeps being checked, is killed when tokens are back if
it is still failing, and is spared if it passes a check meanwhile (a blip). The
monitor logs and publishes each deferral and counts kills, deferrals and pending
kills (:class:`~marathon_core.contracts.health.KillStatistics`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import attrs
import trio

from marathon_core.model.ids import PathId

__all__ = ["KillRate", "KillRateLimiter"]


@attrs.frozen
class KillRate:
    """The flags: the share of an app's instances it may have killed per refresh
    interval, and the kills of all apps together per interval."""

    per_app_fraction: float = 0.1
    total: int = 10
    #: Seconds over which an app's and the overall tokens come back.
    interval: float = 10.0

    def per_app(self, instances: int) -> int:
        """Kill tokens per interval (and burst) of an app of ``instances``: at least one."""
        # Rounded first so that 30 * 0.1 (3.0000000000000004 in floats) gives 3, not 4.
        return max(1, math.ceil(round(instances * self.per_app_fraction, 9)))


@attrs.define
class _Bucket:
    capacity: float
    rate: float  # tokens per second
    tokens: float
    at: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def resize(self, capacity: float, interval: float) -> None:
        """The app was scaled: its tokens per interval follow (call after ``refill``)."""
        self.capacity = capacity
        self.rate = capacity / interval
        self.tokens = min(self.tokens, capacity)

    def wait(self) -> float:
        """Seconds until a whole token is there (0: now)."""
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


class KillRateLimiter:
    """Token buckets per app and overall; see the module docstring."""

    def __init__(self, rate: KillRate, *, clock: Callable[[], float] = trio.current_time) -> None:
        self.rate = rate
        self.clock = clock
        self._total = self._bucket(rate.total)
        self._apps: dict[PathId, _Bucket] = {}

    @property
    def _interval(self) -> float:
        return max(self.rate.interval, 1e-9)

    def _bucket(self, tokens: int) -> _Bucket:
        capacity = float(max(tokens, 1))
        return _Bucket(capacity, capacity / self._interval, capacity, self.clock())

    def take(self, app_id: PathId, instances: int) -> float:
        """Take a kill token for ``app_id``, an app of ``instances``: 0 when taken, else
        the seconds until one may be (nothing is taken then)."""
        now = self.clock()
        tokens = self.rate.per_app(instances)
        app = self._apps.get(app_id)
        if app is None:
            app = self._apps[app_id] = self._bucket(tokens)
        app.refill(now)
        if app.capacity != tokens:
            app.resize(float(tokens), self._interval)
        self._total.refill(now)
        wait = max(app.wait(), self._total.wait())
        if wait > 0:
            return wait
        app.tokens -= 1
        self._total.tokens -= 1
        return 0.0

    def forget(self, app_id: PathId) -> None:
        """The app has no instances left: its bucket would only start full again."""
        self._apps.pop(app_id, None)
