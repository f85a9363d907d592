"""A small HTTP/1.1 server on trio streams and h11, for the master and the agents.

Why not an ASGI server: the Mesos scheduler API needs byte-exact control of status
codes and headers, an unbounded chunked response (the SUBSCRIBE stream) whose end must
be noticed at once when the client goes away, and nothing else. h11 does the HTTP
parsing (it is already in the dependency tree through httpx); this module only maps
one request to one :class:`Response` per connection cycle.

Resource handling: every connection is closed when its handler task ends, and a
streaming response ends (its ``stream`` callable is cancelled) as soon as the peer
closes the connection.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import h11
import trio

__all__ = [
    "JSON",
    "PROTOBUF",
    "Handler",
    "Request",
    "Response",
    "accepts",
    "check_post",
    "serve_http",
]

log = logging.getLogger(__name__)

#: Largest request body accepted; the biggest scheduler calls are a few MB at most.
MAX_BODY = 64 * 1024 * 1024
#: Read size for the socket.
READ_SIZE = 65536

JSON = "application/json"
PROTOBUF = "application/x-protobuf"

#: Writes one chunk of a streaming response body.
Send = Callable[[bytes], Awaitable[None]]


@attrs.frozen
class Request:
    """One HTTP request; header names are lower case."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes = b""
    client: tuple[str, int] | None = None

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query)

    def json(self) -> Any:
        return json.loads(self.body)


@attrs.define
class Response:
    """A complete response, or a streaming one when ``stream`` is set.

    ``stream(send)`` writes the body chunk by chunk and returns when the body is
    complete; the connection is closed afterwards.
    """

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = attrs.field(factory=list)
    stream: Callable[[Send], Awaitable[None]] | None = None

    @classmethod
    def text(cls, status: int, text: str = "") -> Response:
        headers = [("Content-Type", "text/plain; charset=utf-8")] if text else []
        return cls(status, text.encode(), headers)

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(value).encode(), [("Content-Type", JSON)])


def accepts(accept: str | None, media_type: str) -> bool:
    """Whether an ``Accept`` header allows ``media_type`` (libprocess rules)."""
    if accept is None:
        return True
    main = media_type.split("/")[0]
    for item in accept.split(","):
        parts = [p.strip().replace("\t", "") for p in item.split(";")]
        candidate = parts[0].lower()
        quality = 1.0
        for param in parts[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        if candidate in (media_type, f"{main}/*", "*/*"):
            return True
    return False


def check_post(request: Request) -> Response | None:
    """libprocess' answer to a call that is not a POST with a ``Content-Type``, or None."""
    if request.method != "POST":
        return Response(
            405,
            f"Expecting one of {{ 'POST' }}, but received '{request.method}'".encode(),
            [("Allow", "POST"), ("Content-Type", "text/plain; charset=utf-8")],
        )
    if request.headers.get("content-type") is None:
        return Response.text(400, "Expecting 'Content-Type' to be present")
    return None


Handler = Callable[[Request], Awaitable[Response]]


async def serve_http(
    handler: Handler,
    *,
    host: str,
    port: int,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``handler`` on ``host:port`` until cancelled; reports the bound port."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    task_status.started(bound)

    async def connection(stream: trio.SocketStream) -> None:
        await _serve_connection(handler, stream)

    await trio.serve_listeners(connection, listeners)


async def _serve_connection(handler: Handler, stream: trio.SocketStream) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_BODY)
    try:
        peer = stream.socket.getpeername()
    except OSError:
        peer = None
    try:
        while True:
            try:
                request = await _read_request(conn, stream, peer)
            except (h11.RemoteProtocolError, ValueError) as exc:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await _send(conn, stream, Response.text(400, f"Bad request: {exc}"))
                return
            if request is None:
                return
            try:
                response = await handler(request)
            except Exception:
                log.exception("handler failed for %s %s", request.method, request.target)
                response = Response.text(500, "Internal server error")
            await _send(conn, stream, response)
            if response.stream is not None or conn.our_state is not h11.DONE:
                return
            if conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()
    except (trio.BrokenResourceError, trio.ClosedResourceError, h11.LocalProtocolError):
        return
    finally:
        with trio.move_on_after(1) as scope:
            scope.shield = True
            await stream.aclose()


async def _read_request(
    conn: h11.Connection, stream: trio.SocketStream, peer: Any
) -> Request | None:
    head: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(READ_SIZE)
            conn.receive_data(data)  # b"" marks end of input
            continue
        if isinstance(event, h11.ConnectionClosed):
            return None
        if isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_BODY:
                raise ValueError("body too large")
        elif isinstance(event, h11.EndOfMessage):
            assert head is not None
            headers: dict[str, str] = {}
            for name, value in head.headers:
                key = name.decode("latin-1").lower()
                text = value.decode("latin-1")
                headers[key] = f"{headers[key]},{text}" if key in headers else text
            return Request(
                method=head.method.decode("ascii"),
                target=head.target.decode("latin-1"),
                headers=headers,
                body=bytes(body),
                client=(str(peer[0]), int(peer[1])) if peer else None,
            )


async def _send(conn: h11.Connection, stream: trio.SocketStream, response: Response) -> None:
    headers = list(response.headers)
    if response.stream is None:
        headers.append(("Content-Length", str(len(response.body))))
    else:
        headers.append(("Connection", "close"))
    wire_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    await stream.send_all(
        conn.send(h11.Response(status_code=response.status, headers=wire_headers)) or b""
    )
    if response.stream is None:
        if response.body:
            await stream.send_all(conn.send(h11.Data(data=response.body)) or b"")
        await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
        return
    await _stream_body(conn, stream, response.stream)


async def _stream_body(
    conn: h11.Connection, stream: trio.SocketStream, body: Callable[[Send], Awaitable[None]]
) -> None:
    """Run ``body`` until it returns or the peer goes away, whichever comes first."""

    async def send(chunk: bytes) -> None:
        await stream.send_all(conn.send(h11.Data(data=chunk)) or b"")

    async def watch_peer(cancel: trio.CancelScope) -> None:
        # The client sends nothing more on a streaming connection; EOF or an error
        # on read means it is gone.
        try:
            while await stream.receive_some(READ_SIZE):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        cancel.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch_peer, nursery.cancel_scope)
        try:
            await body(send)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        else:
            await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
        nursery.cancel_scope.cancel()
