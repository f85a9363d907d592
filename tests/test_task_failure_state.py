"""``lastTaskFailure`` in the state store: kept per app, gone with the app."""

from __future__ import annotations

from marathon.models.app import MarathonTaskFailure

from marathon_core.model.app import AppDefinition
from marathon_core.model.codec import task_failure_to_json
from marathon_core.model.group import Group
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import (
    AgentInfo,
    Instance,
    InstanceId,
    Task,
    TaskId,
    parse_task_id,
)
from marathon_core.state.memory import MemoryStorage
from marathon_core.state.store import StateStore

APP = PathId.parse("/crash")


async def test_a_failure_is_kept_until_its_app_is_deleted() -> None:
    state = await StateStore.open(MemoryStorage())
    app = AppDefinition(id=APP, cmd="exit 1", version=Timestamp(1))
    await state.store_root(Group.empty_root(Timestamp(1)).update_app(app))
    failure = {"appId": "/crash", "state": "TASK_FAILED", "taskId": "crash.1", "message": "1"}
    await state.task_failures.put(failure)
    await state.task_failures.put({**failure, "taskId": "crash.2"})  # the last one wins
    assert await state.task_failures.get(APP) == {**failure, "taskId": "crash.2"}
    await state.store_root(Group.empty_root(Timestamp(2)))
    assert await state.task_failures.get(APP) is None


def test_a_failure_names_the_instance_of_its_task() -> None:
    """``instanceId`` is the failed task's instance, as marathon-python reads it."""
    instance_id = InstanceId.new(APP)
    task_id = TaskId.for_instance(instance_id, 2)
    instance = Instance(
        instance_id,
        agent=AgentInfo("127.0.0.2", "agent-1"),
        tasks=(Task(task_id),),
        run_spec_version=Timestamp(1),
    )
    failure = task_failure_to_json(
        instance,
        task_id=str(task_id),
        state="TASK_FAILED",
        agent_id="agent-1",
        message="Command exited with status 1",
        at=Timestamp(2),
    )
    assert failure["instanceId"] == str(instance_id)
    assert str(parse_task_id(failure["taskId"]).instance_id) == failure["instanceId"]
    parsed = MarathonTaskFailure.from_json(failure)
    assert parsed.instance_id == str(instance_id) and parsed.task_id == str(task_id)


async def test_a_failure_stored_without_an_instance_id_is_still_served() -> None:
    """Failures stored before ``instanceId`` existed load and parse unchanged."""
    state = await StateStore.open(MemoryStorage())
    app = AppDefinition(id=APP, cmd="exit 1", version=Timestamp(1))
    await state.store_root(Group.empty_root(Timestamp(1)).update_app(app))
    stored = {
        "appId": "/crash",
        "host": "127.0.0.2",
        "message": "Command exited with status 1",
        "state": "TASK_FAILED",
        "taskId": "crash.instance-6f1a8c2e-0000-11ee-8000-000000000000._app.1",
        "timestamp": "2026-01-01T00:00:00.000Z",
        "version": "2026-01-01T00:00:00.000Z",
        "slaveId": "agent-1",
    }
    await state.task_failures.put(stored)
    loaded = await state.task_failures.get(APP)
    assert loaded == stored
    assert MarathonTaskFailure.from_json(loaded).instance_id is None
