"""Leader election: solo, and ZooKeeper with real servers (sessions, kills, fencing)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import pytest
import trio

from marathon_core.election import LATCH_DIR, SoloElection, ZkElection
from marathon_core.errors import FencedWriteError, StorageError
from marathon_core.model.app import AppDefinition
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.state.storage import Create
from marathon_core.state.store import StateStore
from marathon_core.state.zk.client import ZkClient
from marathon_core.state.zk.storage import ZkStorage
from marathon_core.testing.pytest_plugin import require_zookeeper
from marathon_core.testing.zookeeper import ZooKeeperEnsemble, running_zookeeper

#: Short sessions keep failover tests fast (the test server's floor is 0.4 s).
SESSION = 1.0


@attrs.define
class Probe:
    """Leadership-scoped work that records when it runs and when it is cancelled."""

    starts: int = 0
    cancels: int = 0
    running: bool = False

    async def lead(self) -> None:
        self.starts += 1
        self.running = True
        try:
            await trio.sleep_forever()
        finally:
            self.running = False
            self.cancels += 1


async def wait_for(cond: Callable[[], bool], *, timeout: float = 10.0) -> float:
    """Poll ``cond`` (real clock: kazoo works in threads); seconds it took."""
    start = trio.current_time()
    with trio.fail_after(timeout):
        while not cond():
            await trio.sleep(0.005)
    return trio.current_time() - start


@asynccontextmanager
async def contender(
    url: str, participant: str, probe: Probe, *, session: float = SESSION, **kw: float
) -> AsyncIterator[tuple[ZkElection, ZkClient]]:
    client = await ZkClient.connect(url, session_timeout=session, timeout=2.0)
    try:
        election = ZkElection(client, participant, **kw)
        async with trio.open_nursery() as nursery:
            await nursery.start(election.run, probe.lead)
            yield election, client
            nursery.cancel_scope.cancel()
    finally:
        await client.aclose()


# -- solo ----------------------------------------------------------------------------------


async def test_solo_leads_at_once_and_again_after_abdicating() -> None:
    probe = Probe()
    election = SoloElection("host:8080")
    assert election.leader_id is None and not election.is_leader
    async with trio.open_nursery() as nursery:
        await nursery.start(election.run, probe.lead)
        await wait_for(lambda: probe.running)
        assert election.is_leader and election.leader_id == "host:8080"
        assert election.fence() == []
        assert await election.abdicate()
        assert probe.cancels == 1
        await wait_for(lambda: probe.starts == 2)
        assert election.statistics().terms == 2
        nursery.cancel_scope.cancel()
    assert not election.is_leader and probe.cancels == 2
    assert not await election.abdicate()
    with pytest.raises(FencedWriteError):
        election.fence()


async def test_solo_work_that_returns_abdicates_and_errors_propagate() -> None:
    runs = 0

    async def short() -> None:
        nonlocal runs
        runs += 1
        if runs == 3:
            raise RuntimeError("boom")

    with pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="boom"), flatten_subgroups=True):
        await SoloElection("h:1").run(short)
    assert runs == 3


# -- ZooKeeper --------------------------------------------------------------------------------


async def test_first_contender_leads_and_the_other_follows(zk_url: str) -> None:
    a, b = Probe(), Probe()
    async with contender(zk_url, "a:8080", a) as (ea, _):
        await wait_for(lambda: a.running)
        async with contender(zk_url, "b:8080", b) as (eb, _):
            await wait_for(lambda: eb.leader_id == "a:8080")
            assert ea.is_leader and not eb.is_leader and not b.running
            assert ea.leader_id == "a:8080"
            assert eb.statistics().contenders == 2
            with pytest.raises(FencedWriteError):
                eb.fence()
    assert a.cancels == 1 and b.starts == 0


async def test_abdication_hands_over(zk_url: str) -> None:
    a, b = Probe(), Probe()
    async with contender(zk_url, "b:8080", b) as (eb, _):
        async with contender(zk_url, "a:8080", a) as (ea, _):
            await wait_for(lambda: b.running and ea.leader_id == "b:8080")
        # b still leads after a follower left; a third joins, then b abdicates
        c = Probe()
        async with contender(zk_url, "c:8080", c) as (ec, _):
            await wait_for(lambda: ec.leader_id == "b:8080")
            assert await eb.abdicate()
            took = await wait_for(lambda: c.running, timeout=SESSION + 2)
            assert b.cancels == 1 and not b.running
            assert ec.is_leader and (await wait_for(lambda: eb.leader_id == "c:8080")) < 2
            assert took < SESSION
    assert ea.statistics().terms == 0


_CHILD = textwrap.dedent(
    """
    import sys, trio
    from marathon_core.election import ZkElection
    from marathon_core.state.zk.client import ZkClient

    async def main(url, session):
        client = await ZkClient.connect(url, session_timeout=session, timeout=2.0)
        election = ZkElection(client, "child:1")

        async def lead():
            print("leading", flush=True)
            await trio.sleep_forever()

        await election.run(lead)

    trio.run(main, sys.argv[1], float(sys.argv[2]))
    """
)


@pytest.mark.parametrize("session", [1.0, 2.0])
async def test_sigkilled_leader_is_replaced_within_the_session_timeout(
    zk_url: str, session: float
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, zk_url, str(session)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = await trio.to_thread.run_sync(proc.stdout.readline)
        assert line.strip() == b"leading"
        probe = Probe()
        async with contender(zk_url, "me:8080", probe) as (election, _):
            await wait_for(lambda: election.leader_id == "child:1")
            killed = time.monotonic()
            proc.send_signal(signal.SIGKILL)
            await wait_for(lambda: probe.running, timeout=session + 3)
            failover = time.monotonic() - killed
            assert failover < session + 0.5, failover
            assert election.leader_id == "me:8080"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _app(name: str, v: int) -> AppDefinition:
    return AppDefinition(
        id=PathId.parse(name),
        cmd="sleep 1",
        version=Timestamp.parse(f"2024-01-01T00:00:{v:02d}.000Z"),
    )


async def test_a_former_leaders_writes_are_fenced(zk_url: str) -> None:
    probe = Probe()
    async with contender(zk_url, "a:8080", probe) as (election, client):
        await wait_for(lambda: probe.running)
        storage = await ZkStorage.open(client)
        state = await StateStore.open(storage, fence=election.fence)
        await state.apps.store(_app("/web", 1))
        # The leader has not noticed yet that it lost (a GC pause, a partition), but its
        # election node is gone, as after a session expiry: ZooKeeper refuses the write.
        stale = election.fence()
        (node,) = await client.get_children(election.path)
        assert await client.delete(f"{election.path}/{node}")
        with pytest.raises(FencedWriteError):
            await storage.commit([*stale, Create("apps-x", b"stale")])
        assert await storage.get("apps-x") is None
        await wait_for(lambda: probe.cancels == 1)  # it notices: the work is cancelled
        # It joined again and leads again (alone); the new term gets a new fence.
        await wait_for(lambda: probe.running)
        assert election.fence() != stale
        await state.apps.store(_app("/web", 2))
        assert [str(v) for v in await state.apps.versions(PathId.parse("/web"))] == [
            "2024-01-01T00:00:01.000Z",
            "2024-01-01T00:00:02.000Z",
        ]


async def test_fence_refuses_writes_once_not_leading(zk_url: str) -> None:
    a, b = Probe(), Probe()
    async with contender(zk_url, "a:8080", a) as (ea, ca):
        await wait_for(lambda: a.running)
        async with contender(zk_url, "b:8080", b) as (eb, cb):
            state = await StateStore.open(await ZkStorage.open(cb), fence=eb.fence)
            with pytest.raises(FencedWriteError):
                await state.apps.store(_app("/web", 1))
            assert await ea.abdicate()
            await wait_for(lambda: b.running)
            await state.apps.store(_app("/web", 1))
            stale_a = StateStore(await ZkStorage.open(ca), fence=ea.fence)
            with pytest.raises(FencedWriteError):
                await stale_a.apps.store(_app("/web", 2))
            assert a.starts == 1 and eb.leader_id == ea.leader_id == "b:8080"


async def test_election_nodes_live_under_the_zk_path(zk_url: str) -> None:
    probe = Probe()
    async with contender(zk_url, "a:8080", probe) as (election, client):
        assert election.path.endswith(f"/{LATCH_DIR}")
        (node,) = await client.get_children(election.path)
        assert await client.get_data(f"{election.path}/{node}") == b"a:8080"


# -- the session suspended: a server down ----------------------------------------------------


@pytest.fixture
def own_zk(tmp_path: Path) -> Iterator[ZooKeeperEnsemble]:
    require_zookeeper()
    with running_zookeeper(tmp_path / "zk") as ensemble:
        yield ensemble


@pytest.mark.zookeeper
async def test_suspended_beyond_the_grace_cancels_the_work(own_zk: ZooKeeperEnsemble) -> None:
    probe = Probe()
    url = own_zk.url("/m")
    async with contender(url, "a:8080", probe, session=10.0, suspend_grace=0.3) as (e, _):
        await wait_for(lambda: probe.running)
        own_zk.servers[0].stop()
        took = await wait_for(lambda: probe.cancels == 1, timeout=5)
        assert took < 0.3 + 0.5
        assert not e.is_leader
        with pytest.raises(FencedWriteError):
            e.fence()
        own_zk.servers[0].start()
        await wait_for(lambda: probe.running, timeout=20)  # same session: leads again
        assert e.is_leader and probe.starts == 2


@pytest.mark.alone
async def test_restarting_one_ensemble_node_keeps_the_leader(
    zk_ensemble: ZooKeeperEnsemble,
) -> None:
    probe = Probe()
    url = zk_ensemble.url("/m")
    async with contender(url, "a:8080", probe, session=6.0) as (election, client):
        await wait_for(lambda: probe.running)
        for _ in range(2):
            server = zk_ensemble.leader()
            assert server is not None
            server.kill()
            await trio.to_thread.run_sync(server.start)
            await trio.to_thread.run_sync(server.wait_serving)
            await wait_for(lambda: client.state == "CONNECTED", timeout=10)
        storage = await ZkStorage.open(client)
        await StateStore.open(storage, fence=election.fence)
        assert probe.starts == 1 and probe.cancels == 0 and election.is_leader


async def test_zookeeper_unreachable_at_start() -> None:
    with pytest.raises(StorageError):
        await ZkClient.connect("zk://127.0.0.1:1/m", timeout=0.3)
