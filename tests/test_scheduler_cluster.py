"""The scheduler end to end on a real embedded cluster (agent processes, HTTP on loopback)."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import attrs
import pytest
import trio

from marathon_core.contracts.placement import NoOfferMatchReason
from marathon_core.events import EventBus
from marathon_core.model.app import UnreachableStrategy
from marathon_core.model.deployment import Deployment
from marathon_core.model.ids import Timestamp
from marathon_core.model.instance import Condition, Goal
from marathon_core.testing.mesos_protos import parse_strict

from .scheduler_cluster import Leader, open_cluster, record_calls, service_context  # type: ignore[import-not-found]
from .scheduler_helpers import make_app, open_state  # type: ignore[import-not-found]

pytestmark = pytest.mark.cluster


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch, mesos_pb: SimpleNamespace | None) -> Iterator[list]:
    """Every call the scheduler sent; checked against the real protos afterwards."""
    calls = record_calls(monkeypatch)
    yield calls
    if mesos_pb is not None:
        for call in calls:
            parse_strict(mesos_pb, call, mesos_pb.scheduler.Call)


@pytest.fixture
async def state() -> AsyncIterator[Any]:
    async with open_state() as store:
        yield store


def running(tracker: Any, app_id: Any) -> list[Any]:
    return [i for i in tracker.instances_of(app_id) if i.condition is Condition.RUNNING]


def master_tasks(cluster: Any, state: str = "TASK_RUNNING") -> list[dict[str, Any]]:
    return [
        t for f in cluster.master.state()["frameworks"] for t in f["tasks"] if t["state"] == state
    ]


async def test_launch_scale_down_and_events(
    tmp_path: Path, nursery: trio.Nursery, state: Any, constraint_operators: Any, sent: list
) -> None:
    events = EventBus()
    async with open_cluster(tmp_path / "mesos", agents=2) as cluster:
        with events.subscribe() as sub:
            leader = Leader(
                service_context(cluster.url, state, constraint_operators, events), nursery
            )
            await leader.start()
            app = make_app("/prod/web", instances=3, ports=2, cmd="sleep 600")
            created = await leader.tracker.schedule(app, 3)
            await leader.wait(lambda: len(running(leader.tracker, app.id)) == 3)
            assert {i.instance_id for i in running(leader.tracker, app.id)} == {
                c.instance_id for c in created
            }
            tasks = master_tasks(cluster)
            assert len(tasks) == 3
            # Stored before anything else saw it: the store agrees with the view.
            stored = await state.instances.by_app(app.id)
            assert sorted(map(str, (i.instance_id for i in stored))) == sorted(
                str(i.instance_id) for i in created
            )
            assert all(i.condition is Condition.RUNNING for i in stored)
            instance = running(leader.tracker, app.id)[0]
            assert len(instance.task.host_ports) == 2
            # Scale down: decommission one; it is killed and expunged.
            await leader.tracker.decommission([instance.instance_id])
            assert leader.tracker.get(instance.instance_id).goal is Goal.DECOMMISSIONED
            await leader.wait(lambda: leader.tracker.get(instance.instance_id) is None)
            assert len(leader.tracker.instances_of(app.id)) == 2
            assert len(await state.instances.by_app(app.id)) == 2
            with trio.fail_after(5):
                while len(master_tasks(cluster)) != 2:
                    await trio.sleep(0.05)
            kinds: dict[str, list[dict[str, Any]]] = {}
            for event in await sub.receive_batch():  # everything published so far
                kinds.setdefault(event.event_type, []).append(dict(event.payload))
        assert "scheduler_registered_event" in kinds
        updates = kinds["status_update_event"]
        assert {u["taskStatus"] for u in updates} >= {"TASK_RUNNING", "TASK_KILLED"}
        first = next(u for u in updates if u["taskStatus"] == "TASK_RUNNING")
        assert first["appId"] == "/prod/web" and len(first["ports"]) == 2
        assert set(first) >= {"slaveId", "taskId", "host", "ipAddresses", "version", "message"}
        changed = kinds["instance_changed_event"]
        assert {c["condition"] for c in changed} >= {"Scheduled", "Provisioned", "Running"}
        assert set(changed[0]) >= {"instanceId", "runSpecId", "agentId", "host", "runSpecVersion"}
        stats = leader.state.scheduler.statistics()
        assert stats.tasks_launched == 3  # never more launches than instances
        await leader.stop()
    assert {c["type"] for c in sent} >= {"ACCEPT", "ACKNOWLEDGE", "KILL", "RECONCILE"}


async def test_env_vars_reach_the_task(
    tmp_path: Path, nursery: trio.Nursery, state: Any, constraint_operators: Any, sent: list
) -> None:
    async with open_cluster(tmp_path / "mesos") as cluster:
        leader = Leader(
            service_context(cluster.url, state, constraint_operators, EventBus()), nursery
        )
        await leader.start()
        out = tmp_path / "env.txt"
        app = make_app("/envy", ports=1, labels={"team": "x"}, cmd=f"env > {out}; sleep 600")
        await leader.tracker.schedule(app, 1)
        await leader.wait(lambda: len(running(leader.tracker, app.id)) == 1)
        with trio.fail_after(5):
            while not out.exists() or "MARATHON_APP_LABEL_TEAM" not in out.read_text():
                await trio.sleep(0.05)
        env = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
        port = running(leader.tracker, app.id)[0].task.host_ports[0]
        assert env["PORT0"] == env["PORT"] == env["PORTS"] == str(port)
        assert env["MARATHON_APP_ID"] == "/envy"
        assert env["MARATHON_APP_VERSION"] == str(app.version)
        assert env["MESOS_TASK_ID"] == str(running(leader.tracker, app.id)[0].task.task_id)
        await leader.stop()


async def test_failing_task_relaunches_same_instance_with_backoff(
    tmp_path: Path, nursery: trio.Nursery, state: Any, constraint_operators: Any, sent: list
) -> None:
    async with open_cluster(tmp_path / "mesos") as cluster:
        leader = Leader(
            service_context(cluster.url, state, constraint_operators, EventBus()), nursery
        )
        await leader.start()
        app = make_app("/crash", cmd="exit 3", backoff_seconds=1, backoff_factor=1.0)
        [instance] = await leader.tracker.schedule(app, 1)

        def incarnation() -> int:
            current = leader.tracker.get(instance.instance_id)
            task = current.task if current is not None else None
            return task.task_id.incarnation if task is not None else 0

        started = trio.current_time()
        await leader.wait(lambda: incarnation() >= 3, timeout=15)
        took = trio.current_time() - started
        assert took >= 1.5, "relaunches must wait for the backoff"
        assert len(leader.tracker.instances_of(app.id)) == 1  # same instance, new tasks
        entry = leader.state.scheduler.queue_entry(app.id)
        if entry is not None:
            assert entry.count == 1
        await leader.stop()
        # The last failure is stored with the app and a new leader shows it.
        stored = await state.task_failures.get(app.id)
        assert stored is not None and stored["state"] == "TASK_FAILED"
        successor = Leader(leader.ctx, nursery)
        await successor.start()
        restored = successor.state.scheduler.last_task_failure(app.id)  # type: ignore[union-attr]
        assert restored is not None and restored["state"] == "TASK_FAILED"
        await successor.stop()


async def test_unique_constraint_and_the_queue_explains(
    tmp_path: Path, nursery: trio.Nursery, state: Any, constraint_operators: Any, sent: list
) -> None:
    async with open_cluster(tmp_path / "mesos", agents=2) as cluster:
        leader = Leader(
            service_context(cluster.url, state, constraint_operators, EventBus()), nursery
        )
        await leader.start()
        app = make_app("/uniq", instances=3, constraints=(("hostname", "UNIQUE"),))
        await leader.tracker.schedule(app, 3)
        await leader.wait(lambda: len(running(leader.tracker, app.id)) == 2)
        hosts = {i.agent.host for i in running(leader.tracker, app.id)}
        assert len(hosts) == 2
        with trio.fail_after(5):
            while True:
                entry = leader.state.scheduler.queue_entry(app.id)
                if entry is not None and entry.unused_offers:
                    break
                await trio.sleep(0.05)
        assert entry.count == 1
        summary = {s.reason: s.declined for s in entry.reject_summary}
        assert summary[NoOfferMatchReason.UNFULFILLED_CONSTRAINT] >= 1
        assert any("UNIQUE" in r or "hostname" in r for r in entry.last_reasons), entry
        # Too big for any agent: the near miss says by how much.
        big = make_app("/big", cpus=64.0)
        await leader.tracker.schedule(big, 1)
        with trio.fail_after(5):
            while True:
                entry = leader.state.scheduler.queue_entry(big.id)
                if entry is not None and entry.near_misses:
                    break
                await trio.sleep(0.05)
        assert entry.near_misses[0].startswith("needs 64 cpus, best offer had")
        await leader.stop()


async def test_restart_adopts_running_tasks_and_kills_unknown_ones(
    tmp_path: Path, nursery: trio.Nursery, state: Any, constraint_operators: Any, sent: list
) -> None:
    async with open_cluster(tmp_path / "mesos") as cluster:
        ctx = service_context(cluster.url, state, constraint_operators, EventBus())
        leader = Leader(ctx, nursery)
        await leader.start()
        framework_id = await state.framework_id.get()
        assert framework_id is not None
        app = make_app("/keep", instances=2)
        await leader.tracker.schedule(app, 2)
        await leader.wait(lambda: len(running(leader.tracker, app.id)) == 2)
        before = {str(i.task.task_id) for i in running(leader.tracker, app.id)}
        launched = leader.state.scheduler.statistics().tasks_launched
        await leader.stop()
        # Forget one instance while "down": Mesos will report its task as unknown.
        forgotten = sorted(before)[0]
        victim = next(
            i for i in await state.instances.by_app(app.id) if str(i.task.task_id) == forgotten
        )
        await state.instances.delete(victim.instance_id)
        again = Leader(ctx, nursery)
        await again.start()
        assert again.state.mesos.framework_id == framework_id
        with trio.fail_after(10):
            while {t["id"] for t in master_tasks(cluster)} != before - {forgotten}:
                await trio.sleep(0.05)
        survivors = running(again.tracker, app.id)
        assert {str(i.task.task_id) for i in survivors} == before - {forgotten}
        assert again.state.scheduler.statistics().tasks_launched == 0
        assert launched == 2
        await again.stop()


@pytest.mark.parametrize(
    "constraint, attributes",
    [
        (("hostname", "UNIQUE"), ("",)),
        (("rack", "GROUP_BY"), ("rack:r1", "rack:r2", "rack:r3")),
    ],
    ids=["unique", "group_by"],
)
async def test_power_cord(
    tmp_path: Path,
    nursery: trio.Nursery,
    state: Any,
    constraint_operators: Any,
    sent: list,
    constraint: tuple[str, ...],
    attributes: tuple[str, ...],
) -> None:
    """Pull one agent's power cord: back to 2 running on the survivors, state exact."""
    events = EventBus()
    async with open_cluster(
        tmp_path / "mesos",
        agents=3,
        agent_attributes=attributes,
        agent_ping_timeout=0.2,
        max_agent_ping_timeouts=3,
    ) as cluster:
        with events.subscribe() as sub:
            leader = Leader(
                service_context(cluster.url, state, constraint_operators, events), nursery
            )
            await leader.start()
            app = make_app("/cord", instances=2, constraints=(constraint,))
            await leader.tracker.schedule(app, 2)
            await leader.wait(lambda: len(running(leader.tracker, app.id)) == 2)
            first = {i.instance_id: i.agent.host for i in running(leader.tracker, app.id)}
            victim_host = sorted(first.values())[0]
            index = next(n for n in range(3) if cluster.options.agent_ip(n) == victim_host)
            os.killpg(cluster.agent_processes[index].pid, signal.SIGKILL)
            lost = next(i for i, h in first.items() if h == victim_host)

            def recovered() -> bool:
                alive = running(leader.tracker, app.id)
                return (
                    len(alive) == 2
                    and victim_host not in {i.agent.host for i in alive}
                    and leader.tracker.get(lost) is None
                )

            await leader.wait(recovered, timeout=20)
            instances = leader.tracker.instances_of(app.id)
            assert len(instances) == 2, instances
            stored = await state.instances.by_app(app.id)
            assert sorted(str(i.instance_id) for i in stored) == sorted(
                str(i.instance_id) for i in instances
            )
            survivors = {cluster.options.agent_ip(n) for n in range(3)} - {victim_host}
            assert {i.agent.host for i in instances} <= survivors
            if constraint[1] == "UNIQUE":
                assert len({i.agent.host for i in instances}) == 2
            seen = [event.payload for event in await sub.receive_batch()]
        lost_events = [
            e for e in seen
            if e["eventType"] == "instance_changed_event" and e["instanceId"] == str(lost)
        ]  # fmt: skip
        assert "UnreachableInactive" in {e["condition"] for e in lost_events}
        assert any(
            e["eventType"] == "status_update_event" and e["taskStatus"] == "TASK_UNREACHABLE"
            for e in seen
        )
        await leader.stop()


