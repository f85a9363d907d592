"""The event bus: every event fans out to subscribers without ever waiting for one.

The implementation of :class:`marathon_core.contracts.events.EventStream`.
Events are Marathon's wire form (a JSON object with ``eventType`` and ``timestamp``).

:meth:`EventBus.publish` is synchronous and never blocks, and it has to stay so: it is
called inside the instance tracker's lock, in loops that publish one event per changed
instance (10,000 ``instance_changed_event`` from one scale-up, before the publisher
yields once). Making the publisher wait for readers would hold that lock for as long
as the slowest reader takes, and no count of buffered events is big enough for every
burst. So each subscriber's buffer grows with the burst, and it is dropped only when it
is both more than ``max_outstanding`` events and more than ``max_lag`` seconds behind
(checked as each event arrives, against the oldest unread one). A reader that drains its
buffer whenever it runs (:meth:`BusSubscription.receive_batch`) survives any burst; a
reader that stopped is cut ``max_lag`` seconds later and its backlog is freed at once,
so a stopped reader holds at most what is published in ``max_lag`` seconds (references
to events every subscriber shares). Every event gets an increasing id, and a bounded
history lets a reconnecting client resume after the last id it saw (SSE ``Last-Event-ID``).

:meth:`EventBus.follow` supervises long-lived consumers: resubscribed when they fall
behind, restarted when they raise, logged and counted, never propagating.
"""

from __future__ import annotations

import collections
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import attrs
import trio

from marathon_core.contracts.events import (
    DEFAULT_MAX_LAG,
    DEFAULT_MAX_OUTSTANDING,
    ConsumerStatistics,
    EventStreamStatistics,
    PublishedEvent,
    SubscriberTooSlow,
)

__all__ = ["BusSubscription", "EventBus", "SubscriberTooSlow"]

log = logging.getLogger(__name__)

#: Events kept for clients that reconnect with ``Last-Event-ID``.
DEFAULT_HISTORY = 1024
#: Pause before a consumer that raised is started again, doubling up to the second figure.
RESTART_PAUSE = (0.1, 10.0)
#: A consumer that ran this long before it raised starts over from the shortest pause.
RESTART_RESET_SECONDS = 60.0
#: A hook that keeps failing is logged on its first failure and every this many after.
HOOK_FAILURE_LOG_EVERY = 1000


