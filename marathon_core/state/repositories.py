"""Typed repositories over :class:`~marathon_core.state.storage.Storage`.

Layout (keys are escaped with :func:`~marathon_core.state.storage.segment`)::

    storage-version                       format marker (state/format.py)
    apps/<id>/current                     the current AppDefinition
    apps/<id>/versions/<version>          every kept version (max_versions, oldest pruned)
    group/<root>/versions/<version>       the root group, same scheme, but
    group/<root>/current                  holds the current version's name, not a copy
    group-refs/<hash>                     a chunk of a group's app references (refchunks.py)
    instances/<app id>                    the instances of one app, framed (see below)
    instances/<app id>%%<n>               more of them, when the app has many
    deployments/<id>                      one Deployment
    framework-id                          the Mesos framework id

Instances are stored batched per app.  Why: a new leader must load 10k apps and
100k instances within seconds, and on ZooKeeper a read costs a round trip (about
6.5k pipelined gets/s, so a znode per instance is ~17 s).  Batched per app the load
is one read per app, and the instances of an app are written together, which is
also how deployments and the tracker change them.  An app of more than
``BUCKET_SIZE`` instances is split into buckets of that size (the first bucket
lists the others, in a member with an empty name); a new instance goes into the
last bucket with room.  The cost: changing an instance rewrites its bucket, at most
``BUCKET_SIZE`` members, whatever the app's size (a launch of 10,000 instances
would otherwise rewrite megabytes per status update); members are length-prefixed
frames (state/frames.py), so the rewrite copies the other members as bytes without
decoding them, :meth:`InstanceRepository.plan_changes` folds many changes into one
rewrite per bucket -- callers that persist status updates should batch them -- and
:meth:`InstanceRepository.change` keeps the buckets of a large app it wrote, so the
next change to it neither reads nor unpacks them.  A snapshot plus journal would
make single updates O(1) but loading O(journal) and needs compaction; buckets per
app are the simpler store that meets the load target (numbers in
``benchmarks/bench_state.py``).

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
from marathon_core.state import frames
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
    "InstanceRepository",
    "VersionedRepository",
    "decode_all",
    "transact",
]

#: Marathon's ``--zk_max_versions``.
DEFAULT_MAX_VERSIONS = 50

#: Attempts of a read-plan-commit cycle before a conflict is reported.
MAX_ATTEMPTS = 10

#: Apps with at least this many instances have their stored value kept in memory
#: after a change (see :meth:`InstanceRepository.change`), at most ``KEEP_APPS`` of them.
KEEP_MIN_MEMBERS = 64
KEEP_APPS = 16

#: Instances per stored value (bucket) of an app; see the module docstring.
BUCKET_SIZE = 256
#: Between an app's key and the number of one of its further buckets: ``segment``
#: follows every ``%`` with two hex digits, so no app's key contains it.
BUCKET_MARK = "%%"
#: The member of an app's first bucket that lists the others (no instance id is empty).
_DIRECTORY = ""

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


@attrs.define
class _Bucket:
    """One stored value of an app's instances: its version and framed members."""

    version: int | None  # None: not stored yet
    members: dict[str, bytes]


@attrs.define
class _AppValue:
    """All buckets of one app's instances, and which bucket holds which member."""

    buckets: dict[int, _Bucket]
    where: dict[str, int]


