"""Storage backends for the state tests: one parametrized fixture over all of them,
and a check that random transactions do on a backend what they do in memory.

The ZooKeeper backend runs against the session's real ZooKeeper (the
``zookeeper`` fixture of ``marathon_core.testing.pytest_plugin``; its cases are
marked ``zookeeper``); each test gets its own chroot, and reopening connects a
new client (a new session) to the same chroot.  Test
modules import the fixtures from here (``from state_backends import backend, store``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import attrs
import pytest
from hypothesis import strategies as st

from marathon_core.errors import NotFoundError, VersionConflictError
from marathon_core.state.memory import MemoryStorage, MemoryTree
from marathon_core.state.sqlite import SqliteStorage
from marathon_core.state.storage import Check, Create, Delete, Op, Storage, Update
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


@pytest.fixture(
    params=[
        pytest.param(name, marks=pytest.mark.zookeeper) if name.startswith("zk") else name
        for name in sorted(BACKENDS)
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return BACKENDS[request.param](tmp_path, request)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Storage]:
    s = await backend.open()
    try:
        yield s
    finally:
        await s.aclose()


def transactions(keys: Sequence[str], *, max_size: int) -> st.SearchStrategy[list[list[Op]]]:
    """Up to ``max_size`` random transactions of up to four operations on ``keys``."""
    key = st.sampled_from(list(keys))
    op = st.one_of(
        st.builds(Create, key, st.binary(max_size=4)),
        st.builds(Update, key, st.binary(max_size=4), st.none() | st.integers(0, 2)),
        st.builds(Delete, key, st.none() | st.integers(0, 2)),
        st.builds(Check, key, st.integers(0, 2)),
    )
    return st.lists(st.lists(op, max_size=4), max_size=max_size)


async def assert_behaves_like_memory(
    storage: Storage, txs: list[list[Op]], *, keys: Sequence[str], prefixes: Sequence[str]
) -> None:
    """Commit ``txs`` to ``storage`` and to memory: the same result or error each time,
    then the same children under ``prefixes`` and the same values of ``keys``."""
    memory = MemoryStorage()
    for ops in txs:
        outcomes: list[object] = []
        for s in (memory, storage):
            try:
                outcomes.append(await s.commit(ops))
            except (VersionConflictError, NotFoundError) as exc:
                outcomes.append(type(exc))
        assert outcomes[0] == outcomes[1], ops
    for prefix in prefixes:
        assert await memory.children(prefix) == await storage.children(prefix), prefix
    assert await memory.get_many(keys) == await storage.get_many(keys)
