"""The event stream as services see it: publish, subscribe, follow, and what a subscriber gets.

Events are Marathon's wire form (built by :mod:`marathon_core.model.events`). Publishing
never blocks, so a burst (thousands of instance changes from one scale-up, all published
before the publisher next yields) piles up in every subscriber's buffer at once. A
subscriber is therefore judged by how far behind it is in *time*, not by a count: it is
dropped (its iteration ends with :class:`SubscriberTooSlow`) only once it has more than
``max_outstanding`` events unread *and* the oldest of them is more than ``max_lag``
seconds old. A reader that keeps reading survives any burst; one that stopped is cut
``max_lag`` seconds later, so what it holds is bounded by what is published in that time.

Long-lived consumers inside the server use :meth:`EventStream.follow`, which subscribes
again when they fall behind and restarts them when they raise, logged and counted
(:class:`EventStreamStatistics`), so that no consumer can end the process or a term.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol

import attrs
import trio

__all__ = [
    "DEFAULT_MAX_LAG",
    "DEFAULT_MAX_OUTSTANDING",
    "ConsumerStatistics",
    "EventStream",
    "EventStreamStatistics",
    "PublishedEvent",
    "SubscriberTooSlow",
    "Subscription",
]

#: Unread events a subscriber may have before its lag is checked at all.
DEFAULT_MAX_OUTSTANDING = 1024
#: Seconds the oldest unread event of such a subscriber may wait before it is dropped.
DEFAULT_MAX_LAG = 10.0


@attrs.frozen
class PublishedEvent:
    """An event with the id the stream gave it (ids increase; SSE ``id:``)."""

    id: int
    event_type: str
    payload: Mapping[str, Any]
    #: When it was published, in the stream's clock (``time.monotonic`` seconds).
    published_at: float = 0.0


class SubscriberTooSlow(Exception):
    """The subscriber left too many events unread for too long and was dropped."""

    def __init__(self, max_outstanding: int, max_lag: float = DEFAULT_MAX_LAG) -> None:
        super().__init__(
            f"more than {max_outstanding} events were left unread, "
            f"the oldest for more than {max_lag:g} s"
        )
        self.max_outstanding = max_outstanding
        self.max_lag = max_lag


@attrs.frozen
class ConsumerStatistics:
    """What happened to one consumer run by :meth:`EventStream.follow`."""

    #: Times it fell behind and was given a fresh subscription (missing the events between).
    resyncs: int = 0
    #: Times it raised and was started again.
    restarts: int = 0


@attrs.frozen
class EventStreamStatistics:
    subscribers: int
    last_event_id: int
    #: Subscribers dropped for falling behind, since the stream started.
    dropped_subscribers: int = 0
    #: Unread events of the subscriber furthest behind, now.
    largest_backlog: int = 0
    #: Times a ``marathon_event`` hook raised.
    hook_failures: int = 0
    #: Consumers run by :meth:`EventStream.follow`, by name.
    consumers: Mapping[str, ConsumerStatistics] = attrs.field(factory=dict)


class Subscription(Protocol):
    """One subscriber's view of the stream; iterate it to receive events."""

    #: Unread events it may have before its lag counts.
    max_outstanding: int
    #: Seconds its oldest unread event may wait, once it has more than ``max_outstanding``.
    max_lag: float

    @property
    def dropped(self) -> bool:
        """True once the subscriber fell too far behind; no further events arrive."""
        ...

    @property
    def backlog(self) -> int:
        """Events published to it and not yet received."""
        ...

    async def wait_dropped(self) -> None: ...

    async def receive(self) -> PublishedEvent:
        """The next event; :class:`SubscriberTooSlow` once dropped (its backlog is discarded).

        Safe to cancel: an event is either returned or stays queued.
        """
        ...

    async def receive_batch(self, limit: int | None = None) -> list[PublishedEvent]:
        """Every waiting event (at most ``limit``), waiting for one if there are none.

        A reader that takes what has piled up at once keeps up with publishers that
        publish many events per turn. Safe to cancel like :meth:`receive`.
        """
        ...

    def __aiter__(self) -> AsyncIterator[PublishedEvent]: ...


class EventStream(Protocol):
    """Every event the core and plugins publish, fanned out without waiting for anyone."""

    def publish(self, event: Mapping[str, Any]) -> PublishedEvent:
        """Deliver ``event`` to every interested subscriber now; never blocks."""
        ...

    @property
    def last_id(self) -> int:
        """The id of the newest event, 0 before the first: what a snapshot read now
        is as of (a client that then subscribes ``after_id=last_id`` misses nothing).

        .. versionadded:: 0.1
        """
        ...

    def subscribe(
        self,
        *,
        event_types: Collection[str] | None = None,
        after_id: int | None = None,
        max_outstanding: int = DEFAULT_MAX_OUTSTANDING,
        max_lag: float = DEFAULT_MAX_LAG,
        name: str = "subscriber",
    ) -> AbstractContextManager[Subscription]:
        """A subscription for a ``with`` block; ``after_id`` replays newer kept events first.

        ``name`` says who it is in the log when it is dropped.
        """
        ...

    async def follow(
        self,
        name: str,
        consume: Callable[[Subscription], Awaitable[None]],
        *,
        event_types: Collection[str] | None = None,
        max_outstanding: int = DEFAULT_MAX_OUTSTANDING,
        max_lag: float = DEFAULT_MAX_LAG,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run ``consume`` on a subscription until cancelled or until it returns.

        The way for a long-lived consumer (a plugin's, a service's) to follow the stream:
        when its subscription is dropped, ``consume`` is cancelled and started again on a
        fresh subscription (a *resync*: it misses the events in between and must not
        assume it saw them); when it raises, the error is logged and it is started again
        after a pause that doubles with each failure in a row (a *restart*). Both are
        logged and counted in :meth:`statistics`; neither ever propagates.
        ``task_status.started()`` once the first subscription is open.
        """
        ...

    def statistics(self) -> EventStreamStatistics: ...
