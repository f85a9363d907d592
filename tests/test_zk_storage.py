"""ZooKeeper specifics of the storage (the contract itself runs in test_state_storage.py)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trio
from hypothesis import given, settings
from kazoo.client import KazooClient

from marathon_core.errors import (
    ConfigError,
    FencedWriteError,
    StorageError,
    StorageUnavailableError,
    VersionConflictError,
    WriteTooLargeError,
)
from marathon_core.state.storage import Create, Delete, Op, Update
from marathon_core.state.zk.client import ZkClient
from marathon_core.state.zk.encoding import CHUNK_SIZE
from marathon_core.state.zk.layout import BLOBS
from marathon_core.state.zk.payloads import MAX_REQUEST
from marathon_core.state.zk.storage import ZkStorage
from marathon_core.state.zk.transaction import ZnodeCheck
from marathon_core.state.zk.url import ZkUrl, parse_zk_url
from marathon_core.testing.pytest_plugin import require_zookeeper
from marathon_core.testing.zookeeper import ZooKeeperEnsemble, free_ports, running_zookeeper

from .state_backends import assert_behaves_like_memory, transactions  # type: ignore[import-not-found]

# -- URLs ---------------------------------------------------------------------------------


def test_parse_zk_url() -> None:
    assert parse_zk_url("zk://127.0.0.1:2181/marathon") == ZkUrl("127.0.0.1:2181", "/marathon")
    assert parse_zk_url("zk://a:1,b:2,c:3/m/x/") == ZkUrl("a:1,b:2,c:3", "/m/x")
    assert parse_zk_url("zk://zk1,zk2:2182/m").hosts == "zk1:2181,zk2:2182"
    u = parse_zk_url("zk://us%40r:p:w@h:2181/m")
    assert (u.username, u.password, u.hosts) == ("us@r", "p:w", "h:2181")
    assert "p:w" not in str(u)


@pytest.mark.parametrize(
    "bad",
    [
        "http://h:2181/m",
        "zk://h:2181",
        "zk://h:2181/",
        "zk:///m",
        "zk://h:/m",
        "zk://h:x/m",
        "zk://h:70000/m",
        "zk://h:1,/m",
        "zk://user@h:1/m",
        "zk://h:1/a//b",
        "zk://h:1/a/../b",
    ],
)
def test_bad_zk_urls(bad: str) -> None:
    with pytest.raises(ConfigError, match="--zk"):
        parse_zk_url(bad)


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture
async def zk(zk_url: str) -> AsyncIterator[ZkStorage]:
    s = await ZkStorage.connect(zk_url, session_timeout=5.0, timeout=5.0)
    try:
        yield s
    finally:
        await s.aclose()


@pytest.fixture
def raw(zookeeper: ZooKeeperEnsemble) -> Iterator[KazooClient]:
    """A plain kazoo client to look at the znodes (test-side only, outside trio)."""
    c = KazooClient(hosts=zookeeper.hosts)
    c.start(timeout=5)
    try:
        yield c
    finally:
        c.stop()
        c.close()


@pytest.fixture
def own_zk(tmp_path: Path) -> Iterator[ZooKeeperEnsemble]:
    """A standalone server this test may stop and restart."""
    require_zookeeper()
    with running_zookeeper(tmp_path / "zk") as ensemble:
        yield ensemble


# -- layout and implicit directories -----------------------------------------------------


async def test_layout_values_and_directories(zk: ZkStorage, raw: KazooClient) -> None:
    await zk.commit([Create("apps/a/current", b"1"), Create("apps", b"mixed"), Create("f", b"")])
    base = zk.base
    assert sorted(raw.get_children(base)) == sorted([BLOBS, "apps", "apps#", "f#"])
    assert raw.get_children(f"{base}/apps/a") == ["current#"]
    assert await zk.children("") == ["apps", "f"]
    assert (await zk.get("apps")).value == b"mixed"  # type: ignore[union-attr]
    assert (await zk.get("f")).value == b""  # type: ignore[union-attr]
    await zk.delete("apps/a/current")
    assert sorted(raw.get_children(base)) == sorted([BLOBS, "apps#", "f#"])  # no empty dirs


async def test_two_sessions_deleting_the_last_keys_leave_no_empty_directory(zk_url: str) -> None:
    a = await ZkStorage.connect(zk_url, timeout=5.0)
    b = await ZkStorage.connect(zk_url, timeout=5.0)
    try:
        for round_ in range(15):
            await a.commit([Create(f"d/{round_}/x", b"1"), Create(f"d/{round_}/y", b"2")])
            async with trio.open_nursery() as n:
                n.start_soon(a.delete, f"d/{round_}/x")
                n.start_soon(b.delete, f"d/{round_}/y")
            assert await a.children(f"d/{round_}") == []
            assert str(round_) not in await b.children("d")
        assert await a.children("") == []
    finally:
        await a.aclose()
        await b.aclose()


async def test_creates_race_on_a_new_directory(zk_url: str) -> None:
    stores = [await ZkStorage.connect(zk_url, timeout=5.0) for _ in range(3)]
    try:
        async with trio.open_nursery() as n:
            for i, s in enumerate(stores):
                for j in range(5):
                    n.start_soon(s.create, f"new/deep/k{i}-{j}", b"v")
        assert len(await stores[0].children("new/deep")) == 15
    finally:
        for s in stores:
            await s.aclose()


ZK_KEYS = ["a", "b", "a/x", "a/y", "b/z/w", "a/x/q"]


@settings(max_examples=30, deadline=None)
@given(transactions(ZK_KEYS, max_size=6))
async def test_zk_behaves_like_memory(zookeeper: ZooKeeperEnsemble, txs: list[list[Op]]) -> None:
    """Random transactions: same results, errors and tree on ZooKeeper as in memory."""
    zk = await ZkStorage.connect(zookeeper.url(f"/marathon-test/{uuid.uuid4().hex}"))
    try:
        await assert_behaves_like_memory(
            zk, txs, keys=ZK_KEYS, prefixes=["", "a", "b", "b/z", "a/x"]
        )
    finally:
        await zk.aclose()


# -- large values ----------------------------------------------------------------------------


async def test_compressible_values_stay_in_one_node(zk: ZkStorage, raw: KazooClient) -> None:
    value = b"{'app': 'x'} " * 200_000  # 2.6 MB of JSON-like text
    await zk.create("big", value)
    assert raw.get_children(f"{zk.base}/{BLOBS}") == []
    data, _ = raw.get(f"{zk.base}/big#")
    assert data[:1] == b"\x01" and len(data) < 100_000
    assert (await zk.get("big")).value == value  # type: ignore[union-attr]


async def test_incompressible_values_are_chunked(zk: ZkStorage, raw: KazooClient) -> None:
    value = os.urandom(3 * CHUNK_SIZE + 17)
    assert await zk.create("k/big", value) == 0
    chunks = raw.get_children(f"{zk.base}/{BLOBS}")
    assert len(chunks) == 4
    e = await zk.get("k/big")
    assert e is not None and (e.value, e.version) == (value, 0)
    second = os.urandom(MAX_REQUEST + 1)  # over one request: two chunks
    assert await zk.update("k/big", second, version=0) == 1
    assert (await zk.get_many(["k/big"]))["k/big"].value == second
    assert len(raw.get_children(f"{zk.base}/{BLOBS}")) == 2  # the old chunks were swept
    await zk.update("k/big", b"small")
    assert raw.get_children(f"{zk.base}/{BLOBS}") == []
    await zk.delete("k/big")
    assert await zk.children("") == []


async def test_failed_commit_leaves_no_chunks(zk: ZkStorage, raw: KazooClient) -> None:
    await zk.create("x", b"1")
    with pytest.raises(VersionConflictError):
        await zk.commit([Create("big", os.urandom(2 * CHUNK_SIZE)), Create("x", b"dup")])
    assert raw.get_children(f"{zk.base}/{BLOBS}") == []
    assert await zk.get("big") is None


async def test_transaction_larger_than_a_request(zk: ZkStorage) -> None:
    values = {f"many/{i}": os.urandom(150_000) for i in range(12)}  # 1.8 MB in one commit
    assert await zk.commit([Create(k, v) for k, v in values.items()]) == [0] * 12
    got = await zk.get_many(list(values))
    assert {k: e.value for k, e in got.items()} == values
    await zk.commit([Delete(k) for k in values])
    assert await zk.sweep_chunks() == 0
    assert await zk.children("") == []


async def test_a_transaction_that_cannot_fit_is_refused_as_the_users_422(zk: ZkStorage) -> None:
    ops: list[Op] = [Create(f"n/{i:05d}-{'x' * 200}", b"v" * 900) for i in range(1200)]
    with pytest.raises(WriteTooLargeError, match="apply the change in parts") as refused:
        await zk.commit(ops)
    assert refused.value.status == 422
    assert refused.value.to_json()["details"][0]["path"] == "/"
    assert await zk.children("") == []


# -- fencing and errors ------------------------------------------------------------------------


async def test_znode_check_fences_the_whole_commit(zk: ZkStorage, raw: KazooClient) -> None:
    fence = f"{zk.base}-fence"
    raw.create(fence, b"leader")
    await zk.commit([ZnodeCheck(fence, 0), Create("a", b"1")])
    raw.delete(fence)
    with pytest.raises(FencedWriteError):
        await zk.commit([ZnodeCheck(fence, 0), Update("a", b"2"), Create("b", b"3")])
    assert (await zk.get("a")).value == b"1"  # type: ignore[union-attr]
    assert await zk.get("b") is None


async def test_unreachable_zookeeper_is_unavailable() -> None:
    (port,) = free_ports(1)
    with trio.fail_after(5):
        with pytest.raises(StorageUnavailableError):
            await ZkStorage.connect(f"zk://127.0.0.1:{port}/m", timeout=0.5)


@pytest.mark.zookeeper
async def test_server_down_and_back(own_zk: ZooKeeperEnsemble) -> None:
    client = await ZkClient.connect(own_zk.url("/m"), session_timeout=20.0, timeout=1.0)
    try:
        s = await ZkStorage.open(client)
        await s.create("a", b"1")
        server = own_zk.servers[0]
        server.stop()
        with trio.fail_after(5):
            while client.state == "CONNECTED":
                await client.wait_state_change()
        assert client.state == "SUSPENDED"
        with trio.fail_after(5), pytest.raises(StorageUnavailableError):
            await s.update("a", b"2")
        with trio.fail_after(5), pytest.raises(StorageUnavailableError):
            await s.get("a")
        server.start()
        await trio.to_thread.run_sync(server.wait_serving)  # a JVM start is slow under load
        with trio.fail_after(20):
            while client.state != "CONNECTED":
                await client.wait_state_change()
        assert await s.update("a", b"3") == 1  # same session: nothing was lost
        assert client.statistics().state_changes >= 2
    finally:
        await client.aclose()


async def test_closed_client_and_store(zk_url: str) -> None:
    client = await ZkClient.connect(zk_url)
    s = await ZkStorage.open(client)
    await client.aclose()
    with pytest.raises(StorageError):
        await s.get("a")
    await s.aclose()
    with pytest.raises(StorageError, match="closed"):
        await s.get("a")
