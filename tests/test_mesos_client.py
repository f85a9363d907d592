"""The Mesos client against the real embedded master: stored framework id, watchdog, 307."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import trio

from marathon_core.config import Config
from marathon_core.mesos import calls
from marathon_core.mesos.client import CallError, MesosClient
from marathon_core.mesos.detector import leader_child, master_info_url, parse_zk_url
from marathon_core.mesos.events import Disconnected, MesosEvent, Subscribed

from .scheduler_cluster import open_cluster  # type: ignore[import-not-found]
from .scheduler_helpers import open_state  # type: ignore[import-not-found]

E = TypeVar("E")


def client_for(url: str, state: Any, send: Any, **kwargs: Any) -> MesosClient:
    config = Config(master=url, hostname="localhost")
    return MesosClient(
        url,
        framework_info=lambda fid: calls.framework_info(config, framework_id=fid),
        load_framework_id=state.framework_id.get,
        store_framework_id=state.framework_id.set,
        events=send,
        **kwargs,
    )


async def next_of(receive: Any, kind: type[E]) -> E:
    with trio.fail_after(10):
        while True:
            event = await receive.receive()
            if isinstance(event, kind):
                return event


async def test_watchdog_resubscribes_with_the_stored_framework_id(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    async with open_state() as state, open_cluster(tmp_path / "mesos", agents=0) as cluster:
        send, receive = trio.open_memory_channel[MesosEvent](100)
        # The master heartbeats every 15 s; expecting 0.1 s x 2 makes the watchdog fire.
        client = client_for(
            cluster.url, state, send, heartbeat_interval=0.1, heartbeat_failure_threshold=2,
            resubscribe_backoff=(0.05, 0.1),
        )  # fmt: skip
        with pytest.raises(CallError):
            await client.call(calls.revive())  # not subscribed yet
        await nursery.start(client.run)
        first = await next_of(receive, Subscribed)
        framework_id = first.framework_id
        assert await state.framework_id.get() == framework_id
        await next_of(receive, Disconnected)
        again = await next_of(receive, Subscribed)
        assert again.framework_id == framework_id
        await client.wait_subscribed()
        await client.call(calls.reconcile())
        stats = client.statistics()
        assert stats.subscriptions >= 2 and stats.connected
        nursery.cancel_scope.cancel()


async def test_follows_the_masters_redirect(tmp_path: Path, nursery: trio.Nursery) -> None:
    async with open_state() as state, open_cluster(tmp_path / "mesos", agents=0) as cluster:
        real = httpx.AsyncHTTPTransport()
        leader = httpx.URL(cluster.url)
        redirected: list[str] = []

        async def handler(request: httpx.Request) -> httpx.Response:
            if request.url.host == "standby.invalid":
                redirected.append(request.url.path)
                location = f"//{leader.host}:{leader.port}/api/v1/scheduler"
                return httpx.Response(307, headers={"Location": location})
            return await real.handle_async_request(request)

        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        send, receive = trio.open_memory_channel[MesosEvent](100)
        client = client_for("http://standby.invalid:5050", state, send, http=http)
        await nursery.start(client.run)
        await next_of(receive, Subscribed)
        assert redirected == ["/api/v1/scheduler"]
        assert client.master_url == f"http://{leader.host}:{leader.port}"
        await client.call(calls.reconcile())
        nursery.cancel_scope.cancel()
        await http.aclose()


async def redirecting_standby(nursery: trio.Nursery, leader: str) -> tuple[str, list[bytes]]:
    """A standby master: answers every request with a 307 to ``leader`` (keep-alive)."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    seen: list[bytes] = []
    location = "//" + leader.split("://", 1)[1] + "/api/v1/scheduler"
    moved = b"HTTP/1.1 307 Temporary Redirect\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n"

    async def handle(stream: trio.SocketStream) -> None:
        buffer = bytearray()
        while True:
            while (end := buffer.find(b"\r\n\r\n")) < 0:
                if not (data := await stream.receive_some(65536)):
                    return
                buffer += data
            head = bytes(buffer[:end])
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            while len(buffer) < end + 4 + length:
                buffer += await stream.receive_some(65536)
            seen.append(head.split(b"\r\n")[0])
            del buffer[: end + 4 + length]
            await stream.send_all(moved % location.encode())

    nursery.start_soon(trio.serve_listeners, handle, listeners)
    return f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}", seen


