"""App listings served from encoded entries: every change shows in the next response.

The leader's tracker is in place (as on a leading scheduler), so ``/v2/apps`` and
friends answer from :mod:`marathon_rest.appinfo`. Each check compares the whole
response with the entries encoded from scratch, so a stale or mis-spliced entry fails.
"""

from __future__ import annotations

import random
import tracemalloc
from typing import Any

import attrs
import httpx
import orjson
import pytest

from marathon_core.model.app import AppDefinition
from marathon_core.model.deployment import Deployment
from marathon_core.model.group import Group
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import (
    AgentInfo,
    Condition,
    Instance,
    InstanceId,
    Task,
    TaskId,
)
from marathon_core.testing.context import CoreContext, ManualLeader
from marathon_rest import appinfo
from marathon_rest.appinfo import AppInfoCache, app_info, apps_by_id, deployments_by_app

WEB = PathId.parse("/shop/web")
DB = PathId.parse("/shop/db")
NOW = Timestamp(1_700_000_000_000)


def running(app_id: PathId, k: int, condition: Condition = Condition.RUNNING) -> Instance:
    iid = InstanceId.new(app_id)
    task = Task(
        TaskId.for_instance(iid),
        condition,
        staged_at=NOW,
        started_at=NOW,
        host_ports=(31000 + k,),
        run_spec_version=NOW,
    )
    return Instance(
        iid,
        condition=condition,
        tasks=(task,),
        agent=AgentInfo(f"127.0.0.{2 + k}", f"agent-{k}"),
        run_spec_version=NOW,
    )


def with_condition(instance: Instance, condition: Condition) -> Instance:
    assert instance.task is not None
    task = attrs.evolve(instance.task, condition=condition)
    return attrs.evolve(instance, condition=condition, tasks=(task,))


@pytest.fixture
async def tracker(api_context: CoreContext) -> ManualLeader:
    return ManualLeader.attach(api_context)


async def put(tracker: ManualLeader, *instances: Instance) -> None:
    await tracker.put(*instances)


async def expected(ctx: CoreContext, tracker: ManualLeader, *, tasks: bool) -> bytes:
    """The listing encoded from scratch."""
    root = await ctx.root()
    deployments = deployments_by_app(ctx.deployments())
    apps = sorted(root.transitive_apps(), key=lambda a: a.id)
    infos = [
        app_info(a, tracker.instances_of(a.id), deployments.get(a.id, ()), with_tasks=tasks)
        for a in apps
    ]
    return orjson.dumps({"apps": infos})


async def check_listings(client: httpx.AsyncClient, ctx: CoreContext, tracker: Any) -> None:
    for _ in range(2):  # the second answer comes from the cache
        with_tasks = await client.get("/v2/apps?embed=apps.tasks")
        assert with_tasks.content == await expected(ctx, tracker, tasks=True)
        plain = await client.get("/v2/apps")
        assert plain.content == await expected(ctx, tracker, tasks=False)


@pytest.fixture
async def two_apps(client: httpx.AsyncClient, tracker: ManualLeader) -> None:
    for app_id in (WEB, DB):
        created = await client.post("/v2/apps", json={"id": str(app_id), "cmd": "sleep 100"})
        assert created.status_code == 201, created.text
    await put(tracker, running(WEB, 0), running(WEB, 1), running(DB, 0))


