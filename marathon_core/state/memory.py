"""In-memory storage: the reference behaviour of the contract, used in tests.

Nothing here blocks, so no thread is involved; every method still checkpoints
so code tested against it sees the same scheduling points as with a real store.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import trio

from marathon_core.errors import NotFoundError, StorageError, VersionConflictError
from marathon_core.state.storage import (
    Check,
    Create,
    Delete,
    Entry,
    Op,
    Storage,
    Update,
    parent_of,
    validate_key,
)

__all__ = ["MemoryStorage", "MemoryTree"]


@attrs.define
class MemoryTree:
    """The data of a memory store; share one between stores to "reopen" it."""

    values: dict[str, tuple[bytes, int]] = attrs.field(factory=dict)
    #: parent key -> child name -> number of keys at or below that child
    dirs: dict[str, dict[str, int]] = attrs.field(factory=dict)

    def _link(self, key: str, delta: int) -> None:
        k = key
        while True:
            parent = parent_of(k)
            name = k[len(parent) + 1 :] if parent else k
            kids = self.dirs.setdefault(parent, {})
            n = kids.get(name, 0) + delta
            if n:
                kids[name] = n
            else:
                kids.pop(name, None)
                if not kids:
                    del self.dirs[parent]
            if not parent:
                return
            k = parent


class MemoryStorage(Storage):
    """A :class:`Storage` over a dict."""

    def __init__(self, tree: MemoryTree | None = None) -> None:
        self.tree = tree if tree is not None else MemoryTree()
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("memory storage is closed")

    async def get(self, key: str) -> Entry | None:
        await trio.lowlevel.checkpoint()
        self._check_open()
        found = self.tree.values.get(key)
        return None if found is None else Entry(key, found[0], found[1])

    async def get_many(self, keys: Sequence[str]) -> dict[str, Entry]:
        await trio.lowlevel.checkpoint()
        self._check_open()
        out: dict[str, Entry] = {}
        for k in keys:
            found = self.tree.values.get(k)
            if found is not None:
                out[k] = Entry(k, found[0], found[1])
        return out

    async def children(self, prefix: str) -> list[str]:
        await trio.lowlevel.checkpoint()
        self._check_open()
        return sorted(self.tree.dirs.get(prefix, {}))

    async def commit(self, ops: Sequence[Op]) -> list[int | None]:
        await trio.lowlevel.checkpoint()
        self._check_open()
        staged: dict[str, tuple[bytes, int] | None] = {}
        results: list[int | None] = []

        def current(k: str) -> tuple[bytes, int] | None:
            return staged[k] if k in staged else self.tree.values.get(k)

        for op in ops:
            validate_key(op.key)
            cur = current(op.key)
            if isinstance(op, Create):
                if cur is not None:
                    raise VersionConflictError(f"{op.key!r} exists already")
                staged[op.key] = (bytes(op.value), 0)
                results.append(0)
                continue
            if cur is None:
                raise NotFoundError(f"storage key {op.key!r} does not exist")
            if op.version is not None and op.version != cur[1]:
                raise VersionConflictError(
                    f"{op.key!r} is at version {cur[1]}, expected {op.version}"
                )
            if isinstance(op, Update):
                staged[op.key] = (bytes(op.value), cur[1] + 1)
                results.append(cur[1] + 1)
            elif isinstance(op, Delete):
                staged[op.key] = None
                results.append(None)
            else:
                assert isinstance(op, Check)
                results.append(None)
        for k, v in staged.items():
            existed = k in self.tree.values
            if v is None:
                if existed:
                    del self.tree.values[k]
                    self.tree._link(k, -1)
            else:
                self.tree.values[k] = v
                if not existed:
                    self.tree._link(k, +1)
        return results

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()
        self._closed = True
