"""Chunk nodes: the parts of values too large for one request.

Chunks are written before the transaction that stores their manifest (which
also checks that every chunk exists), so readers see the old or the new value,
never a mix.  Chunks no value references any more (replaced, deleted, or left
by a failed commit) are swept after later commits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kazoo import exceptions as ke

from marathon_core.errors import StorageUnavailableError
from marathon_core.state.storage import Entry
from marathon_core.state.zk.client import ZkClient
from marathon_core.state.zk.encoding import Blob, Manifest, decode_inline, is_manifest
from marathon_core.state.zk.layout import ZkLayout, parse_chunk_name

__all__ = ["ChunkStore"]

#: A kazoo watcher for value nodes, or None (the read cache is off).
Watch = Callable[[Any], None] | None


class ChunkStore:
    """Writes, reads and sweeps the chunk nodes below ``<root>/#blobs``."""

    def __init__(self, zk: ZkClient, layout: ZkLayout) -> None:
        self.zk = zk
        self.layout = layout
        #: Chunks may exist, some no value references any more: sweep after commits.
        self.may_exist = False
        #: Blob ids written by commits still in flight (never swept).
        self.inflight: set[str] = set()

    async def prepare(self) -> None:
        """Create the chunk directory; note whether chunks are left from earlier runs."""
        blobs = self.layout.blobs_dir

        def fn() -> int:
            self.zk.wait(self.zk.kazoo.ensure_path_async(blobs))
            return len(self.zk.wait(self.zk.kazoo.get_children_async(blobs)))

        self.may_exist = await self.zk.call(fn) > 0

    def read(self, key: str, watch: Watch) -> Entry | None:
        """In a worker thread: a chunked value, re-read if it changes while reading."""
        kz = self.zk.kazoo
        for _ in range(5):
            try:
                data, stat = self.zk.wait(kz.get_async(self.layout.value_path(key), watch))
            except ke.NoNodeError:
                return None
            if not is_manifest(data):
                return Entry(key, decode_inline(data, key), stat.version)
            m = Manifest.load(data, key)
            pending = [kz.get_async(self.layout.chunk_path(key, m.id, i)) for i in range(m.chunks)]
            try:
                payload = b"".join(self.zk.wait(r)[0] for r in pending)
            except ke.NoNodeError:
                continue  # replaced and swept while we read: read again
            return Entry(key, m.unpack(payload, key), stat.version)
        raise StorageUnavailableError(f"zookeeper: {key!r} kept changing while being read")

    def write(self, blobs: list[Blob]) -> list[str]:
        """In a worker thread: create every chunk (pipelined); their paths."""
        if not blobs:
            return []
        kz = self.zk.kazoo
        pending = []
        for b in blobs:
            for n in range(b.manifest.chunks):
                path = self.layout.chunk_path(b.key, b.manifest.id, n)
                pending.append((path, kz.create_async(path, b.chunk(n))))
        written, error = [], None
        for path, r in pending:
            try:
                self.zk.wait(r)
                written.append(path)
            except Exception as exc:
                if isinstance(exc, ke.NodeExistsError):  # a re-plan writes the same chunk again
                    written.append(path)
                elif error is None:
                    error = exc
        if error is not None:
            self.delete_quietly(written)
            raise error
        return written

    def delete_quietly(self, paths: list[str]) -> None:
        """In a worker thread: delete ``paths``, ignoring failures."""
        pending = [self.zk.kazoo.delete_async(p) for p in paths]
        for r in pending:
            try:
                self.zk.wait(r)
            except Exception:  # leftovers are swept later
                continue

    async def sweep(self) -> int:
        """Delete chunk nodes no value references any more; how many were deleted."""
        blobs_dir = self.layout.blobs_dir
        inflight = frozenset(self.inflight)

        def fn() -> int | None:
            kz = self.zk.kazoo
            names = self.zk.wait(kz.get_children_async(blobs_dir))
            if not names:
                return None
            by_key: dict[str, list[tuple[str, str]]] = {}
            for n in names:
                parsed = parse_chunk_name(n)
                if parsed is None:
                    continue
                k, blob_id = parsed
                by_key.setdefault(k, []).append((blob_id, n))
            pending = [(k, kz.get_async(self.layout.value_path(k))) for k in by_key]
            doomed = []
            for k, r in pending:
                current = None
                try:
                    data, _ = self.zk.wait(r)
                    if is_manifest(data):
                        current = Manifest.load(data, k).id
                except Exception:  # a missing value references nothing
                    pass
                doomed += [
                    f"{blobs_dir}/{n}"
                    for blob_id, n in by_key[k]
                    if blob_id != current and blob_id not in inflight
                ]
            self.delete_quietly(doomed)
            return len(doomed)

        swept = await self.zk.call(fn)
        if swept is None:
            self.may_exist = False
        return swept or 0
