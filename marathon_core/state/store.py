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
from marathon_core.state.storage import Op, Storage

__all__ = ["ModelCodec", "RootRecord", "StateSnapshot", "StateStore"]

T = TypeVar("T")


class ModelCodec(Protocol):
    """What the store needs from ``marathon_core.model.codec`` (a module fits)."""

    def to_storage(self, obj: Any) -> bytes: ...

    def from_storage(self, cls: type[T], data: bytes) -> T: ...


@attrs.frozen
class RootRecord:
    """A stored root group: the tree without apps, and per group its app references."""

    group: Group
    #: group id -> [(app id, app version)] in the group's app order
    refs: dict[str, list[tuple[str, str]]]
    version: Timestamp
    #: ``refs`` as stored (compact JSON), when already known.
    refs_json: bytes | None = attrs.field(default=None, eq=False, repr=False)

    #: What is derived from the record, computed once per record object: a caching
    #: storage hands out the same record until the stored root changes.
    _derived: dict[str, Any] = attrs.field(factory=dict, init=False, eq=False, repr=False)

    async def refs_by_group(self) -> dict[str, list[AppKey]]:
        """``refs`` with ids and versions parsed, in slices (10k refs take tens of ms)."""
        parsed: dict[str, list[AppKey]] | None = self._derived.get("refs")
        if parsed is None:
            versions: dict[str, Timestamp] = {}  # apps changed together share a version

            def parse(ref: tuple[str, str, str]) -> tuple[str, AppKey]:
                gid, a, v = ref
                version = versions.get(v)
                if version is None:
                    version = versions[v] = Timestamp.parse(v)
                return gid, (PathId.parse(a), version)

            flat = [(gid, a, v) for gid, apps in self.refs.items() for a, v in apps]
            parsed = {gid: [] for gid in self.refs}
            for gid, ref in await decode_all(parse, flat):
                parsed[gid].append(ref)
            self._derived["refs"] = parsed
        return parsed

    async def app_refs(self) -> list[AppKey]:
        return [ref for refs in (await self.refs_by_group()).values() for ref in refs]


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
    #: (group id, app references) of every group of the subtree, in pre-order.
    refs: tuple[tuple[str, list[tuple[str, str]]], ...]
    #: ``refs`` as the members of a compact JSON object.
    members: bytes
    #: Each app of ``source`` with its reference and that reference as compact JSON.
    app_refs: tuple[tuple[AppDefinition, tuple[str, str], bytes], ...]


class _StripMemo:
    """Stripped subtrees of the last stored root, by group identity, and per group id
    the last stripped version (whose app references a changed group reuses)."""

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


def _app_refs(
    group: Group, previous: _Stripped | None
) -> tuple[tuple[AppDefinition, tuple[str, str], bytes], ...]:
    """The references of ``group``'s apps, reusing those of unchanged app objects.

    Matched by position, skipping one removed app at a time (a group change appends,
    replaces or removes an app; a replaced one moves to the end), so a group of 10k
    apps costs a walk of identity checks, not 10k ids and versions turned to text.
    """
    prev = previous.app_refs if previous is not None else ()
    out = []
    j = 0
    for app in group.apps:
        if j < len(prev) and prev[j][0] is app:
            hit = prev[j]
            j += 1
        elif j + 1 < len(prev) and prev[j + 1][0] is app:
            hit = prev[j + 1]
            j += 2
        else:
            ref = (str(app.id), str(_version(app)))
            hit = (app, ref, _compact_json(ref))
        out.append(hit)
    return tuple(out)


def _strip(group: Group, memo: _StripMemo) -> _Stripped:
    done = memo.by_identity.get(id(group))
    if done is not None and done.source is group:
        memo.keep(done)
        return done
    children = [_strip(g, memo) for g in group.groups]
    gid = str(group.id)
    app_refs = _app_refs(group, memo.previous(group.id))
    mine = [ref for _, ref, _ in app_refs]
    mine_json = b"[" + b",".join(js for _, _, js in app_refs) + b"]"
    done = _Stripped(
        source=group,
        group=attrs.evolve(group, apps=(), groups=tuple(c.group for c in children)),
        refs=((gid, mine), *(r for c in children for r in c.refs)),
        members=b",".join([_compact_json(gid) + b":" + mine_json, *(c.members for c in children)]),
        app_refs=app_refs,
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
        refs = record.refs_json if record.refs_json is not None else _compact_json(record.refs)
        return frames.pack([refs, self.codec.to_storage(record.group)])

    def _load_root(self, data: bytes) -> RootRecord:
        try:
            refs_raw, group_raw = frames.unpack(data)
        except ValueError:
            raise StorageError("damaged root group record") from None
        refs = {k: [(a, v) for a, v in apps] for k, apps in json.loads(refs_raw).items()}
        group = self.codec.from_storage(Group, group_raw)
        return RootRecord(group, refs, _version(group))

    def root_record(self, root: Group) -> RootRecord:
        """``root`` as stored: its tree without apps, and the references to its apps.

        Subtrees are stripped and encoded once per group object and reused while the
        next root shares them (group changes copy only the path to what changed), so
        storing a root costs its changed groups, not every app. The memo keeps only
        the subtrees of the last root.
        """
        memo = _StripMemo(self._stripped)
        stripped = _strip(root, memo)
        self._stripped = memo.used
        refs = dict(stripped.refs)
        refs_json = None
        if len(refs) == len(stripped.refs):  # else a group id repeats: let json.dumps merge
            refs_json = b"{" + stripped.members + b"}"
        return RootRecord(stripped.group, refs, _version(root), refs_json)

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
        refs = await record.refs_by_group()
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
            old_refs = dict(await old.app_refs()) if old is not None else {}
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
        ops.extend(await self.groups.plan_store(record))
        return ops

    async def _app_versions_in_kept_roots(
        self, app_ids: Iterable[PathId]
    ) -> dict[PathId, set[Timestamp]]:
        """Versions of ``app_ids`` that the root versions kept after one more store refer
        to; held roots are looked up, only the others read."""
        wanted = set(app_ids)
        versions = await self.root_group_versions()
        kept = versions[len(versions) - (self.groups.max_versions - 1) :]
        referenced: dict[PathId, set[Timestamp]] = {}
        unknown = []
        for v in kept:
            root = self._known.get(v)
            if root is None:
                unknown.append(v)
                continue
            for app_id in wanted:
                app = root.find_app(app_id)
                if app is not None:
                    referenced.setdefault(app_id, set()).add(_version(app))
        records = await self.groups.get_versions((PathId.root(), v) for v in unknown)
        for record in records.values():
            for app_id, version in await record.app_refs():
                if app_id in wanted:
                    referenced.setdefault(app_id, set()).add(version)
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
        refs = await record.app_refs() if record is not None else []
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
