"""ZooKeeper storage: the ``--zk`` backend of the storage interface.

Values live below ``<zk path>/state`` as :mod:`~marathon_core.state.zk.layout`
describes.  :meth:`ZkStorage.commit` sends one ZooKeeper ``multi``
(:mod:`~marathon_core.state.zk.transaction`, :mod:`~marathon_core.state.zk.commit`);
values too large for one request go into chunk nodes
(:mod:`~marathon_core.state.zk.payloads`, :mod:`~marathon_core.state.zk.chunks`),
and readers see the old or the new value, never a mix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from marathon_core.errors import StorageError
from marathon_core.state.readcache import ReadCache
from marathon_core.state.storage import Entry, Op, Storage, validate_key
from marathon_core.state.zk.chunks import ChunkStore
from marathon_core.state.zk.client import ZkClient
from marathon_core.state.zk.commit import Committer
from marathon_core.state.zk.encoding import COMPRESS_THRESHOLD
from marathon_core.state.zk.layout import ZkLayout
from marathon_core.state.zk.reads import ZkReader
from marathon_core.state.zk.transaction import ZnodeCheck
from marathon_core.state.zk.url import ZkUrl

__all__ = ["ZkStorage"]

T = TypeVar("T")


class ZkStorage(Storage):
    """A :class:`Storage` in ZooKeeper below ``<zk path>/state``.

    With ``cache_reads`` every value and child list read is kept in a
    :class:`ReadCache` and watched; a watch that fires, a commit of this process
    and any connection state change drop what they may have changed.  Reads are
    then as fresh as ZooKeeper's own (a session sees its own writes; other
    sessions' writes arrive with their notifications), and :meth:`sync` waits for
    every notification of what was committed before it.
    """

    def __init__(
        self,
        zk: ZkClient,
        base: str,
        *,
        owns_client: bool = False,
        compress_threshold: int = COMPRESS_THRESHOLD,
        cache_reads: bool = False,
    ) -> None:
        """Use :meth:`open` (shared client) or :meth:`connect` (own client)."""
        self.zk = zk
        self.base = base.rstrip("/")
        self._owns_client = owns_client
        self._closed = False
        self._cache = ReadCache() if cache_reads else None
        if (cache := self._cache) is not None:
            # Notifications may be lost across a disconnection: forget everything.
            zk.on_state_change(lambda _state: cache.clear())
        layout = ZkLayout(self.base)
        self._chunks = ChunkStore(zk, layout)
        self._reader = ZkReader(zk, layout, self._chunks, self._cache)
        self._committer = Committer(zk, layout, self._chunks, compress_threshold)

    @classmethod
    async def open(
        cls,
        zk: ZkClient,
        *,
        path: str | None = None,
        compress_threshold: int = COMPRESS_THRESHOLD,
        cache_reads: bool = False,
    ) -> ZkStorage:
        """Storage on a shared client, below ``path`` (default ``<zk url path>/state``)."""
        base = path if path is not None else f"{zk.url.path}/state"
        storage = cls(zk, base, compress_threshold=compress_threshold, cache_reads=cache_reads)
        await storage._chunks.prepare()
        return storage

    @classmethod
    async def connect(
        cls,
        url: str | ZkUrl,
        *,
        session_timeout: float = 10.0,
        timeout: float = 10.0,
        compress_threshold: int = COMPRESS_THRESHOLD,
        cache_reads: bool = False,
    ) -> ZkStorage:
        """Storage with its own client, closed by :meth:`aclose`."""
        zk = await ZkClient.connect(url, session_timeout=session_timeout, timeout=timeout)
        try:
            storage = cls(
                zk,
                f"{zk.url.path}/state",
                owns_client=True,
                compress_threshold=compress_threshold,
                cache_reads=cache_reads,
            )
            await storage._chunks.prepare()
        except BaseException:
            await zk.aclose()
            raise
        return storage

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("zookeeper storage is closed")

    # -- reads -------------------------------------------------------------------------

    async def get(self, key: str) -> Entry | None:
        return (await self.get_many([key])).get(key)

    async def get_many(self, keys: Sequence[str]) -> dict[str, Entry]:
        self._check_open()
        if not keys:
            return {}
        return await self._reader.get_many(keys)

    async def children(self, prefix: str) -> list[str]:
        self._check_open()
        if prefix:
            validate_key(prefix)
        return await self._reader.children(prefix)

    async def sync(self) -> None:
        """Wait until every watch notification for earlier commits has been applied.

        Why: a process that just won the election must not plan writes against a
        cached value whose change notification is still on its way.
        """
        if self._cache is not None:
            self._check_open()
            await self.zk.call(self.zk.drain_watches, self.base)

    def decoded(self, entry: Entry, decode: Callable[[bytes], T]) -> T:
        if self._cache is None:
            return decode(entry.value)
        return self._cache.decoded(entry, decode)

    @property
    def caches_reads(self) -> bool:
        return self._cache is not None

    async def wait_changed(self) -> None:
        if self._cache is None:
            await super().wait_changed()
        else:
            await self._cache.wait_changed()

    # -- commits -----------------------------------------------------------------------

    async def commit(self, ops: Sequence[Op]) -> list[int | None]:
        self._check_open()
        ops = list(ops)
        if not ops:
            return []
        if self._cache is None:
            return await self._committer.commit(ops)
        try:
            return await self._committer.commit(ops)
        finally:
            # Read-your-writes without waiting for the watches; after a failure the
            # outcome may be unknown, and a conflict means what we read is stale.
            self._cache.drop_written(op.key for op in ops if not isinstance(op, ZnodeCheck))

    async def sweep_chunks(self) -> int:
        """Delete chunk nodes no value references any more; how many were deleted.

        Runs after commits that replaced or deleted values while chunks exist;
        also usable by operators after a crash between writing and committing.
        """
        self._check_open()
        return await self._chunks.sweep()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            await self.zk.aclose()