async def test_a_call_follows_a_redirect_and_a_refusal_is_a_call_error(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    async with open_state() as state, open_cluster(tmp_path / "mesos", agents=0) as cluster:
        send, _ = trio.open_memory_channel[MesosEvent](100)
        client = client_for(cluster.url, state, send)
        await nursery.start(client.run)
        standby, seen = await redirecting_standby(nursery, cluster.url)
        client.master_url = standby  # as if the leading master had changed
        await client.call(calls.reconcile())
        assert seen == [b"POST /api/v1/scheduler HTTP/1.1"]
        assert client.master_url == cluster.url.rstrip("/")
        with pytest.raises(CallError, match="Invalid UUID") as refused:
            await client.call(calls.acknowledge("S-1", "t-1", "AAAA"))  # 3 bytes, not 16
        assert refused.value.status == 400
        stats = client.statistics()
        assert (stats.calls, stats.failed_calls) == (3, 1)  # redirected, sent again, refused
        nursery.cancel_scope.cancel()


async def test_a_call_posted_without_waiting_follows_a_redirect_and_reports_a_refusal(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    async with open_state() as state, open_cluster(tmp_path / "mesos", agents=0) as cluster:
        send, _ = trio.open_memory_channel[MesosEvent](100)
        client = client_for(cluster.url, state, send)
        await nursery.start(client.run)
        outcomes: list[CallError | None] = []
        standby, seen = await redirecting_standby(nursery, cluster.url)
        client.master_url = standby
        assert not client.try_post(calls.reconcile(), outcomes.append)  # no connection yet
        await client.call(calls.reconcile())  # opens one to the standby, and is redirected
        client.master_url = standby  # the standby's connection is open now
        assert client.try_post(calls.reconcile(), outcomes.append)
        assert client.try_post(calls.acknowledge("S-1", "t-1", "AAAA"), outcomes.append)
        with trio.fail_after(10):
            while len(outcomes) < 2:
                await trio.sleep(0.01)
        assert len(seen) == 3  # both were redirected, then sent to the leader
        assert client.master_url == cluster.url.rstrip("/")
        assert None in outcomes  # the reconcile was taken
        (refused,) = [o for o in outcomes if o is not None]
        assert refused.status == 400 and "Invalid UUID" in str(refused)
        assert client.try_post(calls.reconcile(), outcomes.append)  # at the leader now
        with trio.fail_after(10):
            while len(outcomes) < 3:
                await trio.sleep(0.01)
        assert outcomes[2] is None
        nursery.cancel_scope.cancel()


async def test_every_subscription_first_finds_the_master(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    async with open_state() as state, open_cluster(tmp_path / "mesos", agents=0) as cluster:
        lookups: list[float] = []

        async def find_master() -> str:
            lookups.append(trio.current_time())
            return cluster.url

        send, receive = trio.open_memory_channel[MesosEvent](100)
        client = client_for(
            "zk://127.0.0.1:1/mesos", state, send, find_master=find_master,
            heartbeat_interval=0.1, heartbeat_failure_threshold=2,
            resubscribe_backoff=(0.05, 0.1),
        )  # fmt: skip
        await nursery.start(client.run)
        await next_of(receive, Subscribed)
        assert client.master_url == cluster.url and len(lookups) == 1
        await next_of(receive, Disconnected)  # the watchdog gives the stream up
        await next_of(receive, Subscribed)
        assert len(lookups) == 2
        nursery.cancel_scope.cancel()


def test_zk_master_detection_helpers() -> None:
    assert parse_zk_url("zk://u:p@h1:2181,h2:2181/mesos") == ("h1:2181,h2:2181", "/mesos")
    children = ["log_replicas", "json.info_0000000012", "json.info_0000000003", "info_0000000001"]
    assert leader_child(children) == "json.info_0000000003"
    assert leader_child(["log_replicas"]) is None
    info = {"id": "x", "ip": 16777343, "port": 5050, "hostname": "localhost",
            "address": {"hostname": "m1", "ip": "127.0.0.1", "port": 5051}}  # fmt: skip
    assert master_info_url(info) == "http://m1:5051"
