"""The health monitor beyond its own probes: checks the agent runs (``TaskStatus.healthy``),
a new leader after a failover, and the rate at which it kills for failing checks.

Same stand-ins as ``test_health_monitor`` (a small tracker, a scripted checker, the
mock clock).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from marathon_core.contracts.health import HealthChecker, KillStatistics, ProbeResult
from marathon_core.errors import Violation
from marathon_core.events import EventBus
from marathon_core.leader.health import HealthMonitor
from marathon_core.leader.health_kills import KillRate, KillRateLimiter
from marathon_core.model.app import AppDefinition, Command, HealthCheck
from marathon_core.model.events import (
    unhealthy_instance_kill_deferred_event,
    unhealthy_instance_kill_event,
)
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import Instance

from .test_health_monitor import (  # type: ignore[import-not-found]
    HEALTHY_PORT,
    ScriptedCheck,
    Tracker,
    app_with,
    running,
    wait_until,
)


class AgentRun:
    """COMMAND / MESOS_*: validated only, the agent runs them."""

    @property
    def checker(self) -> HealthChecker | None:
        return None

    def validate(self, check: HealthCheck, *, path: str, app: AppDefinition) -> list[Violation]:
        return []


class Monitor:
    def __init__(
        self, app: AppDefinition, instances: list[Instance], kill_rate: KillRate | None = None
    ) -> None:
        self.events: list[Mapping[str, Any]] = []
        self.killed: list[Instance] = []
        self.tracker = Tracker(app, instances)
        self.check = ScriptedCheck()
        self.protocols = {"HTTP": self.check, "TCP": self.check, "COMMAND": AgentRun()}
        self.kill_rate = kill_rate
        self.monitor = self.new_leader()

    def new_leader(self) -> HealthMonitor:
        """A monitor of a new term over the same (stored) instances."""
        return HealthMonitor(
            self.tracker,
            EventBus(on_event=self.events.append),
            self.protocols,
            kill=self.kill,
            kill_rate=self.kill_rate,
        )

    async def kill(self, instances: Sequence[Instance]) -> None:
        self.killed.extend(instances)

    def of_type(self, event_type: str) -> list[Mapping[str, Any]]:
        return [e for e in self.events if e["eventType"] == event_type]


COMMAND_CHECK = HealthCheck(
    protocol="COMMAND", command=Command("true"), max_consecutive_failures=1, grace_period_seconds=0
)


def reported(instance: Instance, healthy: bool | None) -> Instance:
    task = instance.task
    assert task is not None
    return attrs.evolve(instance, tasks=(attrs.evolve(task, healthy=healthy),))


async def test_an_agent_run_check_follows_task_status_healthy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    instance = running(HEALTHY_PORT)
    m = Monitor(app_with(COMMAND_CHECK), [instance])
    async with trio.open_nursery() as nursery:
        await nursery.start(m.monitor.run)
        await trio.sleep(1)
        # No report yet: no result, neither healthy nor unhealthy, and not ready.
        assert m.monitor.counts([instance]) == (0, 0)
        assert not m.monitor.is_healthy(instance)
        assert m.monitor.has_checks(m.tracker.app)

        m.tracker.replace(reported(instance, True))
        await wait_until(lambda: m.monitor.is_healthy(m.tracker.instances[instance.instance_id]))
        (result,) = m.monitor.results(m.tracker.instances[instance.instance_id]) or []
        assert result["alive"] is True and result["firstSuccess"] is not None

        m.tracker.replace(reported(instance, False))
        await trio.sleep(1)
        current = m.tracker.instances[instance.instance_id]
        assert m.monitor.counts([current]) == (0, 1)
        (result,) = m.monitor.results(current) or []
        assert result["alive"] is False and result["consecutiveFailures"] == 1
        assert result["lastFailureCause"] == "Mesos health check failed (TaskStatus.healthy false)"
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    assert m.killed == []  # the agent's executor kills, never the leader
    assert [e["alive"] for e in m.of_type("health_status_changed_event")] == [True, False]
    assert len(m.of_type("failed_health_check_event")) == 1
    assert m.check.probes == 0


async def test_agent_run_health_survives_a_failover(
    autojump_clock: trio.testing.MockClock,
) -> None:
    instance = reported(running(HEALTHY_PORT), True)  # as the new leader loads it
    m = Monitor(app_with(COMMAND_CHECK), [instance])
    async with trio.open_nursery() as nursery:
        await nursery.start(m.monitor.run)
        await wait_until(lambda: m.monitor.is_healthy(instance), timeout=1)
        nursery.cancel_scope.cancel()


async def test_a_new_leader_keeps_healthy_tasks_through_a_probe_backlog_and_a_blip(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A task that was healthy under the old leader, long out of its grace period, must
    not be killed by the new one for results it does not have yet: probes waiting for
    a slot (many tasks, few slots) are not timed out, and a single failed probe right
    after the failover does not kill when ``maxConsecutiveFailures`` is 1."""
    check = HealthCheck(
        protocol="HTTP",
        port_index=0,
        grace_period_seconds=1,
        interval_seconds=10,
        timeout_seconds=1,
        max_consecutive_failures=1,
    )
    long_ago = Timestamp(Timestamp.now().millis - 3_600_000)
    instances = [running(HEALTHY_PORT, started_at=long_ago) for _ in range(40)]
    m = Monitor(app_with(check), instances)
    slow_probes = 0

    async def slow_healthy(check: HealthCheck, *, host: str, port: int, timeout: float) -> Any:
        nonlocal slow_probes
        slow_probes += 1
        await trio.sleep(0.6 * timeout)
        if slow_probes == 1:
            return ProbeResult.unhealthy("Connection reset by peer")  # the blip
        return ProbeResult.healthy()

    m.check.probe = slow_healthy  # type: ignore[method-assign]
    monitor = HealthMonitor(
        m.tracker, EventBus(on_event=m.events.append), m.protocols, kill=m.kill, max_concurrent=2
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(monitor.run)
        # 40 probes of 0.6 s two at a time: the last is sent 11.4 s after the first.
        await wait_until(lambda: all(monitor.is_healthy(i) for i in instances), timeout=60)
        nursery.cancel_scope.cancel()
    assert m.killed == []
    assert monitor.counts(instances) == (40, 0)


async def test_kills_are_rate_limited_deferred_visibly_and_spared_when_healthy_again(
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
    ports = [2000 + i for i in range(5)]
    instances = [running(port) for port in ports]
    m = Monitor(app_with(check), instances, kill_rate=KillRate(total=10, interval=10))
    for port in ports:
        m.check.results[port] = ProbeResult.healthy()
    async with trio.open_nursery() as nursery:
        await nursery.start(m.monitor.run)
        await wait_until(lambda: all(m.monitor.is_healthy(i) for i in instances))
        start = trio.current_time()
        for port in ports:  # all turn unhealthy at once (a network blip, a bad rollout)
            m.check.results[port] = ProbeResult.unhealthy("Connection refused")
        await wait_until(lambda: m.killed)
        await trio.sleep(2)
        assert len(m.killed) == 1  # one token per app per 10 s
        stats = m.monitor.kill_statistics()
        assert stats == KillStatistics(killed=1, deferred=4, pending=4, spared=0)
        deferrals = m.of_type("unhealthy_instance_kill_deferred_event")
        assert len(deferrals) == 4
        assert deferrals[0]["appId"] == "/web" and deferrals[0]["reason"] == "Connection refused"
        assert 0 < deferrals[0]["retryInSeconds"] <= 10

        # One of the deferred comes back before its turn: its kill is called off.
        spared_port = next(
            p
            for p in ports
            if all(k.task.host_ports != (p,) for k in m.killed)  # type: ignore[union-attr]
        )
        m.check.results[spared_port] = ProbeResult.healthy()
        await wait_until(lambda: m.monitor.kill_statistics().spared == 1)
        await wait_until(lambda: len(m.killed) == 4, timeout=60)
        elapsed = trio.current_time() - start
        nursery.cancel_scope.cancel()
    # The 2nd, 3rd and 4th kills each waited for their token: 10 s apart.
    assert 30 <= elapsed < 35
    assert all(k.task.host_ports != (spared_port,) for k in m.killed)  # type: ignore[union-attr]
    assert len(m.of_type("unhealthy_instance_kill_event")) == 4


def test_the_kill_buckets_refill_evenly_and_share_a_global_limit() -> None:
    now = [0.0]
    rate = KillRate(per_app_fraction=0.1, total=3, interval=10)
    limiter = KillRateLimiter(rate, clock=lambda: now[0])
    a, b = PathId(("a",)), PathId(("b",))
    assert [limiter.take(a, 20), limiter.take(a, 20)] == [0, 0]  # 10 % of 20
    assert limiter.take(a, 20) == 5.0  # 2 per 10 s: one back in 5 s
    assert limiter.take(b, 20) == 0
    assert limiter.take(b, 20) > 0  # the global bucket (3) is empty
    now[0] = 5.0
    assert limiter.take(a, 20) == 0


def test_an_apps_kill_tokens_follow_its_size() -> None:
    rate = KillRate(per_app_fraction=0.1)
    assert [rate.per_app(n) for n in (0, 1, 3, 10, 11, 30, 50)] == [1, 1, 1, 1, 2, 3, 5]
    now = [0.0]
    limiter = KillRateLimiter(KillRate(total=100), clock=lambda: now[0])
    a = PathId(("a",))
    assert [limiter.take(a, 30) for _ in range(3)] == [0, 0, 0]
    assert limiter.take(a, 30) > 0
    now[0] = 10.0
    # Scaled down to 10 meanwhile: the bucket holds one token, refilled at 1 per 10 s.
    assert [limiter.take(a, 10), limiter.take(a, 10)] == [0, 10.0]


@pytest.mark.parametrize(("size", "per_interval"), [(50, 5), (3, 1)])
async def test_all_instances_failing_are_killed_at_a_tenth_of_the_app_per_interval(
    autojump_clock: trio.testing.MockClock, size: int, per_interval: int
) -> None:
    """The defaults: 10 % of the app's instances (at least one) per 10 s, so 50 bad
    instances are replaced in about 100 s, not 500 s; 10 kills per 10 s for all apps."""
    check = HealthCheck(
        protocol="TCP",
        port_index=0,
        grace_period_seconds=0,
        interval_seconds=1,
        timeout_seconds=1,
        max_consecutive_failures=1,
    )
    ports = [3000 + i for i in range(size)]
    instances = [running(port) for port in ports]
    m = Monitor(attrs.evolve(app_with(check), instances=size), instances)
    for port in ports:
        m.check.results[port] = ProbeResult.healthy()
    async with trio.open_nursery() as nursery:
        await nursery.start(m.monitor.run)
        await wait_until(lambda: all(m.monitor.is_healthy(i) for i in instances))
        for port in ports:
            m.check.results[port] = ProbeResult.unhealthy("Connection refused")
        await wait_until(lambda: m.killed)
        start = trio.current_time()
        await trio.sleep(1)
        assert len(m.killed) == per_interval  # the burst: a full bucket
        await trio.sleep(start + 10.5 - trio.current_time())
        assert len(m.killed) == 2 * per_interval  # refilled evenly over the interval
        nursery.cancel_scope.cancel()


def test_a_deferral_event_has_the_kill_events_fields_and_when_it_is_retried() -> None:
    instance = running(HEALTHY_PORT)
    assert instance.task is not None
    app, task_id = app_with(COMMAND_CHECK), instance.task.task_id
    kill = unhealthy_instance_kill_event(app, instance, task_id, reason="503")
    deferral = unhealthy_instance_kill_deferred_event(
        app, instance, task_id, reason="503", retry_in_seconds=4.56789
    )
    assert deferral["eventType"] == "unhealthy_instance_kill_deferred_event"
    assert deferral["retryInSeconds"] == 4.568
    stamp = {"eventType", "timestamp"}
    assert {k: v for k, v in deferral.items() if k not in stamp | {"retryInSeconds"}} == {
        k: v for k, v in kill.items() if k not in stamp
    }
