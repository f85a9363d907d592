"""Typed repositories over :class:`~marathon_core.state.storage.Storage`.

Layout (keys are escaped with :func:`~marathon_core.state.storage.segment`)::

    storage-version                       format marker (state/format.py)
    apps/<id>/current                     the current AppDefinition
    apps/<id>/versions/<version>          every kept version (max_versions, oldest pruned)
    group/<root>/versions/<version>       the root group, same scheme, but
    group/<root>/current                  holds the current version's name, not a copy
    group-refs/<hash>                     a chunk of a group's app references (refchunks.py)
    instances/<app id>                    the instances of one app, framed (instances.py)
    instances/<app id>%%<n>               more of them, when the app has many
    deployments/<id>                      one Deployment
    framework-id                          the Mesos framework id

Instances are stored batched per app, in buckets (``state/instances.py``).

Every write is planned as a list of ops against the versions just read and
committed as one transaction; a lost race (VersionConflictError, or
NotFoundError from a key that vanished) re-reads and re-plans.  Writes of
several repositories that belong together are composed the same way in
:class:`marathon_core.state.store.StateStore`.
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from typing import Any, Generic, TypeVar

import attrs
import trio

from marathon_core.errors import NotFoundError, StorageError, VersionConflictError
from marathon_core.state.storage import (
    Create,
    Delete,
    Entry,
    Op,
    Storage,
    Update,
    segment,
    unsegment,
)

__all__ = [
    "DEFAULT_MAX_VERSIONS",
    "Codec",
    "Commit",
    "EntityRepository",
    "FrameworkIdRepository",
    "VersionedRepository",
    "decode_all",
    "transact",
]

#: Marathon's ``--zk_max_versions``.
DEFAULT_MAX_VERSIONS = 50

#: Attempts of a read-plan-commit cycle before a conflict is reported.
MAX_ATTEMPTS = 10

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")
E = TypeVar("E")

#: The function a repository commits through (the storage's, or a fenced one).
Commit = Callable[[Sequence[Op]], Awaitable[list[int | None]]]


@attrs.frozen
class Codec(Generic[T]):
    """How a repository turns its objects into bytes and back."""

    dumps: Callable[[T], bytes]
    loads: Callable[[bytes], T]


async def transact(
    commit: Commit,
    plan: Callable[[], Awaitable[Sequence[Op]]],
    *,
    lock: trio.Lock | None = None,
) -> bool:
    """Plan and commit until no race interferes; False if the plan was empty.

    Why: every plan is a compare-and-set against what it read, so losing a race
    to another process is normal and the answer is to read again, not to fail
    the request.  Writers in this process queue on ``lock`` (FIFO) instead, so
    they never starve each other with retries.
    """
    if lock is not None:
        async with lock:
            return await transact(commit, plan)
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            await trio.sleep(random.uniform(0, 0.002 * 2**attempt))
        ops = await plan()
        if not ops:
            return False
        try:
            await commit(ops)
        except (VersionConflictError, NotFoundError):
            continue
        return True
    raise VersionConflictError(f"gave up after {MAX_ATTEMPTS} conflicting attempts")


def _put_op(key: str, value: bytes, existing: Entry | None) -> Op:
    if existing is None:
        return Create(key, value)
    return Update(key, value, existing.version)


#: Seconds a bulk decode runs before it lets other tasks run: the API (``/ping``)
#: must stay responsive while a new leader loads or a deployment reads a root.
DECODE_SLICE = 0.003


async def decode_all(decode: Callable[[E], T], items: Iterable[E]) -> list[T]:
    """Decode many values with the cyclic GC paused, yielding to trio every
    :data:`DECODE_SLICE` seconds.

    Why no GC: loading 100k instances allocates millions of objects and the cyclic
    GC then spends as long rescanning them as decoding takes (measured: 4.3 s
    vs 2.1 s for 10k apps + 100k instances); decoding makes no cycles to collect.
    It stays paused across the yields too: resuming it between slices of a few
    milliseconds cost as much as never pausing it (measured: 9 s vs 4 s).
    """
    out: list[T] = []
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        deadline = time.perf_counter() + DECODE_SLICE
        for item in items:
            out.append(decode(item))
            if time.perf_counter() >= deadline:
                await trio.lowlevel.checkpoint()
                deadline = time.perf_counter() + DECODE_SLICE
    finally:
        if was_enabled:
            gc.enable()
    return out


class _Repository:
    def __init__(self, storage: Storage, commit: Commit | None, lock: trio.Lock | None) -> None:
        self.storage = storage
        self._commit: Commit = commit if commit is not None else storage.commit
        self._lock = lock if lock is not None else trio.Lock()

    async def _transact(self, plan: Callable[[], Awaitable[Sequence[Op]]]) -> bool:
        return await transact(self._commit, plan, lock=self._lock)


class EntityRepository(_Repository, Generic[T, K]):
    """One value per id, no history (deployments)."""

    def __init__(
        self,
        storage: Storage,
        category: str,
        codec: Codec[T],
        *,
        id_of: Callable[[T], K],
        parse_id: Callable[[str], K],
        commit: Commit | None = None,
        lock: trio.Lock | None = None,
    ) -> None:
        super().__init__(storage, commit, lock)
        self.category = category
        self.codec = codec
        self.id_of = id_of
        self.parse_id = parse_id

    def key(self, id: K) -> str:
        return f"{self.category}/{segment(str(id))}"

    def _load(self, entry: Entry) -> T:
        return self.storage.decoded(entry, self.codec.loads)

    async def get(self, id: K) -> T | None:
        entry = await self.storage.get(self.key(id))
        return None if entry is None else self._load(entry)

    async def ids(self) -> list[K]:
        return [self.parse_id(unsegment(n)) for n in await self.storage.children(self.category)]

    async def all(self) -> list[T]:
        found = await self.storage.get_children(self.category)
        return await decode_all(self._load, (e for _, e in sorted(found.items())))

    async def plan_put(self, obj: T) -> list[Op]:
        k = self.key(self.id_of(obj))
        return [_put_op(k, self.codec.dumps(obj), await self.storage.get(k))]

    async def put(self, obj: T) -> None:
        await self._transact(lambda: self.plan_put(obj))

    async def plan_delete(self, id: K) -> list[Op]:
        k = self.key(id)
        existing = await self.storage.get(k)
        return [] if existing is None else [Delete(k, existing.version)]

    async def delete(self, id: K) -> bool:
        """Delete ``id``; False if it did not exist."""
        return await self._transact(lambda: self.plan_delete(id))


class VersionedRepository(_Repository, Generic[T, K, V]):
    """Every version of each entity kept, up to ``max_versions`` (apps, the root group).

    ``current`` holds a copy of the current version, or with ``current_by_name`` only
    its version as text: then a store writes the value once (the root record of 10k
    apps is 490 KiB), and a reader that holds that version decoded reads a few bytes.
    """

    def __init__(
        self,
        storage: Storage,
        category: str,
        codec: Codec[T],
        *,
        id_of: Callable[[T], K],
        parse_id: Callable[[str], K],
        version_of: Callable[[T], V],
        parse_version: Callable[[str], V],
        version_order: Callable[[V], Any] | None = None,
        max_versions: int = DEFAULT_MAX_VERSIONS,
        current_by_name: bool = False,
        commit: Commit | None = None,
        lock: trio.Lock | None = None,
    ) -> None:
        super().__init__(storage, commit, lock)
        self.current_by_name = current_by_name
        if max_versions < 1:
            raise ValueError("max_versions must be at least 1")
        self.category = category
        self.codec = codec
        self.id_of = id_of
        self.parse_id = parse_id
        self.version_of = version_of
        self.parse_version = parse_version
        self._order: Callable[[V], Any] = version_order or (lambda v: v)
        self.max_versions = max_versions

    # keys
    def base_key(self, id: K) -> str:
        return f"{self.category}/{segment(str(id))}"

    def current_key(self, id: K) -> str:
        return f"{self.base_key(id)}/current"

    def version_key(self, id: K, version: V) -> str:
        return f"{self.base_key(id)}/versions/{segment(str(version))}"

    # reads
    def _load(self, entry: Entry) -> T:
        return self.storage.decoded(entry, self.codec.loads)

    async def get(self, id: K) -> T | None:
        """The current version of ``id``."""
        if not self.current_by_name:
            entry = await self.storage.get(self.current_key(id))
            return None if entry is None else self._load(entry)
        for _ in range(MAX_ATTEMPTS):
            version = await self.current_version(id)
            if version is None:
                return None
            found = await self.get_version(id, version)
            if found is not None:
                return found
            # pruned between the two reads: 50 newer versions were stored meanwhile
        raise StorageError(f"{self.current_key(id)!r} keeps naming versions that are gone")

    async def current_version(self, id: K) -> V | None:
        """The current version of ``id``, reading only its name (``current_by_name``)."""
        assert self.current_by_name, "only a repository that stores current by name"
        entry = await self.storage.get(self.current_key(id))
        return None if entry is None else self._current_name(entry)

    def _current_name(self, entry: Entry) -> V:
        try:
            return self.parse_version(entry.value.decode())
        except (UnicodeDecodeError, ValueError):
            raise StorageError(f"unreadable version name at {entry.key!r}") from None

    async def get_version(self, id: K, version: V) -> T | None:
        entry = await self.storage.get(self.version_key(id, version))
        return None if entry is None else self._load(entry)

    async def get_versions(self, refs: Iterable[tuple[K, V]]) -> dict[tuple[K, V], T]:
        """Many (id, version) pairs in one bulk read; missing pairs are left out."""
        keys = {self.version_key(i, v): (i, v) for i, v in refs}
        found = await self.storage.get_many(list(keys))
        values = await decode_all(self._load, found.values())
        return {keys[k]: v for k, v in zip(found, values, strict=True)}

    async def versions(self, id: K) -> list[V]:
        """Kept versions of ``id``, oldest first."""
        names = await self.storage.children(f"{self.base_key(id)}/versions")
        return sorted((self.parse_version(unsegment(n)) for n in names), key=self._order)

    async def ids(self) -> list[K]:
        return [self.parse_id(unsegment(n)) for n in await self.storage.children(self.category)]

    async def all(self) -> list[T]:
        """The current version of every entity, in one bulk read."""
        names = await self.storage.children(self.category)
        keys = [f"{self.category}/{n}/current" for n in names]
        found = await self.storage.get_many(keys)
        if self.current_by_name:
            named = [
                self.version_key(self.parse_id(unsegment(n)), self._current_name(found[k]))
                for n, k in zip(names, keys, strict=True)
                if k in found
            ]
            found = await self.storage.get_many(named)
            keys = named
        return await decode_all(self._load, (found[k] for k in keys if k in found))

    # writes
    async def plan_store(self, obj: T) -> list[Op]:
        """Ops that add ``obj`` as a new version, make it current and prune the oldest."""
        id, version = self.id_of(obj), self.version_of(obj)
        data = self.codec.dumps(obj)
        vkey = self.version_key(id, version)
        prefix = f"{self.base_key(id)}/versions"
        current = await self.storage.get(self.current_key(id))
        names = await self.storage.children(prefix)
        new = segment(str(version))
        ops: list[Op] = []
        ops.append(Update(vkey, data) if new in names else Create(vkey, data))
        named = str(version).encode() if self.current_by_name else data
        ops.append(_put_op(self.current_key(id), named, current))
        kept = sorted(
            set(names) | {new}, key=lambda n: self._order(self.parse_version(unsegment(n)))
        )
        excess = len(kept) - self.max_versions
        for name in kept:
            if excess <= 0:
                break
            if name != new:
                ops.append(Delete(f"{prefix}/{name}"))
                excess -= 1
        return ops

    async def store(self, obj: T) -> None:
        await self._transact(lambda: self.plan_store(obj))

    async def plan_delete(self, id: K) -> list[Op]:
        """Ops that remove ``id``: its current value and every version."""
        prefix = f"{self.base_key(id)}/versions"
        ops: list[Op] = [Delete(f"{prefix}/{n}") for n in await self.storage.children(prefix)]
        current = await self.storage.get(self.current_key(id))
        if current is not None:
            ops.append(Delete(self.current_key(id), current.version))
        return ops

    async def plan_retire(self, id: K, *, keep: Collection[V]) -> list[Op]:
        """Ops that remove ``id``'s current value and its versions except ``keep``.

        Why: versions that older stored snapshots still refer to (a root group version
        that a rollback may restore) must outlive the entity itself.
        """
        prefix = f"{self.base_key(id)}/versions"
        kept = {segment(str(v)) for v in keep}
        names = await self.storage.children(prefix)
        ops: list[Op] = [Delete(f"{prefix}/{n}") for n in names if n not in kept]
        current = await self.storage.get(self.current_key(id))
        if current is not None:
            ops.append(Delete(self.current_key(id), current.version))
        return ops

    async def delete(self, id: K) -> bool:
        """Delete ``id`` with all its versions; False if nothing was stored."""
        return await self._transact(lambda: self.plan_delete(id))


class FrameworkIdRepository(_Repository):
    """The Mesos framework id, written once on first registration and reused."""

    KEY = "framework-id"

    async def get(self) -> str | None:
        entry = await self.storage.get(self.KEY)
        if entry is None:
            return None
        try:
            return entry.value.decode()
        except UnicodeDecodeError:
            raise StorageError("stored framework id is not UTF-8") from None

    async def plan_set(self, framework_id: str) -> list[Op]:
        return [_put_op(self.KEY, framework_id.encode(), await self.storage.get(self.KEY))]

    async def set(self, framework_id: str) -> None:
        await self._transact(lambda: self.plan_set(framework_id))
