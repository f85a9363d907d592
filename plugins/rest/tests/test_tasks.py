"""``/v2/tasks`` and task kills over real HTTP, against the leader's live view
(instances set by hand; the core's one writer and instance tracker are real)."""

from __future__ import annotations

import httpx
import pytest

from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import AgentInfo, Condition, Instance, InstanceId, Task, TaskId
from marathon_core.testing.context import CoreContext, ManualLeader

WEB, DB = PathId.parse("/shop/web"), PathId.parse("/shop/db")


def running(app_id: PathId, k: int) -> Instance:
    iid = InstanceId.new(app_id)
    task = Task(TaskId.for_instance(iid), Condition.RUNNING, host_ports=(31000 + k,))
    return Instance(
        iid,
        condition=Condition.RUNNING,
        tasks=(task,),
        agent=AgentInfo(f"127.0.0.{2 + k}", f"agent-{k}"),
        run_spec_version=Timestamp(1),
    )


def task_id(instance: Instance) -> str:
    assert instance.task is not None
    return str(instance.task.task_id)


@pytest.fixture
async def leader(client: httpx.AsyncClient, api_context: CoreContext) -> ManualLeader:
    """Two apps of 3 instances, all running, and no deployment in the way."""
    for app_id in (WEB, DB):
        body = {"id": str(app_id), "cmd": "sleep 100", "instances": 3}
        assert (await client.post("/v2/apps", json=body)).status_code == 201
    for deployment in api_context.deployments():
        api_context.registry.remove(deployment.id)
    leader = ManualLeader.attach(api_context)
    await leader.put(*(running(a, k) for a in (WEB, DB) for k in range(3)))
    return leader


async def instances_of(client: httpx.AsyncClient, app_id: PathId) -> int:
    app = (await client.get(f"/v2/apps{app_id}")).json()["app"]
    return int(app["instances"])


async def test_kill_and_scale_of_several_apps_is_one_deployment(
    client: httpx.AsyncClient, leader: ManualLeader, api_context: CoreContext
) -> None:
    web, db = leader.instances_of(WEB), leader.instances_of(DB)
    ids = [task_id(web[0]), task_id(web[0]), task_id(web[1]), task_id(db[0])]  # one twice
    response = await client.post("/v2/tasks/delete?scale=true", json={"ids": ids})
    assert response.status_code == 200, response.text
    assert [d.id for d in api_context.deployments()] == [response.json()["deploymentId"]]
    assert [await instances_of(client, a) for a in (WEB, DB)] == [1, 2]
    gone = {web[0].instance_id, web[1].instance_id, db[0].instance_id}
    decommissioned = {i.instance_id for i in leader.all_instances() if i.goal.value != "Running"}
    assert decommissioned == gone
    assert leader.killed == []  # decommissioned, not killed for a replacement


async def test_kill_and_scale_with_a_gone_app_changes_nothing(
    client: httpx.AsyncClient, leader: ManualLeader, api_context: CoreContext
) -> None:
    web = leader.instances_of(WEB)
    removal = await api_context.update_root(lambda root: root.remove_app(DB), force=True)
    api_context.registry.remove(removal.deployment.id)
    db_task = task_id(leader.instances_of(DB)[0])
    response = await client.post(
        "/v2/tasks/delete?scale=true", json={"ids": [task_id(web[0]), db_task]}
    )
    assert response.status_code == 404, response.text
    assert response.json()["message"] == "App '/shop/db' does not exist"
    assert await instances_of(client, WEB) == 3
    assert all(i.goal.value == "Running" for i in leader.instances_of(WEB))


async def test_a_kill_without_scale_lets_the_scheduler_replace_the_task(
    client: httpx.AsyncClient, leader: ManualLeader
) -> None:
    victim = leader.instances_of(WEB)[2]
    response = await client.post("/v2/tasks/delete", json={"ids": [task_id(victim)]})
    assert response.status_code == 200, response.text
    assert [t["id"] for t in response.json()["tasks"]] == [task_id(victim)]
    assert leader.killed == [victim]
    assert await instances_of(client, WEB) == 3


@pytest.mark.parametrize("body", [b"not json", b'{"ids": "x"}', b'{"ids": [1]}', b"[1, 2]"])
async def test_a_body_without_a_list_of_ids_is_400(
    client: httpx.AsyncClient, leader: ManualLeader, body: bytes
) -> None:
    response = await client.post("/v2/tasks/delete", content=body)
    assert response.status_code == 400
    assert response.json()["message"] == 'Expected a JSON body {"ids": ["<task id>", ...]}'
