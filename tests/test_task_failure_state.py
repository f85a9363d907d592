"""``lastTaskFailure`` in the state store: kept per app, gone with the app."""

from __future__ import annotations

from marathon_core.model.app import AppDefinition
from marathon_core.model.group import Group
from marathon_core.model.ids import PathId, Timestamp
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
