"""Events POSTed to HTTP callback URLs (Marathon ≤ 1.4's ``/v2/eventSubscriptions``).

Each callback URL follows the event bus on its own (:meth:`EventStream.follow`), so a
slow receiver slows nobody else. ``SENDERS`` tasks take events from that subscription
and POST them, each over a keep-alive connection of its own, written with h11: a launch
publishes hundreds of events a second while the event loop is busy with it, and an
httpx request costs about a millisecond of CPU plus bookkeeping per pooled connection,
so it could not keep up. As in Marathon, which POSTs every event at once, receivers
get events roughly but not strictly in order; a failed delivery is retried a few times
with backoff. A receiver that falls more than ``MAX_LAG`` seconds behind (with more
than ``QUEUE_SIZE`` events waiting) is given a fresh subscription: it misses the events
in between, and the bus logs and counts it; nothing else is affected. The list of
callbacks lives in memory: subscribers re-register after a restart, as they had to
after a Marathon failover.
"""

from __future__ import annotations

import logging
import ssl
from functools import partial
from urllib.parse import urlsplit

import h11
import orjson
import trio

from marathon_core.contracts.events import EventStream, PublishedEvent, Subscription

log = logging.getLogger(__name__)

#: Events a callback may have waiting before its lag counts.
QUEUE_SIZE = 1024
#: Seconds a callback may fall behind (once ``QUEUE_SIZE`` events wait) before it resyncs.
MAX_LAG = 60.0
#: POSTs under way at once per callback (one connection each). Each POST takes a few
#: turns of the event loop, and a turn takes tens of milliseconds during a big launch.
SENDERS = 32
#: Delivery attempts per event, and the pause before each retry (seconds).
RETRY_DELAYS = (0.2, 1.0, 3.0)
#: Seconds for one attempt: connecting, sending, and reading the answer.
TIMEOUT = 5.0


class CallbackConnection:
    """One keep-alive HTTP/1.1 connection to a callback URL, opened when needed."""

    def __init__(self, url: str) -> None:
        self.url = url
        parts = urlsplit(url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (443 if self.https else 80)
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.authority = parts.netloc
        self._stream: trio.abc.Stream | None = None
        self._http = h11.Connection(h11.CLIENT)

    async def post(self, body: bytes) -> int:
        """POST ``body`` as JSON; the status code. Raises OSError, trio or h11 errors."""
        if self._stream is None or self._http.our_state is not h11.IDLE:
            await self.close()
            self._stream = await self._connect()
            self._http = h11.Connection(h11.CLIENT)
        headers = [
            ("Host", self.authority),
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
            ("Content-Length", str(len(body))),
        ]
        request = h11.Request(method="POST", target=self.target, headers=headers)
        parts = (request, h11.Data(data=body), h11.EndOfMessage())
        await self._stream.send_all(b"".join(self._http.send(part) or b"" for part in parts))
        status = 0
        while True:
            event = self._http.next_event()
            if event is h11.NEED_DATA:
                self._http.receive_data(bytes(await self._stream.receive_some(1 << 16)))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise h11.RemoteProtocolError("connection closed before the answer ended")
        if self._http.their_state is h11.DONE and self._http.our_state is h11.DONE:
            self._http.start_next_cycle()
        return status

    async def _connect(self) -> trio.abc.Stream:
        stream = await trio.open_tcp_stream(self.host, self.port)
        if not self.https:
            return stream
        secure = trio.SSLStream(stream, ssl.create_default_context(), server_hostname=self.host)
        await secure.do_handshake()
        return secure

    async def close(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)


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
        async with trio.open_nursery() as nursery:
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
        async with trio.open_nursery() as senders:
            for _ in range(SENDERS):
                senders.start_soon(self._send, url, subscription)

    async def _send(self, url: str, subscription: Subscription) -> None:
        connection = CallbackConnection(url)
        try:
            async for event in subscription:
                await self._post(connection, event)
        finally:
            await connection.close()

    async def _post(self, connection: CallbackConnection, event: PublishedEvent) -> None:
        body = orjson.dumps(event.payload)
        url = connection.url
        for attempt, pause in enumerate((0.0, *RETRY_DELAYS)):
            if pause:
                await trio.sleep(pause)
            try:
                with trio.fail_after(TIMEOUT):
                    status = await connection.post(body)
                if status < 500:
                    return
                reason = f"HTTP {status}"
            except (OSError, trio.BrokenResourceError, trio.TooSlowError, h11.ProtocolError) as exc:
                await connection.close()
                reason = f"{type(exc).__name__}: {exc}"
            log.info("callback %s attempt %d failed: %s", url, attempt + 1, reason)
        log.warning("callback %s: gave up on event %d", url, event.id)
