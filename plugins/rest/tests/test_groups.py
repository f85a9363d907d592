"""``/v2/groups`` over real HTTP with the reference group of three dependent apps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

EXAMPLES = Path(__file__).parents[3] / "tests/data/marathon-examples"
SHOP = json.loads((EXAMPLES / "group-with-dependencies.json").read_text())
INVALID = {c["name"]: c for c in json.loads((EXAMPLES / "invalid-requests.json").read_text())}


@pytest.fixture
async def shop(client: httpx.AsyncClient) -> httpx.Response:
    response = await client.post("/v2/groups", json=SHOP)
    assert response.status_code == 201, response.text
    return response


async def test_create_and_read_the_tree(
    shop: httpx.Response, client: httpx.AsyncClient, api_url: str
) -> None:
    assert shop.headers["Location"] == f"{api_url}/v2/groups/shop"
    assert shop.json()["deploymentId"] == shop.headers["Marathon-Deployment-Id"]
    tree = (await client.get("/v2/groups/shop")).json()
    assert set(tree) == {"id", "apps", "groups", "pods", "dependencies", "version"}
    assert [a["id"] for a in tree["apps"]] == ["/shop/backend", "/shop/db"]
    assert tree["groups"][0]["apps"][0]["id"] == "/shop/web/frontend"
    assert tree["groups"][0]["apps"][0]["dependencies"] == ["/shop/backend"]
    root = (await client.get("/v2/groups")).json()
    assert root["id"] == "/" and [g["id"] for g in root["groups"]] == ["/shop"]
    (deployment,) = (await client.get("/v2/deployments")).json()
    assert [[a["app"] for a in s["actions"]] for s in deployment["steps"]] == [
        ["/shop/backend", "/shop/db", "/shop/web/frontend"],
        ["/shop/db"],
        ["/shop/backend"],
        ["/shop/web/frontend"],
    ]


async def test_creating_twice_is_a_409(shop: httpx.Response, client: httpx.AsyncClient) -> None:
    again = await client.post("/v2/groups", json=SHOP)
    assert again.status_code == 409
    assert again.json() == {
        "message": "Group /shop is already created. Use PUT to change this group."
    }


async def test_dry_run_scale_by_and_rollback(
    shop: httpx.Response, client: httpx.AsyncClient
) -> None:
    dry = await client.put("/v2/groups/shop?dryRun=true", json={"scaleBy": 2})
    assert dry.status_code == 200
    assert {a["app"] for s in dry.json()["steps"] for a in s["actions"]} == {
        "/shop/db",
        "/shop/backend",
        "/shop/web/frontend",
    }
    assert (await client.get("/v2/apps/shop/backend")).json()["app"]["instances"] == 3
    v1 = (await client.get("/v2/groups/shop")).json()["version"]
    scaled = await client.put("/v2/groups/shop?force=true", json={"scaleBy": 1.5})
    assert scaled.status_code == 200
    assert (await client.get("/v2/apps/shop/backend")).json()["app"]["instances"] == 5
    assert v1 in (await client.get("/v2/groups/shop/versions")).json()
    back = await client.put("/v2/groups/shop?force=true", json={"version": v1})
    assert back.status_code == 200
    assert (await client.get("/v2/apps/shop/backend")).json()["app"]["instances"] == 3


async def test_put_replaces_only_given_parts(
    shop: httpx.Response, client: httpx.AsyncClient
) -> None:
    update = {"apps": [{"id": "db", "cmd": "sleep 1", "instances": 1}]}
    response = await client.put("/v2/groups/shop?force=true", json=update)
    assert response.status_code == 200
    tree = (await client.get("/v2/groups/shop")).json()
    assert [a["id"] for a in tree["apps"]] == ["/shop/db"]  # backend removed: apps replaced
    assert [g["id"] for g in tree["groups"]] == ["/shop/web"]  # groups kept: not given


def _app(app_id: str) -> dict[str, Any]:
    return {"id": app_id, "cmd": "sleep 3600", "cpus": 0.01, "mem": 8, "instances": 0}


async def _tree_apps(client: httpx.AsyncClient, group_id: str) -> list[str]:
    """Every app id below ``group_id``, sorted."""

    def walk(group: dict[str, Any]) -> list[str]:
        return [a["id"] for a in group["apps"]] + [a for g in group["groups"] for a in walk(g)]

    return sorted(walk((await client.get(f"/v2/groups/{group_id}")).json()))


async def test_put_merges_named_subgroups_recursively(client: httpx.AsyncClient) -> None:
    """Marathon's GroupUpdate.apply at every level: a named subgroup that exists keeps the
    parts its update leaves out, a new one is created, an unnamed one is removed."""
    org = {
        "id": "/org",
        "apps": [_app("a")],
        "groups": [
            {"id": "team", "apps": [_app("t")], "groups": [{"id": "svc", "apps": [_app("s")]}]},
            {"id": "other", "apps": [_app("o")]},
        ],
    }
    assert (await client.post("/v2/groups", json=org)).status_code == 201
    names_svc_without_apps = {"groups": [{"id": "team", "groups": [{"id": "svc"}]}]}
    response = await client.put("/v2/groups/org?force=true", json=names_svc_without_apps)
    assert response.status_code == 200, response.text
    assert await _tree_apps(client, "org") == ["/org/a", "/org/team/svc/s", "/org/team/t"]
    gives_svc_apps = {
        "groups": [{"id": "team", "groups": [{"id": "svc", "apps": [_app("s2")]}, {"id": "new"}]}]
    }
    response = await client.put("/v2/groups/org?force=true", json=gives_svc_apps)
    assert response.status_code == 200, response.text
    assert await _tree_apps(client, "org") == ["/org/a", "/org/team/svc/s2", "/org/team/t"]
    team = (await client.get("/v2/groups/org/team")).json()
    assert sorted(g["id"] for g in team["groups"]) == ["/org/team/new", "/org/team/svc"]


async def test_delete(shop: httpx.Response, client: httpx.AsyncClient) -> None:
    deleted = await client.delete("/v2/groups/shop?force=true")
    assert deleted.status_code == 200
    assert (await client.get("/v2/groups/shop")).status_code == 404
    assert (await client.get("/v2/apps")).json()["apps"] == []
    missing = await client.delete("/v2/groups/shop")
    assert missing.json() == {"message": "Group '/shop' does not exist"}


@pytest.mark.parametrize("name", ["group-app-not-child-of-group", "group-dependency-cycle"])
async def test_invalid_groups_match_marathon(client: httpx.AsyncClient, name: str) -> None:
    case = INVALID[name]
    response = await client.post(case["path"], json=case["body"])
    assert response.status_code == case["expect"]["status"]
    body = response.json()
    assert body["message"] == case["expect"]["message"]
    for detail in case["expect"]["details"]:
        got = next(d for d in body["details"] if d["path"] == detail["path"])
        assert set(detail["errors"]) <= set(got["errors"])
