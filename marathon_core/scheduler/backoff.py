"""Marathon's launch delay (``RateLimiter``): exponential backoff per app configuration.

A delay is keyed by (app id, last config change), so a new configuration starts
without one. The first delay-worthy termination sets ``delay = min(backoffSeconds,
maxLaunchDelaySeconds)``; each further one multiplies it by ``backoffFactor`` (capped
at ``maxLaunchDelaySeconds``); both re-anchor the reference time at "now". Launching
is allowed from ``reference + delay`` on. A starting or running task re-anchors
(``advance``) without growing the delay; a healthy task, a new config or
``DELETE /v2/queue/{id}/delay`` removes it. Delays unused for longer than
``maxLaunchDelaySeconds`` are dropped (Marathon's overdue cleanup). Times are
``trio.current_time()`` values, passed in so the math is testable.
"""

from __future__ import annotations

import attrs

from marathon_core.model.app import AppDefinition
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import Condition

__all__ = ["DELAY_WORTHY", "Delay", "LaunchDelays", "config_key"]

#: Terminal conditions that make the next launch wait (a kill is not the app's fault).
DELAY_WORTHY = frozenset(
    {
        Condition.FAILED,
        Condition.FINISHED,
        Condition.ERROR,
        Condition.GONE,
        Condition.DROPPED,
        Condition.UNKNOWN,
    }
)

ConfigKey = tuple[PathId, Timestamp | None]


def config_key(app: AppDefinition) -> ConfigKey:
    """(app id, last config change): scale-only changes keep the delay."""
    if app.version_info is not None:
        return (app.id, app.version_info.last_config_change_at)
    return (app.id, app.version)


@attrs.define
class Delay:
    reference: float
    delay: float
    max_delay: float

    @property
    def until(self) -> float:
        return self.reference + self.delay


class LaunchDelays:
    """The delays of all apps (one per app configuration)."""

    def __init__(self) -> None:
        self._delays: dict[ConfigKey, Delay] = {}

    def add(self, app: AppDefinition, now: float) -> Delay:
        """A delay-worthy termination: start or grow the delay, anchored at ``now``."""
        key = config_key(app)
        max_delay = float(app.max_launch_delay_seconds)
        current = self._get(key, now)
        if current is None:
            delay = Delay(now, min(float(app.backoff_seconds), max_delay), max_delay)
        else:
            delay = Delay(now, min(max_delay, current.delay * app.backoff_factor), max_delay)
        self._delays[key] = delay
        return delay

    def advance(self, app: AppDefinition, now: float) -> None:
        """A task of the app started: keep the delay but count it from now."""
        current = self._get(config_key(app), now)
        if current is not None:
            current.reference = now

    def reset(self, app_id: PathId) -> bool:
        """Drop every delay of ``app_id``; True if there was one."""
        keys = [k for k in self._delays if k[0] == app_id]
        for key in keys:
            del self._delays[key]
        return bool(keys)

    def get(self, app: AppDefinition, now: float) -> Delay | None:
        return self._get(config_key(app), now)

    def launch_allowed_at(self, app: AppDefinition, now: float) -> float:
        """When the app may launch next (``now`` or earlier when not delayed)."""
        delay = self._get(config_key(app), now)
        return now if delay is None else delay.until

    def time_left(self, app: AppDefinition, now: float) -> float:
        return max(0.0, self.launch_allowed_at(app, now) - now)

    def _get(self, key: ConfigKey, now: float) -> Delay | None:
        delay = self._delays.get(key)
        if delay is not None and now > delay.reference + delay.max_delay and now >= delay.until:
            del self._delays[key]  # overdue: long unused
            return None
        return delay
