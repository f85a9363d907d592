"""Request limits at the ASGI layer: size caps and the slow-client clock.

Headers larger than ``max_header_bytes`` are answered 431 (Hypercorn's own cap,
``h11_max_incomplete_size``, only catches headers still arriving, with an empty 431).

Every request's body is read here, before routing, up to ``max_body_bytes``: a larger
one is answered 413 with Marathon's ``{"message": ...}`` (from ``Content-Length``
before a byte of it is read, or as soon as a chunked body passes the cap). Reading
it here also lets the connection's watchdog (:mod:`marathon_rest.http`) know when a
request's body is complete and when its answer is sent. API bodies are JSON
documents, so holding one in memory is what every endpoint does anyway.
"""

from __future__ import annotations

from starlette.responses import Response

from marathon_rest.app_types import ASGIApp, Message, Receive, Scope, Send
from marathon_rest.http import connection_of
from marathon_rest.responses import json_response


class RequestLimits:
    """ASGI middleware: 413 and 431 for what is too large; drives the connection clock."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_header_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = connection_of(scope)
        if connection is not None:
            connection.request_started()

        async def send_and_tell(message: Message) -> None:
            await send(message)
            if (
                connection is not None
                and message["type"] == "http.response.body"
                and not message.get("more_body", False)
            ):
                connection.response_sent()

        header_bytes = sum(len(k) + len(v) + 4 for k, v in scope["headers"])
        if header_bytes > self.max_header_bytes:
            await _refuse(
                431, f"Request headers too large: the limit is {self.max_header_bytes} bytes"
            )(scope, receive, send_and_tell)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await self._too_large()(scope, receive, send_and_tell)
            return
        chunks: list[bytes] = []
        size = 0
        ended: Message | None = None
        while True:
            message = await receive()
            if message["type"] != "http.request":
                ended = message  # the client left before sending it all
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large()(scope, receive, send_and_tell)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        if connection is not None:
            connection.body_received()
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                if ended is not None:
                    return ended
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send_and_tell)

    def _too_large(self) -> Response:
        return _refuse(413, f"Request body too large: the limit is {self.max_body_bytes} bytes")


def _refuse(status: int, message: str) -> Response:
    """Marathon's error shape; the connection closes, as the request was not read."""
    return json_response({"message": message}, status=status, headers={"connection": "close"})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
