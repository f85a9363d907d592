"""Events POSTed to HTTP callback URLs (Marathon ≤ 1.4's ``/v2/eventSubscriptions``).

One dispatcher follows the event bus and hands each event to a worker per callback
URL through a bounded queue; a worker POSTs events in order and retries a failed
delivery a few times with backoff. A callback that cannot keep up loses the events
that do not fit its queue (counted, logged) instead of slowing anything else down.
If the dispatcher itself falls behind a burst, it subscribes to the bus again and
the server carries on. The list of callbacks lives in memory: subscribers
re-register after a restart, as they had to after a Marathon failover.
"""

from __future__ import annotations

import logging

import httpx
import trio

from marathon_core.contracts.events import EventStream, PublishedEvent, SubscriberTooSlow

log = logging.getLogger(__name__)

#: Events queued per callback; those that do not fit are dropped.
QUEUE_SIZE = 1024
#: Delivery attempts per event, and the pause before each retry (seconds).
RETRY_DELAYS = (0.2, 1.0, 3.0)
TIMEOUT = httpx.Timeout(5.0)


class Callback:
    """One callback URL: its queue and how many events it dropped."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.send, self.receive = trio.open_memory_channel[PublishedEvent](QUEUE_SIZE)
        self.dropped = 0
        self.cancel_scope = trio.CancelScope()

    def offer(self, event: PublishedEvent) -> None:
        try:
            self.send.send_nowait(event)
        except trio.WouldBlock:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:  # loud, not a flood per event
                log.warning(
                    "callback %s is too slow: dropped an event (%d so far)",
                    self.url,
                    self.dropped,
                )


class CallbackDispatcher:
    """Keeps the callback workers and feeds them from the event bus."""

    def __init__(self, events: EventStream) -> None:
        self._events = events
        self._callbacks: dict[str, Callback] = {}
        self._nursery: trio.Nursery | None = None

    @property
    def urls(self) -> list[str]:
        return sorted(self._callbacks)

    def subscribe(self, url: str) -> None:
        if url in self._callbacks or self._nursery is None:
            return
        callback = Callback(url)
        self._callbacks[url] = callback
        self._nursery.start_soon(self._deliver, callback)

    def unsubscribe(self, url: str) -> None:
        callback = self._callbacks.pop(url, None)
        if callback is not None:
            callback.cancel_scope.cancel()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client, trio.open_nursery() as nursery:
            self._client = client
            self._nursery = nursery
            while True:
                with self._events.subscribe(max_outstanding=QUEUE_SIZE * 4) as subscription:
                    task_status.started()
                    task_status = trio.TASK_STATUS_IGNORED
                    try:
                        async for event in subscription:
                            for callback in list(self._callbacks.values()):
                                callback.offer(event)
                    except SubscriberTooSlow as exc:
                        # A burst published faster than this task was scheduled: the
                        # callbacks miss those events, the server carries on.
                        log.error(
                            "HTTP callbacks fell behind the event stream (%s); "
                            "subscribing again: the events in between are not delivered",
                            exc,
                        )

    async def _deliver(self, callback: Callback) -> None:
        with callback.cancel_scope:
            async for event in callback.receive:
                await self._post(callback, event)

    async def _post(self, callback: Callback, event: PublishedEvent) -> None:
        for attempt, pause in enumerate((0.0, *RETRY_DELAYS)):
            await trio.sleep(pause)
            try:
                response = await self._client.post(callback.url, json=dict(event.payload))
                if response.status_code < 500:
                    return
                reason = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}"
            log.info("callback %s attempt %d failed: %s", callback.url, attempt + 1, reason)
        log.warning("callback %s: gave up on event %d", callback.url, event.id)
