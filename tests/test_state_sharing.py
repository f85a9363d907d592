"""Instances decoded in one load share the values they repeat (``state/sharing.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import (
    AgentInfo,
    Condition,
    Instance,
    InstanceId,
    Task,
    TaskId,
)
from marathon_core.state.storage import Storage
from marathon_core.state.store import StateStore

sys.path.insert(0, str(Path(__file__).parent))
import state_backends

backend = state_backends.backend
store = state_backends.store

VERSION = Timestamp(1_700_000_000_000)


def running(app: str, host: str, agent_id: str, n: int) -> Instance:
    iid = InstanceId(PathId.parse(app), f"00000000-0000-0000-0000-{n:012d}")
    task = Task(
        TaskId.for_instance(iid),
        condition=Condition.RUNNING,
        staged_at=Timestamp(VERSION.millis + n),
        run_spec_version=VERSION,
        ip_addresses=("10.0.0.1",),
        mesos_state="TASK_RUNNING",
    )
    agent = AgentInfo(host, agent_id, attributes={"rack": "r1"})
    return Instance(
        iid, condition=Condition.RUNNING, agent=agent, tasks=(task,), run_spec_version=VERSION
    )


async def test_decoded_instances_share_repeated_values(store: Storage) -> None:
    state = await StateStore.open(store)
    stored = [
        running("/web", "h1", "agent-1", 1),
        running("/web", "h1", "agent-1", 2),
        running("/web", "h2", "agent-2", 3),
        running("/db", "h1", "agent-1", 4),
    ]
    await state.instances.put_many(stored)
    for decoded in (
        await state.instances.all(),
        await state.instances.by_app(PathId.parse("/web")),
    ):
        by_n = {int(i.instance_id.uuid[-3:]): i for i in decoded}
        assert sorted(by_n.values(), key=str) == sorted(
            (i for i in stored if i.instance_id in {d.instance_id for d in decoded}), key=str
        )
        one, two, other = by_n[1], by_n[2], by_n[3]
        assert one.agent is two.agent and one.agent is not other.agent
        assert one.agent is not None and two.agent is not None
        assert one.agent.agent_id is two.agent.agent_id
        assert one.instance_id.run_spec_id is other.instance_id.run_spec_id
        assert one.run_spec_version is other.tasks[0].run_spec_version
        assert one.tasks[0].mesos_state is other.tasks[0].mesos_state
        assert one.tasks[0].ip_addresses is other.tasks[0].ip_addresses
        for instance in decoded:
            assert instance.tasks[0].task_id.instance_id is instance.instance_id
        assert one.tasks[0].staged_at != two.tasks[0].staged_at  # not shared: they differ
    everything = await state.instances.all()
    db = next(i for i in everything if str(i.app_id) == "/db")
    web = next(i for i in everything if str(i.app_id) == "/web")
    assert db.agent is web.agent  # equal agents are one object across apps too
