"""Instances, stored batched per app in buckets: :class:`InstanceRepository`.

Keys (escaped with :func:`~marathon_core.state.storage.segment`)::

    instances/<app id>                    the instances of one app, framed
    instances/<app id>%%<n>               more of them, when the app has many

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
:meth:`InstanceRepository.change` remembers where each member of a large app it wrote
is, and holds the encoded buckets it wrote last (``KEEP_BYTES`` of them), so the next
change to it reads at most the buckets it touches that are not held (holding them
all would hold the records' size again: 66 MB at 100,000 instances).  A snapshot
plus journal would make single updates O(1) but loading O(journal) and needs
compaction; buckets per app are the simpler store that meets the load target
(numbers in ``benchmarks/bench_state.py``).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from typing import Generic, TypeVar

import attrs
import trio

from marathon_core.errors import NotFoundError, VersionConflictError
from marathon_core.state import frames
from marathon_core.state.repositories import (
    MAX_ATTEMPTS,
    Codec,
    Commit,
    _Repository,
    decode_all,
)
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

__all__ = ["BUCKET_SIZE", "KEEP_BYTES", "InstanceRepository"]

#: Apps with at least this many instances have their layout (which bucket holds which
#: instance, and each bucket's version) kept after a change (see
#: :meth:`InstanceRepository.change`), at most ``KEEP_APPS`` of them.
KEEP_MIN_MEMBERS = 64
KEEP_APPS = 16
#: Bytes of the encoded buckets of kept apps held in memory, the last written ones: a
#: launch or a batch of status updates mostly touches the buckets written just before.
KEEP_BYTES = 8 * 2**20

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


@attrs.define
class _Bucket:
    """One stored value of an app's instances: its version, size and framed members."""

    version: int | None  # None: not stored yet
    #: Instances in it (members but the directory).
    size: int
    #: None when not held in memory (read it to change it).
    members: dict[str, bytes] | None


def _bucket(version: int | None, members: dict[str, bytes]) -> _Bucket:
    return _Bucket(version, len(members) - (_DIRECTORY in members), members)


@attrs.define
class _AppValue:
    """All buckets of one app's instances, and which bucket holds which member."""

    buckets: dict[int, _Bucket]
    where: dict[str, int]


@attrs.frozen
class _Placement:
    """Where a change puts an app's members: what :func:`_place` decides."""

    #: Which bucket holds which member afterwards.
    where: dict[str, int]
    #: Instances per bucket afterwards (0: left empty).
    sizes: dict[int, int]
    #: The buckets whose members change (the first one too when its list changes).
    touched: set[int]
    #: The other buckets the first one lists afterwards, when that changes.
    listed: list[int] | None


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
        #: Large apps' layouts as last written by :meth:`change`, by first-bucket key.
        self._kept: dict[str, _AppValue] = {}
        #: The kept buckets whose members are held, least recently written first,
        #: with their encoded sizes (at most ``KEEP_BYTES`` in all).
        self._held: dict[tuple[str, int], int] = {}
        self._held_bytes = 0

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

        For transactions composed elsewhere: what :meth:`change` kept of the apps
        touched is forgotten, since whether these ops land is not seen here.
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
                value.buckets[0] = _bucket(entry.version, members)
                for n in _listed(members):
                    more[self.key(app, n)] = (app, n)
        found = await self.storage.get_many(list(more)) if more else {}
        for k, (app, n) in more.items():
            entry = found.get(k)
            if entry is None:
                raise VersionConflictError(f"{k!r} is listed but gone: read again")
            values[app].buckets[n] = _bucket(entry.version, frames.unpack_framed_pairs(entry.value))
        for value in values.values():
            for n, bucket in value.buckets.items():
                assert bucket.members is not None
                value.where.update((name, n) for name in bucket.members if name != _DIRECTORY)
        return values

    async def _load(self, values: dict[V, _AppValue], placements: dict[V, _Placement]) -> list[V]:
        """Read the touched buckets of kept apps that are not held, in one read; the
        apps whose kept layout is stale (a bucket another writer changed) are returned."""
        wanted: dict[str, tuple[V, int]] = {}
        for app, placement in placements.items():
            buckets = values[app].buckets
            for n in placement.touched:
                bucket = buckets.get(n)
                if bucket is not None and bucket.members is None:
                    wanted[self.key(app, n)] = (app, n)
        if not wanted:
            return []
        found = await self.storage.get_many(list(wanted))
        stale: dict[V, None] = {}
        for k, (app, n) in wanted.items():
            entry, value = found.get(k), values[app]
            bucket = value.buckets[n]
            if entry is None or entry.version != bucket.version:
                stale[app] = None
                continue
            # A new bucket object: the kept one stays as it is until the change lands.
            value.buckets[n] = _Bucket(
                bucket.version, bucket.size, frames.unpack_framed_pairs(entry.value)
            )
        return list(stale)

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
                self._forget(self.key(app))
        values: dict[V, _AppValue] = {}
        for app in apps:
            kept = self._kept.get(self.key(app))
            if kept is not None:  # a copy: loading must not change what is kept
                values[app] = _AppValue(dict(kept.buckets), kept.where)
        unknown = [a for a in apps if a not in values]
        if unknown:
            values.update(await self._read(unknown))
        placements = {a: _place(values[a], puts.get(a, {}), drops.get(a, set())) for a in values}
        stale = await self._load(values, placements)
        if stale:
            for app in stale:
                self._forget(self.key(app))
            values.update(await self._read(stale))
            placements.update(
                (a, _place(values[a], puts.get(a, {}), drops.get(a, set()))) for a in stale
            )
        ops: list[Op] = []
        after: dict[str, _AppValue] = {}
        for app in apps:
            value, placement = values[app], placements[app]
            changed, after[self.key(app)] = _change(
                value, placement, puts.get(app, {}), drops.get(app, set())
            )
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

        A large app's layout is kept, with its buckets' versions, and the buckets
        last written are held as written (``KEEP_BYTES``): the next change to it
        reads only the buckets it touches that are not held, and rewrites only
        those. A kept bucket that is stale (someone else wrote it) fails the version
        check (of the read, or of the commit), and the change is planned again from
        storage.
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
                        self._forget(k)
                    raise
                self._keep(ops, versions, after)
                return
        raise VersionConflictError(f"gave up after {MAX_ATTEMPTS} conflicting attempts")

    def _keep(self, ops: list[Op], versions: list[int | None], after: dict[str, _AppValue]) -> None:
        """Keep the layouts of the large apps written, and hold the buckets written."""
        landed = {op.key: (op, v) for op, v in zip(ops, versions, strict=True)}
        for first, value in after.items():
            if len(value.where) < KEEP_MIN_MEMBERS:
                self._forget(first)
                continue
            self._kept.pop(first, None)  # put back last: the most recently written
            for n in [n for f, n in self._held if f == first and n not in value.buckets]:
                self._release(first, n)
            for n, bucket in value.buckets.items():
                op, version = landed.get(
                    first if n == 0 else f"{first}{BUCKET_MARK}{n}", (None, None)
                )
                if isinstance(op, (Create, Update)):
                    bucket.version = version
                    self._release(first, n)
                    self._held[first, n] = len(op.value)
                    self._held_bytes += len(op.value)
                elif (first, n) not in self._held:
                    bucket.members = None  # read, not written: not held
            self._kept[first] = value
        while len(self._kept) > KEEP_APPS:
            self._forget(next(iter(self._kept)))  # the least recently written
        while self._held_bytes > KEEP_BYTES:
            first, n = next(iter(self._held))  # the least recently written
            self._release(first, n)
            self._kept[first].buckets[n].members = None

    def _release(self, first: str, n: int) -> None:
        """Stop counting bucket ``n`` of ``first`` as held."""
        self._held_bytes -= self._held.pop((first, n), 0)

    def _forget(self, first: str) -> None:
        """Forget what is kept of the app whose first bucket is ``first``."""
        if self._kept.pop(first, None) is not None:
            for f, n in [k for k in self._held if k[0] == first]:
                self._release(f, n)

    async def delete(self, id: K) -> bool:
        """Delete one instance; False if it was not stored."""
        return await self._transact(lambda: self.plan_changes(delete=[id]))

    async def delete_many(self, ids: Iterable[K]) -> None:
        await self.change(delete=ids)

    async def plan_delete_app(self, app: V) -> list[Op]:
        self._forget(self.key(app))
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


