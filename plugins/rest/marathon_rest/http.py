"""An HTTP server for ASGI apps: Hypercorn's protocol handling under our own accept loop.

We run Hypercorn's per-connection handler instead of its ``serve()`` for one reason:
Hypercorn shields socket writes from cancellation, so a client that stops reading
would block a write, and with it shutdown, forever. Here every connection is
registered and can be aborted (its socket closed, which wakes the blocked write):
all of them when the server stops, and a single one when an endpoint gives up on its
client (:func:`connection_of` gives an endpoint its connection).
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from typing import Any, cast

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


class Connection:
    """One accepted HTTP connection that the server can abort."""

    def __init__(self, stream: trio.SocketStream | trio.SSLStream[trio.SocketStream]) -> None:
        self._socket = (
            stream.transport_stream.socket if isinstance(stream, trio.SSLStream) else stream.socket
        )

    def abort(self) -> None:
        """Close the socket now; tasks blocked reading or writing it wake up with an error."""
        self._socket.close()


def connection_of(scope: MutableMapping[str, Any]) -> Connection | None:
    """The connection a request arrived on."""
    state = scope.get("state") or {}
    connection: Connection | None = state.get(CONNECTION_KEY)
    return connection


async def serve_http(
    app: ASGIApp,
    config: HypercornConfig,
    endpoints: Sequence[Endpoint],
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

    async def handle(stream: trio.SocketStream | trio.SSLStream[trio.SocketStream]) -> None:
        connection = Connection(stream)
        connections.add(connection)
        try:
            state = ConnectionState({CONNECTION_KEY: connection})
            # Hypercorn types the stream as SSL but handles plain streams the same.
            await TCPServer(wrapped, config, context, state, cast(Any, stream))
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
