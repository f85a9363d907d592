"""Followers of the instance tracker pay for what changed, not for the app's size.

The health monitor and a deployment's scale step look after every tracker change;
while an app of 10,000 instances launches it sees thousands of them. Work is counted
as the instances they read from the tracker (not timed): one status update must cost
a handful of reads, where a rescan of the app would cost 10,000 per follower.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import trio
import trio.testing

from marathon_core.contracts.health import HealthChecker, ProbeResult
from marathon_core.deploy.executor import DeploymentExecutor
from marathon_core.deploy.manager import DeploymentRegistry, GroupManager
from marathon_core.errors import Violation
from marathon_core.events import EventBus
from marathon_core.leader.health import HealthMonitor
from marathon_core.model.app import AppDefinition, HealthCheck
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import (
    AgentInfo,
    Condition,
    Instance,
    InstanceCounts,
    InstanceId,
    Task,
    TaskId,
)
from marathon_core.scheduler.tracker import Changes, InstanceTracker
from marathon_core.state.memory import MemoryStorage
from marathon_core.state.store import StateStore

APP_ID = PathId(("big",))
N = 10_000
#: Reads one change may cost the monitor and the scale step together.
FEW = 10

CHECKED = AppDefinition(
    APP_ID,
    instances=N,
    health_checks=(HealthCheck(protocol="HTTP", port_index=0, interval_seconds=60),),
    version=Timestamp(1),
)
#: The current version dropped the check; one instance of the old version still runs.
CURRENT = attrs.evolve(CHECKED, health_checks=(), version=Timestamp(2))


class AlwaysHealthy:
    """An HTTP protocol the scheduler runs, answering healthy without a network."""

    @property
    def checker(self) -> HealthChecker:
        return self

    def validate(self, check: HealthCheck, *, path: str, app: AppDefinition) -> list[Violation]:
        return []

    async def probe(
        self, check: HealthCheck, *, host: str, port: int, timeout: float
    ) -> ProbeResult:
        return ProbeResult.healthy()


class CountingTracker(InstanceTracker):
    """The real tracker, counting the instances its followers read."""

    reads = 0

    def instances_of(self, app_id: PathId) -> list[Instance]:
        found = super().instances_of(app_id)
        self.reads += len(found)
        return found

    def all_instances(self) -> list[Instance]:
        found = super().all_instances()
        self.reads += len(found)
        return found

    def get(self, instance_id: InstanceId) -> Instance | None:
        self.reads += 1
        return super().get(instance_id)


def instance(app: AppDefinition, condition: Condition, incarnation: int = 1) -> Instance:
    iid = InstanceId.new(APP_ID)
    return with_task(Instance(iid, run_spec_version=app.version), condition, incarnation)


def with_task(instance: Instance, condition: Condition, incarnation: int = 1) -> Instance:
    task = Task(
        TaskId.for_instance(instance.instance_id, incarnation),
        condition=condition,
        host_ports=(31000,),
        started_at=Timestamp.now(),
    )
    agent = AgentInfo(host="127.0.0.1")
    return attrs.evolve(instance, condition=condition, agent=agent, tasks=(task,))


async def test_one_status_update_of_a_10000_instance_app_costs_a_few_reads() -> None:
    old = instance(CHECKED, Condition.RUNNING)
    starting = instance(CURRENT, Condition.STARTING)
    others = [instance(CURRENT, Condition.RUNNING) for _ in range(N - 2)]
    state = await StateStore.open(MemoryStorage())
    events = EventBus()
    tracker = CountingTracker(
        state, events, instances=[old, starting, *others], apps=[CHECKED, CURRENT]
    )
    assert tracker.counts_of(APP_ID) == InstanceCounts.of(tracker.instances_of(APP_ID))

    async def refuse(instances: Sequence[Instance]) -> None:
        raise AssertionError("nothing is unhealthy")

    monitor = HealthMonitor(tracker, events, {"HTTP": AlwaysHealthy()}, kill=refuse)
    registry = DeploymentRegistry()
    groups = GroupManager(state, registry, events)
    executor = DeploymentExecutor(
        state, registry, events, tracker, root_at=groups.root_at, health=monitor
    )
    scaled = trio.Event()

    async def scale() -> None:
        await executor.scale(CURRENT)
        scaled.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(monitor.run)
        nursery.start_soon(scale)
        await trio.testing.wait_all_tasks_blocked()
        # Each follower starts with one look at the whole app; only the old version's
        # instance has a check to run.
        assert monitor.is_healthy(old) and monitor.health_of(starting) is None
        assert not scaled.is_set()

        # One status update: the last instance runs. The scale step is done.
        tracker.reads = 0
        running = with_task(starting, Condition.RUNNING)
        await tracker.apply(lambda: Changes(put=(running,)))
        await trio.testing.wait_all_tasks_blocked()
        assert scaled.is_set()
        assert tracker.reads <= FEW
        assert monitor.health_of(running) is None

        # The old version's task is replaced: its health starts afresh, still exact.
        tracker.reads = 0
        relaunched = with_task(old, Condition.RUNNING, incarnation=2)
        await tracker.apply(lambda: Changes(put=(relaunched,)))
        await trio.testing.wait_all_tasks_blocked()
        assert tracker.reads <= FEW
        assert monitor.health_of(old) is None and monitor.is_healthy(relaunched)
        nursery.cancel_scope.cancel()
    assert tracker.counts_of(APP_ID) == InstanceCounts(N, N, N)


async def test_counts_follow_every_kind_of_change() -> None:
    state = await StateStore.open(MemoryStorage())
    tracker = InstanceTracker(state, EventBus(), apps=[CURRENT])
    scheduled = await tracker.schedule(CURRENT, 3)
    assert tracker.scheduled() == scheduled and tracker.scheduled_count() == 3
    running = with_task(scheduled[0], Condition.RUNNING)
    failed = with_task(scheduled[1], Condition.FAILED)
    await tracker.apply(lambda: Changes(put=(running, failed)))
    assert tracker.counts_of(APP_ID) == InstanceCounts(active=2, present=2, active_running=1)
    assert list(tracker.scheduled_by_app()[APP_ID]) == [scheduled[2].instance_id]
    await tracker.decommission([running.instance_id, scheduled[2].instance_id])
    assert tracker.counts_of(APP_ID) == InstanceCounts.of(tracker.instances_of(APP_ID))
    assert tracker.counts_of(APP_ID) == InstanceCounts(active=0, present=1, active_running=0)
    assert tracker.scheduled_by_app() == {} and tracker.scheduled_count() == 0
    await tracker.apply(lambda: Changes(expunge=(running.instance_id, failed.instance_id)))
    assert tracker.counts_of(APP_ID) == InstanceCounts()
    assert tracker.generation(APP_ID) == 0


async def test_a_follower_hears_of_changed_instances_and_of_new_versions() -> None:
    state = await StateStore.open(MemoryStorage())
    tracker = InstanceTracker(state, EventBus(), apps=[CURRENT])
    with tracker.follow() as feed:
        (new,) = await tracker.schedule(CURRENT, 1)
        assert feed.take() == {APP_ID: {new.instance_id}}
        tracker.remember_app(CURRENT)  # known already: nothing to look at
        assert feed.take() == {}
        await tracker.apply(lambda: Changes(expunge=(new.instance_id,)))
        tracker.remember_app(CHECKED)
        assert feed.take() == {APP_ID: None}
    await tracker.schedule(CURRENT, 1)
    assert feed.take() == {}