def _place(value: _AppValue, puts: Collection[str], drops: Collection[str]) -> _Placement:
    """Where ``puts`` and ``drops`` leave an app's members, from its layout alone.

    A new member goes into the last bucket with room, else into a new bucket; a
    bucket left empty is deleted; the first bucket lists the others.
    """
    where = dict(value.where)
    sizes = {n: b.size for n, b in value.buckets.items()}
    touched: set[int] = set()
    for name in drops:
        n = where.pop(name, None)
        if n is not None:
            touched.add(n)
            sizes[n] -= 1
    for name in puts:
        n = where.get(name)
        if n is None:
            n = max(sizes, default=0)
            if sizes.get(n, 0) >= BUCKET_SIZE:
                n += 1
            where[name] = n
            sizes[n] = sizes.get(n, 0) + 1
        touched.add(n)
    others = sorted(n for n, size in sizes.items() if n and size > 0)
    listed = None
    if others != sorted(n for n in value.buckets if n):
        touched.add(0)
        listed = others
    return _Placement(where, sizes, touched, listed)


def _change(
    value: _AppValue, placement: _Placement, puts: dict[str, bytes], drops: Collection[str]
) -> tuple[dict[int, dict[str, bytes] | None], _AppValue]:
    """The buckets a change rewrites (None: deleted), and the app afterwards.

    ``value`` holds the members of every bucket ``placement`` touches.
    """
    changed: dict[int, dict[str, bytes]] = {}
    for n in placement.touched:
        bucket = value.buckets.get(n)
        if bucket is None:
            changed[n] = {}
        else:
            assert bucket.members is not None, f"bucket {n} is not loaded"
            changed[n] = dict(bucket.members)
    for name in drops:
        held_in = value.where.get(name)
        if held_in is not None:
            changed[held_in].pop(name, None)
    for name, framed in puts.items():
        changed[placement.where[name]][name] = framed
    if placement.listed is not None:
        first = changed[0]
        first.pop(_DIRECTORY, None)
        if placement.listed:
            first[_DIRECTORY] = frames.frame_pair(
                _DIRECTORY, ",".join(map(str, placement.listed)).encode()
            )
    buckets = dict(value.buckets)
    for n, members in changed.items():
        if members:
            old = value.buckets.get(n)
            version = old.version if old is not None else None
            buckets[n] = _Bucket(version, placement.sizes[n], members)
        else:
            buckets.pop(n, None)
    result: dict[int, dict[str, bytes] | None] = {n: m or None for n, m in changed.items()}
    return result, _AppValue(buckets, placement.where)


def _bucket_op(key: str, before: _Bucket | None, members: dict[str, bytes] | None) -> Op:
    if before is None or before.version is None:
        assert members is not None
        return Create(key, frames.pack_framed(members.values()))
    if members is None:
        return Delete(key, before.version)
    return Update(key, frames.pack_framed(members.values()), before.version)
