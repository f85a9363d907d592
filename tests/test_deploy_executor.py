"""The deployment executor against a simulated cluster: Marathon's rolling-upgrade math.

The simulated instance control is a fake of the scheduler's tracker (the real one is
tested with real agents elsewhere); here it lets us watch every intermediate state.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import attrs
import pytest
import trio
import trio.testing

from marathon_core.deploy.executor import DeploymentExecutor, RollingTargets, rolling_targets
from marathon_core.deploy.manager import DeploymentRegistry, GroupManager
from marathon_core.events import EventBus
from marathon_core.model.app import AppDefinition, HealthCheck, UpgradeStrategy
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import Condition, Goal, Instance, InstanceCounts, InstanceId
from marathon_core.state.memory import MemoryStorage
from marathon_core.state.store import StateStore

APP = PathId.parse("/web")


class SimulatedCluster:
    """Instances start a tick after being scheduled and die a tick after being killed."""

    def __init__(self) -> None:
        self.instances: dict[InstanceId, Instance] = {}
        self._changed = trio.Event()
        self.history: list[tuple[int, int]] = []  # (present, ready) after every change

    async def schedule(self, app: AppDefinition, count: int) -> list[Instance]:
        created = [
            Instance(InstanceId.new(app.id), run_spec_version=app.version, since=Timestamp.now())
            for _ in range(count)
        ]
        for instance in created:
            self.instances[instance.instance_id] = instance
        self._notify()
        return created

    async def decommission(self, instance_ids: Iterable[InstanceId]) -> None:
        for iid in instance_ids:
            self.instances[iid] = attrs.evolve(self.instances[iid], goal=Goal.DECOMMISSIONED)
        self._notify()

    def instances_of(self, app_id: PathId) -> list[Instance]:
        return [i for i in self.instances.values() if i.app_id == app_id]

    def counts_of(self, app_id: PathId) -> InstanceCounts:
        return InstanceCounts.of(self.instances_of(app_id))

    async def wait_changed(self) -> None:
        await self._changed.wait()

    def _notify(self) -> None:
        present = [i for i in self.instances.values() if not i.condition.is_terminal]
        ready = [i for i in present if i.condition is Condition.RUNNING]
        self.history.append((len(present), len(ready)))
        self._changed.set()
        self._changed = trio.Event()

    async def run(self) -> None:
        """One transition per tick, like agents reporting one status update at a time."""
        while True:
            await trio.sleep(1)
            for iid, instance in list(self.instances.items()):
                if instance.goal is Goal.DECOMMISSIONED:
                    del self.instances[iid]
                    self._notify()
                    break
                if instance.condition is Condition.SCHEDULED:
                    self.instances[iid] = attrs.evolve(instance, condition=Condition.RUNNING)
                    self._notify()
                    break


@attrs.define
class Harness:
    cluster: SimulatedCluster
    groups: GroupManager
    events: EventBus
    registry: DeploymentRegistry


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


@pytest.fixture
async def harness(nursery: trio.Nursery) -> Harness:
    state = await StateStore.open(MemoryStorage())
    registry, events, cluster = DeploymentRegistry(), EventBus(), SimulatedCluster()
    groups = GroupManager(state, registry, events)
    executor = DeploymentExecutor(state, registry, events, cluster, root_at=groups.root_at)
    nursery.start_soon(cluster.run)
    await nursery.start(executor.run)
    return Harness(cluster, groups, events, registry)


def web(instances: int, cmd: str = "v1", minimum: float = 1.0, over: float = 1.0) -> AppDefinition:
    return AppDefinition(
        id=APP, cmd=cmd, instances=instances, upgrade_strategy=UpgradeStrategy(minimum, over)
    )


async def deploy(h: Harness, app: AppDefinition) -> None:
    with h.events.subscribe(event_types={"deployment_success"}) as done:
        change = await h.groups.update_root(lambda root: root.update_app(app))
        with trio.fail_after(1000):
            event = await done.receive()
    assert event.payload["id"] == change.deployment.id
    assert h.registry.all() == []


def versions(h: Harness) -> list[str]:
    return sorted(str(i.run_spec_version) for i in h.cluster.instances.values())


def test_rolling_targets() -> None:
    assert rolling_targets(web(4, minimum=0.5, over=0.25), 4) == RollingTargets(2, 5)
    assert rolling_targets(web(4, minimum=1, over=0), 4).max_capacity == 5  # one extra allowed
    assert rolling_targets(web(4, minimum=0, over=0), 4) == RollingTargets(0, 4)


async def test_scale_up_and_down(harness: Harness, autojump_clock: trio.testing.MockClock) -> None:
    await deploy(harness, web(3))
    assert len(harness.cluster.instances) == 3
    app = (await harness.groups.root()).find_app(APP)
    assert app is not None
    await deploy(harness, attrs.evolve(app, instances=1))
    assert len(harness.cluster.instances) == 1


@pytest.mark.parametrize(
    ("minimum", "over", "max_present", "min_ready"),
    [(0.5, 0.25, 5, 2), (1.0, 0.0, 5, 4), (1.0, 1.0, 8, 4), (0.0, 0.0, 4, 0)],
)
async def test_rolling_restart_stays_within_the_upgrade_strategy(
    harness: Harness,
    autojump_clock: trio.testing.MockClock,
    minimum: float,
    over: float,
    max_present: int,
    min_ready: int,
) -> None:
    await deploy(harness, web(4, minimum=minimum, over=over))
    old = versions(harness)
    harness.cluster.history.clear()
    time.sleep(0.002)  # versions are wall-clock milliseconds, which the mock clock leaves alone
    await deploy(harness, web(4, cmd="v2", minimum=minimum, over=over))
    assert len(harness.cluster.instances) == 4
    assert not set(versions(harness)) & set(old)  # every instance replaced
    assert max(p for p, _ in harness.cluster.history) == max_present
    assert min(r for _, r in harness.cluster.history) >= min_ready


async def test_stop_removes_every_instance(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await deploy(harness, web(2))
    with harness.events.subscribe(event_types={"app_terminated_event"}) as terminated:
        with harness.events.subscribe(event_types={"deployment_success"}) as done:
            await harness.groups.update_root(lambda root: root.remove_app(APP))
            await done.receive()
        assert (await terminated.receive()).payload["appId"] == "/web"
    assert harness.cluster.instances == {}


async def test_steps_publish_info_and_success_with_a_full_plan(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    kinds = {"deployment_info", "deployment_step_success", "deployment_success"}
    with harness.events.subscribe(event_types=kinds) as events:
        await deploy(harness, web(1))
        seen = await events.receive_batch()  # everything published so far
    assert [e.event_type for e in seen] == [
        "deployment_info",
        "deployment_step_success",
        "deployment_info",
        "deployment_step_success",
        "deployment_success",
    ]
    plan = seen[0].payload["plan"]
    assert set(plan) == {"id", "version", "original", "target", "steps"}
    assert seen[0].payload["currentStep"] == {
        "actions": [{"action": "StartApplication", "app": "/web"}]
    }


async def test_a_removed_deployment_is_cancelled(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    blocked = web(2)
    change = await harness.groups.update_root(lambda root: root.update_app(blocked))
    await trio.sleep(0.5)  # scheduled, not yet running
    harness.registry.remove(change.deployment.id)
    await trio.sleep(10)
    assert harness.registry.all() == []  # and the executor did not put it back


class NewChecksGate:
    """Health as the monitor reports it when a new version adds scheduler-run checks:
    the old instances were never checked (no health), the new ones are healthy."""

    def __init__(self) -> None:
        self.unchecked: set[InstanceId] = set()

    def has_checks(self, app: AppDefinition) -> bool:
        return bool(app.health_checks)

    def is_healthy(self, instance: Instance) -> bool:
        return instance.instance_id not in self.unchecked


async def test_a_restart_that_adds_health_checks_completes(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    # minimumHealthCapacity=1, maximumOverCapacity=0: only the one extra instance a
    # restart is allowed lets it progress, and only when the old (unchecked, Running)
    # instances count as healthy now, as Marathon counts them.
    state = await StateStore.open(MemoryStorage())
    registry, events, cluster = DeploymentRegistry(), EventBus(), SimulatedCluster()
    groups = GroupManager(state, registry, events)
    gate = NewChecksGate()
    executor = DeploymentExecutor(
        state, registry, events, cluster, root_at=groups.root_at, health=gate
    )
    nursery.start_soon(cluster.run)
    await nursery.start(executor.run)
    h = Harness(cluster, groups, events, registry)
    await deploy(h, web(2, minimum=1.0, over=0.0))
    old = versions(h)
    gate.unchecked = set(cluster.instances)
    time.sleep(0.002)
    checked = attrs.evolve(
        web(2, minimum=1.0, over=0.0), health_checks=(HealthCheck(protocol="TCP"),)
    )
    await deploy(h, checked)
    assert len(cluster.instances) == 2
    assert not set(versions(h)) & set(old)
    assert max(p for p, _ in cluster.history) == 3