class InstanceRepository(_Repository, Generic[T, K, V]):
    """Instances, stored as framed values per app, in buckets (see the module docstring).

    ``K`` is the instance id type, ``V`` the app id type.
    """

    def __init__(
        self,
        storage: Storage,
        codec: Codec[T],
        *,
        id_of: Callable[[T], K],
        app_of: Callable[[T], V],
        app_of_id: Callable[[K], V],
        parse_app: Callable[[str], V],
        category: str = "instances",
        sharing: Callable[[], Callable[[T], T]] | None = None,
        commit: Commit | None = None,
        lock: trio.Lock | None = None,
    ) -> None:
        super().__init__(storage, commit, lock)
        self.codec = codec
        #: Per bulk read, a function that makes the instances decoded share repeated
        #: values (``state/sharing.py``).
        self.sharing = sharing
        self.id_of = id_of
        self.app_of = app_of
        self.app_of_id = app_of_id
        self.parse_app = parse_app
        self.category = category
        #: Large apps' buckets as last written by :meth:`change`, by first-bucket key.
        self._kept: dict[str, _AppValue] = {}

    def key(self, app: V, bucket: int = 0) -> str:
        base = f"{self.category}/{segment(str(app))}"
        return base if bucket == 0 else f"{base}{BUCKET_MARK}{bucket}"

    def _decode_batch(self, value: bytes) -> list[T]:
        loads = self.codec.loads
        return [loads(v) for k, v in frames.unpack_pairs(value).items() if k != _DIRECTORY]

    def _decode(self, entry: Entry) -> list[T]:
        return self.storage.decoded(entry, self._decode_batch)

    async def _buckets_of(self, app: V) -> list[Entry]:
        """Every stored bucket of ``app`` (two reads for a large app, one for others)."""
        first = await self.storage.get(self.key(app))
        if first is None:
            return []
        more = _bucket_numbers(frames.unpack_pairs(first.value))
        found = await self.storage.get_many([self.key(app, n) for n in more]) if more else {}
        return [first, *found.values()]

    async def get(self, id: K) -> T | None:
        name = str(id)
        for entry in await self._buckets_of(self.app_of_id(id)):
            raw = frames.unpack_pairs(entry.value).get(name)
            if raw is not None:
                return self.codec.loads(raw)
        return None

    def _decoder(self) -> Callable[[Entry], list[T]]:
        """Decodes one stored value; the values it decodes share (see ``sharing``)."""
        if self.sharing is None:
            return self._decode
        share = self.sharing()
        return lambda entry: [share(i) for i in self._decode(entry)]

    async def by_app(self, app: V) -> list[T]:
        decode = self._decoder()
        return [i for entry in await self._buckets_of(app) for i in decode(entry)]

    async def app_ids(self) -> list[V]:
        """Apps that have at least one stored instance."""
        names = dict.fromkeys(
            n.partition(BUCKET_MARK)[0] for n in await self.storage.children(self.category)
        )
        return [self.parse_app(unsegment(n)) for n in names]

    async def all(self) -> list[T]:
        """Every instance, in one bulk read (the leader's start-up path)."""
        found = await self.storage.get_children(self.category)
        batches = await decode_all(self._decoder(), (e for _, e in sorted(found.items())))
        return [instance for batch in batches for instance in batch]

    async def plan_changes(self, put: Iterable[T] = (), delete: Iterable[K] = ()) -> list[Op]:
        """Ops that write ``put`` and remove ``delete``: each touched bucket rewritten once.

        For transactions composed elsewhere: the buckets kept by :meth:`change` of the
        apps touched are forgotten, since whether these ops land is not seen here.
        """
        ops, _ = await self._plan(put, delete, use_kept=False)
        return ops

    async def _read(self, apps: list[V]) -> dict[V, _AppValue]:
        """The stored buckets of ``apps``: one read of their first buckets, one of the rest."""
        for _ in range(MAX_ATTEMPTS - 1):
            try:
                return await self._read_once(apps)
            except VersionConflictError:
                continue  # a bucket went between the two reads
        return await self._read_once(apps)

    async def _read_once(self, apps: list[V]) -> dict[V, _AppValue]:
        firsts = await self.storage.get_many([self.key(a) for a in apps])
        more: dict[str, tuple[V, int]] = {}
        values: dict[V, _AppValue] = {}
        for app in apps:
            entry = firsts.get(self.key(app))
            value = values[app] = _AppValue({}, {})
            if entry is not None:
                members = frames.unpack_framed_pairs(entry.value)
                value.buckets[0] = _Bucket(entry.version, members)
                for n in _listed(members):
                    more[self.key(app, n)] = (app, n)
        found = await self.storage.get_many(list(more)) if more else {}
        for k, (app, n) in more.items():
            entry = found.get(k)
            if entry is None:
                raise VersionConflictError(f"{k!r} is listed but gone: read again")
            values[app].buckets[n] = _Bucket(entry.version, frames.unpack_framed_pairs(entry.value))
        for value in values.values():
            for n, bucket in value.buckets.items():
                value.where.update((name, n) for name in bucket.members if name != _DIRECTORY)
        return values

    async def _plan(
        self, put: Iterable[T], delete: Iterable[K], *, use_kept: bool
    ) -> tuple[list[Op], dict[str, _AppValue]]:
        """The ops, and the apps' values once they landed (by first-bucket key)."""
        puts: dict[V, dict[str, bytes]] = {}
        for obj in put:
            name = str(self.id_of(obj))
            puts.setdefault(self.app_of(obj), {})[name] = frames.frame_pair(
                name, self.codec.dumps(obj)
            )
        drops: dict[V, set[str]] = {}
        for id in delete:
            drops.setdefault(self.app_of_id(id), set()).add(str(id))
        apps = list(dict.fromkeys([*puts, *drops]))
        if not use_kept:
            for app in apps:
                self._kept.pop(self.key(app), None)
        unknown = [a for a in apps if self.key(a) not in self._kept]
        read = await self._read(unknown) if unknown else {}
        ops: list[Op] = []
        after: dict[str, _AppValue] = {}
        for app in apps:
            value = self._kept.get(self.key(app)) or read[app]
            changed, after[self.key(app)] = _change(value, puts.get(app, {}), drops.get(app, set()))
            for n in sorted(changed):
                ops.append(_bucket_op(self.key(app, n), value.buckets.get(n), changed[n]))
        return ops, after

    async def put(self, obj: T) -> None:
        await self.put_many([obj])

    async def put_many(self, objs: Iterable[T]) -> None:
        await self.change(put=objs)

    async def change(
        self,
        put: Iterable[T] = (),
        delete: Iterable[K] = (),
        *,
        also: Callable[[], Awaitable[Sequence[Op]]] | None = None,
    ) -> None:
        """Store ``put`` and forget ``delete`` in one transaction (a group commit).

        ``also`` plans more ops (of other repositories) for the same transaction; it
        is asked again on every attempt, so it reads afresh too.

        A large app's buckets are kept, as written, with their versions: the next
        change to it reads nothing and rewrites only the buckets it touches. A kept
        bucket that is stale (someone else wrote it) fails the version check, and
        the change is planned again from storage.
        """
        puts, drops = list(put), list(delete)
        async with self._lock:
            for attempt in range(MAX_ATTEMPTS):
                if attempt:
                    await trio.sleep(random.uniform(0, 0.002 * 2**attempt))
                ops, after = await self._plan(puts, drops, use_kept=attempt == 0)
                if also is not None:
                    ops.extend(await also())
                if not ops:
                    return
                try:
                    versions = await self._commit(ops)
                except (VersionConflictError, NotFoundError):
                    continue
                except BaseException:
                    for k in after:  # landed or not: unknown
                        self._kept.pop(k, None)
                    raise
                self._keep(ops, versions, after)
                return
        raise VersionConflictError(f"gave up after {MAX_ATTEMPTS} conflicting attempts")

    def _keep(self, ops: list[Op], versions: list[int | None], after: dict[str, _AppValue]) -> None:
        landed = dict(zip((op.key for op in ops), versions, strict=True))
        for first, value in after.items():
            self._kept.pop(first, None)
            if len(value.where) < KEEP_MIN_MEMBERS:
                continue
            for n, bucket in value.buckets.items():
                k = first if n == 0 else f"{first}{BUCKET_MARK}{n}"
                if k in landed:
                    bucket.version = landed[k]
            self._kept[first] = value
        while len(self._kept) > KEEP_APPS:
            del self._kept[next(iter(self._kept))]  # the least recently written

    async def delete(self, id: K) -> bool:
        """Delete one instance; False if it was not stored."""
        return await self._transact(lambda: self.plan_changes(delete=[id]))

    async def delete_many(self, ids: Iterable[K]) -> None:
        await self.change(delete=ids)

    async def plan_delete_app(self, app: V) -> list[Op]:
        self._kept.pop(self.key(app), None)
        value = (await self._read([app]))[app]
        return [Delete(self.key(app, n), b.version) for n, b in sorted(value.buckets.items())]

    async def delete_app(self, app: V) -> bool:
        """Forget every instance of ``app``."""
        return await self._transact(lambda: self.plan_delete_app(app))


