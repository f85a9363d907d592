"""A deployment decodes only what it changes, however many apps are stored.

Counted, not timed: the state store is given a codec that counts what it decodes and
encodes. 5,000 apps are stored; a new leader loads them once (5,000 decodes, the
price of taking over), then deployments that add, scale and remove an app decode no
app at all and encode only the app they change, on SQLite and on a real ZooKeeper
(with and without the read cache a ``--zk`` marathon uses). A deployment resumed by
another leader decodes only the app versions its current root lacks. With the 5,000
apps in one group, a deployment writes the reference chunks around its app and a root
record of a few bytes per chunk, not 5,000 app references.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import attrs
import pytest
import trio

from marathon_core.deploy.executor import DeploymentExecutor
from marathon_core.deploy.manager import DeploymentRegistry, GroupManager
from marathon_core.events import EventBus
from marathon_core.model import codec as model_codec
from marathon_core.model.app import AppDefinition
from marathon_core.model.deployment import GroupChange
from marathon_core.model.group import Group
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import Instance, InstanceCounts, InstanceId
from marathon_core.state.refchunks import CATEGORY, CHUNK_MAX, CHUNK_MEAN
from marathon_core.state.repositories import transact
from marathon_core.state.storage import Create, Delete, Op, Storage, Update
from marathon_core.state.store import StateStore

sys.path.insert(0, str(Path(__file__).parent))
from state_backends import BACKENDS, Backend

T = TypeVar("T")

#: Apps stored before the deployments.
STORED = 5000
#: Apps per seeding transaction (ZooKeeper takes at most 1 MB per request).
SEED_BATCH = 250


class CountingCodec:
    """The model codec, counting decodes and encodes by type name."""

    def __init__(self) -> None:
        self.decoded: Counter[str] = Counter()
        self.encoded: Counter[str] = Counter()

    def to_storage(self, obj: Any) -> bytes:
        self.encoded[type(obj).__name__] += 1
        return model_codec.to_storage(obj)

    def from_storage(self, cls: type[T], data: bytes) -> T:
        self.decoded[cls.__name__] += 1
        return model_codec.from_storage(cls, data)

    def clear(self) -> None:
        self.decoded.clear()
        self.encoded.clear()


class NoInstances:
    """Apps of 0 instances need no scheduler: nothing to launch or kill."""

    async def schedule(self, app: AppDefinition, count: int) -> list[Instance]:
        raise AssertionError("nothing to schedule")

    async def decommission(self, instance_ids: Iterable[InstanceId]) -> None:
        raise AssertionError("nothing to kill")

    def instances_of(self, app_id: PathId) -> list[Instance]:
        return []

    def counts_of(self, app_id: PathId) -> InstanceCounts:
        return InstanceCounts()

    async def wait_changed(self) -> None:
        await trio.sleep_forever()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("zk", marks=pytest.mark.zookeeper),
        pytest.param("zk-cached", marks=pytest.mark.zookeeper),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return BACKENDS[request.param](tmp_path, request)


def stored_app(n: int, version: Timestamp) -> AppDefinition:
    return AppDefinition(
        id=PathId.parse(f"/seed/g{n // 100}/app{n}"),
        cmd="sleep 3600",
        instances=0,
        labels={"n": str(n)},
        version=version,
    )


async def seed(storage: Storage, *, flat: bool = False) -> None:
    """``STORED`` apps in groups of 100 (``flat``: all in ``/seed``), written as a writer
    of another process would."""
    state = await StateStore.open(storage)
    version = Timestamp.now()
    apps = [stored_app(n, version) for n in range(STORED)]
    if flat:
        apps = [attrs.evolve(a, id=PathId.parse(f"/seed/app{n}")) for n, a in enumerate(apps)]
    for k in range(0, STORED, SEED_BATCH):
        chunk = apps[k : k + SEED_BATCH]

        async def plan(chunk: list[AppDefinition] = chunk) -> list[Op]:
            return [op for a in chunk for op in await state.apps.plan_store(a)]

        await transact(state.commit, plan)
    by_group: dict[PathId, list[AppDefinition]] = {}
    for a in apps:
        by_group.setdefault(a.id.parent, []).append(a)
    groups = tuple(Group(g, apps=tuple(m), version=version) for g, m in by_group.items())
    top = Group(PathId.parse("/seed"), groups=groups, version=version)
    if flat:
        (top,) = groups
    await state.store_root(
        Group(PathId.root(), groups=(top,), version=version), apps_changed=[], apps_deleted=[]
    )


@attrs.define
class Leader:
    """What a leader runs deployments with, over a store that counts its decodes."""

    codec: CountingCodec
    state: StateStore
    registry: DeploymentRegistry
    events: EventBus
    groups: GroupManager
    executor: DeploymentExecutor

    @classmethod
    async def open(cls, storage: Storage) -> Leader:
        codec = CountingCodec()
        state = await StateStore.open(storage, codec=codec)
        registry, events = DeploymentRegistry(), EventBus()
        groups = GroupManager(state, registry, events)
        executor = DeploymentExecutor(
            state, registry, events, NoInstances(), root_at=groups.root_at
        )
        return cls(codec, state, registry, events, groups, executor)

    async def deploy(self, change: Callable[[Group], Group]) -> GroupChange:
        """Store the change and run its deployment to the end."""
        await trio.sleep(0.002)  # root versions are milliseconds: one per change
        result = await self.groups.update_root(change)
        with trio.fail_after(30):
            await self.executor.execute(result.deployment)
        return result


def scaled(app_id: str, instances: int) -> Callable[[Group], Group]:
    def change(root: Group) -> Group:
        app = root.find_app(PathId.parse(app_id))
        assert app is not None
        return root.update_app(attrs.evolve(app, instances=instances, cmd="sleep 1"))

    return change


async def test_a_deployment_decodes_only_what_it_changes(backend: Backend) -> None:
    storage = await backend.open()
    try:
        await seed(storage)
        leader = await Leader.open(storage)
        root = await leader.groups.root()  # taking over: every app, once
        assert len(list(root.transitive_apps())) == STORED
        assert leader.codec.decoded["AppDefinition"] == STORED
        leader.codec.clear()

        new = AppDefinition(id=PathId.parse("/seed/g7/new"), cmd="sleep 1", instances=0)
        await leader.deploy(lambda r: r.update_app(new))
        await leader.deploy(scaled("/seed/g3/app321", 0))
        await leader.deploy(lambda r: r.remove_app(PathId.parse("/seed/g9/app987")))

        assert leader.codec.decoded["AppDefinition"] == 0
        assert leader.codec.decoded["Group"] == 0
        assert leader.codec.encoded["AppDefinition"] == 2  # the new app, the scaled app
        # ... and storage holds it all: another process loads the same root.
        fresh = await StateStore.open(storage)
        assert await fresh.root_group() == await leader.groups.root()
        assert await fresh.check_consistency() == []
    finally:
        await storage.aclose()


async def test_a_resumed_deployment_decodes_only_the_versions_it_lacks(
    backend: Backend,
) -> None:
    """A new leader loads the current root once; the deployment it resumes started from
    an older root, of which only the app versions the current one lacks are decoded."""
    storage = await backend.open()
    try:
        await seed(storage)
        old = await Leader.open(storage)
        await trio.sleep(0.002)
        change = await old.groups.update_root(scaled("/seed/g3/app321", 0))  # not run

        leader = await Leader.open(storage)
        await leader.groups.root()
        assert leader.codec.decoded["AppDefinition"] == STORED
        leader.codec.clear()
        with trio.fail_after(30):
            await leader.executor.execute(change.deployment)
        assert leader.codec.decoded["AppDefinition"] == 1  # app321 as it was before
    finally:
        await storage.aclose()


class WrittenCounter:
    """Wraps a storage's commit: the bytes each commit writes, and the app references
    in the reference chunks it writes."""

    def __init__(self, storage: Storage) -> None:
        self.bytes: list[int] = []
        self.refs: list[int] = []
        commit = storage.commit

        async def counting(ops: Any) -> Any:
            ops = list(ops)
            written = [op for op in ops if isinstance(op, Create | Update)]
            self.bytes.append(sum(len(op.value) for op in written))
            chunks = [op for op in written if op.key.startswith(f"{CATEGORY}/")]
            self.refs.append(sum(len(json.loads(op.value)) for op in chunks))
            return await commit(ops)

        storage.commit = counting  # type: ignore[method-assign]

    def clear(self) -> None:
        self.bytes.clear()
        self.refs.clear()


async def drop_seeded_apps(state: StateStore, apps: Iterable[AppDefinition]) -> None:
    """Delete the stored versions of ``apps`` (and their current keys).

    Why: the session's ZooKeeper (256 MB of heap) holds what every test stored; one more
    test of 5,000 apps left standing was one too many for it.
    """
    keys = []
    for app in apps:
        assert app.version is not None
        keys += [state.apps.version_key(app.id, app.version), state.apps.current_key(app.id)]
    for k in range(0, len(keys), 500):
        present = await state.storage.get_many(keys[k : k + 500])
        await state.storage.commit([Delete(key) for key in present])


@pytest.fixture(params=["sqlite", pytest.param("zk", marks=pytest.mark.zookeeper)])
def writer(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """SQLite and ZooKeeper (its read cache changes what is read, not what is written)."""
    return BACKENDS[request.param](tmp_path, request)


async def test_a_change_to_a_large_group_writes_what_it_changes(writer: Backend) -> None:
    """5,000 apps in one group: adding, replacing and removing one writes the chunks
    around it (at most two of :data:`CHUNK_MAX` references, one on average) and a root
    record naming about 5,000 / :data:`CHUNK_MEAN` chunks: a few KiB, where the
    references of the whole group were 230 KiB."""
    storage = await writer.open()
    try:
        await seed(storage, flat=True)
        leader = await Leader.open(storage)
        root = await leader.groups.root()
        seed_group = root.find_group(PathId.parse("/seed"))
        assert seed_group is not None and len(seed_group.apps) == STORED
        all_refs = len(json.dumps([[str(a.id), str(a.version)] for a in seed_group.apps]))
        assert all_refs > 200_000
        written = WrittenCounter(storage)
        leader.codec.clear()

        new = AppDefinition(id=PathId.parse("/seed/new"), cmd="sleep 1", instances=0)
        changes: list[Callable[[Group], Group]] = [
            lambda r: r.update_app(new),
            scaled("/seed/app2345", 0),
            lambda r: r.remove_app(PathId.parse("/seed/app987")),
        ]
        for change in changes:
            written.clear()
            await leader.deploy(change)
            assert sum(written.refs) <= 2 * CHUNK_MAX, written.refs
            assert sum(written.bytes) < 16_000, written.bytes  # app, record, deployment
        assert leader.codec.decoded["AppDefinition"] == 0
        assert leader.codec.decoded["Group"] == 0
        assert leader.codec.encoded["AppDefinition"] == 2
        record = await leader.state.groups.get(PathId.root())
        assert record is not None
        assert len(record.chunks["/seed"]) < 3 * STORED / CHUNK_MEAN
        fresh = await StateStore.open(storage)
        assert await fresh.root_group() == await leader.groups.root()
        assert await fresh.check_consistency() == []
        if writer.name == "zk":
            await drop_seeded_apps(fresh, seed_group.apps)
    finally:
        await storage.aclose()
