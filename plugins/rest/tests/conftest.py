from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import trio

from marathon_core.config import parse_config
from marathon_core.plugins import get_plugin_host
from marathon_core.service import ServiceContext
from marathon_rest.server import serve_api


@pytest.fixture
async def api_url(nursery: trio.Nursery) -> str:
    """The API served on a free loopback port, over real HTTP."""
    config = parse_config(["--http_port", "0", "--http_address", "127.0.0.1"], environ={})
    host = get_plugin_host(load_entrypoints=False)
    ctx = ServiceContext(config=config, plugins=host, master_url="http://127.0.0.1:5050")
    url: str = await nursery.start(serve_api, ctx)
    return url


@pytest.fixture
async def client(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url, timeout=10) as client:
        yield client