def _bucket_numbers(first: dict[str, bytes]) -> list[int]:
    """The other buckets an app's first bucket lists."""
    listed = first.get(_DIRECTORY)
    return [int(n) for n in listed.split(b",")] if listed else []


def _listed(first: dict[str, bytes]) -> list[int]:
    """The other buckets listed in an app's first bucket, given as framed members."""
    framed = first.get(_DIRECTORY)
    return _bucket_numbers(frames.unpack_pairs(frames.pack_framed([framed]))) if framed else []


def _change(
    value: _AppValue, puts: dict[str, bytes], drops: set[str]
) -> tuple[dict[int, dict[str, bytes] | None], _AppValue]:
    """The buckets ``puts`` and ``drops`` change (None: deleted), and the app afterwards.

    A new member goes into the last bucket with room, else into a new bucket; a
    bucket left empty is deleted; the first bucket lists the others.
    """
    buckets = {n: b.members for n, b in value.buckets.items()}
    where = dict(value.where)
    changed: set[int] = set()

    def writable(n: int) -> dict[str, bytes]:
        if n not in changed:
            changed.add(n)
            buckets[n] = dict(buckets.get(n, {}))
        return buckets[n]

    for name in drops:
        n = where.pop(name, None)
        if n is not None:
            writable(n).pop(name, None)
    sizes = {n: len(m) - (_DIRECTORY in m) for n, m in buckets.items()}
    for name, framed in puts.items():
        n = where.get(name)
        if n is None:
            n = max(buckets, default=0)
            if sizes.get(n, 0) >= BUCKET_SIZE:
                n += 1
            where[name] = n
            sizes[n] = sizes.get(n, 0) + 1
        writable(n)[name] = framed
    others = sorted(n for n in buckets if n and len(buckets[n]) > 0)
    if others != _listed(buckets.get(0, {})):
        first = writable(0)
        first.pop(_DIRECTORY, None)
        if others:
            first[_DIRECTORY] = frames.frame_pair(_DIRECTORY, ",".join(map(str, others)).encode())
    result: dict[int, dict[str, bytes] | None] = {}
    kept: dict[int, _Bucket] = {}
    for n in changed:
        members = buckets[n]
        result[n] = members if members else None
    for n, members in buckets.items():
        if members:
            old = value.buckets.get(n)
            kept[n] = _Bucket(old.version if old is not None else None, members)
    return result, _AppValue(kept, where)


def _bucket_op(key: str, before: _Bucket | None, members: dict[str, bytes] | None) -> Op:
    if before is None or before.version is None:
        assert members is not None
        return Create(key, frames.pack_framed(members.values()))
    if members is None:
        return Delete(key, before.version)
    return Update(key, frames.pack_framed(members.values()), before.version)


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
