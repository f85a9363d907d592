"""Storage backends for the state tests: one parametrized fixture over all of them.

The ZooKeeper backend joins by adding a case to ``BACKENDS`` whose ``open``
gives each test its own chroot (conventions #31, #32).  Test modules import
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


BACKENDS = {"memory": _memory, "sqlite": _sqlite}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return BACKENDS[request.param](tmp_path)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Storage]:
    s = await backend.open()
    try:
        yield s
    finally:
        await s.aclose()
