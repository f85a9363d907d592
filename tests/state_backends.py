"""Storage backends for the state tests: one parametrized fixture over all of them.

The ZooKeeper backend runs against the session's real ZooKeeper (the
``zookeeper`` fixture of ``marathon_core.testing.pytest_plugin``); each test
gets its own chroot, and reopening connects a new client (a new session) to
the same chroot.  Test modules import
the fixtures from here (``from state_backends import backend, store``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import attrs
import pytest

from marathon_core.state.memory import MemoryStorage, MemoryTree
from marathon_core.state.sqlite import SqliteStorage
from marathon_core.state.storage import Storage
from marathon_core.state.zk.storage import ZkStorage


@attrs.define
class Backend:
    """Opens a backend, and reopens the same data (a restart)."""

    name: str
    open: Callable[[], Awaitable[Storage]]


def _memory(tmp_path: Path) -> Backend:
    tree = MemoryTree()

    async def open_() -> Storage:
        return MemoryStorage(tree)

    return Backend("memory", open_)


def _sqlite(tmp_path: Path) -> Backend:
    async def open_() -> Storage:
        return await SqliteStorage.open(tmp_path / "state.sqlite3", synchronous="NORMAL")

    return Backend("sqlite", open_)


def _zk(tmp_path: Path, request: pytest.FixtureRequest, *, cache_reads: bool = False) -> Backend:
    # Requested here, not in the fixture's signature: only zk cases need (or skip without) it.
    url: str = request.getfixturevalue("zk_url")

    async def open_() -> Storage:
        return await ZkStorage.connect(
            url, session_timeout=5.0, timeout=5.0, cache_reads=cache_reads
        )

    return Backend("zk-cached" if cache_reads else "zk", open_)


BACKENDS: dict[str, Callable[[Path, pytest.FixtureRequest], Backend]] = {
    "memory": lambda tmp_path, request: _memory(tmp_path),
    "sqlite": lambda tmp_path, request: _sqlite(tmp_path),
    "zk": _zk,
    # What a marathon process with --zk uses: watched reads kept in memory.
    "zk-cached": lambda tmp_path, request: _zk(tmp_path, request, cache_reads=True),
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return BACKENDS[request.param](tmp_path, request)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Storage]:
    s = await backend.open()
    try:
        yield s
    finally:
        await s.aclose()
