"""Fixtures: a real cluster on loopback, test schedulers, and the compiled Mesos protos.

Every call a :class:`SchedulerClient` sent and every event it received is parsed
strictly into the real ``mesos.v1.scheduler`` messages when the test ends, so each
scenario test is also a contract test.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio

from marathon_mesos_local.cluster import Cluster, ClusterOptions, open_cluster
from marathon_mesos_local.master.model import MasterOptions
from marathon_mesos_local.master.server import Master
from marathon_mesos_local.testing import SchedulerClient


def find_protos() -> Path | None:
    """The real Mesos protos: $MESOS_PROTOS_DIR, ``tests/data/mesos-protos`` in the
    repository, or ``shared/reference/mesos/protos`` next to it."""
    if os.environ.get("MESOS_PROTOS_DIR"):
        given = Path(os.environ["MESOS_PROTOS_DIR"])
        return given if (given / "mesos" / "v1" / "mesos.proto").exists() else None
    for parent in Path(__file__).resolve().parents:
        # The copy kept in the repository, or the team's reference beside it.
        for candidate in (
            parent / "tests" / "data" / "mesos-protos",
            parent / "shared" / "reference" / "mesos" / "protos",
        ):
            if (candidate / "mesos" / "v1" / "mesos.proto").exists():
                return candidate
    return None


@pytest.fixture(scope="session")
def mesos_pb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace | None]:
    """The real protos compiled with grpcio-tools, or None when they are not around."""
    protos = find_protos()
    if protos is None:
        yield None
        return
    import grpc_tools
    from grpc_tools import protoc

    out = tmp_path_factory.mktemp("mesos_pb")
    include = Path(grpc_tools.__file__).parent / "_proto"
    files = [str(p) for p in sorted(protos.rglob("*.proto"))]
    status = protoc.main(["protoc", f"-I{protos}", f"-I{include}", f"--python_out={out}", *files])
    assert status == 0, "protoc failed on the Mesos protos"
    sys.path.insert(0, str(out))
    try:
        from google.protobuf import json_format

        scheduler_pb2 = importlib.import_module("mesos.v1.scheduler.scheduler_pb2")
        master_pb2 = importlib.import_module("mesos.v1.master.master_pb2")
        yield SimpleNamespace(scheduler=scheduler_pb2, master=master_pb2, json_format=json_format)
    finally:
        sys.path.remove(str(out))


def parse_strict(pb: SimpleNamespace, value: dict[str, Any], message: type) -> Any:
    """Like the Mesos master: every field known, every required field present."""
    parsed = pb.json_format.ParseDict(value, message())
    missing = parsed.FindInitializationErrors()
    assert not missing, f"missing required fields {missing} in {value}"
    return parsed


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


MISSING_PROTOS = (
    "Mesos protos not found (expected ../shared/reference/mesos/protos or $MESOS_PROTOS_DIR)"
)


@pytest.fixture
def protos(mesos_pb: SimpleNamespace | None) -> SimpleNamespace:
    """The compiled protos; skipped without them, except in CI (CI=true), where a
    contract test that cannot run is a failure, never a silent pass."""
    if mesos_pb is None:
        if _in_ci():
            pytest.fail(f"{MISSING_PROTOS}; CI=true, so contract tests may not be skipped")
        pytest.skip(MISSING_PROTOS)
    return mesos_pb


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
    if mesos_pb is None and _in_ci() and any(c.calls or c.events for c in made):
        pytest.fail(f"{MISSING_PROTOS}; CI=true, so traffic must be contract-checked")
    if mesos_pb is not None:
        for client in made:
            for call in client.calls:
                parse_strict(mesos_pb, call, mesos_pb.scheduler.Call)
            for event in client.events:
                parse_strict(mesos_pb, event, mesos_pb.scheduler.Event)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cluster(**options): shape of the test cluster")
