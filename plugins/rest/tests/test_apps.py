"""``/v2/apps`` over real HTTP: Marathon's status codes, headers, bodies and errors."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from marathon_core.errors import FencedWriteError
from marathon_core.testing.context import CoreContext

SIMPLE = json.loads(
    (Path(__file__).parents[3] / "tests/data/marathon-examples/app-simple-cmd.json").read_text()
)
APP = "/examples/simple-sleep"


@pytest.fixture
async def created(client: httpx.AsyncClient) -> httpx.Response:
    response = await client.post("/v2/apps", json=SIMPLE)
    assert response.status_code == 201, response.text
    return response


async def test_create_answers_201_with_location_deployment_and_normalised_app(
    created: httpx.Response, api_url: str
) -> None:
    body = created.json()
    deployment = created.headers["Marathon-Deployment-Id"]
    assert created.headers["Location"] == f"{api_url}/v2/apps/examples/simple-sleep"
    assert body["deployments"] == [{"id": deployment}]
    assert (body["tasksRunning"], body["tasksStaged"], body["tasksHealthy"]) == (0, 0, 0)
    assert body["portDefinitions"] == [{"port": 10000, "protocol": "tcp", "name": "default"}]
    assert body["versionInfo"]["lastConfigChangeAt"] == body["version"]
    assert body["env"] == {"GREETING": "hello"}


async def test_get_one_list_and_double_slashes(
    created: httpx.Response, client: httpx.AsyncClient, api_url: str
) -> None:
    one = (await client.get(f"{api_url}//v2/apps//examples/simple-sleep")).json()["app"]
    assert one["id"] == APP and one["tasks"] == [] and one["version"] == created.json()["version"]
    listed = (await client.get("/v2/apps")).json()["apps"]
    assert [a["id"] for a in listed] == [APP]
    assert "tasks" not in listed[0]
    embedded = (await client.get("/v2/apps?embed=apps.tasks")).json()["apps"]
    assert embedded[0]["tasks"] == []
    group = (await client.get("/v2/apps/examples/*")).json()
    assert [a["id"] for a in group["*"]] == [APP]


async def test_creating_twice_is_a_409(created: httpx.Response, client: httpx.AsyncClient) -> None:
    again = await client.post("/v2/apps", json=SIMPLE)
    assert again.status_code == 409
    assert again.json() == {"message": f"An app with id [{APP}] already exists."}


async def test_update_is_locked_by_the_running_deployment_unless_forced(
    created: httpx.Response, client: httpx.AsyncClient
) -> None:
    first = created.headers["Marathon-Deployment-Id"]
    locked = await client.put(f"/v2/apps{APP}", json={"instances": 3})
    assert locked.status_code == 409
    assert locked.json()["deployments"] == [{"id": first}]
    assert "?force=true" in locked.json()["message"]
    forced = await client.put(f"/v2/apps{APP}?force=True", json={"instances": 3})
    assert forced.status_code == 200
    assert forced.json()["deploymentId"] == forced.headers["Marathon-Deployment-Id"] != first
    app = (await client.get(f"/v2/apps{APP}")).json()["app"]
    assert app["instances"] == 3
    assert app["env"] == {"GREETING": "hello"}  # partial update kept the rest
    deployments = app["deployments"]
    assert deployments == [{"id": forced.json()["deploymentId"]}]


async def test_versions_and_rollback(created: httpx.Response, client: httpx.AsyncClient) -> None:
    v1 = created.json()["version"]
    await client.put(f"/v2/apps{APP}?force=true", json={"cmd": "sleep 5"})
    versions = (await client.get(f"/v2/apps{APP}/versions")).json()["versions"]
    assert len(versions) == 2 and versions[-1] == v1
    old = (await client.get(f"/v2/apps{APP}/versions/{v1}")).json()
    assert old["cmd"] == SIMPLE["cmd"]
    rollback = await client.put(f"/v2/apps{APP}?force=true", json={"version": v1})
    assert rollback.status_code == 200
    assert (await client.get(f"/v2/apps{APP}")).json()["app"]["cmd"] == SIMPLE["cmd"]
    mixed = await client.put(f"/v2/apps{APP}", json={"version": v1, "cmd": "x"})
    assert mixed.status_code == 422
    missing = await client.get(f"/v2/apps{APP}/versions/2001-01-01T00:00:00.000Z")
    assert missing.status_code == 404


async def test_restart_and_delete(created: httpx.Response, client: httpx.AsyncClient) -> None:
    restarted = await client.post(f"/v2/apps{APP}/restart?force=true")
    assert restarted.status_code == 200
    deleted = await client.delete(f"/v2/apps{APP}")  # force defaults to true here
    assert deleted.status_code == 200 and deleted.json()["deploymentId"]
    gone = await client.get(f"/v2/apps{APP}")
    assert gone.status_code == 404
    assert gone.json() == {"message": f"App '{APP}' does not exist"}


async def test_put_creates_a_missing_app_and_patch_does_not(client: httpx.AsyncClient) -> None:
    created = await client.put("/v2/apps/new/app", json={"cmd": "sleep 1"})
    assert created.status_code == 201
    patched = await client.patch("/v2/apps/other/app", json={"cmd": "sleep 1"})
    assert patched.status_code == 404


async def test_filters(client: httpx.AsyncClient) -> None:
    for name, labels, cmd in [("a", {"tier": "web"}, "python web"), ("b", {"tier": "db"}, "pg")]:
        response = await client.post(
            "/v2/apps", json={"id": f"/f/{name}", "cmd": cmd, "labels": labels}
        )
        assert response.status_code == 201

    async def ids(query: str) -> list[str]:
        response = await client.get(f"/v2/apps?{query}")
        assert response.status_code == 200, response.text
        return [a["id"] for a in response.json()["apps"]]

    assert await ids("label=tier==web") == ["/f/a"]
    assert await ids("label=tier in (web, db)") == ["/f/a", "/f/b"]
    assert await ids("cmd=PYTHON") == ["/f/a"]
    assert await ids("id=f/b") == ["/f/b"]
    bad = await client.get("/v2/apps?label=tier===x")
    assert bad.status_code == 422 and "Can not parse label selector" in bad.json()["message"]


async def test_errors_are_marathon_shaped(client: httpx.AsyncClient) -> None:
    malformed = await client.post(
        "/v2/apps", content=b'{"id": "/x", "cmd": ', headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    assert malformed.json()["message"] == "Invalid JSON"
    assert isinstance(malformed.json()["details"], str)
    invalid = await client.post("/v2/apps", json={"id": "/x", "cmd": "a", "instances": -1})
    assert invalid.status_code == 422
    assert invalid.json()["details"] == [{"path": "/instances", "errors": ["error.min"]}]
    bad_flag = await client.post("/v2/apps?force=maybe", json={"id": "/y", "cmd": "sleep 1"})
    assert bad_flag.status_code == 400


async def test_api_post_event_is_published(
    client: httpx.AsyncClient, api_context: CoreContext
) -> None:
    with api_context.events.subscribe(event_types={"api_post_event"}) as events:
        await client.post("/v2/apps", json=SIMPLE)
        event = await events.receive()
    assert event.payload["appDefinition"]["id"] == APP
    assert event.payload["uri"] == "/v2/apps"


async def test_a_refused_state_write_is_a_503_not_a_500(
    client: httpx.AsyncClient, api_context: CoreContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def fenced(*args: object, **kwargs: object) -> None:
        raise FencedWriteError("me:8080 is not the leader")

    monkeypatch.setattr(api_context.groups, "update_root", fenced)
    response = await client.post("/v2/apps", json=SIMPLE)
    assert response.status_code == 503
    assert "not the leader" in response.json()["message"]
