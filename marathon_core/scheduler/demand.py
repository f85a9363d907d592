"""Whether the framework wants offers: SUPPRESS when nothing waits, REVIVE when work arrives.

Offers nobody needs cost the master and every other framework; a suppressed or
filtered framework that gets no offers never launches. So while connected: SUPPRESS
once the launch queue is empty; REVIVE (at most every ``min_revive_offers_interval``)
when instances wait and offers were suppressed, when new work arrived, or when an
app's backoff ended (its offers may have been declined with a long filter meanwhile).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import trio

from marathon_core.mesos import calls
from marathon_core.model.app import AppDefinition
from marathon_core.scheduler.backoff import LaunchDelays
from marathon_core.scheduler.outbox import Outbox
from marathon_core.scheduler.tracker import InstanceTracker

__all__ = ["OfferDemand"]


class OfferDemand:
    """The suppress/revive loop and what it is told about; see the module docstring."""

    def __init__(
        self,
        tracker: InstanceTracker,
        delays: LaunchDelays,
        outbox: Outbox,
        *,
        roles: Sequence[str],
        min_revive_interval: float,
    ) -> None:
        self._tracker = tracker
        self._delays = delays
        self._outbox = outbox
        self._roles = tuple(roles)
        self._min_revive_interval = min_revive_interval
        self._changed = trio.Event()
        self._revive_wanted = True
        self._suppressed = False
        self._connected = False
        self._last_revive = -float("inf")
        #: Statistics.
        self.revives = 0
        self.suppresses = 0

    def work_arrived(self) -> None:
        """Instances became Scheduled, or a delay was lifted: offers are wanted."""
        self._revive_wanted = True
        self._changed.set()

    def changed(self) -> None:
        """Something else changed what waits (e.g. the queue emptied): look again."""
        self._changed.set()

    def subscribed(self) -> None:
        """A new subscription is neither suppressed nor filtered: decide afresh."""
        self._connected = True
        self._suppressed = False
        self._revive_wanted = False
        self._changed.set()

    def disconnected(self) -> None:
        self._connected = False

    def _scheduled_apps(self) -> Iterator[AppDefinition]:
        """The app versions of the scheduled instances (once per run of one version)."""
        for scheduled in self._tracker.scheduled_by_app().values():
            app: AppDefinition | None = None
            for instance in scheduled.values():
                if app is None or instance.run_spec_version != app.version:
                    app = self._tracker.app_of(instance)
                    if app is not None:
                        yield app

    async def run(self) -> None:
        while True:
            # A fresh event before looking, so a change while we act is not lost.
            self._changed = trio.Event()
            now = trio.current_time()
            scheduled = self._connected and self._tracker.scheduled_count() > 0
            next_wake = float("inf")
            delayed = False
            for app in self._scheduled_apps() if scheduled else ():
                until = self._delays.launch_allowed_at(app, now)
                if until > now:
                    delayed = True
                    next_wake = min(next_wake, until)
            if scheduled:
                if self._suppressed or self._revive_wanted:
                    wait = self._last_revive + self._min_revive_interval - now
                    if wait > 0:
                        next_wake = min(next_wake, now + wait)
                    elif await self._outbox.send(calls.revive(self._roles)):
                        self.revives += 1
                        self._last_revive = trio.current_time()
                        self._suppressed = False
                        self._revive_wanted = False
            elif (
                self._connected
                and not self._suppressed
                and await self._outbox.send(calls.suppress(self._roles))
            ):
                self.suppresses += 1
                self._suppressed = True
            with trio.move_on_at(next_wake):
                await self._changed.wait()
            if trio.current_time() >= next_wake and delayed:
                self._revive_wanted = True  # a delay ended: offers may have been declined
