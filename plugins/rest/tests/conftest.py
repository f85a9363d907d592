from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import suppress
from pathlib import Path

import httpx
import pytest
import trio

import marathon_rest.plugin
from marathon_core.testing.context import CoreContext, memory_context
from marathon_core.testing.processes import running_server, script_server
from marathon_rest.server import serve_api

#: Options of the API under test; tests may extend them through ``api_args``.
BASE_ARGS = ["--http_port", "0", "--http_address", "127.0.0.1"]


@pytest.fixture
def api_args() -> list[str]:
    return []


@pytest.fixture
def extra_plugins() -> dict[str, object]:
    """Plugins registered beside marathon-rest (tests override this)."""
    return {}


@pytest.fixture
async def api_context(
    api_args: list[str], extra_plugins: dict[str, object], nursery: trio.Nursery
) -> CoreContext:
    """The core's context over in-memory state; this process leads (no term runs)."""
    ctx = await memory_context(
        [*BASE_ARGS, *api_args], plugins={"rest": marathon_rest.plugin, **extra_plugins}
    )
    await nursery.start(ctx.election.run, trio.sleep_forever)
    return ctx


@pytest.fixture
async def api_url(nursery: trio.Nursery, api_context: CoreContext) -> str:
    """The API served on a free loopback port, over real HTTP."""
    url: str = await nursery.start(serve_api, api_context)
    return url


@pytest.fixture
async def client(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def api_process_url() -> Iterator[str]:
    """The API with in-memory state in a process of its own, for synchronous clients
    (their calls would block this process's event loop); mark the users ``processes``."""
    with script_server(Path(__file__).with_name("serve_memory_state.py")) as url:
        assert url.startswith("http://"), url
        yield url


@pytest.fixture
def mesos_master(tmp_path: Path) -> Iterator[str]:
    """A standalone embedded Mesos master with two agent processes that offer ports,
    shared by the ``marathon`` processes of a failover test."""
    command = [
        sys.executable, "-m", "marathon_mesos_local.cli",
        "--port", "0", "--agents", "2", "--agent-port", "0", "--work_dir", str(tmp_path / "mesos"),
        "--agent-resources", "cpus:4;mem:2048;disk:1000;ports:[31000-31200]",
    ]  # fmt: skip
    with running_server(command, re.compile(r"listening on (http://\S+)")) as master:
        yield master.url
        with suppress(subprocess.TimeoutExpired):
            master.stop(timeout=10)
