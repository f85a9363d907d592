"""The event bus: every event fans out to subscribers without ever waiting for one.

The implementation of :class:`marathon_core.contracts.events.EventStream`.
Events are Marathon's wire form (a JSON object with ``eventType`` and ``timestamp``).
:meth:`EventBus.publish` is synchronous and never blocks: each subscriber has a
bounded buffer, and a subscriber that falls that far behind is dropped (its
iteration ends with :class:`SubscriberTooSlow`) rather than stalling the publisher
or growing memory. Every event gets an increasing id, and a bounded history lets a
reconnecting client resume after the last id it saw (SSE ``Last-Event-ID``).
"""

from __future__ import annotations

import collections
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import trio

from marathon_core.contracts.events import (
    EventStreamStatistics,
    PublishedEvent,
    SubscriberTooSlow,
)

__all__ = ["EventBus"]

log = logging.getLogger(__name__)

#: Events kept for clients that reconnect with ``Last-Event-ID``.
DEFAULT_HISTORY = 1024


class BusSubscription:
    """One subscriber's bounded view of the bus; iterate it to receive events."""

    def __init__(self, event_types: Collection[str] | None, max_outstanding: int) -> None:
        self.event_types = frozenset(event_types) if event_types else None
        self.max_outstanding = max_outstanding
        self._send, self._receive = trio.open_memory_channel[PublishedEvent](max_outstanding)
        self._dropped = trio.Event()

    def wants(self, event_type: str) -> bool:
        return self.event_types is None or event_type in self.event_types

    def _offer(self, event: PublishedEvent) -> bool:
        """Hand over an event without waiting; False if the subscriber had to be dropped."""
        try:
            self._send.send_nowait(event)
        except trio.WouldBlock:
            self._dropped.set()
            self._send.close()
            return False
        except trio.ClosedResourceError:
            return False
        return True

    @property
    def dropped(self) -> bool:
        """True once the subscriber fell too far behind; no further events arrive."""
        return self._dropped.is_set()

    async def wait_dropped(self) -> None:
        await self._dropped.wait()

    async def receive(self) -> PublishedEvent:
        """The next event; SubscriberTooSlow once dropped and the backlog is read.

        Safe to cancel: an event is either returned or stays queued.
        """
        try:
            return await self._receive.receive()
        except trio.EndOfChannel:
            if self.dropped:
                raise SubscriberTooSlow(self.max_outstanding) from None
            raise

    def __aiter__(self) -> AsyncIterator[PublishedEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[PublishedEvent]:
        while True:
            try:
                yield await self.receive()
            except trio.EndOfChannel:
                return


class EventBus:
    """Fans events out to subscriptions and to the ``marathon_event`` plugin hook."""

    def __init__(
        self,
        *,
        history: int = DEFAULT_HISTORY,
        on_event: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> None:
        self._ids = itertools.count(1)
        self._history: collections.deque[PublishedEvent] = collections.deque(maxlen=history)
        self._subscriptions: set[BusSubscription] = set()
        self._on_event = on_event
        self._dropped = 0

    def publish(self, event: Mapping[str, Any]) -> PublishedEvent:
        """Deliver ``event`` to every interested subscriber now; never blocks."""
        published = PublishedEvent(next(self._ids), str(event["eventType"]), event)
        self._history.append(published)
        for subscription in list(self._subscriptions):
            if subscription.wants(published.event_type) and not subscription._offer(published):
                self._subscriptions.discard(subscription)
                self._dropped += 1
                log.warning(
                    "dropped an event subscriber: %s",
                    SubscriberTooSlow(subscription.max_outstanding),
                )
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                log.exception("a marathon_event hook failed on %s", published.event_type)
        return published

    @contextmanager
    def subscribe(
        self,
        *,
        event_types: Collection[str] | None = None,
        after_id: int | None = None,
        max_outstanding: int = 1024,
    ) -> Iterator[BusSubscription]:
        """A subscription for the ``with`` block; ``after_id`` replays newer kept events first."""
        subscription = BusSubscription(event_types, max_outstanding)
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
            subscription._send.close()

    def statistics(self) -> EventStreamStatistics:
        return EventStreamStatistics(
            subscribers=len(self._subscriptions),
            last_event_id=self._history[-1].id if self._history else 0,
            dropped_subscribers=self._dropped,
        )
