"""``/v2/queue``: the apps with instances waiting for launch, and resetting their delay.

Read-only over the tracker, the backoff delays and the launcher's offer statistics,
except :meth:`LaunchQueue.reset_delay`, which lifts an app's backoff and asks for
offers again.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from marathon_core.contracts.queue import QueueEntry
from marathon_core.model.app import AppDefinition
from marathon_core.model.ids import PathId
from marathon_core.scheduler.backoff import LaunchDelays
from marathon_core.scheduler.offer_stats import OfferStats
from marathon_core.scheduler.tracker import InstanceTracker

__all__ = ["LaunchQueue"]


class LaunchQueue:
    """The ``/v2/queue`` view of the scheduler.

    :param offer_stats: the offer-matching outcomes of an app (None before the first).
    :param launchable: why an app cannot be launched at all, or None.
    :param work_arrived: asks for offers again (after a delay was lifted).
    """

    def __init__(
        self,
        tracker: InstanceTracker,
        delays: LaunchDelays,
        *,
        offer_stats: Callable[[PathId], OfferStats | None],
        launchable: Callable[[AppDefinition], str | None],
        work_arrived: Callable[[], None],
    ) -> None:
        self._tracker = tracker
        self._delays = delays
        self._offer_stats = offer_stats
        self._launchable = launchable
        self._work_arrived = work_arrived

    def entries(self) -> list[QueueEntry]:
        """Every app with instances waiting for launch."""
        app_ids = list(self._tracker.scheduled_by_app())
        return [e for e in (self.entry(a) for a in app_ids) if e is not None]

    def entry(self, app_id: PathId) -> QueueEntry | None:
        """The launch-queue view of one app, or None when nothing of it waits."""
        waiting = list(self._tracker.scheduled_by_app().get(app_id, {}).values())
        if not waiting:
            return None
        app = self._tracker.app_of(waiting[0]) or self._tracker.latest_app(app_id)
        now = trio.current_time()
        delay = self._delays.get(app, now) if app is not None else None
        stats = self._offer_stats(app_id) or OfferStats()
        if app is not None and stats.not_launchable is None:
            stats.not_launchable = self._launchable(app)
        return QueueEntry(
            app_id=app_id,
            count=len(waiting),
            role=waiting[0].role,
            delay_time_left=max(0.0, delay.until - now) if delay is not None else 0.0,
            delay_overdue=delay is None or now >= delay.until,
            since=min((i.since for i in waiting if i.since is not None), default=None),
            processed_offers=stats.processed,
            unused_offers=stats.unused,
            last_unused_offer_at=stats.last_unused_at,
            last_used_offer_at=stats.last_used_at,
            reject_summary=stats.summary(),
            last_reasons=stats.last_details,
            near_misses=stats.near_misses(),
            not_launchable=stats.not_launchable,
        )

    def reset_delay(self, app_id: PathId) -> bool:
        """``DELETE /v2/queue/{id}/delay``: launch again at once. False if nothing waits."""
        if app_id not in self._tracker.scheduled_by_app():
            return False
        self._delays.reset(app_id)
        self._work_arrived()
        return True
