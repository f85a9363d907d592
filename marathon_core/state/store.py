"""The state store: the repositories of the model plus the writes that belong together.

The root group is stored as one versioned entity holding the group tree with
its apps replaced by ``(app id, version)`` references; the app repository holds
those versions.  Why: 50 kept root versions that each embedded 10k apps would
be 50 copies of every app; with references a root version costs a few bytes
per app, and loading the root is one read plus one bulk read of the apps.
Its ``current`` key names the current version instead of holding a second copy,
so a group change writes the root record once.
The store also holds the decoded roots it wrote or read (``state/roots.py``), so a
deployment reads no root back, and a root it does read decodes only the app
versions it lacks.

Multi-entity writes (a group change with its deployment, the end of a
deployment) are planned against fresh reads and committed as one transaction
through :meth:`StateStore.commit`, which also prepends the fencing ops (for
example a ZooKeeper ``Check`` of the leader's election node) when given.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import attrs
import trio

from marathon_core.errors import StorageError
from marathon_core.model.app import AppDefinition
from marathon_core.model.deployment import Deployment
from marathon_core.model.group import Group
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import Instance, InstanceId
from marathon_core.state import frames
from marathon_core.state.format import FORMAT_VERSION, MIGRATIONS, Migration, ensure_format
from marathon_core.state.instances import InstanceRepository
from marathon_core.state.refchunks import Chunk, ChunkRefs, ChunkUsers, chunk_apps, chunk_key
from marathon_core.state.repositories import (
    DEFAULT_MAX_VERSIONS,
    Codec,
    EntityRepository,
    FrameworkIdRepository,
    VersionedRepository,
    decode_all,
    transact,
)
from marathon_core.state.roots import AppKey, KnownRoots
from marathon_core.state.sharing import Sharing
from marathon_core.state.storage import Create, Delete, Op, Storage

__all__ = ["ModelCodec", "RootRecord", "StateSnapshot", "StateStore"]

T = TypeVar("T")


class ModelCodec(Protocol):
    """What the store needs from ``marathon_core.model.codec`` (a module fits)."""

    def to_storage(self, obj: Any) -> bytes: ...

    def from_storage(self, cls: type[T], data: bytes) -> T: ...


@attrs.frozen
class RootRecord:
    """A stored root group: the tree without apps, and per group the names of the chunks
    of its app references (``state/refchunks.py``)."""

    group: Group
    #: group id -> names of its reference chunks, in the group's app order
    chunks: dict[str, list[str]]
    version: Timestamp
    #: ``chunks`` as stored (compact JSON), when already known.
    chunks_json: bytes | None = attrs.field(default=None, eq=False, repr=False)
    #: The chunks this process made for the record, by name (what a store may write).
    made: dict[str, Chunk] = attrs.field(factory=dict, eq=False, repr=False)

    def names(self) -> set[str]:
        return {name for names in self.chunks.values() for name in names}


@attrs.frozen
class StateSnapshot:
    """Everything a new leader loads at once."""

    root: Group | None
    instances: list[Instance]
    deployments: list[Deployment]
    framework_id: str | None


def _version(obj: Any) -> Timestamp:
    v = obj.version
    if v is None:
        raise ValueError(f"{type(obj).__name__} {obj.id} has no version; stamp it before storing")
    assert isinstance(v, Timestamp)
    return v


#: ``json.dumps(value, separators=(",", ":"))`` without building an encoder per call
#: (a third of the cost of one app reference).
_COMPACT = json.JSONEncoder(separators=(",", ":")).encode


def _compact_json(value: Any) -> bytes:
    return _COMPACT(value).encode()


@attrs.frozen
class _Stripped:
    """A subtree as the root record stores it: see :meth:`StateStore.root_record`."""

    #: The subtree it was made from (the memo is keyed by identity).
    source: Group
    #: The subtree without apps.
    group: Group
    #: (group id, its chunks) of every group of the subtree, in pre-order.
    chunks: tuple[tuple[str, tuple[Chunk, ...]], ...]
    #: ``chunks`` (their names) as the members of a compact JSON object.
    members: bytes


class _StripMemo:
    """Stripped subtrees of the last stored root, by group identity, and per group id
    the last stripped version (whose chunks a changed group reuses)."""

    def __init__(self, by_identity: dict[int, _Stripped]) -> None:
        self.by_identity = by_identity
        self.used: dict[int, _Stripped] = {}
        self._by_gid: dict[PathId, _Stripped] | None = None

    def previous(self, gid: PathId) -> _Stripped | None:
        if self._by_gid is None:
            self._by_gid = {s.source.id: s for s in self.by_identity.values()}
        return self._by_gid.get(gid)

    def keep(self, done: _Stripped) -> None:
        """``done`` is reused whole: keep the entries of its subgroups too."""
        self.used[id(done.source)] = done
        for child in done.source.groups:
            hit = self.by_identity.get(id(child))
            if hit is not None and hit.source is child:
                self.keep(hit)


def _strip(group: Group, memo: _StripMemo) -> _Stripped:
    done = memo.by_identity.get(id(group))
    if done is not None and done.source is group:
        memo.keep(done)
        return done
    children = [_strip(g, memo) for g in group.groups]
    gid = str(group.id)
    previous = memo.previous(group.id)
    mine = chunk_apps(group.apps, previous.chunks[0][1] if previous is not None else ())
    names = _compact_json([c.name for c in mine])
    done = _Stripped(
        source=group,
        group=attrs.evolve(group, apps=(), groups=tuple(c.group for c in children)),
        chunks=((gid, mine), *(r for c in children for r in c.chunks)),
        members=b",".join([_compact_json(gid) + b":" + names, *(c.members for c in children)]),
    )
    memo.used[id(group)] = done
    return done


def _hydrate(
    group: Group,
    refs: dict[str, list[AppKey]],
    apps: Callable[[AppKey], AppDefinition | None],
) -> Group:
    mine = []
    for ref in refs.get(str(group.id), []):
        app = apps(ref)
        if app is None:
            raise StorageError(
                f"root group refers to app {ref[0]} version {ref[1]}, which is not stored"
            )
        mine.append(app)
    return attrs.evolve(
        group, apps=tuple(mine), groups=tuple(_hydrate(g, refs, apps) for g in group.groups)
    )


class StateStore:
    """Repositories for apps, the root group, instances, deployments, task failures and the
    framework id."""

    def __init__(
        self,
        storage: Storage,
        *,
        codec: ModelCodec | None = None,
        max_versions: int = DEFAULT_MAX_VERSIONS,
        fence: Callable[[], Sequence[Op]] | None = None,
    ) -> None:
        """Use :meth:`open`, which also checks the storage format."""
        if codec is None:
            from marathon_core.model import codec as model_codec

            codec = model_codec
        self.storage = storage
        self.codec = codec
        self.fence = fence
        #: One writer at a time in this process; CAS still guards against others.
        self._lock = trio.Lock()
        #: Stripped subtrees of the last stored root, by group identity (root_record).
        self._stripped: dict[int, _Stripped] = {}
        #: Which stored root versions name which chunks (_plan_chunks).
        self._chunk_users = ChunkUsers()
        #: The references in the chunks of the stored root versions (record_refs).
        self._chunk_refs = ChunkRefs()
        #: Decoded roots at versions this store wrote or read (see state/roots.py).
        self._known = KnownRoots(max_versions)
        #: Held while a root is read: a new leader's tracker and group manager ask for
        #: the same root at once, and it should be decoded once.
        self._hydrating = trio.Lock()
        c = codec
        self.apps: VersionedRepository[AppDefinition, PathId, Timestamp] = VersionedRepository(
            storage,
            "apps",
            Codec(c.to_storage, lambda b: c.from_storage(AppDefinition, b)),
            id_of=lambda a: a.id,
            parse_id=PathId.parse,
            version_of=_version,
            parse_version=Timestamp.parse,
            max_versions=max_versions,
            commit=self.commit,
            lock=self._lock,
        )
        self.groups: VersionedRepository[RootRecord, PathId, Timestamp] = VersionedRepository(
            storage,
            "group",
            Codec(self._dump_root, self._load_root),
            id_of=lambda r: r.group.id,
            parse_id=PathId.parse,
            version_of=lambda r: r.version,
            parse_version=Timestamp.parse,
            max_versions=max_versions,
            current_by_name=True,
            commit=self.commit,
            lock=self._lock,
        )
        self.instances: InstanceRepository[Instance, InstanceId, PathId] = InstanceRepository(
            storage,
            Codec(c.to_storage, lambda b: c.from_storage(Instance, b)),
            id_of=lambda i: i.instance_id,
            app_of=lambda i: i.instance_id.run_spec_id,
            app_of_id=lambda i: i.run_spec_id,
            parse_app=PathId.parse,
            sharing=lambda: Sharing().instance,
            commit=self.commit,
            lock=self._lock,
        )
        self.deployments: EntityRepository[Deployment, str] = EntityRepository(
            storage,
            "deployments",
            Codec(c.to_storage, lambda b: c.from_storage(Deployment, b)),
            id_of=lambda d: d.id,
            parse_id=str,
            commit=self.commit,
            lock=self._lock,
        )
        #: Per app, Marathon's ``lastTaskFailure`` JSON: written once per failure, read
        #: by a new leader, deleted with the app.
        self.task_failures: EntityRepository[dict[str, Any], PathId] = EntityRepository(
            storage,
            "task-failures",
            Codec(_compact_json, json.loads),
            id_of=lambda failure: PathId.parse(failure["appId"]),
            parse_id=PathId.parse,
            commit=self.commit,
            lock=self._lock,
        )
        self.framework_id = FrameworkIdRepository(storage, self.commit, self._lock)

    @classmethod
    async def open(
        cls,
        storage: Storage,
        *,
        codec: ModelCodec | None = None,
        max_versions: int = DEFAULT_MAX_VERSIONS,
        fence: Callable[[], Sequence[Op]] | None = None,
        format_version: int = FORMAT_VERSION,
        migrations: Mapping[int, Migration] | None = None,
    ) -> StateStore:
        """Check (and if needed migrate) the storage format, then build the store."""
        await ensure_format(
            storage,
            current=format_version,
            migrations=MIGRATIONS if migrations is None else migrations,
        )
        return cls(storage, codec=codec, max_versions=max_versions, fence=fence)

    async def commit(self, ops: Sequence[Op]) -> list[int | None]:
        """Commit ``ops`` atomically behind the fencing ops."""
        fence = list(self.fence()) if self.fence is not None else []
        results = await self.storage.commit([*fence, *ops])
        return results[len(fence) :]

    # -- the root group ---------------------------------------------------------

    def _dump_root(self, record: RootRecord) -> bytes:
        names = record.chunks_json
        if names is None:
            names = _compact_json(record.chunks)
        return frames.pack([names, self.codec.to_storage(record.group)])

    def _load_root(self, data: bytes) -> RootRecord:
        try:
            names_raw, group_raw = frames.unpack(data)
            chunks = {k: list(names) for k, names in json.loads(names_raw).items()}
        except ValueError:
            raise StorageError("damaged root group record") from None
        group = self.codec.from_storage(Group, group_raw)
        return RootRecord(group, chunks, _version(group))

    def root_record(self, root: Group) -> RootRecord:
        """``root`` as stored: its tree without apps, and the chunks of its app references.

        Subtrees are stripped and encoded once per group object and reused while the
        next root shares them (group changes copy only the path to what changed), and
        a changed group reuses the reference chunks of its previous version that
        recur (``state/refchunks.py``), so storing a root costs its changed groups'
        changed chunks, not every app. The memo keeps only the subtrees of the last root.
        """
        memo = _StripMemo(self._stripped)
        stripped = _strip(root, memo)
        self._stripped = memo.used
        chunks = {gid: [c.name for c in mine] for gid, mine in stripped.chunks}
        made = {c.name: c for _, mine in stripped.chunks for c in mine}
        names_json = None
        if len(chunks) == len(stripped.chunks):  # else a group id repeats: let json merge
            names_json = b"{" + stripped.members + b"}"
        return RootRecord(stripped.group, chunks, _version(root), names_json, made)

    async def record_refs(self, record: RootRecord) -> dict[str, list[AppKey]]:
        """group id -> its app references, in order."""
        await self._parse_chunks(record.names(), record.made)
        refs = self._chunk_refs
        return {gid: [r for n in names for r in refs[n]] for gid, names in record.chunks.items()}

    async def _parse_chunks(self, names: Iterable[str], made: Mapping[str, Chunk]) -> None:
        """Make sure :attr:`_chunk_refs` holds ``names``: from the chunks this store
        made, the others read in one bulk read and parsed in slices (10k references
        take tens of ms); then forget chunks no stored version names, but ``names``."""
        wanted = set(names)
        refs = self._chunk_refs
        for name in wanted:
            chunk = made.get(name)
            if chunk is not None and name not in refs:
                refs.put(name, [(a.id, _version(a)) for a in chunk.apps])
        unknown = [n for n in wanted if n not in refs]
        found = await self.storage.get_many([chunk_key(n) for n in unknown])
        if len(found) != len(unknown):
            gone = sorted(set(unknown) - {k.rpartition("/")[2] for k in found})
            raise StorageError(f"a root group names missing chunks {gone[:3]}")
        versions: dict[str, Timestamp] = {}  # apps changed together share a version

        def parse(entry: Any) -> list[AppKey]:
            out = []
            for a, v in json.loads(entry.value):
                version = versions.get(v)
                if version is None:
                    version = versions[v] = Timestamp.parse(v)
                out.append((PathId.parse(a), version))
            return out

        values = [found[chunk_key(n)] for n in unknown]
        for name, parsed in zip(unknown, await decode_all(parse, values), strict=True):
            refs.put(name, parsed)
        users = self._chunk_users
        refs.forget(lambda n: n not in wanted and not users.count(n))

    async def record_app_refs(self, record: RootRecord) -> list[AppKey]:
        return [ref for refs in (await self.record_refs(record)).values() for ref in refs]

    async def root_group(self, version: Timestamp | None = None) -> Group | None:
        """The root group with its apps (current, or at ``version``).

        Answered from the roots this store holds when it holds that version (see
        :mod:`marathon_core.state.roots`); else read, with only the apps no held root
        has decoded, and held from then on.
        """
        root_id = PathId.root()
        current = version is None
        if version is None:
            version = await self.groups.current_version(root_id)
            if version is None:
                return None
        elif version not in await self.root_group_versions():
            self._known.forget(version)  # pruned, maybe by another leader
            return None
        async with self._hydrating:  # a second reader of the same root waits for the first
            known = self._known.get(version)
            if known is not None:
                return known
            record = await self.groups.get_version(root_id, version)
            if record is None and current:  # pruned since: read the newest instead
                record = await self.groups.get(root_id)
            if record is None:
                return None
            self._chunk_users.add(record.version, record.names())
            root = await self._hydrate_record(record)
            self._known.remember(root)
            if current:
                await self._prime_strip_memo(root)
            return root

    async def _prime_strip_memo(self, root: Group) -> None:
        """Strip ``root`` (see :meth:`root_record`) in a worker thread.

        Why: the first change after a load would otherwise strip every app of the
        tree on the event loop (measured 50-180 ms at 10k apps); primed, it strips
        only what changed. The tree is immutable and the memo private until set.
        """
        before = self._stripped
        memo = _StripMemo({})
        await trio.to_thread.run_sync(_strip, root, memo)
        if self._stripped is before:  # no root was stored meanwhile
            self._stripped = memo.used

    async def _hydrate_record(self, record: RootRecord) -> Group:
        """The root group ``record`` describes, with its apps: those a held root has are
        reused (app versions are immutable), the others read and decoded."""
        refs = await self.record_refs(record)
        held = self._known.app_index()
        missing = [ref for apps in refs.values() for ref in apps if ref not in held]
        keys = [self.apps.version_key(a, v) for a, v in missing]
        found = await self.storage.get_many(keys)
        present = [(ref, found[k]) for ref, k in zip(missing, keys, strict=True) if k in found]
        decode = self.apps.codec.loads
        apps = await decode_all(lambda e: self.storage.decoded(e, decode), [e for _, e in present])
        read = {ref: app for (ref, _), app in zip(present, apps, strict=True)}
        return _hydrate(record.group, refs, lambda ref: held[ref] if ref in held else read.get(ref))

    async def root_group_versions(self) -> list[Timestamp]:
        """Kept root versions, oldest first."""
        return await self.groups.versions(PathId.root())

    async def plan_root(
        self,
        root: Group,
        *,
        apps_changed: Iterable[Any] | None = None,
        apps_deleted: Iterable[PathId] | None = None,
    ) -> list[Op]:
        """Ops storing ``root`` as the new root version, its changed apps, and deleting apps.

        ``None`` derives the changes from the stored root's references: apps
        whose version differs are stored, apps no longer in the tree deleted.
        """
        record = self.root_record(root)
        if apps_changed is None or apps_deleted is None:
            new_refs = {a.id: a for a in root.transitive_apps()}
            old = await self.groups.get(PathId.root())
            old_refs = dict(await self.record_app_refs(old)) if old is not None else {}
            if apps_changed is None:
                apps_changed = [a for i, a in new_refs.items() if old_refs.get(i) != _version(a)]
            if apps_deleted is None:
                apps_deleted = [i for i in old_refs if i not in new_refs]
        ops: list[Op] = []
        for app in apps_changed:
            ops.extend(await self.apps.plan_store(app))
        deleted = list(apps_deleted)
        referenced = await self._app_versions_in_kept_roots(deleted) if deleted else {}
        for app_id in deleted:
            ops.extend(await self.apps.plan_retire(app_id, keep=referenced.get(app_id, ())))
            ops.extend(await self.task_failures.plan_delete(app_id))
        ops.extend(await self._plan_chunks(record))
        ops.extend(await self.groups.plan_store(record))
        return ops

    async def _plan_chunks(self, record: RootRecord) -> list[Op]:
        """Ops that create the chunks ``record`` names that no stored root version
        names, and delete those that only the versions its store prunes name.

        Which versions name which chunks is kept in memory (:class:`_ChunkUsers`)
        and brought up to date with the stored versions here.
        """
        versions = await self.root_group_versions()
        users = self._chunk_users
        await users.sync(versions, self.groups.get_versions)
        mine = record.names()
        kept = sorted({*versions, record.version})[-self.groups.max_versions :]
        leaving = [v for v in versions if v not in kept or v == record.version]
        ops: list[Op] = []
        new = [n for n in mine if not users.count(n)]
        present = await self.storage.get_many([chunk_key(n) for n in new]) if new else {}
        for name in new:
            key = chunk_key(name)
            if key not in present:  # present: left by a version this store no longer sees
                ops.append(Create(key, record.made[name].value))
        for name in users.only_in(leaving) - mine:
            ops.append(Delete(chunk_key(name)))
        users.add(record.version, mine)  # not stored after all: the next sync drops it
        for name in new:  # what a removal looks up (_app_versions_in_kept_roots)
            self._chunk_refs.put(name, [(a.id, _version(a)) for a in record.made[name].apps])
        return ops

    async def _app_versions_in_kept_roots(
        self, app_ids: Iterable[PathId]
    ) -> dict[PathId, set[Timestamp]]:
        """Versions of ``app_ids`` that the root versions kept after one more store refer
        to: looked up in the chunks that hold each app (``ChunkRefs.holding``), so a
        removal from a group of 10k apps costs its chunks, not 10k apps per kept root."""
        versions = await self.root_group_versions()
        kept = set(versions[len(versions) - (self.groups.max_versions - 1) :])
        users = self._chunk_users
        await users.sync(versions, self.groups.get_versions)
        await self._parse_chunks(users.named_by(kept), {})
        referenced: dict[PathId, set[Timestamp]] = {}
        for app_id in set(app_ids):
            for name in self._chunk_refs.holding(app_id):
                if users.versions_naming(name) & kept:
                    referenced.setdefault(app_id, set()).update(
                        v for a, v in self._chunk_refs[name] if a == app_id
                    )
        return referenced

    async def store_root(
        self,
        root: Group,
        *,
        apps_changed: Iterable[Any] | None = None,
        apps_deleted: Iterable[PathId] | None = None,
    ) -> None:
        """Store a new root version (and its apps) in one transaction."""
        changed = None if apps_changed is None else list(apps_changed)
        deleted = None if apps_deleted is None else list(apps_deleted)
        await transact(
            self.commit,
            lambda: self.plan_root(root, apps_changed=changed, apps_deleted=deleted),
            lock=self._lock,
        )
        self._known.remember(root)

    async def store_root_and_deployment(
        self,
        root: Group,
        deployment: Deployment,
        *,
        apps_changed: Iterable[Any] | None = None,
        apps_deleted: Iterable[PathId] | None = None,
    ) -> None:
        """A group change and the deployment that carries it out, atomically.

        Why: a crash between the two would leave a target nobody deploys, or a
        deployment towards a target that was never stored.
        """
        changed = None if apps_changed is None else list(apps_changed)
        deleted = None if apps_deleted is None else list(apps_deleted)

        async def plan() -> list[Op]:
            ops = await self.plan_root(root, apps_changed=changed, apps_deleted=deleted)
            ops.extend(await self.deployments.plan_put(deployment))
            return ops

        await transact(self.commit, plan, lock=self._lock)
        self._known.remember(root)

    async def complete_deployment(
        self,
        deployment_id: str,
        *,
        put_instances: Iterable[Instance] = (),
        delete_instances: Iterable[InstanceId] = (),
    ) -> bool:
        """Remove a finished (or cancelled) deployment with its last instance changes.

        Returns False if the deployment was not stored (already completed).
        """
        puts, drops = list(put_instances), list(delete_instances)
        found = True

        async def plan() -> list[Op]:
            nonlocal found
            ops = await self.deployments.plan_delete(deployment_id)
            found = bool(ops)
            if puts or drops:
                ops.extend(await self.instances.plan_changes(put=puts, delete=drops))
            return ops

        await transact(self.commit, plan, lock=self._lock)
        return found

    # -- loading ------------------------------------------------------------------

    async def load(self) -> StateSnapshot:
        """Everything a leader needs at start, in a handful of bulk reads."""
        return StateSnapshot(
            root=await self.root_group(),
            instances=await self.instances.all(),
            deployments=await self.deployments.all(),
            framework_id=await self.framework_id.get(),
        )

    async def check_consistency(self) -> list[str]:
        """Problems with cross-entity invariants (empty when sound).

        Checked: every app the current root refers to is stored at that
        version, every stored current app is in the root, and the instances of
        each app batch belong to that app.
        """
        problems: list[str] = []
        record = await self.groups.get(PathId.root())
        refs = await self.record_app_refs(record) if record is not None else []
        found = await self.apps.get_versions(refs)
        problems += [
            f"root refers to missing app {a} at {v}" for a, v in refs if (a, v) not in found
        ]
        referenced = {a for a, _ in refs}
        problems += [
            f"app {a.id} is stored but not in the root group"
            for a in await self.apps.all()
            if a.id not in referenced
        ]
        for app_id in await self.instances.app_ids():
            problems += [
                f"instance {i.instance_id} stored under app {app_id}"
                for i in await self.instances.by_app(app_id)
                if i.instance_id.run_spec_id != app_id
            ]
        return problems
