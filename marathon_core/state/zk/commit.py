"""Running a commit as one ZooKeeper ``multi`` and mapping its outcome.

Chunks are written first, then the planned transaction is sent.  If the tree
changed underneath (a directory created or removed concurrently), the
transaction fails as a whole and is planned again; only the caller's own ops
produce :class:`VersionConflictError` / :class:`NotFoundError`, and a failed
fencing check :class:`FencedWriteError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

from kazoo import exceptions as ke

from marathon_core.errors import (
    FencedWriteError,
    NotFoundError,
    StorageError,
    VersionConflictError,
    WriteTooLargeError,
)
from marathon_core.state.storage import Create, Delete, Op, Update, validate_key
from marathon_core.state.zk.chunks import ChunkStore
from marathon_core.state.zk.client import ZkClient
from marathon_core.state.zk.encoding import Blob
from marathon_core.state.zk.errors import map_kazoo_error
from marathon_core.state.zk.layout import ZkLayout
from marathon_core.state.zk.payloads import MAX_REQUEST, Payloads
from marathon_core.state.zk.transaction import TxOp, TxPlanner, ZnodeCheck

__all__ = ["STRUCTURE_ATTEMPTS", "Committer"]

#: Plans of a commit before a tree that keeps changing is reported as a conflict.
STRUCTURE_ATTEMPTS = 10


class _Retry(StorageError):
    """The tree changed under a planned transaction: plan again (never escapes)."""


class Committer:
    """Applies commits: plan, fit into one request, write chunks, send, map the outcome."""

    def __init__(
        self, zk: ZkClient, layout: ZkLayout, chunks: ChunkStore, compress_threshold: int
    ) -> None:
        self.zk = zk
        self.layout = layout
        self.chunks = chunks
        self.compress_threshold = compress_threshold
        self.planner = TxPlanner(zk, layout)

    async def commit(self, ops: list[Op]) -> list[int | None]:
        """Apply ``ops`` (not empty) atomically; each key's new version."""
        for op in ops:
            if not isinstance(op, ZnodeCheck):
                validate_key(op.key)
        payloads = Payloads.of(ops, self.layout, self.compress_threshold)
        try:
            for _attempt in range(STRUCTURE_ATTEMPTS):
                tx = await self.planner.plan(ops, payloads)
                if sum(t.size() for t in tx) > MAX_REQUEST:
                    if not payloads.externalize(ops):
                        raise WriteTooLargeError(
                            f"{len(ops)} stored values are more than the {MAX_REQUEST} bytes "
                            "ZooKeeper accepts in one transaction: apply the change in parts"
                        )
                    continue
                for b in payloads.blobs.values():
                    self.chunks.inflight.add(b.manifest.id)
                    self.chunks.may_exist = True
                try:
                    results = await self.zk.call(self._execute, ops, tx, payloads.blobs)
                except _Retry:
                    self.planner.forget()
                    continue
                self.planner.committed(tx)
                if self.chunks.may_exist and any(isinstance(op, Update | Delete) for op in ops):
                    await self.chunks.sweep()
                return results
            raise VersionConflictError(
                "zookeeper: the tree kept changing under the transaction; try again"
            )
        finally:
            for b in payloads.blobs.values():
                self.chunks.inflight.discard(b.manifest.id)

    def _execute(
        self, ops: Sequence[Op], tx: list[TxOp], blobs: dict[int, Blob]
    ) -> list[int | None]:
        """In a worker thread: write chunks, commit the transaction, map its outcome."""
        written = self.chunks.write(list(blobs.values()))
        t = self.zk.kazoo.transaction()
        for op in tx:
            if op.method == "create":
                t.create(op.path, op.data)
            elif op.method == "set_data":
                t.set_data(op.path, op.data, op.version)
            elif op.method == "delete":
                t.delete(op.path, op.version)
            else:
                t.check(op.path, op.version)
        try:
            results = self.zk.wait(t.commit_async())
        except BaseException:
            self.chunks.delete_quietly(written)
            raise
        failed = next(
            (
                (j, r)
                for j, r in enumerate(results)
                if isinstance(r, Exception)
                and not isinstance(r, ke.RolledBackError | ke.RuntimeInconsistency)
            ),
            None,
        )
        if failed is None:
            return _versions(len(ops), tx, results)
        self.chunks.delete_quietly(written)
        j, err = failed
        _raise_failure(ops, tx[j], err)


def _versions(count: int, tx: list[TxOp], results: list[Any]) -> list[int | None]:
    """The new version of each of the caller's ops from an applied transaction."""
    out: list[int | None] = [None] * count
    for op, r in zip(tx, results, strict=True):
        if op.kind == "user":
            if op.method == "create":
                out[op.index] = 0
            elif op.method == "set_data":
                out[op.index] = r.version
    return out


def _raise_failure(ops: Sequence[Op], op: TxOp, err: Exception) -> NoReturn:
    """The core error for the transaction's failed ``op``; :class:`_Retry` if the tree
    changed under the plan rather than the caller's own op failing."""
    if op.kind == "fence":
        raise FencedWriteError(
            f"write refused: fencing node {op.path} is gone or changed (leadership lost)"
        )
    if op.kind != "user":
        raise _Retry()
    user = ops[op.index]
    if isinstance(err, ke.NoNodeError):
        if isinstance(user, Create):
            raise _Retry()  # its directory vanished under us
        raise NotFoundError(f"storage key {user.key!r} does not exist")
    if isinstance(err, ke.NodeExistsError):
        raise VersionConflictError(f"{user.key!r} exists already")
    if isinstance(err, ke.BadVersionError):
        raise VersionConflictError(f"{user.key!r} is not at the expected version")
    if isinstance(err, ke.NotEmptyError):  # pragma: no cover - value nodes have no children
        raise _Retry()
    raise map_kazoo_error(err)
