"""Repositories and the StateStore facade, on every backend, with the real model codec."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest

from marathon_core.errors import (
    NotFoundError,
    StorageError,
    StorageFormatError,
    VersionConflictError,
)
from marathon_core.model.app import AppDefinition
from marathon_core.model.deployment import Deployment
from marathon_core.model.group import Group
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import AgentInfo, Condition, Instance, InstanceId
from marathon_core.state import frames
from marathon_core.state import instances as instances_module
from marathon_core.state.format import FORMAT_KEY
from marathon_core.state.instances import BUCKET_SIZE
from marathon_core.state.refchunks import CATEGORY, split_refs
from marathon_core.state.repositories import Codec, VersionedRepository
from marathon_core.state.storage import Check, Create, Storage
from marathon_core.state.store import StateStore

sys.path.insert(0, str(Path(__file__).parent))
import state_backends
from state_backends import Backend

backend = state_backends.backend
store = state_backends.store


def ts(n: int) -> Timestamp:
    return Timestamp(1_700_000_000_000 + n)


def app(name: str, v: int, **kw: object) -> AppDefinition:
    return AppDefinition(id=PathId.parse(name), cmd=f"run {name} {v}", version=ts(v), **kw)  # type: ignore[arg-type]


def root(v: int, *apps: AppDefinition) -> Group:
    """A root with each app in its parent group (one level of subgroups)."""
    by_parent: dict[PathId, list[AppDefinition]] = {}
    for a in apps:
        by_parent.setdefault(a.id.parent, []).append(a)
    top = tuple(by_parent.pop(PathId.root(), []))
    groups = tuple(
        Group(gid, apps=tuple(members), version=ts(v)) for gid, members in sorted(by_parent.items())
    )
    return Group(PathId.root(), apps=top, groups=groups, version=ts(v))


def instance(app_id: str, n: int = 0, condition: Condition = Condition.RUNNING) -> Instance:
    pid = PathId.parse(app_id)
    return Instance(
        InstanceId(pid, f"00000000-0000-0000-0000-{n:012d}"),
        condition=condition,
        agent=AgentInfo(host=f"10.0.0.{n % 250}"),
        run_spec_version=ts(0),
    )


@pytest.fixture
async def state(store: Storage) -> StateStore:
    return await StateStore.open(store, max_versions=3)


# -- apps --------------------------------------------------------------------------------


async def test_app_versions_and_pruning(state: StateStore) -> None:
    web = PathId.parse("/prod/web")
    for v in range(1, 6):
        await state.apps.store(app("/prod/web", v))
    assert await state.apps.versions(web) == [ts(3), ts(4), ts(5)]  # max_versions=3
    assert (await state.apps.get(web)) == app("/prod/web", 5)
    assert await state.apps.get_version(web, ts(4)) == app("/prod/web", 4)
    assert await state.apps.get_version(web, ts(1)) is None
    # storing the same version again replaces it and does not add one
    await state.apps.store(attrs.evolve(app("/prod/web", 5), cmd="changed"))
    assert await state.apps.versions(web) == [ts(3), ts(4), ts(5)]
    assert (await state.apps.get(web)).cmd == "changed"  # type: ignore[union-attr]


async def test_app_listing_and_delete(state: StateStore) -> None:
    for name in ["/a", "/b/c", "/b/d"]:
        await state.apps.store(app(name, 1))
        await state.apps.store(app(name, 2))
    assert sorted(map(str, await state.apps.ids())) == ["/a", "/b/c", "/b/d"]
    assert sorted(str(a.id) for a in await state.apps.all()) == ["/a", "/b/c", "/b/d"]
    assert all(a.version == ts(2) for a in await state.apps.all())
    assert await state.apps.delete(PathId.parse("/b/c"))
    assert not await state.apps.delete(PathId.parse("/b/c"))
    assert await state.apps.get(PathId.parse("/b/c")) is None
    assert await state.apps.versions(PathId.parse("/b/c")) == []
    assert sorted(map(str, await state.apps.ids())) == ["/a", "/b/d"]


async def test_app_without_version_is_refused(state: StateStore) -> None:
    with pytest.raises(ValueError):
        await state.apps.store(AppDefinition(id=PathId.parse("/x")))


async def test_concurrent_writers_never_lose_a_version(store: Storage) -> None:
    """Read-plan-commit races are retried, so every version lands and pruning holds."""
    import trio

    repo: VersionedRepository[tuple[str, int], str, int] = VersionedRepository(
        store,
        "things",
        Codec(lambda t: f"{t[0]}:{t[1]}".encode(), lambda b: (b.split(b":")[0].decode(), 0)),
        id_of=lambda t: t[0],
        parse_id=str,
        version_of=lambda t: t[1],
        parse_version=int,
        max_versions=100,
    )
    async with trio.open_nursery() as nursery:
        for v in range(30):
            nursery.start_soon(repo.store, ("x", v))
    assert await repo.versions("x") == list(range(30))


# -- the root group ---------------------------------------------------------------------


async def test_root_group_roundtrip_by_reference(state: StateStore) -> None:
    r1 = root(1, app("/a", 1), app("/prod/web", 1), app("/prod/db", 1))
    await state.store_root(r1)
    assert await state.root_group() == r1
    # one app changes: only it gets a new version; the root refers to it
    r2 = root(2, app("/a", 1), app("/prod/web", 2), app("/prod/db", 1))
    await state.store_root(r2)
    assert await state.root_group() == r2
    assert await state.root_group(ts(1)) == r1
    assert await state.root_group_versions() == [ts(1), ts(2)]
    assert await state.apps.versions(PathId.parse("/a")) == [ts(1)]
    assert await state.apps.versions(PathId.parse("/prod/web")) == [ts(1), ts(2)]
    # an app removed from the tree is deleted
    r3 = root(3, app("/a", 1), app("/prod/web", 2))
    await state.store_root(r3)
    assert await state.apps.get(PathId.parse("/prod/db")) is None
    assert await state.root_group() == r3
    assert await state.check_consistency() == []


def _reference_record(state: StateStore, tree: Group) -> bytes:
    """A root record as encoded from scratch: each group's references cut by
    ``split_refs`` (not reusing chunks), the names through json."""
    names: dict[str, list[str]] = {}

    def strip(g: Group) -> Group:
        refs = [(str(a.id), str(a.version)) for a in g.apps]
        names[str(g.id)] = [n for _, n in split_refs(refs)]
        return attrs.evolve(g, apps=(), groups=tuple(strip(c) for c in g.groups))

    stripped = strip(tree)
    names_json = json.dumps(names, separators=(",", ":")).encode()
    return frames.pack([names_json, state.codec.to_storage(stripped)])


async def _stored_chunks(state: StateStore) -> set[str]:
    return set(await state.storage.children(CATEGORY))


async def _named_chunks(state: StateStore) -> set[str]:
    """The chunks the stored root versions name."""
    names: set[str] = set()
    for v in await state.root_group_versions():
        record = await state.groups.get_version(PathId.root(), v)
        assert record is not None
        names |= record.names()
    return names


async def test_root_records_reuse_unchanged_subtrees_and_encode_as_before(
    state: StateStore,
) -> None:
    tree = Group.empty_root(version=ts(0))
    trees = []
    for v in range(1, 8):
        # Path-copying changes, as the group manager makes them: most subtrees are shared.
        tree = attrs.evolve(tree.update_app(app(f"/g{v % 3}/s{v % 2}/a{v}", v)), version=ts(v))
        if v == 5:
            tree = attrs.evolve(tree.remove_group(PathId.parse("/g1")), version=ts(v))
        trees.append(tree)
        await state.store_root(tree)
        named = await state.storage.get(state.groups.current_key(PathId.root()))
        assert named is not None and named.value == str(ts(v)).encode()
        stored = await state.storage.get(state.groups.version_key(PathId.root(), ts(v)))
        assert stored is not None and stored.value == _reference_record(state, tree)
        assert await state.root_group() == tree
    for v, old in enumerate(trees, start=1):
        if ts(v) in await state.root_group_versions():
            assert await state.root_group(ts(v)) == old
    # Chunks no kept version names were deleted with the versions that named them.
    assert await _stored_chunks(state) == await _named_chunks(state)
    # A repeated group id (never made by the API) is merged as json.dumps merges it.
    twice = Group(PathId.parse("/d"), apps=(app("/d/x", 1),), version=ts(1))
    odd = Group(PathId.root(), groups=(twice, attrs.evolve(twice, apps=())), version=ts(9))
    assert state._dump_root(state.root_record(odd)) == _reference_record(state, odd)


async def test_root_versions_pruned(state: StateStore) -> None:
    for v in range(1, 6):
        await state.store_root(root(v, app("/a", v)))
    assert await state.root_group_versions() == [ts(3), ts(4), ts(5)]
    assert await state.root_group() == root(5, app("/a", 5))


async def test_empty_store_has_no_root(state: StateStore) -> None:
    assert await state.root_group() is None
    snap = await state.load()
    assert (snap.root, snap.instances, snap.deployments, snap.framework_id) == (
        None,
        [],
        [],
        None,
    )


async def test_root_and_deployment_together(state: StateStore) -> None:
    r = root(1, app("/a", 1), app("/b", 1))
    d = Deployment(
        id="d1", version=ts(1), target_version=ts(1), affected_apps=(PathId.parse("/a"),)
    )
    await state.store_root_and_deployment(r, d)
    assert await state.root_group() == r
    assert await state.deployments.get("d1") == d
    assert await state.complete_deployment("d1", put_instances=[instance("/a", 1)])
    assert await state.deployments.get("d1") is None
    assert [i.instance_id for i in await state.instances.by_app(PathId.parse("/a"))] == [
        instance("/a", 1).instance_id
    ]
    assert not await state.complete_deployment("d1")


async def test_root_and_deployment_all_or_nothing(backend: Backend) -> None:
    """A failing fence (a lost leadership) leaves neither the group nor the deployment."""
    storage = await backend.open()
    try:
        leader_node_version = 0
        state = await StateStore.open(
            storage, fence=lambda: [Check("leader/epoch", leader_node_version)]
        )
        await storage.create("leader/epoch", b"me")
        r1 = root(1, app("/a", 1))
        await state.store_root_and_deployment(r1, Deployment(id="d1", version=ts(1)))
        await storage.update("leader/epoch", b"someone else")  # leadership moved on
        r2 = root(2, app("/a", 2), app("/new", 2))
        with pytest.raises(VersionConflictError):
            await state.store_root_and_deployment(r2, Deployment(id="d2", version=ts(2)))
        assert await state.root_group() == r1
        assert await state.deployments.ids() == ["d1"]
        assert await state.apps.get(PathId.parse("/new")) is None
        assert await state.apps.versions(PathId.parse("/a")) == [ts(1)]
        assert await state.check_consistency() == []
    finally:
        await storage.aclose()


async def test_root_referring_to_missing_app_is_reported(state: StateStore) -> None:
    await state.store_root(root(1, app("/a", 1)), apps_changed=[])  # caller forgot the app
    # The writer holds the root it stored; loading it from storage finds the gap.
    with pytest.raises(StorageError, match="not stored"):
        await (await StateStore.open(state.storage)).root_group()
    assert await state.check_consistency() == ["root refers to missing app /a at " + str(ts(1))]


# -- instances ----------------------------------------------------------------------------


async def test_instances_crud(state: StateStore) -> None:
    a = [instance("/a", n) for n in range(5)]
    b = [instance("/b/c", n) for n in range(3)]
    await state.instances.put_many([*a, *b])
    assert await state.instances.get(a[2].instance_id) == a[2]
    assert await state.instances.by_app(PathId.parse("/a")) == a
    assert sorted(str(i.instance_id) for i in await state.instances.all()) == sorted(
        str(i.instance_id) for i in [*a, *b]
    )
    changed = attrs.evolve(a[2], condition=Condition.KILLED)
    await state.instances.put(changed)
    assert await state.instances.get(a[2].instance_id) == changed
    assert len(await state.instances.by_app(PathId.parse("/a"))) == 5
    assert await state.instances.delete(a[0].instance_id)
    assert await state.instances.get(a[0].instance_id) is None
    assert not await state.instances.delete(a[0].instance_id)
    await state.instances.delete_many([i.instance_id for i in b])
    assert await state.instances.app_ids() == [PathId.parse("/a")]
    assert await state.instances.delete_app(PathId.parse("/a"))
    assert await state.instances.all() == []
    assert await state.instances.get(a[1].instance_id) is None


async def test_instances_batch_is_one_value_per_app(state: StateStore) -> None:
    await state.instances.put_many(instance("/big", n) for n in range(200))
    assert await state.storage.children("instances") == ["%2Fbig"]
    assert len(await state.instances.by_app(PathId.parse("/big"))) == 200


async def test_a_large_apps_value_is_kept_and_one_stale_is_read_again(
    state: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a change to an app of many instances the next change reads nothing; a
    value another writer changed meanwhile fails its version check and is read again."""
    big = [instance("/big", n) for n in range(100)]
    await state.instances.change(put=big)
    reads: list[list[str]] = []
    real_get_many = state.storage.get_many

    async def get_many(keys: list[str]) -> dict[str, object]:
        reads.append(list(keys))
        return await real_get_many(keys)  # type: ignore[return-value]

    monkeypatch.setattr(state.storage, "get_many", get_many)
    await state.instances.change(
        put=[attrs.evolve(big[1], condition=Condition.KILLING)], delete=[big[0].instance_id]
    )
    assert reads == []
    other = StateStore(state.storage)  # another writer, e.g. a deployment's transaction
    await other.instances.put(attrs.evolve(big[2], condition=Condition.KILLED))
    reads.clear()
    await state.instances.change(put=[attrs.evolve(big[3], condition=Condition.FAILED)])
    assert reads == [["instances/%2Fbig"]]  # the version check failed: read again
    stored = {i.instance_id: i.condition for i in await state.instances.by_app(big[0].app_id)}
    expected = {i.instance_id: Condition.RUNNING for i in big[1:]}
    expected |= {big[1].instance_id: Condition.KILLING, big[2].instance_id: Condition.KILLED,
                 big[3].instance_id: Condition.FAILED}  # fmt: skip
    assert stored == expected
    entry = await state.storage.get("instances/%2Fbig")
    assert entry is not None and list(frames.unpack_pairs(entry.value)) == [
        str(i.instance_id) for i in big[1:]
    ]  # the layout of a value written from a kept one is the same