@pytest.mark.parametrize("expunge_after", [0, 60], ids=["expunged", "kept"])
async def test_unreachable_comes_back_and_the_count_stays_exact(
    tmp_path: Path,
    nursery: trio.Nursery,
    state: Any,
    constraint_operators: Any,
    sent: list,
    expunge_after: int,
) -> None:
    """A partitioned agent returns after the replacement runs: one of the two is killed."""
    async with open_cluster(
        tmp_path / "mesos", agents=2, agent_ping_timeout=0.2, max_agent_ping_timeouts=3
    ) as cluster:
        leader = Leader(
            service_context(cluster.url, state, constraint_operators, EventBus()), nursery
        )
        await leader.start()
        app = make_app(
            "/part",
            instances=1,
            unreachable_strategy=UnreachableStrategy(True, 0, expunge_after),
        )
        await leader.tracker.schedule(app, 1)
        await leader.wait(lambda: len(running(leader.tracker, app.id)) == 1)
        [original] = running(leader.tracker, app.id)
        index = next(n for n in range(2) if cluster.options.agent_ip(n) == original.agent.host)
        cluster.pause_agent(index)

        def replaced() -> bool:
            return any(
                i.instance_id != original.instance_id for i in running(leader.tracker, app.id)
            )

        await leader.wait(replaced, timeout=20)
        cluster.resume_agent(index)
        with trio.fail_after(20):
            while True:
                tasks = master_tasks(cluster)
                alive = running(leader.tracker, app.id)
                if (
                    len(tasks) == 1
                    and len(alive) == 1
                    and len(leader.tracker.instances_of(app.id)) == 1
                ):
                    break
                await trio.sleep(0.1)
        assert {t["id"] for t in tasks} == {str(alive[0].task.task_id)}
        assert len(await state.instances.by_app(app.id)) == 1
        await leader.stop()


async def test_scale_check_fills_and_trims_unlocked_apps(
    tmp_path: Path, nursery: trio.Nursery, state: Any, constraint_operators: Any, sent: list
) -> None:
    async with open_cluster(tmp_path / "mesos") as cluster:
        leader = Leader(
            service_context(cluster.url, state, constraint_operators, EventBus()), nursery
        )
        scheduler = (await leader.start()).scheduler
        app = make_app("/scaled", instances=2)
        owner = Deployment(id="owner", version=Timestamp.now(), affected_apps=(app.id,))
        leader.ctx.registry.put(owner)
        await scheduler.scale_check([app])
        assert leader.tracker.instances_of(app.id) == []  # a deployment owns it
        leader.ctx.registry.remove(owner.id)
        await scheduler.scale_check([app])
        await leader.wait(lambda: len(running(leader.tracker, app.id)) == 2)
        smaller = attrs.evolve(app, instances=1, version=Timestamp(app.version.millis + 1))
        await scheduler.scale_check([smaller])
        await leader.wait(lambda: len(leader.tracker.instances_of(app.id)) == 1)
        await scheduler.scale_check([])  # the app was deleted
        await leader.wait(lambda: not leader.tracker.instances_of(app.id))
        await leader.stop()
