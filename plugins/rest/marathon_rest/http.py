"""An HTTP server for ASGI apps: Hypercorn's protocol handling under our own accept loop.

We run Hypercorn's per-connection handler instead of its ``serve()`` for one reason:
Hypercorn shields socket writes from cancellation, so a client that stops reading
would block a write, and with it shutdown, forever. Here every connection is
registered and can be aborted (its socket closed, which wakes the blocked write):
all of them when the server stops, and a single one when an endpoint gives up on its
client (:func:`connection_of` gives an endpoint its connection).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, cast

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import wrap_app

from marathon_rest.app_types import ASGIApp

#: Key of the :class:`Connection` in every request's ASGI ``scope["state"]``.
CONNECTION_KEY = "marathon_rest.connection"


class Connection:
    """One accepted HTTP connection that the server can abort."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream

    def abort(self) -> None:
        """Close the socket now; tasks blocked reading or writing it wake up with an error."""
        self._stream.socket.close()


def connection_of(scope: MutableMapping[str, Any]) -> Connection | None:
    """The connection a request arrived on."""
    state = scope.get("state") or {}
    connection: Connection | None = state.get(CONNECTION_KEY)
    return connection


async def serve_http(
    app: ASGIApp,
    config: HypercornConfig,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept connections on ``config.bind`` until cancelled; then abort every connection."""
    wrapped = wrap_app(cast(Any, app), config.wsgi_max_body_size, "asgi")
    context = WorkerContext(None)
    sockets = config.create_sockets()
    listeners = []
    for sock in sockets.insecure_sockets:
        sock.listen(config.backlog)
        listeners.append(trio.SocketListener(trio.socket.from_stdlib_socket(sock)))
    connections: set[Connection] = set()

    async def handle(stream: trio.SocketStream) -> None:
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
        bound: list[trio.SocketListener] = await nursery.start(
            trio.serve_listeners, handle, listeners
        )
        binds = []
        for listener in bound:
            host, port = listener.socket.getsockname()[:2]
            binds.append(f"http://{host}:{port}")
        task_status.started(binds)