async def test_a_large_app_is_stored_in_buckets_and_a_change_rewrites_only_its_own(
    state: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = [instance("/big", n) for n in range(2 * BUCKET_SIZE + 10)]
    await state.instances.change(put=big)
    keys = ["instances/%2Fbig", "instances/%2Fbig%%1", "instances/%2Fbig%%2"]
    assert ["instances/" + c for c in await state.storage.children("instances")] == keys
    committed: list[list[str]] = []
    real_commit = state.storage.commit

    async def commit(ops: list[Any]) -> list[int | None]:
        committed.append([op.key for op in ops])
        return await real_commit(ops)

    monkeypatch.setattr(state.storage, "commit", commit)
    last = attrs.evolve(big[-1], condition=Condition.KILLING)
    await state.instances.change(put=[last])
    assert committed == [["instances/%2Fbig%%2"]]  # only the bucket that changed
    committed.clear()
    await state.instances.change(delete=[i.instance_id for i in big[BUCKET_SIZE : 2 * BUCKET_SIZE]])
    assert committed == [["instances/%2Fbig", "instances/%2Fbig%%1"]]  # emptied; unlisted
    fresh = StateStore(state.storage)  # another process: nothing kept
    for repo in (state.instances, fresh.instances):
        expected = [*big[:BUCKET_SIZE], *big[2 * BUCKET_SIZE : -1], last]
        assert await repo.by_app(big[0].app_id) == expected
        assert sorted(map(str, await repo.all())) == sorted(map(str, expected))
        assert await repo.app_ids() == [big[0].app_id]
        assert await repo.get(last.instance_id) == last
        assert await repo.get(big[BUCKET_SIZE].instance_id) is None
    more = [instance("/big", n) for n in range(5000, 5000 + BUCKET_SIZE)]
    await fresh.instances.change(put=more)  # fills the last bucket, then a new one
    assert await state.storage.children("instances") == ["%2Fbig", "%2Fbig%%2", "%2Fbig%%3"]
    assert len(await state.instances.by_app(big[0].app_id)) == len(expected) + BUCKET_SIZE
    assert await state.instances.delete_app(big[0].app_id)
    assert await state.storage.children("instances") == []


def held_bytes(state: StateStore) -> int:
    """Bytes of encoded instances the repository holds for the apps it wrote."""
    return sum(
        len(framed)
        for value in state.instances._kept.values()
        for bucket in value.buckets.values()
        if bucket.members is not None
        for framed in bucket.members.values()
    )


async def test_a_large_app_holds_only_its_last_written_buckets_and_reads_the_others(
    state: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Holding every bucket written would double the records in memory: at most
    ``KEEP_BYTES`` are held, and a change to a bucket not held reads that bucket only
    (and the whole app again when another writer changed it)."""
    big = [instance("/big", n) for n in range(6 * BUCKET_SIZE)]
    await state.instances.change(put=big)
    assert 0 < held_bytes(state) <= instances_module.KEEP_BYTES
    entry = await state.storage.get("instances/%2Fbig%%1")
    assert entry is not None
    monkeypatch.setattr(instances_module, "KEEP_BYTES", len(entry.value) * 7 // 2)
    every_bucket = [
        attrs.evolve(big[n * BUCKET_SIZE], condition=Condition.KILLING) for n in range(6)
    ]
    await state.instances.change(put=every_bucket)
    assert len(entry.value) * 2 < held_bytes(state) <= instances_module.KEEP_BYTES
    reads: list[list[str]] = []
    real_get_many = state.storage.get_many

    async def get_many(keys: list[str]) -> dict[str, object]:
        reads.append(list(keys))
        return await real_get_many(keys)  # type: ignore[return-value]

    monkeypatch.setattr(state.storage, "get_many", get_many)
    last = attrs.evolve(big[-1], condition=Condition.FAILED)
    await state.instances.change(put=[last])
    assert reads == []  # written last: held
    first = attrs.evolve(big[1], condition=Condition.FAILED)
    await state.instances.change(put=[first])
    assert reads == [["instances/%2Fbig"]]  # written first: read, alone
    other = StateStore(state.storage)  # another writer changes the second bucket
    second = [attrs.evolve(big[BUCKET_SIZE + n], condition=Condition.KILLED) for n in (2, 3)]
    await other.instances.put(second[0])
    reads.clear()
    await state.instances.change(put=[second[1]])
    rest = [f"instances/%2Fbig%%{n}" for n in range(1, 6)]
    assert reads == [["instances/%2Fbig%%1"], ["instances/%2Fbig"], rest]  # stale: read all
    assert held_bytes(state) <= instances_module.KEEP_BYTES
    expected = {i.instance_id: i.condition for i in big}
    for changed in (*every_bucket, last, first, *second):
        expected[changed.instance_id] = changed.condition
    for repo in (state.instances, StateStore(state.storage).instances):
        stored = {i.instance_id: i.condition for i in await repo.by_app(big[0].app_id)}
        assert stored == expected


async def test_random_changes_with_few_buckets_held_store_what_a_fresh_reader_sees(
    state: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Buckets written, read back when not held, emptied and added, with another writer
    now and then: what is stored is always the changes applied in order."""
    rng = random.Random(7)
    monkeypatch.setattr(instances_module, "BUCKET_SIZE", 16)
    monkeypatch.setattr(instances_module, "KEEP_MIN_MEMBERS", 8)
    monkeypatch.setattr(instances_module, "KEEP_BYTES", 6_000)  # one bucket and a half
    model: dict[InstanceId, Instance] = {}
    other = StateStore(state.storage)
    serial = iter(range(10**6))
    for step in range(40):
        app_id = rng.choice(["/one", "/two"])
        mine = [i for i in model.values() if str(i.app_id) == app_id]
        puts = [instance(app_id, next(serial)) for _ in range(rng.choice([0, 3, 40]))]
        changed = rng.sample(mine, min(len(mine), 6))
        puts += [attrs.evolve(i, condition=Condition.KILLING) for i in changed]
        dropped = rng.sample(mine, min(len(mine), rng.choice([0, 5, 50])))
        drops = [i.instance_id for i in dropped if i not in changed]
        writer = other if step % 7 == 6 else state
        await writer.instances.change(put=puts, delete=drops)
        model.update((i.instance_id, i) for i in puts)
        for d in drops:
            del model[d]
        for repo in (state.instances, StateStore(state.storage).instances):
            assert {i.instance_id: i for i in await repo.all()} == model, step
        assert held_bytes(state) <= 6_000


# -- deployments and framework id ---------------------------------------------------------


async def test_deployments(state: StateStore) -> None:
    d1 = Deployment(id="d1", version=ts(1))
    d2 = Deployment(id="d2", version=ts(2), current_step=1)
    await state.deployments.put(d1)
    await state.deployments.put(d2)
    await state.deployments.put(attrs.evolve(d1, current_step=2))
    assert (await state.deployments.get("d1")).current_step == 2  # type: ignore[union-attr]
    assert [d.id for d in await state.deployments.all()] == ["d1", "d2"]
    assert await state.deployments.delete("d2")
    assert await state.deployments.ids() == ["d1"]


async def test_framework_id(state: StateStore) -> None:
    assert await state.framework_id.get() is None
    await state.framework_id.set("fw-1")
    await state.framework_id.set("fw-2")
    assert await state.framework_id.get() == "fw-2"


# -- format and restart -------------------------------------------------------------------


async def test_state_store_refuses_newer_format(store: Storage) -> None:
    await store.create(FORMAT_KEY, b"999")
    with pytest.raises(StorageFormatError):
        await StateStore.open(store)


async def test_everything_survives_reopen(backend: Backend) -> None:
    s = await backend.open()
    state = await StateStore.open(s)
    r = root(1, app("/a", 1), app("/g/b", 1))
    await state.store_root_and_deployment(r, Deployment(id="d", version=ts(1)))
    await state.instances.put_many([instance("/a", 1), instance("/g/b", 2)])
    await state.framework_id.set("fw")
    await s.aclose()
    s2 = await backend.open()
    try:
        snap = await (await StateStore.open(s2)).load()
        assert snap.root == r
        assert len(snap.instances) == 2
        assert [d.id for d in snap.deployments] == ["d"]
        assert snap.framework_id == "fw"
    finally:
        await s2.aclose()


async def test_missing_key_errors_are_core_errors(store: Storage) -> None:
    with pytest.raises(NotFoundError):
        await store.commit([Create("a", b""), Check("b", 0)])
    assert await store.get("a") is None