async def test_every_change_shows_in_the_next_listing(
    two_apps: None, client: httpx.AsyncClient, api_context: CoreContext, tracker: ManualLeader
) -> None:
    ctx = api_context
    await check_listings(client, ctx, tracker)
    web = (await client.get("/v2/apps?embed=apps.tasks")).json()["apps"][1]
    assert (web["id"], web["tasksRunning"], len(web["tasks"])) == (str(WEB), 2, 2)

    # A task changes state.
    first, second = tracker.instances_of(WEB)
    await put(tracker, with_condition(first, Condition.STAGING))
    await check_listings(client, ctx, tracker)
    web = (await client.get("/v2/apps?embed=apps.tasks")).json()["apps"][1]
    assert (web["tasksRunning"], web["tasksStaged"]) == (1, 1)

    # A task is killed and its instance goes away.
    await put(tracker, with_condition(second, Condition.KILLED))
    await check_listings(client, ctx, tracker)
    await tracker.expunge(second.instance_id)
    await check_listings(client, ctx, tracker)
    web = (await client.get("/v2/apps?embed=apps.tasks")).json()["apps"][1]
    assert [t["id"] for t in web["tasks"]] == [str(first.task.task_id)]  # type: ignore[union-attr]

    # An instance comes and goes while another stays.
    third = running(WEB, 3)
    await put(tracker, third)
    await check_listings(client, ctx, tracker)
    await tracker.expunge(third.instance_id)
    await check_listings(client, ctx, tracker)

    # The app is scaled (a new definition and a deployment) and relabelled.
    scaled = await client.put(f"/v2/apps{WEB}?force=true", json={"instances": 4})
    assert scaled.status_code == 200, scaled.text
    await check_listings(client, ctx, tracker)
    relabelled = await client.put(f"/v2/apps{WEB}?force=true", json={"labels": {"tier": "front"}})
    assert relabelled.status_code == 200, relabelled.text
    await check_listings(client, ctx, tracker)
    web = (await client.get("/v2/apps")).json()["apps"][1]
    assert (web["instances"], web["labels"]) == (4, {"tier": "front"})
    assert web["deployments"] == [{"id": relabelled.json()["deploymentId"]}]

    # Its deployment ends.
    for deployment in ctx.deployments():
        ctx.registry.remove(deployment.id)
    await check_listings(client, ctx, tracker)

    # A new definition whose deployment ends before the next listing.
    changed = await client.put(f"/v2/apps{WEB}", json={"cmd": "sleep 7"})
    assert changed.status_code == 200, changed.text
    ctx.registry.remove(changed.json()["deploymentId"])
    await check_listings(client, ctx, tracker)

    # All of an app's instances go, then a new one comes.
    await tracker.expunge(*(i.instance_id for i in tracker.instances_of(DB)))
    await check_listings(client, ctx, tracker)
    await put(tracker, running(DB, 3))
    await check_listings(client, ctx, tracker)

    # The app is deleted.
    deleted = await client.delete(f"/v2/apps{DB}")
    assert deleted.status_code == 200, deleted.text
    await check_listings(client, ctx, tracker)
    assert [a["id"] for a in (await client.get("/v2/apps")).json()["apps"]] == [str(WEB)]


async def test_single_app_group_and_filtered_reads_see_changes_too(
    two_apps: None, client: httpx.AsyncClient, tracker: ManualLeader
) -> None:
    async def reads() -> list[Any]:
        return [
            (await client.get(f"/v2/apps{WEB}")).json()["app"],
            (await client.get("/v2/apps/shop/*?embed=apps.tasks")).json()["*"][1],
            (await client.get("/v2/groups/shop?embed=group.apps.tasks")).json()["apps"][1],
            (await client.get("/v2/apps?id=web&embed=apps.tasks")).json()["apps"][0],
        ]

    before = await reads()
    assert [r["tasksRunning"] for r in before] == [2, 2, 2, 2]
    assert before[1:] == [before[0]] * 3
    (first, _) = tracker.instances_of(WEB)
    await put(tracker, with_condition(first, Condition.STAGING))
    after = await reads()
    assert [(r["tasksRunning"], r["tasksStaged"]) for r in after] == [(1, 1)] * 4
    assert after[1:] == [after[0]] * 3
    assert await client.put(f"/v2/apps{WEB}?force=true", json={"cmd": "sleep 5"})
    assert [r["cmd"] for r in await reads()] == ["sleep 5"] * 4


async def test_a_new_tracker_is_not_mistaken_for_the_old_one(
    two_apps: None, client: httpx.AsyncClient, api_context: CoreContext, tracker: ManualLeader
) -> None:
    """Leadership lost and won again: a new tracker counts its generations afresh."""
    await check_listings(client, api_context, tracker)
    fresh = ManualLeader.attach(api_context)
    # The same number of changes as the old tracker saw, so the same generations.
    await put(fresh, running(WEB, 5), running(WEB, 6), running(DB, 7))
    assert [fresh.instances_generation(a) for a in (WEB, DB)] == [
        tracker.instances_generation(a) for a in (WEB, DB)
    ]
    await check_listings(client, api_context, fresh)


def test_encoded_entries_are_the_entries_as_orjson_writes_them() -> None:
    app = AppDefinition(id=WEB, cmd="sleep 1", labels={"a": "b"}, version=NOW)
    instances = [running(WEB, 0), running(WEB, 1, Condition.STAGING), running(WEB, 2)]
    instances[2] = with_condition(instances[2], Condition.FAILED)  # not live: no task shown
    cache = AppInfoCache()
    for deployment_ids in [(), ("d1", "d2")]:
        for with_tasks in (False, True):
            encoded = cache.encode(app, instances, deployment_ids, with_tasks=with_tasks)
            reference = app_info(app, instances, deployment_ids, with_tasks=with_tasks)
            assert orjson.dumps(encoded) == orjson.dumps(reference)
            assert orjson.loads(orjson.dumps(encoded)) == reference


