"""The event stream as services see it: publish, subscribe, and what a subscriber gets.

Events are Marathon's wire form (built by :mod:`marathon_core.model.events`). Publishing
never blocks; each subscription has a bounded buffer, and a subscriber that leaves
that many events unread is dropped: its iteration ends with :class:`SubscriberTooSlow`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol

import attrs

__all__ = [
    "EventStream",
    "EventStreamStatistics",
    "PublishedEvent",
    "SubscriberTooSlow",
    "Subscription",
]


@attrs.frozen
class PublishedEvent:
    """An event with the id the stream gave it (ids increase; SSE ``id:``)."""

    id: int
    event_type: str
    payload: Mapping[str, Any]


class SubscriberTooSlow(Exception):
    """The subscriber left ``max_outstanding`` events unread and was dropped."""

    def __init__(self, max_outstanding: int) -> None:
        super().__init__(f"more than {max_outstanding} events were left unread")
        self.max_outstanding = max_outstanding


@attrs.frozen
class EventStreamStatistics:
    subscribers: int
    last_event_id: int
    #: Subscribers dropped for falling behind, since the stream started.
    dropped_subscribers: int = 0


class Subscription(Protocol):
    """One subscriber's bounded view of the stream; iterate it to receive events."""

    #: Events it may leave unread before it is dropped.
    max_outstanding: int

    @property
    def dropped(self) -> bool:
        """True once the subscriber fell too far behind; no further events arrive."""
        ...

    async def wait_dropped(self) -> None: ...

    async def receive(self) -> PublishedEvent:
        """The next event; :class:`SubscriberTooSlow` once dropped and the backlog is read.

        Safe to cancel: an event is either returned or stays queued.
        """
        ...

    def __aiter__(self) -> AsyncIterator[PublishedEvent]: ...


class EventStream(Protocol):
    """Every event the core and plugins publish, fanned out without waiting for anyone."""

    def publish(self, event: Mapping[str, Any]) -> PublishedEvent:
        """Deliver ``event`` to every interested subscriber now; never blocks."""
        ...

    def subscribe(
        self,
        *,
        event_types: Collection[str] | None = None,
        after_id: int | None = None,
        max_outstanding: int = 1024,
    ) -> AbstractContextManager[Subscription]:
        """A subscription for a ``with`` block; ``after_id`` replays newer kept events first."""
        ...

    def statistics(self) -> EventStreamStatistics: ...
