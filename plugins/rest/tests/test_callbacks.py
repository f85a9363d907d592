"""``/v2/eventSubscriptions``: events reach a real HTTP receiver, with retries."""

from __future__ import annotations

import json

import httpx
import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from marathon_core.model.events import make_event
from marathon_core.testing.context import CoreContext
from marathon_rest.callbacks import QUEUE_SIZE
from marathon_rest.http import serve_http
from marathon_rest.server import hypercorn_config


class Receiver:
    """A callback endpoint that fails its first ``failures`` requests with a 503."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.events: list[dict[str, object]] = []
        self.arrived = trio.Event()

    async def endpoint(self, request: Request) -> Response:
        if self.failures:
            self.failures -= 1
            return Response(status_code=503)
        self.events.append(json.loads(await request.body()))
        self.arrived.set()
        self.arrived = trio.Event()
        return Response(status_code=200)


async def test_subscribers_get_events_despite_failures(
    client: httpx.AsyncClient, api_context: CoreContext, nursery: trio.Nursery
) -> None:
    receiver = Receiver(failures=2)
    app = Starlette(routes=[Route("/hook", receiver.endpoint, methods=["POST"])])
    (url,) = await nursery.start(serve_http, app, hypercorn_config(api_context))
    callback = f"{url}/hook"

    subscribed = await client.post(f"/v2/eventSubscriptions?callbackUrl={callback}")
    assert subscribed.status_code == 200
    assert subscribed.json()["eventType"] == "subscribe_event"
    assert (await client.get("/v2/eventSubscriptions")).json() == {"callbackUrls": [callback]}

    await client.post("/v2/apps", json={"id": "/cb/app", "cmd": "sleep 1"})
    with trio.fail_after(10):
        while not any(e["eventType"] == "api_post_event" for e in receiver.events):
            await receiver.arrived.wait()
    kinds = [e["eventType"] for e in receiver.events]
    assert kinds.index("subscribe_event") < kinds.index("api_post_event")  # in order

    gone = await client.delete(f"/v2/eventSubscriptions?callbackUrl={callback}")
    assert gone.json()["eventType"] == "unsubscribe_event"
    assert (await client.get("/v2/eventSubscriptions")).json() == {"callbackUrls": []}


async def test_callback_urls_must_be_http(client: httpx.AsyncClient) -> None:
    response = await client.post("/v2/eventSubscriptions?callbackUrl=file:///etc/passwd")
    assert response.status_code == 400


async def test_a_burst_faster_than_the_dispatcher_is_survived(
    client: httpx.AsyncClient, api_context: CoreContext, nursery: trio.Nursery
) -> None:
    """Thousands of events published without a pause overflow the dispatcher's buffer
    before it runs at all: it subscribes again, and later events still arrive."""
    receiver = Receiver(failures=0)
    app = Starlette(routes=[Route("/hook", receiver.endpoint, methods=["POST"])])
    (url,) = await nursery.start(serve_http, app, hypercorn_config(api_context))
    for n in range(QUEUE_SIZE * 8):  # no checkpoint in between, as a status batch
        api_context.events.publish(make_event("burst_event", n=n))
        if api_context.events.statistics().dropped_subscribers:
            break
    assert api_context.events.statistics().dropped_subscribers == 1
    await trio.sleep(0.1)  # the dispatcher reads what it was given, then subscribes again
    # Subscribed after the burst, so that no backlog of it has to be POSTed first.
    assert (await client.post(f"/v2/eventSubscriptions?callbackUrl={url}/hook")).is_success
    await client.post("/v2/apps", json={"id": "/cb/after", "cmd": "sleep 1"})
    with trio.fail_after(10):
        while not any(e["eventType"] == "api_post_event" for e in receiver.events):
            await receiver.arrived.wait()
    gauges = (await client.get("/metrics")).json()["gauges"]
    assert gauges["marathon.events.subscribers.dropped.gauge"] == {"value": 1}