def kept_task_bytes(cache: AppInfoCache) -> int:
    """The JSON of tasks ``cache`` keeps: each task, and each entry with tasks."""
    tasks = sum(len(e[3]) for by_id in cache._tasks.values() for e in by_id.values())
    return tasks + sum(len(orjson.dumps(e[4])) for e in cache._entries[True].values())


async def test_encoded_tasks_are_kept_within_their_budget_for_the_apps_used_last(
    tracker: ManualLeader,
) -> None:
    """Keeping the tasks of every app served held their JSON twice over (140 MB at
    100,000 tasks): the apps used last are kept, up to the budget, or the app just
    used alone when it is larger."""
    apps = [AppDefinition(id=PathId.parse(f"/many/app-{n}"), version=NOW) for n in range(4)]
    for app in apps:
        await put(tracker, *(running(app.id, j) for j in range(10)))
    unbounded = AppInfoCache()
    unbounded.entries(apps[:1], tracker, {}, with_tasks=True)
    one_app = kept_task_bytes(unbounded)
    assert unbounded.held_bytes == one_app > 0
    cache = AppInfoCache(task_cache_bytes=one_app * 5 // 2)
    reference = [
        orjson.dumps(app_info(a, tracker.instances_of(a.id), (), with_tasks=True)) for a in apps
    ]
    listed = cache.entries(apps, tracker, {}, with_tasks=True)
    assert [orjson.dumps(e) for e in listed] == reference
    assert cache.held_bytes == kept_task_bytes(cache) == 2 * one_app
    assert set(cache._tasks) == {a.id for a in apps[2:]}  # the two used last
    again = cache.entries(apps[2:], tracker, {}, with_tasks=True)
    assert [a is b for a, b in zip(again, listed[2:], strict=True)] == [True, True]
    assert cache.entries(apps[:1], tracker, {}, with_tasks=True)[0] is not listed[0]
    assert set(cache._tasks) == {apps[0].id, apps[3].id}
    assert kept_task_bytes(cache) <= one_app * 5 // 2
    tiny = AppInfoCache(task_cache_bytes=1)
    (first,) = tiny.entries(apps[:1], tracker, {}, with_tasks=True)
    assert tiny.entries(apps[:1], tracker, {}, with_tasks=True)[0] is first  # alone: kept
    tiny.entries(apps[1:2], tracker, {}, with_tasks=True)
    assert set(tiny._tasks) == {apps[1].id}


def test_kept_encodings_take_their_own_size_not_orjsons_buffer() -> None:
    """orjson's output sits in a buffer of 4 kB or more: kept as it is for each of
    100,000 tasks, that was 400 MB."""
    app = AppDefinition(id=WEB, cmd="sleep 1", version=NOW)
    instances = [running(WEB, k) for k in range(50)]
    cache = AppInfoCache()
    tracemalloc.start()
    try:
        cache.encode(app, instances, (), with_tasks=True)
        snapshot = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    kept = kept_task_bytes(cache) + len(cache.app_bytes(app))
    ours = snapshot.filter_traces([tracemalloc.Filter(True, appinfo.__file__)])
    held = sum(stat.size for stat in ours.statistics("filename"))
    assert kept < held < 2 * kept  # the JSON, with a tuple and a dict slot per task


def test_deployments_by_app_keeps_the_registry_order() -> None:
    d1 = Deployment(id="d1", version=NOW, affected_apps=(WEB, DB))
    d2 = Deployment(id="d2", version=NOW, affected_apps=(WEB,))
    assert deployments_by_app([d1, d2]) == {WEB: ("d1", "d2"), DB: ("d1",)}


def test_apps_by_id_patches_the_last_order_as_sorting_would_give_it() -> None:
    rng = random.Random(3)
    ids = [f"/g{g}/s{s}/a{a}" for g in range(4) for s in range(3) for a in range(4)]
    root = Group.empty_root()
    last: tuple[Group, list[AppDefinition]] | None = None
    for _ in range(300):
        for _ in range(rng.choice([1, 1, 2, 5])):
            app_id = PathId.parse(rng.choice(ids))
            move = rng.random()
            if move < 0.6:
                root = root.update_app(AppDefinition(id=app_id, cmd=str(rng.random())))
            elif move < 0.85:
                root = root.remove_app(app_id)
            else:
                root = root.remove_group(app_id.parent.parent)
        listed = apps_by_id(root, last)
        fresh = sorted(root.transitive_apps(), key=lambda a: a.id)
        assert len(listed) == len(fresh) and all(a is b for a, b in zip(listed, fresh, strict=True))
        last = (root, listed)
