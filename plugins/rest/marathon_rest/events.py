"""``GET /v2/events``: the event bus as server-sent events.

Events are written as ``id:``, ``event:`` and ``data:`` lines and flushed as they
come; those that piled up during the last write go out together in the next. Quiet
periods get an SSE comment line (``: ping``), never an unknown event type, so proxies
and marathon-lb keep the stream open and marathon-python does not choke. A client
reconnecting with ``Last-Event-ID`` resumes from the bus's bounded
history. A client that has more than ``--event_stream_max_outstanding_messages``
events unread, the oldest for longer than ``--event_stream_max_lag`` (it stopped
reading), is told why in a comment and disconnected; it never slows the bus down.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import trio
from starlette.requests import Request

from marathon_core.contracts.auth import Action, SystemResource
from marathon_core.contracts.events import PublishedEvent, SubscriberTooSlow, Subscription
from marathon_core.errors import UserError
from marathon_core.model.events import event_stream_attached, event_stream_detached
from marathon_rest.api import Api
from marathon_rest.app_types import Receive, Scope, Send
from marathon_rest.auth import authorize, event_filter
from marathon_rest.http import Connection, connection_of
from marathon_rest.responses import json_response

log = logging.getLogger(__name__)

#: Most events written at once (a burst is written in chunks of this many).
MAX_EVENTS_PER_WRITE = 512
#: How long a dropped client gets to take its goodbye line before the connection is cut.
GOODBYE_GRACE_SECONDS = 1.0


def format_event(event: PublishedEvent) -> bytes:
    data = json.dumps(event.payload, separators=(",", ":"), ensure_ascii=False)
    return f"id: {event.id}\nevent: {event.event_type}\ndata: {data}\n\n".encode()


def _resume_after(request: Request) -> int | None:
    raw = request.headers.get("last-event-id", "").strip()
    return int(raw) if raw.isdigit() else None


async def _body(send: Send, chunk: bytes) -> None:
    await send({"type": "http.response.body", "body": chunk, "more_body": True})


async def _pump(
    subscription: Subscription,
    send: Send,
    heartbeat: float,
    visible: Callable[[Mapping[str, Any]], bool] | None,
) -> None:
    """Forward events until the client is dropped; a comment line every quiet ``heartbeat``.

    Whatever piled up since the last write goes out in one write: a client reading at
    full speed then keeps up however many events a publisher emits per turn. Events
    about apps the caller may not view (``visible`` is False) are left out.
    """
    last_write = trio.current_time()
    while True:
        batch: list[PublishedEvent] | None = None
        with trio.move_on_at(last_write + heartbeat):  # hidden events are no write
            try:
                batch = await subscription.receive_batch(MAX_EVENTS_PER_WRITE)
            except SubscriberTooSlow as exc:
                await _body(send, f": disconnected: {exc}\n\n".encode())
                return
        if batch is not None and visible is not None:
            batch = [event for event in batch if visible(event.payload)]
            if not batch:
                continue
        await _body(send, b": ping\n\n" if batch is None else b"".join(map(format_event, batch)))
        last_write = trio.current_time()


async def _cancel_when_disconnected(receive: Receive, scope: trio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


async def _cut_when_dropped(subscription: Subscription, connection: Connection | None) -> None:
    """A stuck client never unblocks our writes: give it a moment, then abort its connection."""
    await subscription.wait_dropped()
    await trio.sleep(GOODBYE_GRACE_SECONDS)
    if connection is not None:
        connection.abort()


class EventStream:
    """The ASGI endpoint of ``/v2/events`` (``?event_type=`` may repeat)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        api = Api.of(request)
        try:
            authorize(request, Action.VIEW_RESOURCE, SystemResource.EVENTS)
        except UserError as exc:
            await json_response(exc.to_json(), status=exc.status, headers=exc.headers)(
                scope, receive, send
            )
            return
        bus = api.ctx.events
        event_types = request.query_params.getlist("event_type") or None
        client = f"{request.client.host}" if request.client else "unknown"
        with bus.subscribe(
            event_types=event_types,
            after_id=_resume_after(request),
            max_outstanding=api.ctx.config.event_stream_max_outstanding_messages,
            max_lag=api.event_max_lag_seconds,
            name=f"/v2/events client {client}",
        ) as subscription:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream"),
                        (b"cache-control", b"no-cache"),
                    ],
                }
            )
            bus.publish(event_stream_attached(client))
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_cancel_when_disconnected, receive, nursery.cancel_scope)
                    nursery.start_soon(_cut_when_dropped, subscription, connection_of(scope))
                    await _pump(
                        subscription, send, api.event_heartbeat_seconds, event_filter(request)
                    )
                    nursery.cancel_scope.cancel()
            finally:
                bus.publish(event_stream_detached(client))
