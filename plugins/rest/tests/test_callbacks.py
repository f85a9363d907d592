"""``/v2/eventSubscriptions``: events reach a real HTTP receiver, with retries."""

from __future__ import annotations

import json
from functools import partial

import httpx
import pytest
import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import marathon_rest.callbacks
from marathon_core.model.events import make_event
from marathon_core.testing.context import CoreContext
from marathon_rest.callbacks import QUEUE_SIZE, CallbackConnection
from marathon_rest.http import serve_http
from marathon_rest.server import api_endpoints, hypercorn_config


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

    def kinds(self) -> set[object]:
        return {e["eventType"] for e in self.events}


async def serve_receiver(receiver: Receiver, ctx: CoreContext, nursery: trio.Nursery) -> str:
    """The receiver on a free loopback port; its callback URL."""
    app = Starlette(routes=[Route("/hook", receiver.endpoint, methods=["POST"])])
    (url,) = await nursery.start(serve_http, app, hypercorn_config(ctx), api_endpoints(ctx))
    return f"{url}/hook"


async def test_subscribers_get_events_despite_failures(
    client: httpx.AsyncClient, api_context: CoreContext, nursery: trio.Nursery
) -> None:
    receiver = Receiver(failures=2)
    app = Starlette(routes=[Route("/hook", receiver.endpoint, methods=["POST"])])
    (url,) = await nursery.start(
        serve_http, app, hypercorn_config(api_context), api_endpoints(api_context)
    )
    callback = f"{url}/hook"

    subscribed = await client.post(f"/v2/eventSubscriptions?callbackUrl={callback}")
    assert subscribed.status_code == 200
    assert subscribed.json()["eventType"] == "subscribe_event"
    assert (await client.get("/v2/eventSubscriptions")).json() == {"callbackUrls": [callback]}

    await client.post("/v2/apps", json={"id": "/cb/app", "cmd": "sleep 1"})
    with trio.fail_after(10):  # POSTed concurrently (as Marathon does): not strictly in order
        while not {"subscribe_event", "api_post_event"} <= receiver.kinds():
            await receiver.arrived.wait()

    gone = await client.delete(f"/v2/eventSubscriptions?callbackUrl={callback}")
    assert gone.json()["eventType"] == "unsubscribe_event"
    assert (await client.get("/v2/eventSubscriptions")).json() == {"callbackUrls": []}


async def test_callback_urls_must_be_http(client: httpx.AsyncClient) -> None:
    response = await client.post("/v2/eventSubscriptions?callbackUrl=file:///etc/passwd")
    assert response.status_code == 400


async def test_a_burst_bigger_than_the_queue_reaches_the_callback_whole(
    client: httpx.AsyncClient, api_context: CoreContext, nursery: trio.Nursery
) -> None:
    """Twice the queue, published without a checkpoint (a status batch, a scale-up):
    the callback is behind, not too slow, and gets every event. Delivery is at least
    once: a POST answered after its timeout (a loaded machine) is sent again."""
    receiver = Receiver(failures=0)
    url = await serve_receiver(receiver, api_context, nursery)
    assert (await client.post(f"/v2/eventSubscriptions?callbackUrl={url}")).is_success
    burst = 2 * QUEUE_SIZE

    def delivered() -> set[object]:
        return {e["n"] for e in receiver.events if e["eventType"] == "burst_event"}

    for n in range(burst):
        api_context.events.publish(make_event("burst_event", n=n))
    with trio.fail_after(60):
        while len(delivered()) < burst:
            await receiver.arrived.wait()
    assert delivered() == set(range(burst))
    assert api_context.events.statistics().dropped_subscribers == 0


