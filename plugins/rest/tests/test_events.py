"""``/v2/events`` over real HTTP: format, filters, heartbeats, resume, and stuck clients."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
import trio

from marathon_core.model.events import make_event
from marathon_core.testing.context import CoreContext
from marathon_rest.server import serve_api


async def sse_frames(response: httpx.Response) -> AsyncIterator[list[str]]:
    """The stream as SSE frames (the lines between blank lines), as they arrive."""
    frame: list[str] = []
    async for line in response.aiter_lines():
        if line:
            frame.append(line)
        elif frame:
            yield frame
            frame = []


def fields(frame: list[str]) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in frame if not line.startswith(":"))


async def next_event(frames: AsyncIterator[list[str]]) -> dict[str, str]:
    """The next frame that is an event (skipping comment lines)."""
    async for frame in frames:
        if not frame[0].startswith(":"):
            return fields(frame)
    raise AssertionError("stream ended")


async def test_events_arrive_one_by_one_in_marathons_format(
    client: httpx.AsyncClient, api_context: CoreContext
) -> None:
    async with client.stream("GET", "/v2/events", headers={"Accept": "text/event-stream"}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        frames = sse_frames(r)
        attached = await next_event(frames)
        assert attached["event"] == "event_stream_attached"
        assert json.loads(attached["data"])["remoteAddress"] == "127.0.0.1"
        api_context.events.publish(make_event("deployment_success", id="d-1"))
        with trio.fail_after(5):
            success = await next_event(frames)
        assert success["event"] == "deployment_success"
        payload = json.loads(success["data"])
        assert payload["id"] == "d-1" and payload["eventType"] == "deployment_success"
        assert int(success["id"]) > int(attached["id"])


async def test_event_type_filter(client: httpx.AsyncClient, api_context: CoreContext) -> None:
    url = "/v2/events?event_type=status_update_event&event_type=app_terminated_event"
    async with client.stream("GET", url) as r:
        frames = sse_frames(r)
        for kind in (
            "deployment_info",
            "status_update_event",
            "api_post_event",
            "app_terminated_event",
        ):
            api_context.events.publish(make_event(kind))
        with trio.fail_after(5):
            got = [(await next_event(frames))["event"] for _ in range(2)]
    assert got == ["status_update_event", "app_terminated_event"]


@pytest.mark.parametrize("api_args", [["--event_stream_heartbeat_interval", "50"]])
async def test_quiet_streams_get_comment_heartbeats(client: httpx.AsyncClient) -> None:
    async with client.stream("GET", "/v2/events?event_type=none_of_these") as r:
        frames = sse_frames(r)
        with trio.fail_after(5):
            assert await anext(frames) == [": ping"]
            assert await anext(frames) == [": ping"]


async def test_resume_with_last_event_id(
    client: httpx.AsyncClient, api_context: CoreContext
) -> None:
    bus = api_context.events
    seen = bus.publish(make_event("group_change_success", groupId="/a")).id
    bus.publish(make_event("group_change_success", groupId="/b"))
    bus.publish(make_event("group_change_success", groupId="/c"))
    headers = {"Last-Event-ID": str(seen)}
    async with client.stream(
        "GET", "/v2/events?event_type=group_change_success", headers=headers
    ) as r:
        frames = sse_frames(r)
        with trio.fail_after(5):
            groups = [json.loads((await next_event(frames))["data"])["groupId"] for _ in range(2)]
    assert groups == ["/b", "/c"]


async def test_a_full_speed_client_is_not_dropped_by_a_burst(
    client: httpx.AsyncClient, api_context: CoreContext
) -> None:
    """20 times the buffer published without a checkpoint (as a big scale-up publishes
    an event per new instance): a client that keeps reading gets every event."""
    bus = api_context.events
    burst = 20 * api_context.config.event_stream_max_outstanding_messages
    async with client.stream("GET", "/v2/events?event_type=tick") as r:
        frames = sse_frames(r)
        with trio.fail_after(5):
            while bus.statistics().subscribers < 1:
                await trio.sleep(0.01)
        for n in range(burst):
            bus.publish(make_event("tick", n=n))
        with trio.fail_after(30):
            got = [json.loads((await next_event(frames))["data"])["n"] for _ in range(burst)]
    assert got == list(range(burst))
    assert bus.statistics().dropped_subscribers == 0


@pytest.mark.alone  # a 50 ms bound
@pytest.mark.parametrize(
    "api_args",
    [["--event_stream_max_outstanding_messages", "16", "--event_stream_max_lag", "200"]],
)
async def test_a_stuck_client_is_dropped_without_delaying_anyone(
    client: httpx.AsyncClient, api_url: str, api_context: CoreContext
) -> None:
    bus = api_context.events
    others = bus.statistics().subscribers  # e.g. the callback dispatcher
    host, port = api_url.removeprefix("http://").split(":")
    stuck = await trio.open_tcp_stream(host, int(port))
    await stuck.send_all(b"GET /v2/events HTTP/1.1\r\nHost: x\r\n\r\n")  # and never read
    with trio.fail_after(5):
        while bus.statistics().subscribers < others + 1:
            await trio.sleep(0.01)
    big = "x" * 64 * 1024
    async with client.stream("GET", "/v2/events?event_type=tick") as r:
        frames = sse_frames(r)
        with trio.fail_after(5):
            while bus.statistics().subscribers < others + 2:
                await trio.sleep(0.01)
        for n in range(200):  # ~13 MB: far more than socket buffers hold
            started = trio.current_time()
            bus.publish(make_event("tick", n=n, padding=big))
            assert trio.current_time() - started < 0.05
            received = json.loads((await next_event(frames))["data"])["n"]
            assert received == n
        info_started = trio.current_time()
        assert (await client.get("/v2/info")).status_code == 200
        assert trio.current_time() - info_started < 1
    with trio.fail_after(5):  # the stuck client was dropped from the bus...
        while bus.statistics().subscribers > others:
            bus.publish(make_event("tick", n=-1))  # it is judged as events arrive
            await trio.sleep(0.05)
    gauges = (await client.get("/metrics")).json()["gauges"]
    assert gauges["marathon.events.subscribers.dropped.gauge"] == {"value": 1}
    with trio.fail_after(10):  # ...and its connection closed, after what the kernel held
        try:
            while await stuck.receive_some(1 << 20):
                pass
        except trio.BrokenResourceError:
            pass
    await stuck.aclose()


async def test_shutdown_is_not_blocked_by_a_stuck_client(api_context: CoreContext) -> None:
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            url = await nursery.start(serve_api, api_context)
            host, port = url.removeprefix("http://").split(":")
            stuck = await trio.open_tcp_stream(host, int(port))
            await stuck.send_all(b"GET /v2/events HTTP/1.1\r\nHost: x\r\n\r\n")
            while api_context.events.statistics().subscribers < 1:
                await trio.sleep(0.01)
            for _ in range(300):  # ~20 MB: the server's writes to it block
                api_context.events.publish(make_event("tick", padding="x" * 64 * 1024))
            await trio.sleep(0.5)
            nursery.cancel_scope.cancel()
    await stuck.aclose()
