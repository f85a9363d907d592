from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio

import marathon_constraints.plugin
import marathon_rest.plugin
import marathon_ui.plugin
from marathon_core.testing.context import CoreContext, memory_context
from marathon_rest.server import serve_api


@pytest.fixture
def extra_plugins() -> dict[str, object]:
    return {}


@pytest.fixture
async def api_context(extra_plugins: dict[str, object], nursery: trio.Nursery) -> CoreContext:
    """The core's context over in-memory state with marathon-rest and marathon-ui."""
    ctx = await memory_context(
        ["--http_port", "0", "--http_address", "127.0.0.1"],
        plugins={
            "rest": marathon_rest.plugin,
            "ui": marathon_ui.plugin,
            "constraints": marathon_constraints.plugin,
            **extra_plugins,
        },
    )
    await nursery.start(ctx.election.run, trio.sleep_forever)
    return ctx


@pytest.fixture
async def client(
    nursery: trio.Nursery, api_context: CoreContext
) -> AsyncIterator[httpx.AsyncClient]:
    url: str = await nursery.start(serve_api, api_context)
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def screenshots(
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """Where the browser tests write a screenshot of each page they visit."""
    configured = os.environ.get("MARATHON_UI_SCREENSHOTS")
    path = Path(configured) if configured else tmp_path_factory.mktemp("ui-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path
