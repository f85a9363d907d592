"""Readiness-gated deployments and the deployment status, on the simulated cluster of
``test_deploy_executor``: what the executor waits for, and the reason it gives."""

from __future__ import annotations

import time
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from marathon_core.contracts.placement import NoOfferMatchReason
from marathon_core.contracts.queue import QueueEntry, RejectSummary
from marathon_core.deploy.executor import ActionProgress, DeploymentExecutor, Waiting
from marathon_core.deploy.manager import DeploymentRegistry, GroupManager
from marathon_core.deploy.planner import plan_deployment
from marathon_core.deploy.status import deployment_status
from marathon_core.events import EventBus
from marathon_core.leader.readiness import ReadinessResult
from marathon_core.model.app import AppDefinition, PortDefinition, ReadinessCheck
from marathon_core.model.deployment import ActionKind
from marathon_core.model.group import Group
from marathon_core.model.health import Health
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import Condition, Instance, InstanceId, Task, TaskId
from marathon_core.state.memory import MemoryStorage
from marathon_core.state.store import StateStore

from .test_deploy_executor import (  # type: ignore[import-not-found]
    APP,
    Harness,
    SimulatedCluster,
    deploy,
    versions,
    web,
)


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


class SlowReadiness:
    """Instances become ready ``delay`` seconds after they are first asked about."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.asked: dict[InstanceId, float] = {}
        self.released: list[PathId] = []

    def has_checks(self, app: AppDefinition) -> bool:
        return bool(app.readiness_checks)

    def is_ready(self, app: AppDefinition, instance: Instance) -> bool:
        if instance.condition is not Condition.RUNNING:
            return False
        first = self.asked.setdefault(instance.instance_id, trio.current_time())
        return trio.current_time() - first >= self.delay

    def release(self, app_id: PathId) -> None:
        self.released.append(app_id)


def ready_web(instances: int, cmd: str, minimum: float, over: float) -> AppDefinition:
    base: AppDefinition = web(instances, cmd=cmd, minimum=minimum, over=over)
    return attrs.evolve(
        base,
        port_definitions=(PortDefinition(0, name="http"),),
        readiness_checks=(ReadinessCheck(port_name="http"),),
    )


async def test_old_instances_stay_until_replacements_are_ready(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    state = await StateStore.open(MemoryStorage())
    registry, events, cluster = DeploymentRegistry(), EventBus(), SimulatedCluster()
    groups = GroupManager(state, registry, events)
    gate = SlowReadiness(delay=5)
    executor = DeploymentExecutor(
        state, registry, events, cluster, root_at=groups.root_at, readiness=gate
    )
    nursery.start_soon(cluster.run)
    await nursery.start(executor.run)
    h = Harness(cluster, groups, events, registry)
    await deploy(h, ready_web(4, "v1", minimum=1.0, over=0.0))
    old = set(versions(h))
    lowest: list[int] = []
    seen: list[Waiting | None] = []
    deployment_ids: set[str] = set()

    async def observe() -> None:
        while True:
            await cluster.wait_changed()
            app = (await groups.root()).find_app(APP)
            assert app is not None
            present = cluster.instances_of(APP)
            kept = sum(
                1
                for i in present
                if i.condition is Condition.RUNNING
                and (str(i.run_spec_version) in old or gate.is_ready(app, i))
            )
            lowest.append(kept)
            for deployment in registry.all():
                deployment_ids.add(deployment.id)
                progress = executor.progress(deployment.id)
                if APP in progress:
                    seen.append(progress[APP].waiting)

    nursery.start_soon(observe)
    time.sleep(0.002)
    await deploy(h, ready_web(4, "v2", minimum=1.0, over=0.0))
    assert not set(versions(h)) & old
    assert min(lowest) >= 4  # minimumHealthCapacity 1: never fewer than 4 ready
    assert Waiting.READINESS in seen
    assert APP in gate.released  # the checks end with the action
    assert deployment_ids
    assert all(executor.progress(d) == {} for d in deployment_ids)  # forgotten at the end


class ChosenReadiness:
    """Instances are ready once the test says so; every question is noted."""

    def __init__(self) -> None:
        self.asked: set[InstanceId] = set()
        self.ready: set[InstanceId] = set()

    def has_checks(self, app: AppDefinition) -> bool:
        return bool(app.readiness_checks)

    def is_ready(self, app: AppDefinition, instance: Instance) -> bool:
        self.asked.add(instance.instance_id)
        return instance.condition is Condition.RUNNING and instance.instance_id in self.ready

    def release(self, app_id: PathId) -> None:
        pass


async def test_a_scale_resumed_by_a_new_leader_regates_the_instances_it_started(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """The old leader dies while the instances its scale started run but are not ready:
    the new leader's executor waits for their readiness again, and never asks the
    instances that were Running before the deployment."""
    state = await StateStore.open(MemoryStorage())
    registry, events, cluster = DeploymentRegistry(), EventBus(), SimulatedCluster()
    groups = GroupManager(state, registry, events)
    nursery.start_soon(cluster.run)
    first_gate = ChosenReadiness()
    first = DeploymentExecutor(
        state, registry, events, cluster, root_at=groups.root_at, readiness=first_gate
    )
    first_term = trio.CancelScope()

    async def lead_first(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with first_term:
            await first.run(task_status=task_status)

    await nursery.start(lead_first)
    app = ready_web(2, "v1", minimum=1.0, over=0.0)
    await groups.update_root(lambda root: root.update_app(app))
    while len([i for i in cluster.instances.values() if _running(i)]) < 2:
        await cluster.wait_changed()
    first_gate.ready.update(cluster.instances)
    while registry.all():
        await registry.wait_changed()
    before = set(cluster.instances)

    scaled = await groups.update_root(lambda root: root.update_app(attrs.evolve(app, instances=4)))
    while len([i for i in cluster.instances.values() if _running(i)]) < 4:
        await cluster.wait_changed()
    started = set(cluster.instances) - before
    assert len(started) == 2 and registry.get(scaled.deployment.id) is not None
    first_term.cancel()  # the old leader dies: its scale never saw them ready

    second_gate = ChosenReadiness()
    second = DeploymentExecutor(
        state, registry, events, cluster, root_at=groups.root_at, readiness=second_gate
    )
    with events.subscribe(event_types={"deployment_success"}) as done:
        await nursery.start(second.run)
        await trio.sleep(10)
        assert registry.get(scaled.deployment.id) is not None  # waits on readiness
        progress = second.progress(scaled.deployment.id)[APP]
        assert progress.waiting is Waiting.READINESS
        assert set(progress.waiting_on) == started
        assert second_gate.asked & before == set()  # ready before the deployment: not asked
        second_gate.ready.update(started)
        with trio.fail_after(100):
            event = await done.receive()
    assert event.payload["id"] == scaled.deployment.id
    assert set(cluster.instances) == before | started  # nothing replaced


def _running(instance: Instance) -> bool:
    return instance.condition is Condition.RUNNING


class Sources:
    """The leader's knowledge, as fixed values."""

    def __init__(self, instances: list[Instance]) -> None:
        self.instances = {i.instance_id: i for i in instances}
        self.entry: QueueEntry | None = None
        self.failure: dict[str, object] | None = None
        self.health: tuple[Health, ...] | None = None
        self.readiness: list[ReadinessResult] = []

    def get(self, instance_id: InstanceId) -> Instance | None:
        return self.instances.get(instance_id)

    def queue_entry(self, app_id: PathId) -> QueueEntry | None:
        return self.entry

    def last_task_failure(self, app_id: PathId) -> dict[str, object] | None:
        return self.failure

    def health_of(self, instance: Instance) -> tuple[Health, ...] | None:
        return self.health

    def readiness_results(self, app_id: PathId) -> list[ReadinessResult]:
        return self.readiness