class BusSubscription:
    """One subscriber's view of the bus; iterate it to receive events."""

    def __init__(
        self,
        name: str,
        event_types: Collection[str] | None,
        max_outstanding: int,
        max_lag: float,
    ) -> None:
        self.name = name
        self.event_types = frozenset(event_types) if event_types else None
        self.max_outstanding = max_outstanding
        self.max_lag = max_lag
        self._backlog: collections.deque[PublishedEvent] = collections.deque()
        self._arrived = trio.lowlevel.ParkingLot()
        self._dropped = trio.Event()
        self._closed = False

    def wants(self, event_type: str) -> bool:
        return self.event_types is None or event_type in self.event_types

    def _offer(self, event: PublishedEvent) -> bool:
        """Queue an event without waiting; False if the subscriber was (or is now) dropped."""
        if self._closed:
            return False
        backlog = self._backlog
        if (
            len(backlog) >= self.max_outstanding
            and event.published_at - backlog[0].published_at > self.max_lag
        ):
            self._drop()
            return False
        backlog.append(event)
        self._arrived.unpark_all()
        return True

    def _drop(self) -> None:
        self._backlog.clear()
        self._dropped.set()
        self._close()

    def _close(self) -> None:
        self._closed = True
        self._arrived.unpark_all()

    @property
    def dropped(self) -> bool:
        """True once the subscriber fell too far behind; no further events arrive."""
        return self._dropped.is_set()

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    async def wait_dropped(self) -> None:
        await self._dropped.wait()

    async def receive(self) -> PublishedEvent:
        """The next event; SubscriberTooSlow once dropped. Safe to cancel."""
        (event,) = await self.receive_batch(1)
        return event

    async def receive_batch(self, limit: int | None = None) -> list[PublishedEvent]:
        """Every waiting event (at most ``limit``), waiting for one if none is there.

        Cancellation can only strike before anything is taken, so no event is lost.
        """
        await trio.lowlevel.checkpoint()
        backlog = self._backlog
        while not backlog:
            if self.dropped:
                raise SubscriberTooSlow(self.max_outstanding, self.max_lag)
            if self._closed:
                raise trio.EndOfChannel
            await self._arrived.park()
        if limit is None or limit >= len(backlog):
            batch = list(backlog)
            backlog.clear()
            return batch
        return [backlog.popleft() for _ in range(limit)]

    def __aiter__(self) -> AsyncIterator[PublishedEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[PublishedEvent]:
        while True:
            try:
                yield await self.receive()
            except trio.EndOfChannel:
                return


@attrs.define
class _ConsumerCounts:
    resyncs: int = 0
    restarts: int = 0


class EventBus:
    """Fans events out to subscriptions and to the ``marathon_event`` plugin hook."""

    def __init__(
        self,
        *,
        history: int = DEFAULT_HISTORY,
        on_event: Callable[[Mapping[str, Any]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ids = itertools.count(1)
        self._last_id = 0
        self._history: collections.deque[PublishedEvent] = collections.deque(maxlen=history)
        self._subscriptions: set[BusSubscription] = set()
        self._on_event = on_event
        self._clock = clock
        self._dropped = 0
        self._hook_failures = 0
        self._consumers: dict[str, _ConsumerCounts] = {}

    def publish(self, event: Mapping[str, Any]) -> PublishedEvent:
        """Deliver ``event`` to every interested subscriber now; never blocks."""
        published = PublishedEvent(next(self._ids), str(event["eventType"]), event, self._clock())
        self._last_id = published.id
        self._history.append(published)
        dropped = [
            subscription
            for subscription in self._subscriptions
            if subscription.wants(published.event_type) and not subscription._offer(published)
        ]
        for subscription in dropped:
            self._subscriptions.discard(subscription)
            self._dropped += 1
            log.warning(
                "dropped event subscriber %s: %s",
                subscription.name,
                SubscriberTooSlow(subscription.max_outstanding, subscription.max_lag),
            )
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                self._hook_failures += 1
                if self._hook_failures % HOOK_FAILURE_LOG_EVERY == 1:
                    log.exception(
                        "a marathon_event hook failed on %s (%d failures so far)",
                        published.event_type,
                        self._hook_failures,
                    )
        return published

    @property
    def last_id(self) -> int:
        """The id of the newest event (0 before the first): a page rendered now
        subscribes ``after_id=last_id`` and misses nothing published meanwhile."""
        return self._last_id

    @contextmanager
    def subscribe(
        self,
        *,
        event_types: Collection[str] | None = None,
        after_id: int | None = None,
        max_outstanding: int = DEFAULT_MAX_OUTSTANDING,
        max_lag: float = DEFAULT_MAX_LAG,
        name: str = "subscriber",
    ) -> Iterator[BusSubscription]:
        """A subscription for the ``with`` block; ``after_id`` replays newer kept events first."""
        subscription = BusSubscription(name, event_types, max_outstanding, max_lag)
        if after_id is not None:
            replay = (
                e for e in self._history if e.id > after_id and subscription.wants(e.event_type)
            )
            for event in replay:
                if not subscription._offer(event):
                    break
        if not subscription.dropped:
            self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)
            subscription._close()

    async def follow(
        self,
        name: str,
        consume: Callable[[BusSubscription], Awaitable[None]],
        *,
        event_types: Collection[str] | None = None,
        max_outstanding: int = DEFAULT_MAX_OUTSTANDING,
        max_lag: float = DEFAULT_MAX_LAG,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run ``consume`` on a subscription, resubscribed when dropped, restarted when it
        raises, until cancelled or until it returns (see the contract)."""
        counts = self._consumers.setdefault(name, _ConsumerCounts())
        pause = RESTART_PAUSE[0]
        while True:
            started = self._clock()
            with self.subscribe(
                event_types=event_types,
                max_outstanding=max_outstanding,
                max_lag=max_lag,
                name=name,
            ) as subscription:
                task_status.started()
                task_status = trio.TASK_STATUS_IGNORED
                failure: Exception | None = None
                try:
                    if await _consume_until_dropped(subscription, consume):
                        return
                except Exception as exc:
                    failure = exc
            if failure is None or _only(failure, SubscriberTooSlow):
                counts.resyncs += 1
                log.error(
                    "event consumer %s fell behind the event stream (%s); subscribing "
                    "again: it misses the events in between (resync %d)",
                    name,
                    SubscriberTooSlow(max_outstanding, max_lag),
                    counts.resyncs,
                )
                continue
            counts.restarts += 1
            if self._clock() - started > RESTART_RESET_SECONDS:
                pause = RESTART_PAUSE[0]
            log.error(
                "event consumer %s failed; starting it again in %.1f s (restart %d)",
                name,
                pause,
                counts.restarts,
                exc_info=failure,
            )
            await trio.sleep(pause)
            pause = min(pause * 2, RESTART_PAUSE[1])

    def statistics(self) -> EventStreamStatistics:
        return EventStreamStatistics(
            subscribers=len(self._subscriptions),
            last_event_id=self._history[-1].id if self._history else 0,
            dropped_subscribers=self._dropped,
            largest_backlog=max((s.backlog for s in self._subscriptions), default=0),
            hook_failures=self._hook_failures,
            consumers={
                name: ConsumerStatistics(counts.resyncs, counts.restarts)
                for name, counts in self._consumers.items()
            },
        )


async def _consume_until_dropped(
    subscription: BusSubscription, consume: Callable[[BusSubscription], Awaitable[None]]
) -> bool:
    """Run ``consume``; True if it returned, False if it was cancelled because the
    subscription was dropped (a consumer stuck in its own work is resynced too)."""
    finished = False
    async with trio.open_nursery() as nursery:

        async def cancel_when_dropped() -> None:
            await subscription.wait_dropped()
            nursery.cancel_scope.cancel()

        nursery.start_soon(cancel_when_dropped)
        await consume(subscription)
        finished = True
        nursery.cancel_scope.cancel()
    return finished


def _only(error: BaseException, kind: type[Exception]) -> bool:
    """True if ``error`` is a ``kind``, or an exception group of nothing else."""
    if isinstance(error, BaseExceptionGroup):
        _, rest = error.split(kind)
        return rest is None
    return isinstance(error, kind)
