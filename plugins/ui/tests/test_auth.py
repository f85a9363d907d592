"""With marathon-auth: the UI asks for credentials like /v2, and each user sees only
the apps and deployments they may view."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import marathon_auth.plugin
import pytest
import trio
from marathon_auth.passwords import hash_password

import marathon_rest.plugin
import marathon_ui.plugin
from marathon_core.testing.context import ManualLeader, memory_context
from marathon_rest.server import serve_api

ADMIN = ("admin", "admin-secret")
PROD = ("produser", "prod-secret")


@pytest.fixture
async def url(nursery: trio.Nursery, tmp_path: Path) -> str:
    users = tmp_path / "users.toml"
    users.write_text(
        f"""
[users.produser]
password = "{hash_password(PROD[1])}"

[[rules]]
users = ["produser"]
actions = ["*"]
resources = ["/prod/*", "Events"]
"""
    )
    ctx = await memory_context(
        [
            *("--http_port", "0", "--http_address", "127.0.0.1"),
            *("--auth_users", str(users), "--http_credentials", ":".join(ADMIN)),
        ],
        plugins={
            "rest": marathon_rest.plugin,
            "ui": marathon_ui.plugin,
            "auth": marathon_auth.plugin,
        },
    )
    ctx.plugins.configure(ctx.config)
    await nursery.start(ctx.election.run, trio.sleep_forever)
    ManualLeader.attach(ctx)
    served: str = await nursery.start(serve_api, ctx)
    return served


@pytest.fixture
async def admin(url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=url, auth=ADMIN, timeout=10) as client:
        for app_id in ("/prod/web", "/dev/web"):
            body = {"id": app_id, "cmd": "sleep 1000", "cpus": 0.1, "mem": 16}
            assert (await client.post("/v2/apps", json=body)).status_code == 201
        yield client


async def test_pages_need_credentials_and_show_only_what_the_user_may_view(
    url: str, admin: httpx.AsyncClient
) -> None:
    anonymous = await httpx.AsyncClient(base_url=url).get("/ui/apps")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic")

    every = re.findall(r'<tr data-app-id="([^"]+)"', (await admin.get("/ui/apps")).text)
    assert every == ["/dev/web", "/prod/web"]

    async with httpx.AsyncClient(base_url=url, auth=PROD, timeout=10) as prod:
        listed = re.findall(r'<tr data-app-id="([^"]+)"', (await prod.get("/ui/apps")).text)
        assert listed == ["/prod/web"]
        assert (await prod.get("/ui/apps/prod/web")).status_code == 200
        assert (await prod.get("/ui/apps/dev/web")).status_code == 403
        rows = (await prod.get("/ui/f/app-rows?id=/dev/web&id=/prod/web")).text
        assert '<tr data-app-id="/dev/web" data-gone>' in rows
        assert '<tr data-app-id="/prod/web" data-status' in rows
        deployments = (await prod.get("/ui/deployments")).text
        assert 'data-apps="/prod/web"' in deployments
        assert "/dev/web" not in deployments
