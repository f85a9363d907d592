"""Reads: pipelined, and with a :class:`ReadCache` watched so it drops what changes.

With a cache every value and child list read is kept and watched; a watch that
fires drops what it names, and a session event (kazoo dropped its watches)
drops everything.  The storage drops what its own commits touch and everything
on a connection state change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kazoo import exceptions as ke

from marathon_core.state.readcache import ReadCache
from marathon_core.state.storage import Entry
from marathon_core.state.zk.chunks import ChunkStore
from marathon_core.state.zk.client import ZkClient
from marathon_core.state.zk.encoding import decode_inline, is_manifest
from marathon_core.state.zk.layout import ZkLayout, child_names

__all__ = ["READ_BATCH", "ZkReader"]

#: Keys read per pipelined round; bounds what is outstanding at once.
READ_BATCH = 2000


class ZkReader:
    """Values and child lists, from ``cache`` when it has them (it is optional)."""

    def __init__(
        self, zk: ZkClient, layout: ZkLayout, chunks: ChunkStore, cache: ReadCache | None
    ) -> None:
        self.zk = zk
        self.layout = layout
        self.chunks = chunks
        self.cache = cache

    # -- watches (kazoo's callback thread) ----------------------------------------------

    def _on_value_event(self, event: Any) -> None:
        """A data watch fired (kazoo's callback thread)."""
        cache = self.cache
        assert cache is not None
        key = self.layout.key_of_value_path(event.path or "")
        if key is not None:
            self.zk.hop(lambda: cache.drop_value(key))
        else:  # a session event: kazoo dropped its watches
            self.zk.hop(cache.clear)

    def _on_children_event(self, event: Any) -> None:
        """A child watch fired (kazoo's callback thread)."""
        cache = self.cache
        assert cache is not None
        prefix = self.layout.prefix_of_dir_path(event.path or "")
        if prefix is not None:
            self.zk.hop(lambda: cache.drop_children(prefix))
        else:
            self.zk.hop(cache.clear)

    # -- reads --------------------------------------------------------------------------

    def _read_values(self, keys: Sequence[str]) -> dict[str, Entry]:
        """In a worker thread: pipelined reads of value nodes, chunks assembled."""
        kz = self.zk.kazoo
        watch = self._on_value_event if self.cache is not None else None
        out: dict[str, Entry] = {}
        for start in range(0, len(keys), READ_BATCH):
            batch = keys[start : start + READ_BATCH]
            pending = [(k, kz.get_async(self.layout.value_path(k), watch)) for k in batch]
            for k, res in pending:
                try:
                    data, stat = self.zk.wait(res)
                except ke.NoNodeError:
                    continue
                if is_manifest(data):
                    entry = self.chunks.read(k, watch)
                    if entry is not None:
                        out[k] = entry
                else:
                    out[k] = Entry(k, decode_inline(data, k), stat.version)
        return out

    async def get_many(self, keys: Sequence[str]) -> dict[str, Entry]:
        """Entries of the keys (not empty) that exist."""
        cache = self.cache
        if cache is None:
            return await self.zk.call(self._read_values, list(keys), abandon_on_cancel=True)
        hits = {k: e for k in keys if (e := cache.values.get(k)) is not None}
        missing = [k for k in keys if k not in hits]
        if not missing:
            return hits
        generation = cache.generation
        read = await self.zk.call(self._read_values, missing, abandon_on_cancel=True)
        cache.fill(generation, read.values())
        return hits | read

    async def children(self, prefix: str) -> list[str]:
        """Sorted names one level below ``prefix`` (a valid key or ``""``)."""
        path = self.layout.dir_path(prefix)
        cache = self.cache
        watch = self._on_children_event if cache is not None else None
        if cache is not None and (names := cache.children.get(prefix)) is not None:
            return list(names)

        def fn() -> list[str] | None:
            """The names; None if the directory does not exist (then nothing is watched)."""
            try:
                nodes = self.zk.wait(self.zk.kazoo.get_children_async(path, watch))
            except ke.NoNodeError:
                return None
            return child_names(nodes)

        generation = cache.generation if cache is not None else 0
        names = await self.zk.call(fn, abandon_on_cancel=True)
        if names is None:
            return []
        if cache is not None:
            cache.fill_children(generation, prefix, names)
        return list(names)
