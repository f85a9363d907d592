"""``ServiceContext.mesos_leader_url``: the master the leader is subscribed to, which
``/v2/info`` shows as ``mesos_leader_ui_url`` and marathon-ctl reads sandboxes through."""

from __future__ import annotations

import trio

from marathon_core.mesos.client import MesosClient
from marathon_core.mesos.events import MesosEvent
from marathon_core.testing.context import memory_context


def _client(master_url: str) -> MesosClient:
    send, _ = trio.open_memory_channel[MesosEvent](1)

    async def no_id() -> None:
        return None

    async def store(framework_id: str) -> None:
        pass

    return MesosClient(
        master_url,
        framework_info=lambda framework_id: {},
        load_framework_id=no_id,
        store_framework_id=store,
        events=send,
    )


async def test_the_subscribed_master_else_the_configured_address() -> None:
    ctx = await memory_context([], plugins={})
    assert ctx.mesos_leader_url() == "http://127.0.0.1:5050"  # not leading: --master
    ctx.mesos = _client("http://10.0.0.2:5050")  # leading, redirected or looked up
    assert ctx.mesos_leader_url() == "http://10.0.0.2:5050"


async def test_a_zookeeper_master_is_known_only_once_looked_up() -> None:
    ctx = await memory_context([], plugins={})
    ctx.master_url = "zk://127.0.0.1:2181/mesos"
    assert ctx.mesos_leader_url() is None
    ctx.mesos = _client(ctx.master_url)  # before its first subscription
    assert ctx.mesos_leader_url() is None
    ctx.mesos.master_url = "http://10.0.0.3:5050"
    assert ctx.mesos_leader_url() == "http://10.0.0.3:5050"


async def test_the_url_never_carries_the_masters_credentials() -> None:
    ctx = await memory_context([], plugins={})
    ctx.master_url = "http://ops:s3cret@127.0.0.1:5050"
    assert ctx.mesos_leader_url() == "http://127.0.0.1:5050"
    ctx.mesos = _client("https://ops:s3cret@10.0.0.2:5050/")
    assert ctx.mesos_leader_url() == "https://10.0.0.2:5050"
