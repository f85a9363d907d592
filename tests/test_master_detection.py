"""``--master zk://.../mesos``: the leading Mesos master is found in ZooKeeper, as Mesos
masters register there (ephemeral ``json.info_<seq>`` nodes holding MasterInfo JSON;
the lowest sequence leads)."""

from __future__ import annotations

import json

import pytest
import trio
from kazoo.client import KazooClient

from marathon_core.config import Config
from marathon_core.errors import ConfigError
from marathon_core.masters import marathon_mesos_master
from marathon_core.mesos.detector import MasterNotFoundError, detect_master
from marathon_core.testing.zookeeper import ZooKeeperEnsemble

MASTER_A = {"id": "a", "address": {"hostname": "127.0.0.21", "ip": "127.0.0.21", "port": 5050}}
MASTER_B = {"id": "b", "address": {"hostname": "127.0.0.22", "port": 5051}}


def register(zookeeper: ZooKeeperEnsemble, path: str, *infos: dict[str, object]) -> KazooClient:
    """Masters contending as Mesos masters do; their nodes go when the client stops."""
    zk = KazooClient(hosts=zookeeper.hosts)
    zk.start(timeout=10)
    for info in infos:
        zk.create(
            f"{path}/json.info_",
            json.dumps(info).encode(),
            ephemeral=True,
            sequence=True,
            makepath=True,
        )
    return zk


async def test_the_leading_master_is_found_and_a_new_one_after_it_dies(
    zookeeper: ZooKeeperEnsemble,
) -> None:
    path = "/mesos-detect"
    leader = await trio.to_thread.run_sync(register, zookeeper, path, MASTER_A)
    follower = await trio.to_thread.run_sync(register, zookeeper, path, MASTER_B)
    url = f"zk://{zookeeper.hosts}{path}"
    try:
        assert await detect_master(url, timeout=5) == "http://127.0.0.21:5050"
        await trio.to_thread.run_sync(leader.stop)  # its ephemeral node goes with it
        assert await detect_master(url, timeout=5) == "http://127.0.0.22:5051"
    finally:
        for client in (leader, follower):
            await trio.to_thread.run_sync(client.stop)
            await trio.to_thread.run_sync(client.close)


async def test_an_empty_group_is_a_master_not_found_yet(zookeeper: ZooKeeperEnsemble) -> None:
    with pytest.raises(MasterNotFoundError, match="no master is elected"):
        await detect_master(f"zk://{zookeeper.hosts}/mesos-nobody", timeout=0.5)


async def test_the_builtin_master_plugin_serves_zk_urls() -> None:
    url = "zk://127.0.0.1:2181,127.0.0.2:2181/mesos"
    master = marathon_mesos_master(url=url, config=Config(master=url))
    assert master is not None
    async with trio.open_nursery() as nursery:
        assert await nursery.start(master) == url  # resolved by each leadership term
        nursery.cancel_scope.cancel()


def test_a_malformed_zk_url_is_refused_at_start() -> None:
    with pytest.raises(ConfigError, match="expected zk://host:port"):
        marathon_mesos_master(url="zk://127.0.0.1:2181", config=Config(master="x"))
