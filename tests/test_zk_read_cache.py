"""ZooKeeper storage with cached reads: what a standby keeps must never be stale.

The contract suite runs on the cached backend too (``zk-cached`` in
state_backends.py); these tests add a second session that writes behind the
cache's back, which is the standby's situation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from marathon_core.state.storage import Create, Delete, Update
from marathon_core.state.zk.storage import ZkStorage
from marathon_core.testing.pytest_plugin import require_zookeeper
from marathon_core.testing.zookeeper import running_zookeeper


@pytest.fixture
async def pair(zk_url: str) -> AsyncIterator[tuple[ZkStorage, ZkStorage]]:
    """(cached reader, plain writer) on two sessions over the same data."""
    reader = await ZkStorage.connect(zk_url, timeout=5.0, cache_reads=True)
    writer = await ZkStorage.connect(zk_url, timeout=5.0)
    try:
        yield reader, writer
    finally:
        await reader.aclose()
        await writer.aclose()


def calls(storage: ZkStorage) -> int:
    return storage.zk.statistics().calls


async def test_cached_values_and_children_follow_another_sessions_writes(
    pair: tuple[ZkStorage, ZkStorage],
) -> None:
    reader, writer = pair
    await writer.commit([Create("apps/a", b"1"), Create("apps/b", b"1")])
    assert (await reader.get("apps/a")).value == b"1"  # type: ignore[union-attr]
    assert await reader.children("apps") == ["a", "b"]
    before = calls(reader)
    assert (await reader.get("apps/a")).value == b"1"  # type: ignore[union-attr]
    assert await reader.children("apps") == ["a", "b"]
    assert calls(reader) == before, "a second read must come from the cache"

    await writer.commit([Update("apps/a", b"2"), Delete("apps/b"), Create("apps/c", b"1")])
    await reader.sync()
    assert (await reader.get("apps/a")).value == b"2"  # type: ignore[union-attr]
    assert await reader.get("apps/b") is None
    assert await reader.children("apps") == ["a", "c"]


async def test_sync_waits_for_every_notification_of_a_burst(
    pair: tuple[ZkStorage, ZkStorage],
) -> None:
    reader, writer = pair
    keys = [f"k/{i}" for i in range(300)]
    await writer.commit([Create(k, b"old") for k in keys])
    assert len(await reader.get_many(keys)) == 300
    for round_ in range(3):
        new = f"new{round_}".encode()
        await writer.commit([Update(k, new) for k in keys])
        await reader.sync()  # no sleeping: sync alone must make the burst visible
        assert {e.value for e in (await reader.get_many(keys)).values()} == {new}


async def test_own_writes_are_read_back_at_once(pair: tuple[ZkStorage, ZkStorage]) -> None:
    reader, _ = pair
    await reader.commit([Create("x", b"1")])
    assert (await reader.get("x")).value == b"1"  # type: ignore[union-attr]
    assert await reader.children("") == ["x"]
    await reader.commit([Update("x", b"2"), Create("y", b"1")])
    assert (await reader.get("x")).value == b"2"  # type: ignore[union-attr]
    assert await reader.children("") == ["x", "y"]


async def test_a_value_is_decoded_once_until_it_changes(
    pair: tuple[ZkStorage, ZkStorage],
) -> None:
    reader, writer = pair
    decoded: list[bytes] = []

    def decode(value: bytes) -> str:
        decoded.append(value)
        return value.decode()

    await writer.commit([Create("v", b"one")])
    for _ in range(3):
        entry = await reader.get("v")
        assert entry is not None and reader.decoded(entry, decode) == "one"
    assert decoded == [b"one"]
    await writer.commit([Update("v", b"two")])
    await reader.sync()
    entry = await reader.get("v")
    assert entry is not None and reader.decoded(entry, decode) == "two"
    assert decoded == [b"one", b"two"]


async def test_a_read_racing_a_change_never_caches_the_old_value(
    pair: tuple[ZkStorage, ZkStorage],
) -> None:
    reader, writer = pair
    await writer.commit([Create("r", b"0")])
    for i in range(1, 30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader.get, "r")
            nursery.start_soon(writer.commit, [Update("r", str(i).encode())])
        await reader.sync()
        assert (await reader.get("r")).value == str(i).encode()  # type: ignore[union-attr]


@pytest.mark.zookeeper
async def test_a_lost_connection_forgets_the_cache(tmp_path: Path) -> None:
    require_zookeeper()
    with running_zookeeper(tmp_path / "zk") as ensemble:
        (server,) = ensemble.servers
        storage = await ZkStorage.connect(
            ensemble.url("/cache"), session_timeout=10.0, timeout=5.0, cache_reads=True
        )
        try:
            await storage.commit([Create("a", b"1")])
            assert await storage.get("a") is not None
            assert "a" in storage._cache.values  # type: ignore[union-attr]
            server.stop()
            with trio.fail_after(10):
                while storage.zk.state == "CONNECTED":
                    await trio.sleep(0.05)
            assert storage._cache.values == {}  # type: ignore[union-attr]
            server.start()
            server.wait_serving()
            with trio.fail_after(15):
                while storage.zk.state != "CONNECTED":
                    await trio.sleep(0.05)
            assert (await storage.get("a")).value == b"1"  # type: ignore[union-attr]
        finally:
            await storage.aclose()


def test_a_fill_read_before_an_invalidation_is_dropped() -> None:
    from marathon_core.state.readcache import ReadCache
    from marathon_core.state.storage import Entry

    cache = ReadCache()
    generation = cache.generation
    cache.drop_value("k")  # the change arrives while the read is in flight
    cache.fill(generation, [Entry("k", b"old", 0)])
    assert "k" not in cache.values
    cache.fill(cache.generation, [Entry("k", b"new", 1)])
    assert cache.values["k"].value == b"new"


def test_a_change_to_one_key_spares_the_rest_of_a_bulk_fill() -> None:
    """A standby's 10k-key read must not be thrown away because one other key changed."""
    from marathon_core.state.readcache import ReadCache
    from marathon_core.state.storage import Entry

    cache = ReadCache()
    generation = cache.generation
    cache.drop_value("apps/b")
    cache.drop_children("apps")
    cache.fill(generation, [Entry("apps/a", b"1", 0), Entry("apps/b", b"old", 0)])
    cache.fill_children(generation, "apps", ["a", "b"])
    cache.fill_children(generation, "instances", ["x"])
    assert set(cache.values) == {"apps/a"}
    assert set(cache.children) == {"instances"}
    generation = cache.generation
    cache.clear()  # a lost connection: nothing read before it is kept
    cache.fill(generation, [Entry("apps/c", b"1", 0)])
    assert cache.values == {}


