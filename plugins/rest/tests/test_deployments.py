"""``/v2/deployments``: what marathon-python reads, cancel and rollback."""

from __future__ import annotations

import httpx

from marathon_core.testing.context import CoreContext, ManualLeader


async def create(client: httpx.AsyncClient, body: dict[str, object]) -> str:
    response = await client.post("/v2/apps", json=body)
    assert response.status_code == 201, response.text
    return response.headers["Marathon-Deployment-Id"]


async def test_a_new_app_has_exactly_one_visible_deployment(client: httpx.AsyncClient) -> None:
    deployment_id = await create(client, {"id": "/d/web", "cmd": "sleep 9", "instances": 5})
    listed = (await client.get("/v2/deployments")).json()
    assert isinstance(listed, list) and len(listed) == 1
    (entry,) = listed
    assert entry["id"] == deployment_id
    assert entry["affectedApps"] == ["/d/web"]
    assert entry["steps"] == [
        {"actions": [{"action": "StartApplication", "app": "/d/web"}]},
        {"actions": [{"action": "ScaleApplication", "app": "/d/web"}]},
    ]
    assert (entry["currentStep"], entry["totalSteps"]) == (0, 2)


async def test_force_cancel_answers_202_and_forgets_the_deployment(
    client: httpx.AsyncClient,
) -> None:
    deployment_id = await create(client, {"id": "/d/web", "cmd": "sleep 9"})
    cancelled = await client.delete(f"/v2/deployments/{deployment_id}?force=true")
    assert cancelled.status_code == 202
    assert (await client.get("/v2/deployments")).json() == []
    assert (await client.get("/v2/apps/d/web")).status_code == 200  # the change stays


async def test_cancel_rolls_back_only_what_the_deployment_changed(
    client: httpx.AsyncClient,
) -> None:
    await create(client, {"id": "/d/keep", "cmd": "sleep 9"})
    scale = await client.put("/v2/apps/d/keep?force=true", json={"instances": 4})
    other = await create(client, {"id": "/d/other", "cmd": "sleep 9"})
    rollback = await client.delete(f"/v2/deployments/{scale.json()['deploymentId']}")
    assert rollback.status_code == 200
    assert rollback.headers["Marathon-Deployment-Id"] == rollback.json()["deploymentId"]
    assert (await client.get("/v2/apps/d/keep")).json()["app"]["instances"] == 1
    assert (await client.get("/v2/apps/d/other")).status_code == 200
    ids = {d["id"] for d in (await client.get("/v2/deployments")).json()}
    assert ids == {other, rollback.json()["deploymentId"]}


async def test_cancelling_a_creation_removes_the_app(client: httpx.AsyncClient) -> None:
    deployment_id = await create(client, {"id": "/d/new", "cmd": "sleep 9"})
    assert (await client.delete(f"/v2/deployments/{deployment_id}")).status_code == 200
    assert (await client.get("/v2/apps/d/new")).status_code == 404


async def test_unknown_deployment_is_a_404(client: httpx.AsyncClient) -> None:
    response = await client.delete("/v2/deployments/nope")
    assert response.status_code == 404
    assert response.json() == {"message": "DeploymentPlan nope does not exist"}


async def test_cancelling_a_deletion_brings_the_app_back(client: httpx.AsyncClient) -> None:
    await create(client, {"id": "/d/gone", "cmd": "sleep 9", "instances": 2})
    deleted = await client.delete("/v2/apps/d/gone")
    assert (await client.get("/v2/apps/d/gone")).status_code == 404
    rollback = await client.delete(f"/v2/deployments/{deleted.json()['deploymentId']}")
    assert rollback.status_code == 200
    restored = (await client.get("/v2/apps/d/gone")).json()["app"]
    assert restored["instances"] == 2


async def test_one_deployment_shows_a_status_per_app(
    client: httpx.AsyncClient, api_context: CoreContext
) -> None:
    ManualLeader.attach(api_context)
    deployment_id = await create(client, {"id": "/d/web", "cmd": "sleep 9", "instances": 2})
    response = await client.get(f"/v2/deployments/{deployment_id}")
    assert response.status_code == 200
    body = response.json()
    listed = (await client.get("/v2/deployments")).json()
    assert {k: v for k, v in body.items() if k != "status"} == listed[0]
    # Nothing runs here: the start marker has not run, the scaling waits for it.
    assert body["status"]["/d/web"]["action"] == "StartApplication"
    assert body["status"]["/d/web"]["state"] in {"starting", "pending"}
    assert (await client.get("/v2/deployments/nope")).status_code == 404


async def test_one_deployment_needs_the_leader(client: httpx.AsyncClient) -> None:
    deployment_id = await create(client, {"id": "/d/web", "cmd": "sleep 9"})
    assert (await client.get(f"/v2/deployments/{deployment_id}")).status_code == 503
