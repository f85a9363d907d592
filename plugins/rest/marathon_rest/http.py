"""An HTTP server for ASGI apps: Hypercorn's protocol handling under our own accept loop.

We run Hypercorn's per-connection handler instead of its ``serve()`` for two reasons.
Hypercorn shields socket writes from cancellation, so a client that stops reading
would block a write, and with it shutdown, forever. Here every connection is
registered and can be aborted (its socket closed, which wakes the blocked write):
all of them when the server stops, and a single one when an endpoint gives up on its
client (:func:`connection_of` gives an endpoint its connection). And Hypercorn has
no deadline for a request that trickles in: each connection here has a watchdog that
cuts a client whose headers take longer than ``header_timeout`` from their first
byte, or whose body takes longer than ``body_timeout`` (the ASGI layer tells the
connection where a request stands, see :mod:`marathon_rest.limits`). Connections
beyond ``max_connections`` are answered 429 and closed at once.
"""

from __future__ import annotations

import math
from collections.abc import MutableMapping, Sequence
from typing import Any, cast

import attrs
import orjson
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import wrap_app

from marathon_rest.app_types import ASGIApp
from marathon_rest.listen import Endpoint

#: Key of the :class:`Connection` in every request's ASGI ``scope["state"]``.
CONNECTION_KEY = "marathon_rest.connection"

Stream = trio.SocketStream | trio.SSLStream[trio.SocketStream]


@attrs.frozen
class ConnectionLimits:
    """How many connections, and how slow a client may be (seconds)."""

    max_connections: int = 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0


class Connection:
    """One accepted HTTP connection: it can be aborted, and it watches slow clients."""

    def __init__(self, stream: Stream, limits: ConnectionLimits) -> None:
        self._socket = (
            stream.transport_stream.socket if isinstance(stream, trio.SSLStream) else stream.socket
        )
        self._limits = limits
        self._awaiting_headers = True
        self._watch = trio.CancelScope()
        #: Around Hypercorn's handler, which keeps an idle connection the client closed
        #: until its keep-alive timeout; it still counts against ``max_connections``.
        self.serving = trio.CancelScope()

    def abort(self) -> None:
        """Close the socket now; tasks blocked reading or writing it wake up with an error."""
        self._socket.close()

    async def watch(self) -> None:
        """Abort the connection once its current deadline passes."""
        with self._watch:
            await trio.sleep_forever()
        if self._watch.cancelled_caught:
            self.abort()

    def bytes_arrived(self) -> None:
        """The first bytes of a request start the clock for its headers."""
        if self._awaiting_headers and self._watch.deadline == math.inf:
            self._watch.deadline = trio.current_time() + self._limits.header_timeout

    def request_started(self) -> None:
        """The headers are in; the body must follow within ``body_timeout``."""
        self._awaiting_headers = False
        self._watch.deadline = trio.current_time() + self._limits.body_timeout

    def body_received(self) -> None:
        """The whole request is in: answering may take as long as the endpoint needs."""
        self._watch.deadline = math.inf

    def client_left(self) -> None:
        """The client closed its side: done, unless a request of it is still in progress."""
        if self._awaiting_headers:
            self.serving.cancel()

    def response_sent(self) -> None:
        """The connection waits for its next request (Hypercorn's keep-alive timeout)."""
        self._awaiting_headers = True
        self._watch.deadline = math.inf


class _WatchedStream:
    """The stream Hypercorn reads, telling the connection when bytes arrive."""

    def __init__(self, stream: Stream, connection: Connection) -> None:
        self._stream = stream
        self._connection = connection

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self._stream.receive_some(max_bytes)
        if data:
            self._connection.bytes_arrived()
        else:
            self._connection.client_left()
        return data

    def __getattr__(self, name: str) -> Any:
        # Hypercorn tells TLS from plain streams by their attributes: pass them all on.
        return getattr(self._stream, name)


def connection_of(scope: MutableMapping[str, Any]) -> Connection | None:
    """The connection a request arrived on."""
    state = scope.get("state") or {}
    connection: Connection | None = state.get(CONNECTION_KEY)
    return connection


_TOO_MANY = orjson.dumps({"message": "Too many connections; try again shortly"})
TOO_MANY_CONNECTIONS_RESPONSE = (
    b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n"
    b"retry-after: 1\r\nconnection: close\r\n"
    + f"content-length: {len(_TOO_MANY)}\r\n\r\n".encode()
    + _TOO_MANY
)


async def _refuse(stream: Stream) -> None:
    """Answer 429 without reading the request, then close."""
    with trio.move_on_after(1):
        try:
            await stream.send_all(TOO_MANY_CONNECTIONS_RESPONSE)
            # Read what the client sent, so closing does not reset the answer away.
            await stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
    await trio.aclose_forcefully(stream)


async def serve_http(
    app: ASGIApp,
    config: HypercornConfig,
    endpoints: Sequence[Endpoint],
    limits: ConnectionLimits = ConnectionLimits(),
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept connections on ``endpoints`` until cancelled; then abort every connection.

    ``task_status`` gets one URL per endpoint, in order (``http://127.0.0.1:8080``).
    """
    wrapped = wrap_app(cast(Any, app), config.wsgi_max_body_size, "asgi")
    context = WorkerContext(None)
    listeners: list[trio.abc.Listener[Any]] = []
    binds = []
    for endpoint in endpoints:
        for listener in await trio.open_tcp_listeners(
            endpoint.port, host=endpoint.host, backlog=config.backlog
        ):
            host, port = listener.socket.getsockname()[:2]
            binds.append(f"{endpoint.scheme}://{_url_host(host)}:{port}")
            if endpoint.ssl_context is None:
                listeners.append(listener)
            else:
                listeners.append(
                    trio.SSLListener(listener, endpoint.ssl_context, https_compatible=True)
                )
    connections: set[Connection] = set()

    async def handle(stream: Stream) -> None:
        if len(connections) >= limits.max_connections:
            await _refuse(stream)
            return
        connection = Connection(stream, limits)
        connections.add(connection)
        try:
            async with trio.open_nursery() as watching:
                watching.start_soon(connection.watch)
                state = ConnectionState({CONNECTION_KEY: connection})
                watched = _WatchedStream(stream, connection)
                with connection.serving:
                    await TCPServer(wrapped, config, context, state, cast(Any, watched))
                watching.cancel_scope.cancel()
        finally:
            connections.discard(connection)

    async def abort_connections_on_exit() -> None:
        try:
            await trio.sleep_forever()
        finally:
            for connection in list(connections):
                connection.abort()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(abort_connections_on_exit)
        await nursery.start(trio.serve_listeners, handle, listeners)
        task_status.started(binds)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