def entry(**changes: Any) -> QueueEntry:
    base = QueueEntry(
        app_id=APP,
        count=1,
        role="*",
        delay_time_left=0.0,
        delay_overdue=True,
        since=None,
        processed_offers=0,
        unused_offers=0,
        last_unused_offer_at=None,
        last_used_offer_at=None,
        reject_summary=(),
        last_reasons=(),
        near_misses=(),
        not_launchable=None,
    )
    return attrs.evolve(base, **changes)


def status_of(sources: Sources, waiting: Waiting, instance: Instance) -> dict[str, object]:
    app = web(1)
    target = Group.empty_root().update_app(app)
    deployment = attrs.evolve(
        plan_deployment(Group.empty_root(), target, version=Timestamp(1)), current_step=2
    )
    progress = {APP: ActionProgress(ActionKind.SCALE, 1, 0, 1, 0, waiting, (instance.instance_id,))}
    status = deployment_status(deployment, progress, sources, target, now=Timestamp(1000))
    assert status["/web"]["progress"] == {
        "current": 0,
        "target": 1,
        "oldInstances": 0,
        "newInstances": 1,
    }
    reason = status["/web"]["reason"]
    assert isinstance(reason, dict)
    return reason


SCHEDULED = Instance(InstanceId.new(APP), condition=Condition.SCHEDULED)
RUNNING = Instance(InstanceId.new(APP), condition=Condition.RUNNING)


