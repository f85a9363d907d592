from __future__ import annotations

from collections.abc import AsyncIterator

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