async def test_a_callback_that_falls_behind_resyncs_and_the_server_carries_on(
    client: httpx.AsyncClient,
    api_context: CoreContext,
    nursery: trio.Nursery,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A receiver that stops answering: its callback falls behind, gets a fresh
    subscription (logged, counted), and delivery resumes once it answers again."""
    monkeypatch.setattr(marathon_rest.callbacks, "MAX_LAG", 0.3)
    monkeypatch.setattr(marathon_rest.callbacks, "TIMEOUT", 30.0)
    answering = trio.Event()
    receiver = Receiver(failures=0)

    async def endpoint(request: Request) -> Response:
        await answering.wait()
        return await receiver.endpoint(request)

    app = Starlette(routes=[Route("/hook", endpoint, methods=["POST"])])
    (base,) = await nursery.start(
        serve_http, app, hypercorn_config(api_context), api_endpoints(api_context)
    )
    assert (await client.post(f"/v2/eventSubscriptions?callbackUrl={base}/hook")).is_success
    for n in range(QUEUE_SIZE * 2):
        api_context.events.publish(make_event("burst_event", n=n))
    await trio.sleep(0.5)
    api_context.events.publish(make_event("burst_event", n=-1))  # now 0.5 s behind
    with trio.fail_after(10):
        while api_context.events.statistics().dropped_subscribers < 1:
            await trio.sleep(0.01)
    answering.set()
    assert (await client.get("/ping")).status_code == 200
    await client.post("/v2/apps", json={"id": "/cb/after", "cmd": "sleep 1"})
    with trio.fail_after(10):
        while "api_post_event" not in receiver.kinds():
            await receiver.arrived.wait()
    gauges = (await client.get("/metrics")).json()["gauges"]
    assert gauges["marathon.events.subscribers.dropped.gauge"] == {"value": 1}
    assert gauges["marathon.events.consumers.resyncs.gauge"] == {"value": 1}
    assert gauges["marathon.events.consumers.restarts.gauge"] == {"value": 0}


async def test_a_callback_consumer_that_raises_is_restarted_and_the_server_carries_on(
    client: httpx.AsyncClient,
    api_context: CoreContext,
    nursery: trio.Nursery,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug in delivery (not an HTTP error): the callback's consumer is started again,
    logged and counted; the server, and the leadership, go on."""
    receiver = Receiver(failures=0)
    url = await serve_receiver(receiver, api_context, nursery)
    real_post = CallbackConnection.post
    bugs = 1

    async def buggy_post(self: CallbackConnection, body: bytes) -> int:
        nonlocal bugs
        if bugs and b'"api_post_event"' in body:
            bugs -= 1
            raise RuntimeError("a bug in delivery")
        return await real_post(self, body)

    monkeypatch.setattr(CallbackConnection, "post", buggy_post)
    assert (await client.post(f"/v2/eventSubscriptions?callbackUrl={url}")).is_success
    await client.post("/v2/apps", json={"id": "/cb/first", "cmd": "sleep 1"})
    with trio.fail_after(10):
        while api_context.events.statistics().consumers[f"HTTP callback {url}"].restarts < 1:
            await trio.sleep(0.01)
    await trio.sleep(0.3)  # the restart pause
    await client.post("/v2/apps", json={"id": "/cb/second", "cmd": "sleep 1"})
    with trio.fail_after(10):
        while "api_post_event" not in receiver.kinds():
            await receiver.arrived.wait()
    assert (await client.get("/v2/leader")).status_code == 200  # still leading
    gauges = (await client.get("/metrics")).json()["gauges"]
    assert gauges["marathon.events.consumers.restarts.gauge"] == {"value": 1}
    failures = [r for r in caplog.records if "failed; starting it again" in r.getMessage()]
    assert len(failures) == 1 and "a bug in delivery" in repr(failures[0].exc_info)


KEEP_ALIVE = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
CLOSE = b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"


async def test_connections_are_kept_alive_and_opened_again_when_the_receiver_closes(
    nursery: trio.Nursery,
) -> None:
    """Two receivers in raw HTTP/1.1: one keeps the connection (a chunked answer), one
    closes it after each answer; both get every POST."""
    accepted: list[int] = []

    async def serve(keep_alive: bool, stream: trio.SocketStream) -> None:
        accepted.append(keep_alive)
        buffer = b""
        async with stream:
            while chunk := await stream.receive_some(65536):
                buffer += chunk
                while b"\r\n\r\n" in buffer:
                    head, _, rest = buffer.partition(b"\r\n\r\n")
                    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                    if len(rest) < length:
                        break
                    buffer = rest[length:]
                    await stream.send_all(KEEP_ALIVE if keep_alive else CLOSE)
                    if not keep_alive:
                        return

    for keep_alive in (True, False):
        listeners = await nursery.start(trio.serve_tcp, partial(serve, keep_alive), 0)
        port = listeners[0].socket.getsockname()[1]
        connection = CallbackConnection(f"http://127.0.0.1:{port}/hook?x=1")
        with trio.fail_after(5):
            statuses = [await connection.post(b'{"n": %d}' % n) for n in range(3)]
        await connection.close()
        assert statuses == [200] * 3 if keep_alive else [204] * 3
    assert accepted == [True, False, False, False]
