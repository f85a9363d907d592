"""Planning one ZooKeeper ``multi`` for a commit: the caller's ops, implicit directories, fencing.

The transaction creates missing directory nodes in front of the ops that need
them and deletes directories that end up empty at its end; when a directory
loses entries but keeps others it also checks that one kept sibling still
exists, so two concurrent deletes can never strand an empty directory.  Which
directories exist is read before planning and may be stale by the time the
transaction runs: then it fails as a whole and is planned again
(:mod:`~marathon_core.state.zk.commit`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import attrs
from kazoo import exceptions as ke

from marathon_core.state.storage import Check, Create, Delete, Op, Update, parent_of
from marathon_core.state.zk.client import ZkClient
from marathon_core.state.zk.layout import VALUE_SUFFIX, ZkLayout
from marathon_core.state.zk.payloads import OP_OVERHEAD, Payloads

__all__ = ["TxOp", "TxPlanner", "ZnodeCheck"]


@attrs.frozen
class ZnodeCheck(Check):
    """A fencing check on an absolute znode (``key``), e.g. the leader's election node.

    Only :class:`~marathon_core.state.zk.storage.ZkStorage` accepts it; it fails
    the whole commit with :class:`FencedWriteError` if the node is gone or at
    another version.
    """


@attrs.define
class TxOp:
    """One op of the ZooKeeper transaction and what it stands for."""

    kind: Literal["user", "dir-create", "dir-delete", "keep", "chunk", "fence"]
    method: str  # create, set_data, delete, check
    path: str
    data: bytes = b""
    version: int = -1
    index: int = -1  # position in the caller's ops for kind "user"

    def size(self) -> int:
        return len(self.path) + len(self.data) + OP_OVERHEAD


class TxPlanner:
    """Plans transactions, remembering which directories exist between commits."""

    def __init__(self, zk: ZkClient, layout: ZkLayout) -> None:
        self.zk = zk
        self.layout = layout
        #: Directory keys known to exist (a hint: a wrong guess only costs a re-plan).
        self._dirs: set[str] = set()

    def committed(self, tx: list[TxOp]) -> None:
        """``tx`` was applied: the directories it created exist."""
        self._dirs.update(self.layout.relative(t.path) for t in tx if t.kind == "dir-create")

    def forget(self) -> None:
        """The tree changed under a transaction: stop trusting what is known."""
        self._dirs.clear()

    async def plan(self, ops: Sequence[Op], payloads: Payloads) -> list[TxOp]:
        """The ZooKeeper ops for ``ops``: implicit directories created and removed."""
        layout = self.layout
        # Which directories exist (ancestors of created keys, not known from earlier commits).
        wanted: set[str] = set()
        for op in ops:
            if isinstance(op, Create):
                d = parent_of(op.key)
                while d and d not in self._dirs and d not in wanted:
                    wanted.add(d)
                    d = parent_of(d)
        exists = await self._dirs_exist(sorted(wanted)) if wanted else {}
        self._dirs.update(d for d, e in exists.items() if e)

        def dir_exists(d: str) -> bool:
            return d == "" or exists.get(d, d in self._dirs)

        tx: list[TxOp] = []
        #: directory -> child node name -> present after the transaction (as far as we changed it)
        final: dict[str, dict[str, bool]] = {}
        created_dirs: set[str] = set()
        for i, op in enumerate(ops):
            path = layout.value_path(op.key) if not isinstance(op, ZnodeCheck) else op.key
            parent = parent_of(op.key)
            name = op.key[len(parent) + 1 :] if parent else op.key
            if isinstance(op, ZnodeCheck):
                tx.append(TxOp("fence", "check", op.key, version=op.version, index=i))
            elif isinstance(op, Create):
                chain = []
                d = parent
                while d and not dir_exists(d) and d not in created_dirs:
                    chain.append(d)
                    d = parent_of(d)
                for d in reversed(chain):
                    tx.append(TxOp("dir-create", "create", layout.dir_path(d)))
                    created_dirs.add(d)
                    dp = parent_of(d)
                    final.setdefault(dp, {})[d[len(dp) + 1 :] if dp else d] = True
                tx.append(TxOp("user", "create", path, payloads.data(i), index=i))
                final.setdefault(parent, {})[name + VALUE_SUFFIX] = True
            elif isinstance(op, Update):
                v = -1 if op.version is None else op.version
                tx.append(TxOp("user", "set_data", path, payloads.data(i), version=v, index=i))
            elif isinstance(op, Delete):
                v = -1 if op.version is None else op.version
                tx.append(TxOp("user", "delete", path, version=v, index=i))
                final.setdefault(parent, {})[name + VALUE_SUFFIX] = False
            else:
                assert isinstance(op, Check)
                tx.append(TxOp("user", "check", path, version=op.version, index=i))
        for blob in payloads.blobs.values():
            for n in range(blob.manifest.chunks):
                tx.append(TxOp("chunk", "check", layout.chunk_path(blob.key, blob.manifest.id, n)))
        tx.extend(await self._prune_dirs(final))
        return tx

    async def _dirs_exist(self, dirs: list[str]) -> dict[str, bool]:
        def fn() -> dict[str, bool]:
            pending = [(d, self.zk.kazoo.exists_async(self.layout.dir_path(d))) for d in dirs]
            return {d: self.zk.wait(r) is not None for d, r in pending}

        return await self.zk.call(fn)

    async def _prune_dirs(self, final: dict[str, dict[str, bool]]) -> list[TxOp]:
        """Deletes of directories the transaction empties, deepest first, and keep-checks."""
        out: list[TxOp] = []
        done: set[str] = set()
        while True:
            todo = [
                d for d, names in final.items() if d and d not in done and not all(names.values())
            ]
            if not todo:
                return out
            depth = max(d.count("/") for d in todo)
            level = [d for d in todo if d.count("/") == depth]
            listed = await self._list_dirs(level)
            for d in sorted(level):
                done.add(d)
                names = final[d]
                base = listed[d]
                kept_old = sorted(n for n in base if names.get(n, True))
                added = [n for n, present in names.items() if present and n not in base]
                if not kept_old and not added:
                    out.append(TxOp("dir-delete", "delete", self.layout.dir_path(d)))
                    dp = parent_of(d)
                    final.setdefault(dp, {})[d[len(dp) + 1 :] if dp else d] = False
                    self._dirs.discard(d)
                elif not added:
                    out.append(TxOp("keep", "check", f"{self.layout.dir_path(d)}/{kept_old[0]}"))

    async def _list_dirs(self, dirs: list[str]) -> dict[str, set[str]]:
        def fn() -> dict[str, set[str]]:
            pending = [(d, self.zk.kazoo.get_children_async(self.layout.dir_path(d))) for d in dirs]
            out: dict[str, set[str]] = {}
            for d, r in pending:
                try:
                    out[d] = set(self.zk.wait(r))
                except ke.NoNodeError:
                    out[d] = set()
            return out

        return await self.zk.call(fn)
