"""How fast the leader may kill tasks for failing their health checks.

Marathon kills a task at once when its checks have failed ``maxConsecutiveFailures``
times; when every task of an app fails together (a bad rollout, the leader's network
to the agents down for a minute) that kills the whole app at once. Here a kill takes
a token from two buckets, the app's and one shared by all apps, refilled evenly over
``--health_kill_token_refresh_interval``: ``--health_kill_tokens_per_app`` and
``--health_kill_tokens`` per interval, and as many may be saved up (the burst). A
kill that finds a bucket empty is deferred: the task keeps being checked, is killed
when tokens are back if it is still failing, and is spared if it passes a check
meanwhile (a blip). The monitor logs and publishes each deferral and counts kills,
deferrals and pending kills (:class:`~marathon_core.contracts.health.KillStatistics`).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import trio

from marathon_core.model.ids import PathId

__all__ = ["KillRate", "KillRateLimiter"]


@attrs.frozen
class KillRate:
    """The flags: tokens per refresh interval, for each app and for all apps together."""

    per_app: int = 1
    total: int = 10
    #: Seconds over which ``per_app`` and ``total`` tokens come back.
    interval: float = 10.0

    @classmethod
    def unlimited(cls) -> KillRate:
        return cls(per_app=10**9, total=10**9, interval=1e-9)


@attrs.define
class _Bucket:
    capacity: float
    rate: float  # tokens per second
    tokens: float
    at: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now

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

    def _bucket(self, tokens: int) -> _Bucket:
        capacity = float(max(tokens, 1))
        return _Bucket(capacity, capacity / max(self.rate.interval, 1e-9), capacity, self.clock())

    def take(self, app_id: PathId) -> float:
        """Take a kill token for ``app_id``: 0 when taken, else the seconds until one may
        be (nothing is taken then)."""
        now = self.clock()
        app = self._apps.get(app_id)
        if app is None:
            app = self._apps[app_id] = self._bucket(self.rate.per_app)
        app.refill(now)
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