def test_an_app_no_offer_fits_says_what_did_not_fit() -> None:
    sources = Sources([SCHEDULED])
    sources.entry = entry(
        processed_offers=3,
        unused_offers=3,
        last_reasons=("needs 64 cpus",),
        near_misses=("needs 64 cpus, best offer had 2 (h1)",),
        reject_summary=(RejectSummary(NoOfferMatchReason.INSUFFICIENT_CPUS, 3, 3),),
    )
    reason = status_of(sources, Waiting.LAUNCH, SCHEDULED)
    assert reason["kind"] == "noMatchingOffer"
    assert reason["nearMisses"] == ["needs 64 cpus, best offer had 2 (h1)"]
    assert "needs 64 cpus" in str(reason["message"])


def test_a_crash_looping_app_shows_its_backoff_and_last_failure() -> None:
    sources = Sources([SCHEDULED])
    sources.entry = entry(delay_time_left=4.0, delay_overdue=False)
    sources.failure = {"state": "TASK_FAILED", "message": "Command exited with status 1"}
    reason = status_of(sources, Waiting.LAUNCH, SCHEDULED)
    assert reason["kind"] == "backoff"
    assert reason["nextLaunchAt"] == str(Timestamp(5000))
    assert "Command exited with status 1" in str(reason["message"])


def test_an_app_not_ready_shows_the_last_check() -> None:
    task_id = TaskId.for_instance(RUNNING.instance_id)
    running = attrs.evolve(RUNNING, tasks=(Task(task_id, Condition.RUNNING),))
    sources = Sources([running])
    sources.readiness = [
        ReadinessResult("readinessCheck", task_id, False, last_failure="GET x: status 503")
    ]
    reason = status_of(sources, Waiting.READINESS, running)
    assert reason["kind"] == "readinessChecks"
    assert "status 503" in str(reason["message"])
    assert reason["readinessCheckResults"] == [
        {
            "name": "readinessCheck",
            "taskId": str(task_id),
            "ready": False,
            "lastFailure": "GET x: status 503",
        }
    ]


def test_an_unhealthy_app_shows_the_failure_cause() -> None:
    sources = Sources([RUNNING])
    sources.health = (Health(RUNNING.instance_id, last_failure_cause="connection refused"),)
    reason = status_of(sources, Waiting.HEALTH, RUNNING)
    assert reason["kind"] == "healthChecks"
    assert "connection refused" in str(reason["message"])


@pytest.mark.parametrize("depends", [True, False])
def test_apps_of_later_steps_wait_for_their_dependencies(depends: bool) -> None:
    db = AppDefinition(id=PathId.parse("/db"), cmd="db")
    front = AppDefinition(
        id=PathId.parse("/front"), cmd="web", dependencies=(db.id,) if depends else ()
    )
    target = Group.empty_root().update_app(db).update_app(front)
    deployment = plan_deployment(Group.empty_root(), target, version=Timestamp(1))
    deployment = attrs.evolve(deployment, current_step=2)  # after the start markers
    status = deployment_status(deployment, {}, Sources([]), target, now=Timestamp(1))
    if depends:
        assert status["/db"]["state"] == "starting"
        assert status["/front"]["state"] == "pending"
        assert status["/front"]["reason"]["kind"] == "dependency"
        assert status["/front"]["reason"]["waitingFor"] == ["/db"]
    else:
        assert status["/front"]["state"] == "starting"


async def test_a_group_stops_in_reverse_dependency_order(
    harness_with_order: tuple[Harness, list[PathId]], autojump_clock: trio.testing.MockClock
) -> None:
    h, gone_order = harness_with_order
    db = AppDefinition(id=PathId.parse("/g/db"), cmd="db")
    api = AppDefinition(id=PathId.parse("/g/api"), cmd="api", dependencies=(db.id,))
    web_app = AppDefinition(id=PathId.parse("/g/web"), cmd="web", dependencies=(api.id,))
    for app in (db, api, web_app):
        await deploy(h, app)
    with h.events.subscribe(event_types={"deployment_success"}) as done:
        change = await h.groups.update_root(lambda root: root.remove_group(PathId.parse("/g")))
        assert len(change.deployment.steps) == 1  # Marathon's plan: one step of stops
        await done.receive()
    assert gone_order == [web_app.id, api.id, db.id]


@pytest.fixture
async def harness_with_order(nursery: trio.Nursery) -> tuple[Harness, list[PathId]]:
    """A harness whose cluster notes the order in which apps lose their last instance."""
    state = await StateStore.open(MemoryStorage())
    registry, events, cluster = DeploymentRegistry(), EventBus(), SimulatedCluster()
    groups = GroupManager(state, registry, events)
    executor = DeploymentExecutor(state, registry, events, cluster, root_at=groups.root_at)
    order: list[PathId] = []

    async def watch() -> None:
        had: set[PathId] = set()
        while True:
            await cluster.wait_changed()
            now = {i.app_id for i in cluster.instances.values()}
            order.extend(sorted(had - now))
            had = now

    nursery.start_soon(cluster.run)
    nursery.start_soon(watch)
    await nursery.start(executor.run)
    return Harness(cluster, groups, events, registry), order
