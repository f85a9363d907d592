"""Events POSTed to HTTP callback URLs (Marathon ≤ 1.4's ``/v2/eventSubscriptions``).

Each callback URL follows the event bus on its own (:meth:`EventStream.follow`), so a
slow receiver slows nobody else, and POSTs each event, up to ``IN_FLIGHT`` at once (a
launch publishes hundreds of events a second; one request at a time, each a few turns
of a busy event loop, cannot keep up). As in Marathon, which POSTs every event at once,
receivers get events roughly but not strictly in order; a failed delivery is retried a
few times with backoff. A receiver that falls more than ``MAX_LAG`` seconds behind
(with more than ``QUEUE_SIZE`` events waiting) is given a fresh subscription: it misses
the events in between, and the bus logs and counts it; nothing else is affected. The
list of callbacks lives in memory: subscribers re-register after a restart, as they had
to after a Marathon failover.
"""

from __future__ import annotations

import logging
from functools import partial

import httpx
import trio

from marathon_core.contracts.events import EventStream, PublishedEvent, Subscription

log = logging.getLogger(__name__)

#: Events a callback may have waiting before its lag counts.
QUEUE_SIZE = 1024
#: Seconds a callback may fall behind (once ``QUEUE_SIZE`` events wait) before it resyncs.
MAX_LAG = 60.0
#: POSTs under way at once per callback.
IN_FLIGHT = 8
#: Delivery attempts per event, and the pause before each retry (seconds).
RETRY_DELAYS = (0.2, 1.0, 3.0)
TIMEOUT = httpx.Timeout(5.0)


class CallbackDispatcher:
    """Keeps one delivering task per callback URL."""

    def __init__(self, events: EventStream) -> None:
        self._events = events
        self._callbacks: dict[str, trio.CancelScope] = {}
        self._nursery: trio.Nursery | None = None

    @property
    def urls(self) -> list[str]:
        return sorted(self._callbacks)

    async def subscribe(self, url: str) -> None:
        """Start delivering to ``url``: every event published after this returns."""
        if url in self._callbacks or self._nursery is None:
            return
        scope = trio.CancelScope()
        self._callbacks[url] = scope
        await self._nursery.start(self._follow, url, scope)

    def unsubscribe(self, url: str) -> None:
        scope = self._callbacks.pop(url, None)
        if scope is not None:
            scope.cancel()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=IN_FLIGHT * 4)
        async with (
            httpx.AsyncClient(timeout=TIMEOUT, limits=limits) as client,
            trio.open_nursery() as nursery,
        ):
            self._client = client
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    async def _follow(
        self, url: str, scope: trio.CancelScope, *, task_status: trio.TaskStatus[None]
    ) -> None:
        with scope:
            await self._events.follow(
                f"HTTP callback {url}",
                partial(self._deliver, url),
                max_outstanding=QUEUE_SIZE,
                max_lag=MAX_LAG,
                task_status=task_status,
            )

    async def _deliver(self, url: str, subscription: Subscription) -> None:
        in_flight = trio.Semaphore(IN_FLIGHT)
        async with trio.open_nursery() as posts:
            async for event in subscription:
                await in_flight.acquire()
                posts.start_soon(self._post, url, event, in_flight)

    async def _post(self, url: str, event: PublishedEvent, in_flight: trio.Semaphore) -> None:
        try:
            for attempt, pause in enumerate((0.0, *RETRY_DELAYS)):
                await trio.sleep(pause)
                try:
                    response = await self._client.post(url, json=dict(event.payload))
                    if response.status_code < 500:
                        return
                    reason = f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    reason = f"{type(exc).__name__}: {exc}"
                log.info("callback %s attempt %d failed: %s", url, attempt + 1, reason)
            log.warning("callback %s: gave up on event %d", url, event.id)
        finally:
            in_flight.release()
