"""The leader's health monitor: probing on schedule, Marathon's rules, events, kills.

The instance tracker is a small stand-in (the monitor only reads it) and the checker
answers what each test scripts, so the mock clock runs every test; the real probes
are tested in ``marathon-healthchecks`` (its protocols, and end to end).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import attrs
import trio
import trio.testing

from marathon_core.contracts.health import HealthChecker, ProbeResult
from marathon_core.errors import Violation
from marathon_core.events import EventBus
from marathon_core.leader.health import HealthMonitor
from marathon_core.model.app import AppDefinition, HealthCheck
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import AgentInfo, Condition, Instance, InstanceId, Task, TaskId
from marathon_core.scheduler.tracker import InstanceFeed

APP_ID = PathId(("web",))
HEALTHY_PORT = 1000
SILENT_PORT = 1001


class ScriptedCheck:
    """A protocol the scheduler runs, answering per port what the test sets."""

    def __init__(self) -> None:
        self.results = {HEALTHY_PORT: ProbeResult.healthy()}
        self.probes = 0

    @property
    def checker(self) -> HealthChecker:
        return self

    def validate(self, check: HealthCheck, *, path: str, app: AppDefinition) -> list[Violation]:
        return []

    async def probe(
        self, check: HealthCheck, *, host: str, port: int, timeout: float
    ) -> ProbeResult:
        self.probes += 1
        if port == SILENT_PORT:
            await trio.sleep(timeout + 1)  # the monitor gives up first
        return self.results.get(port, ProbeResult.unhealthy("Connection refused"))


class Tracker:
    """What the monitor reads of the instance tracker."""

    def __init__(self, app: AppDefinition, instances: list[Instance]) -> None:
        self.app = app
        self.instances = {i.instance_id: i for i in instances}
        self.gen = 1
        self._changed = trio.Event()
        self.feeds: list[InstanceFeed] = []

    @contextmanager
    def follow(self) -> Iterator[InstanceFeed]:
        feed = InstanceFeed()
        self.feeds.append(feed)
        yield feed

    def app_ids(self) -> list[PathId]:
        return [APP_ID] if self.instances else []

    def generation(self, app_id: PathId) -> int:
        return self.gen if self.instances else 0

    def instances_of(self, app_id: PathId) -> list[Instance]:
        return list(self.instances.values())

    def app_of(self, instance: Instance) -> AppDefinition:
        return self.app

    def get(self, instance_id: InstanceId) -> Instance | None:
        return self.instances.get(instance_id)

    async def wait_changed(self) -> None:
        await self._changed.wait()

    def replace(self, instance: Instance) -> None:
        self.instances[instance.instance_id] = instance
        self.gen += 1
        for feed in self.feeds:
            feed.add_instance(APP_ID, instance.instance_id)
        self._changed.set()
        self._changed = trio.Event()


def running(port: int, started_at: Timestamp | None = None) -> Instance:
    iid = InstanceId.new(APP_ID)
    task = Task(
        TaskId.for_instance(iid),
        condition=Condition.RUNNING,
        host_ports=(port,),
        started_at=started_at or Timestamp.now(),
    )
    return Instance(
        iid, condition=Condition.RUNNING, agent=AgentInfo(host="127.0.0.1"), tasks=(task,)
    )


def app_with(check: HealthCheck) -> AppDefinition:
    return AppDefinition(APP_ID, health_checks=(check,), version=Timestamp(1))


class Harness:
    def __init__(self, app: AppDefinition, instance: Instance) -> None:
        self.events: list[Mapping[str, Any]] = []
        self.killed: list[Instance] = []
        self.tracker = Tracker(app, [instance])
        self.check = ScriptedCheck()
        protocols = {"HTTP": self.check, "TCP": self.check}
        self.monitor = HealthMonitor(
            self.tracker, EventBus(on_event=self.events.append), protocols, kill=self.kill
        )

    async def kill(self, instances: Sequence[Instance]) -> None:
        self.killed.extend(instances)

    def types(self) -> list[str]:
        return [e["eventType"] for e in self.events]


async def wait_until(condition: Any, timeout: float = 10) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.05)


async def test_a_task_turns_healthy_then_unhealthy_then_is_killed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    check = HealthCheck(
        protocol="HTTP",
        path="/health",
        port_index=0,
        grace_period_seconds=0,
        interval_seconds=1,
        timeout_seconds=1,
        max_consecutive_failures=2,
    )
    instance = running(HEALTHY_PORT)
    h = Harness(app_with(check), instance)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.monitor.run)
        await wait_until(lambda: h.monitor.is_healthy(instance))
        assert h.monitor.counts([instance]) == (1, 0)
        (result,) = h.monitor.results(instance) or []
        assert result["alive"] is True and result["instanceId"] == str(instance.instance_id)
        gen = h.monitor.generation(APP_ID)
        assert gen > 0

        h.check.results[HEALTHY_PORT] = ProbeResult.unhealthy("500 Internal Server Error")
        await wait_until(lambda: h.killed, timeout=15)
        nursery.cancel_scope.cancel()
    assert h.killed == [instance]
    health = h.monitor.health_of(instance)
    assert health is not None and health[0].consecutive_failures == 3
    assert h.monitor.generation(APP_ID) > gen
    types = h.types()
    assert types.count("failed_health_check_event") == 3
    changes = [e for e in h.events if e["eventType"] == "health_status_changed_event"]
    assert [e["alive"] for e in changes] == [True, False]
    assert changes[0]["appId"] == "/web" and changes[0]["instanceId"] == str(instance.instance_id)
    (kill,) = [e for e in h.events if e["eventType"] == "unhealthy_instance_kill_event"]
    assert kill["taskId"] == str(instance.task.task_id)  # type: ignore[union-attr]
    assert kill["host"] == "127.0.0.1" and kill["reason"] == "500 Internal Server Error"


async def test_grace_period_spares_a_task_that_never_came_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    check = HealthCheck(
        protocol="TCP",
        port_index=0,
        grace_period_seconds=300,
        interval_seconds=1,
        timeout_seconds=1,
        max_consecutive_failures=1,
    )
    instance = running(0)  # nothing answers there
    h = Harness(app_with(check), instance)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.monitor.run)
        await trio.sleep(2.5)
        nursery.cancel_scope.cancel()
    assert h.killed == [] and h.events == []
    assert h.monitor.counts([instance]) == (0, 0)
    (result,) = h.monitor.results(instance) or []
    assert result["alive"] is False and result["consecutiveFailures"] == 0


async def test_health_is_forgotten_when_the_task_stops(
    autojump_clock: trio.testing.MockClock,
) -> None:
    check = HealthCheck(protocol="TCP", port_index=0, interval_seconds=1, timeout_seconds=1)
    instance = running(HEALTHY_PORT)
    h = Harness(app_with(check), instance)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.monitor.run)
        await wait_until(lambda: h.monitor.is_healthy(instance))
        task = instance.task
        assert task is not None
        finished = attrs.evolve(
            instance,
            condition=Condition.FINISHED,
            tasks=(attrs.evolve(task, condition=Condition.FINISHED),),
        )
        h.tracker.replace(finished)
        await wait_until(lambda: h.monitor.health_of(instance) is None)
        assert h.monitor.counts([finished]) == (0, 0)
        probes = h.check.probes
        await trio.sleep(5)  # five intervals: the stopped task is probed no more
        assert h.check.probes == probes
        nursery.cancel_scope.cancel()


async def test_a_probe_that_outlasts_its_timeout_is_a_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    check = HealthCheck(
        protocol="HTTP",
        port_index=0,
        grace_period_seconds=0,
        interval_seconds=1,
        timeout_seconds=1,
        max_consecutive_failures=0,  # never kill
    )
    instance = running(SILENT_PORT)
    h = Harness(app_with(check), instance)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.monitor.run)
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    health = h.monitor.health_of(instance)
    assert health is not None and health[0].consecutive_failures >= 2
    assert health[0].last_failure_cause == "timed out after 1 s"
    assert h.killed == []


async def test_a_killed_task_keeps_its_health_until_it_stops_running(
    autojump_clock: trio.testing.MockClock,
) -> None:
    check = HealthCheck(
        protocol="TCP",
        port_index=0,
        grace_period_seconds=0,
        interval_seconds=1,
        timeout_seconds=1,
        max_consecutive_failures=1,
    )
    instance = running(0)  # nothing answers there
    h = Harness(app_with(check), instance)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.monitor.run)
        await wait_until(lambda: h.killed)
        health = h.monitor.health_of(instance)
        assert health is not None
        failures = health[0].consecutive_failures
        # The kill does not change the tracker: the task stays Running until Mesos
        # reports. Other changes of the app must not give it fresh health and probes.
        for _ in range(2):
            h.tracker.replace(instance)
            await trio.sleep(0.2)
            assert h.monitor.health_of(instance) == health
        await trio.sleep(2.5)  # more than one interval: no probe, no second kill
        assert h.monitor.health_of(instance) == health
        assert health[0].consecutive_failures == failures
        task = instance.task
        assert task is not None
        h.tracker.replace(
            attrs.evolve(
                instance,
                condition=Condition.KILLED,
                tasks=(attrs.evolve(task, condition=Condition.KILLED),),
            )
        )
        await wait_until(lambda: h.monitor.health_of(instance) is None)
        nursery.cancel_scope.cancel()
    assert h.killed == [instance]
    assert h.types().count("unhealthy_instance_kill_event") == 1
