from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio

import marathon_auth.plugin
import marathon_rest.plugin
import marathon_ui.plugin
from marathon_auth.passwords import hash_password, hash_token
from marathon_core.testing.context import CoreContext, ManualLeader, memory_context
from marathon_rest.server import serve_api

ADMIN = ("admin", "admin-secret")
READER = ("reader", "reader-secret")
PROD = ("produser", "prod-secret")
#: A bearer token of the reader (its hash is in the users file).
READER_TOKEN = "reader-token-0123456789abcdefghijklmnopqrstuvwxyz"

#: hash_password is deliberately slow (scrypt): hash the fixture passwords once.
_HASHES = {name: hash_password(password) for name, password in (READER, PROD)}


def users_file_text() -> str:
    return f"""
[users.reader]
password = "{_HASHES["reader"]}"
groups = ["readers"]
tokens = ["{hash_token(READER_TOKEN)}"]

[users.produser]
password = "{_HASHES["produser"]}"
groups = ["prod-team"]

# Read-only: view everything, apps and system resources alike.
[[rules]]
groups = ["readers"]
actions = ["view"]
resources = ["*"]

# Everything under /prod, and the event stream (filtered to /prod).
[[rules]]
groups = ["prod-team"]
actions = ["*"]
resources = ["/prod/*"]

[[rules]]
users = ["produser"]
actions = ["view"]
resources = ["Events"]
"""


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    path = tmp_path / "users.toml"
    path.write_text(users_file_text())
    return path


@pytest.fixture
def auth_args(users_file: Path) -> list[str]:
    return [
        "--auth_users",
        str(users_file),
        "--http_credentials",
        ":".join(ADMIN),
        "--http_realm",
        "Test Realm",
    ]


async def start_api(
    nursery: trio.Nursery, args: list[str], *, with_ui: bool = False
) -> tuple[CoreContext, str]:
    """marathon-rest and marathon-auth (and marathon-ui if asked) over in-memory state,
    on a free loopback port."""
    plugins: dict[str, object] = {"rest": marathon_rest.plugin, "auth": marathon_auth.plugin}
    if with_ui:
        plugins["ui"] = marathon_ui.plugin
    ctx = await memory_context(
        ["--http_port", "0", "--http_address", "127.0.0.1", *args], plugins=plugins
    )
    ctx.plugins.configure(ctx.config)  # as `marathon` does before starting services
    await nursery.start(ctx.election.run, trio.sleep_forever)
    ManualLeader.attach(ctx)  # the leader's live view: tasks, the queue
    url: str = await nursery.start(serve_api, ctx)
    return ctx, url


@pytest.fixture
async def api_url(nursery: trio.Nursery, auth_args: list[str]) -> str:
    _, url = await start_api(nursery, auth_args)
    return url


@pytest.fixture
async def client(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url, timeout=10) as client:
        yield client
