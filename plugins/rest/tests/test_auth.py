"""An auth plugin decides through the core's hooks; the API needs no change for it."""

from __future__ import annotations

import types

import httpx
import pytest

from marathon_core import hookimpl
from marathon_core.contracts.auth import Action, HttpRequest, Identity


@hookimpl
def marathon_authenticate(request: HttpRequest) -> Identity:
    user = request.headers.get("authorization", "")
    return Identity(user, authenticated=user in ("alice", "admin"))


@hookimpl
def marathon_authorize(identity: Identity, action: Action, resource: object) -> bool | None:
    if identity.name == "admin":
        return True
    if action in (Action.DELETE_RUN_SPEC, Action.DELETE_GROUP):
        return False
    return not str(resource).startswith("/secret")


@pytest.fixture
def extra_plugins() -> dict[str, object]:
    module = types.SimpleNamespace(
        __name__="test-auth",
        marathon_authenticate=marathon_authenticate,
        marathon_authorize=marathon_authorize,
    )
    return {"test-auth": module}


def as_user(user: str) -> dict[str, str]:
    return {"Authorization": user}


async def test_unknown_callers_get_401(client: httpx.AsyncClient) -> None:
    for path in ("/v2/apps", "/v2/info", "/v2/groups", "/v2/deployments"):
        response = await client.get(path, headers=as_user("mallory"))
        assert response.status_code == 401, path
        assert response.json() == {"message": "Not Authenticated"}


async def test_forbidden_actions_get_403_and_lists_hide_what_is_not_viewable(
    client: httpx.AsyncClient,
) -> None:
    for app_id in ("/public/web", "/secret/db"):
        created = await client.post(
            "/v2/apps", json={"id": app_id, "cmd": "sleep 1"}, headers=as_user("admin")
        )
        assert created.status_code == 201
    listed = await client.get("/v2/apps", headers=as_user("alice"))
    assert [a["id"] for a in listed.json()["apps"]] == ["/public/web"]
    hidden = await client.get("/v2/apps/secret/db", headers=as_user("alice"))
    assert hidden.status_code == 403
    assert hidden.json() == {"message": "Not Authorized to perform this action!"}
    deleting = await client.delete("/v2/apps/public/web", headers=as_user("alice"))
    assert deleting.status_code == 403
    assert (await client.get("/v2/apps/public/web", headers=as_user("alice"))).status_code == 200
    events = await client.get("/v2/events", headers=as_user("mallory"))
    assert events.status_code == 401
