"""Fixtures: a real cluster on loopback and test schedulers.

Every call a :class:`SchedulerClient` sent and every event it received is parsed
strictly into the real ``mesos.v1.scheduler`` messages (the ``mesos_pb`` fixture of
``marathon_core.testing``) when the test ends, so each scenario test is also a
contract test.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio

from marathon_core.testing.mesos_protos import parse_strict
from marathon_mesos_local.cluster import Cluster, ClusterOptions, open_cluster
from marathon_mesos_local.master.model import MasterOptions
from marathon_mesos_local.master.server import Master
from marathon_mesos_local.testing import SchedulerClient


def cluster_options(**overrides: Any) -> ClusterOptions:
    """Fast timings for tests; ports picked by the kernel."""
    values: dict[str, Any] = {
        "port": 0,
        "agents": 1,
        "agent_port": 0,
        "allocation_interval": 0.2,
        "status_update_retry": 0.5,
        "heartbeat_interval": 15.0,
    }
    values.update(overrides)
    return ClusterOptions(**values)


@pytest.fixture
async def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cluster]:
    """A master and agents (``@pytest.mark.cluster(agents=2, ...)`` to shape it)."""
    marker = request.node.get_closest_marker("cluster")
    overrides = dict(marker.kwargs) if marker else {}
    overrides.setdefault("work_dir", tmp_path / "mesos")
    async with open_cluster(cluster_options(**overrides)) as running:
        yield running


@pytest.fixture
async def master() -> AsyncIterator[Master]:
    """A master alone (no agents): for HTTP-level tests."""
    master = Master(MasterOptions(port=0, allocation_interval=0.2))
    async with trio.open_nursery() as nursery:
        await nursery.start(master.run)
        yield master
        nursery.cancel_scope.cancel()


@pytest.fixture
async def schedulers(
    nursery: trio.Nursery, mesos_pb: SimpleNamespace | None
) -> AsyncIterator[Callable[..., SchedulerClient]]:
    """Make test schedulers; their traffic is checked against the protos at the end."""
    made: list[SchedulerClient] = []

    def make(url: str, **kwargs: Any) -> SchedulerClient:
        client = SchedulerClient(url, **kwargs)
        made.append(client)
        return client

    try:
        yield make
    finally:
        for client in made:
            await client.aclose()
    if mesos_pb is not None:
        for client in made:
            for call in client.calls:
                parse_strict(mesos_pb, call, mesos_pb.scheduler.Call)
            for event in client.events:
                parse_strict(mesos_pb, event, mesos_pb.scheduler.Event)


def pytest_itemcollected(item: pytest.Item) -> None:
    """The users of ``cluster`` get the ``cluster`` marker (unless they shape theirs)."""
    if "cluster" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("cluster"):
        item.add_marker(pytest.mark.cluster)


class _FileHandler(http.server.SimpleHTTPRequestHandler):
    hits: list[str]

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.hits.append(self.path)
        super().do_GET()


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """A real HTTP server on loopback (in a thread) for fetch tests: its base URL, the
    directory it serves, and the paths requested so far."""
    root = tmp_path / "www"
    root.mkdir()
    hits: list[str] = []
    handler = type("Handler", (_FileHandler,), {"hits": hits})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: handler(*a, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root, hits
    finally:
        server.shutdown()
        server.server_close()