async def test_a_directory_created_after_it_was_listed_empty_is_seen(
    pair: tuple[ZkStorage, ZkStorage],
) -> None:
    reader, writer = pair
    assert await reader.children("instances") == []  # nothing to watch yet
    await writer.commit([Create("instances/a", b"1")])
    await reader.sync()
    assert await reader.children("instances") == ["a"]


async def test_a_standby_keeps_the_state_warm_so_taking_over_reads_only_changes(
    pair: tuple[ZkStorage, ZkStorage],
) -> None:
    """keep_standby_warm: after a refresh, the new leader's load asks ZooKeeper only
    for what changed since (here: nothing), and sees the old leader's last writes."""
    import attrs

    from marathon_core.model.app import AppDefinition
    from marathon_core.model.group import Group
    from marathon_core.model.ids import PathId, Timestamp
    from marathon_core.service import keep_standby_warm
    from marathon_core.state.store import StateStore

    @attrs.define
    class Standing:
        is_leader: bool = False

    reader, writer = pair
    leader = await StateStore.open(writer)
    standby = await StateStore.open(reader)

    async def store(n: int) -> None:
        apps = tuple(
            AppDefinition(id=PathId.parse(f"/w/a{i}"), cmd=f"v{n}", version=Timestamp(1000 + n))
            for i in range(20)
        )
        group = Group(PathId.parse("/w"), apps=apps, version=Timestamp(1000 + n))
        await leader.store_root(Group(PathId.root(), groups=(group,), version=group.version))

    await store(1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(keep_standby_warm, standby, Standing())
        for n in (2, 3):
            await store(n)
            await reader.sync()
            wanted = {standby.groups.current_key(PathId.root())} | {
                standby.apps.version_key(PathId.parse(f"/w/a{i}"), Timestamp(1000 + n))
                for i in range(20)
            }
            cached = reader._cache.values  # type: ignore[union-attr]
            assert not wanted & cached.keys()
            with trio.fail_after(10):  # no reads here: the refresh alone fills the cache
                while not wanted <= cached.keys():
                    await trio.sleep(0.05)
            before = calls(reader)
            with trio.fail_after(10):  # the refresh may still be reading: let it finish
                while True:
                    await trio.sleep(0.2)
                    if calls(reader) == before:
                        break
                    before = calls(reader)
            root = await standby.root_group()
            assert calls(reader) == before, "the takeover read must come from the cache"
            assert root is not None
            assert {a.cmd for a in root.transitive_apps()} == {f"v{n}"}
        nursery.cancel_scope.cancel()
