"""The scheduler with a fake Mesos: write-then-act order, launch timeout, queue, counts."""

from __future__ import annotations

from typing import Any

import attrs
import trio

from marathon_core.events import EventBus
from marathon_core.mesos.events import MesosEvent, Offers, Subscribed, TaskStatus, Update
from marathon_core.model.app import (
    Container,
    DockerContainer,
    Network,
    NetworkMode,
    PortMapping,
    UnreachableStrategy,
)
from marathon_core.model.instance import Condition, parse_task_id
from marathon_core.scheduler.scheduler import Scheduler, SchedulerOptions
from marathon_core.scheduler.tracker import Changes, InstanceTracker

from .scheduler_helpers import make_app, open_state  # type: ignore[import-not-found]
from .test_scheduler_units import offer  # type: ignore[import-not-found]


@attrs.define
class FakeMesos:
    """Records calls; checks the launched instances were stored before ACCEPT."""

    state: Any
    calls: list[dict[str, Any]] = attrs.field(factory=list)
    stored_at_accept: list[str] = attrs.field(factory=list)

    async def call(self, call: dict[str, Any]) -> None:
        self.calls.append(call)
        if call["type"] == "ACCEPT":
            for op in call["accept"]["operations"]:
                for info in op["launch"]["task_infos"]:
                    stored = [
                        i
                        for a in await self.state.instances.app_ids()
                        for i in await self.state.instances.by_app(a)
                        if i.task is not None and str(i.task.task_id) == info["task_id"]["value"]
                    ]
                    assert stored and stored[0].condition is Condition.PROVISIONED
                    self.stored_at_accept.append(info["task_id"]["value"])

    def try_post(self, call: dict[str, Any], on_done: Any) -> bool:
        return False  # every call through call(): it awaits the state it checks

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["type"] == kind]


async def test_a_used_offer_comes_back_at_once_while_more_instances_wait() -> None:
    """A round looks only at the instances its offers can take; the rest of a used
    offer is refused for 0 s while others still wait (Mesos would hold it back for the
    decline duration), and for the decline duration once the last one launched."""
    async with open_state() as state, trio.open_nursery() as nursery:
        mesos = FakeMesos(state)
        tracker = InstanceTracker(state, EventBus())
        options = SchedulerOptions(max_instances_per_offer=2, decline_offer_duration=120.0)
        scheduler = Scheduler(tracker=tracker, mesos=mesos, events=EventBus(), operators={},
                              options=options)  # fmt: skip
        send, receive = trio.open_memory_channel[MesosEvent](100)
        await nursery.start(scheduler.run, receive)
        await send.send(Subscribed(framework_id="F"))
        app = make_app("/web", instances=5, cpus=0.1)
        await tracker.schedule(app, 5)
        refused: list[float] = []
        for round_ in range(3):
            await send.send(Offers((offer(host=f"a{round_}", cpus=4.0),)))
            with trio.fail_after(5):
                while len(mesos.of("ACCEPT")) <= round_:
                    await trio.sleep(0.01)
            accept = mesos.of("ACCEPT")[round_]["accept"]
            refused.append(accept["filters"]["refuse_seconds"])
        assert refused == [0.0, 0.0, 120.0]  # 2 + 2 launched, 1 left; then none
        assert tracker.scheduled_count() == 0
        nursery.cancel_scope.cancel()


async def test_launches_are_stored_before_accept_and_never_exceed_instances() -> None:
    async with open_state() as state, trio.open_nursery() as nursery:
        mesos = FakeMesos(state)
        tracker = InstanceTracker(state, EventBus())
        options = SchedulerOptions(task_launch_timeout=0.05, max_instances_per_offer=2)
        scheduler = Scheduler(tracker=tracker, mesos=mesos, events=EventBus(), operators={},
                              options=options)  # fmt: skip
        send, receive = trio.open_memory_channel[MesosEvent](100)
        await nursery.start(scheduler.run, receive)
        await send.send(Subscribed(framework_id="F"))
        app = make_app("/web", instances=3, cpus=0.25)
        await tracker.schedule(app, 3)
        offers = [offer(host="a1", cpus=4.0), offer(host="a2", cpus=4.0), offer(host="a3")]
        await send.send(Offers(tuple(offers)))
        await send.send(Offers((offer(host="a4", cpus=4.0),)))
        with trio.fail_after(5):
            while len(mesos.stored_at_accept) < 3 or not mesos.of("DECLINE"):
                await trio.sleep(0.01)
        accepts = mesos.of("ACCEPT")
        sizes = sorted(len(a["accept"]["operations"][0]["launch"]["task_infos"]) for a in accepts)
        assert sizes == [1, 2]  # up to max_instances_per_offer from one offer
        assert len(mesos.stored_at_accept) == 3  # never past instances
        declined = {o["value"] for d in mesos.of("DECLINE") for o in d["decline"]["offer_ids"]}
        assert {"O-a3", "O-a4"} <= declined
        assert all(i.condition is Condition.PROVISIONED for i in tracker.instances_of(app.id))
        # No TASK_STARTING arrives: after the launch timeout each task is killed.
        await trio.sleep(0.1)
        await scheduler.check_timers()
        with trio.fail_after(2):
            while len(mesos.of("KILL")) < 3:
                await trio.sleep(0.01)
        # A second check does not kill again (kill retries wait kill_retry).
        await scheduler.check_timers()
        await trio.sleep(0.05)
        assert len(mesos.of("KILL")) == 3
        # The kill ends in a terminal update: the instance is scheduled again (same id).
        task = tracker.instances_of(app.id)[0].task
        status = TaskStatus(task_id=str(task.task_id), state="TASK_KILLED", agent_id="S-a1",
                            uuid="q83vEjRWeJCrze8SNFZ4kA==")  # fmt: skip
        await send.send(Update(status))
        with trio.fail_after(2):
            while not mesos.of("ACKNOWLEDGE"):
                await trio.sleep(0.01)
        assert len(tracker.scheduled()) == 1
        entry = scheduler.queue_entry(app.id)
        assert entry is not None and entry.count == 1 and entry.delay_time_left == 0.0
        nursery.cancel_scope.cancel()


async def test_instances_launched_on_one_agent_share_one_agent_info() -> None:
    """100,000 instances on 200 agents must not hold 100,000 copies of their agent."""
    async with open_state() as state, trio.open_nursery() as nursery:
        mesos = FakeMesos(state)
        tracker = InstanceTracker(state, EventBus())
        options = SchedulerOptions(max_instances_per_offer=2)
        scheduler = Scheduler(tracker=tracker, mesos=mesos, events=EventBus(), operators={},
                              options=options)  # fmt: skip
        send, receive = trio.open_memory_channel[MesosEvent](100)
        await nursery.start(scheduler.run, receive)
        await send.send(Subscribed(framework_id="F"))
        app = make_app("/web", instances=6, cpus=0.25)
        await tracker.schedule(app, 6)
        # Three offers of one agent, one at a time; its attributes change before the last.
        for launched, rack in ((2, "r1"), (4, "r1"), (6, "r2")):
            await send.send(Offers((offer(host="a1", cpus=4.0, attributes={"rack": rack}),)))
            with trio.fail_after(5):
                while len(mesos.stored_at_accept) < launched:
                    await trio.sleep(0.01)
        agents: dict[str, list[object]] = {}
        for instance in tracker.instances_of(app.id):
            assert instance.agent is not None
            agents.setdefault(instance.agent.attributes["rack"], []).append(instance.agent)
        assert sorted(len(a) for a in agents.values()) == [2, 4]
        for same in agents.values():
            assert all(a is same[0] for a in same)
        nursery.cancel_scope.cancel()


@attrs.define
class RecordingRuntime:
    """A container runtime that records what the launcher gives it."""

    host_ports: list[tuple[int, ...]] = attrs.field(factory=list)

    def validate(self, app: Any) -> list[Any]:
        return []

    def build_task_info(self, *, app: Any, task_info: dict[str, Any], host_ports: Any) -> None:
        self.host_ports.append(tuple(host_ports))
        task_info["container"] = {"type": "DOCKER", "docker": {"image": "i"}}


async def test_the_runtime_gets_the_host_ports_of_its_port_mappings_in_order() -> None:
    runtime = RecordingRuntime()
    mappings = (
        PortMapping(container_port=80, host_port=0),
        PortMapping(container_port=81),  # no hostPort: no host port
        PortMapping(container_port=443, host_port=31005),
        PortMapping(container_port=53, host_port=0, protocol="udp"),
    )
    container = Container("DOCKER", DockerContainer("i"), port_mappings=mappings)
    app = make_app("/bridge", container=container, networks=(Network(NetworkMode.BRIDGE),))
    async with open_state() as state, trio.open_nursery() as nursery:
        mesos = FakeMesos(state)
        tracker = InstanceTracker(state, EventBus())
        scheduler = Scheduler(tracker=tracker, mesos=mesos, events=EventBus(), operators={},
                              runtimes={"DOCKER": runtime})  # fmt: skip
        send, receive = trio.open_memory_channel[MesosEvent](10)
        await nursery.start(scheduler.run, receive)
        await send.send(Subscribed(framework_id="F"))
        await tracker.schedule(app, 1)
        await send.send(Offers((offer(ports=((31000, 31009),)),)))
        with trio.fail_after(5):
            while not mesos.stored_at_accept:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    [ports] = runtime.host_ports
    assert len(ports) == 3 and ports[1] == 31005
    assert all(31000 <= p <= 31009 for p in ports) and len(set(ports)) == 3
    [accept] = mesos.of("ACCEPT")
    [info] = accept["accept"]["operations"][0]["launch"]["task_infos"]
    assert [p["number"] for p in info["discovery"]["ports"]["ports"]] == list(ports)
    assert info["container"]["docker"]["image"] == "i"


async def test_generation_changes_with_every_change_to_an_apps_instances() -> None:
    """Readers cache what they derive from an app's instances under its generation."""
    async with open_state() as state:
        tracker = InstanceTracker(state, EventBus())
        web, db = make_app("/web"), make_app("/db")
        assert tracker.generation(web.id) == 0
        seen = {0}

        def fresh(app_id: Any) -> int:
            generation = tracker.generation(app_id)
            assert generation not in seen
            seen.add(generation)
            return generation

        first, second = await tracker.schedule(web, 2)
        g = fresh(web.id)
        await tracker.schedule(db, 1)
        assert tracker.generation(web.id) == g  # other apps' changes leave it alone
        fresh(db.id)
        await tracker.apply(
            lambda: Changes(put=(attrs.evolve(first, condition=Condition.STAGING),))
        )
        fresh(web.id)
        await tracker.decommission([second.instance_id])  # never launched: expunged at once
        fresh(web.id)
        await tracker.decommission([first.instance_id])  # staging: stays until killed
        fresh(web.id)
        await tracker.apply(lambda: Changes(expunge=(first.instance_id,)))
        assert tracker.instances_of(web.id) == [] and tracker.generation(web.id) == 0
        await tracker.schedule(web, 1)
        fresh(web.id)  # never a number seen before, though the app had no instances


async def test_task_lost_follows_the_one_state_table() -> None:
    """TASK_LOST of a partitioned agent leaves the task Unreachable (it may come back);
    with any other reason the task is gone and the instance launches again. A task we
    do not know is killed only if Mesos reports it neither gone nor unreachable."""
    async with open_state() as state, trio.open_nursery() as nursery:
        mesos = FakeMesos(state)
        tracker = InstanceTracker(state, EventBus())
        scheduler = Scheduler(tracker=tracker, mesos=mesos, events=EventBus(), operators={})
        send, receive = trio.open_memory_channel[MesosEvent](100)
        await nursery.start(scheduler.run, receive)
        await send.send(Subscribed(framework_id="F"))
        app = make_app(
            "/lost", instances=2, unreachable_strategy=UnreachableStrategy(True, 300, 600)
        )
        await tracker.schedule(app, 2)
        await send.send(Offers((offer(host="a1", cpus=4.0),)))
        with trio.fail_after(5):
            while len(mesos.stored_at_accept) < 2:
                await trio.sleep(0.01)
        partitioned, gone = (i.task for i in tracker.instances_of(app.id))
        stranger = "lost.instance-00000000-0000-0000-0000-000000000000._app.1"

        def lost(task_id: str, reason: str, state: str = "TASK_LOST") -> Update:
            return Update(TaskStatus(task_id=task_id, state=state, agent_id="S-a1",
                                     reason=reason, uuid="q83vEjRWeJCrze8SNFZ4kA=="))  # fmt: skip

        for update in (
            lost(str(partitioned.task_id), "REASON_AGENT_DISCONNECTED"),
            lost(str(gone.task_id), "REASON_AGENT_RESTARTED"),
            lost(stranger, "REASON_AGENT_DISCONNECTED"),
            lost(stranger + "0", "REASON_COMMAND_EXECUTOR_FAILED"),
            lost(stranger + "1", "REASON_RECONCILIATION", state="TASK_RUNNING"),
        ):
            await send.send(update)
        with trio.fail_after(5):
            while len(mesos.of("ACKNOWLEDGE")) < 5:
                await trio.sleep(0.01)
        conditions = {i.instance_id: i.condition for i in tracker.instances_of(app.id)}
        assert conditions[partitioned.task_id.instance_id] is Condition.UNREACHABLE
        assert conditions[gone.task_id.instance_id] is Condition.SCHEDULED
        killed = [k["kill"]["task_id"]["value"] for k in mesos.of("KILL")]
        assert killed == [stranger + "1"]
        nursery.cancel_scope.cancel()


async def start_scheduler(state: Any, app: Any, mesos: FakeMesos, nursery: trio.Nursery) -> Any:
    """A scheduler over the stored instances, subscribed; returns its tracker and input."""
    tracker = await InstanceTracker.load(state, EventBus())
    tracker.remember_app(app)  # as stored in the root group
    scheduler = Scheduler(tracker=tracker, mesos=mesos, events=EventBus(), operators={})
    send, receive = trio.open_memory_channel[MesosEvent](100)
    await nursery.start(scheduler.run, receive)
    await send.send(Subscribed(framework_id="F"))
    return tracker, send


async def test_updates_that_arrive_together_are_one_commit_before_any_acknowledgement() -> None:
    """Group commit: a batch of updates (a change, a relaunch, an expunge) is stored in
    one transaction, and nothing of it is acknowledged before that. A crash between the
    two loses nothing: Mesos sends the unacknowledged updates again, a new scheduler
    applies them to what was stored and ends where the first would have."""
    async with open_state() as state:
        log: list[str] = []
        crash = trio.CancelScope()
        real_commit = state.storage.commit

        async def commit(ops: Any) -> Any:
            results = await real_commit(ops)
            log.append(f"commit of {len(ops)} op(s)")
            return results

        state.storage.commit = commit  # type: ignore[method-assign]

        @attrs.define
        class Mesos(FakeMesos):
            async def call(self, call: dict[str, Any]) -> None:
                await super().call(call)
                if call["type"] == "ACKNOWLEDGE":
                    log.append("ack " + call["acknowledge"]["task_id"]["value"])

        app = make_app("/group", instances=3, cpus=0.25)
        with crash:
            async with trio.open_nursery() as nursery:
                tracker, send = await start_scheduler(state, app, Mesos(state), nursery)
                await tracker.schedule(app, 3)
                await send.send(Offers((offer(host="a1", cpus=4.0),)))
                with trio.fail_after(5):
                    while len(tracker.scheduled()) or not all(
                        i.task for i in tracker.instances_of(app.id)
                    ):
                        await trio.sleep(0.01)
                running, failing, leaving = tracker.instances_of(app.id)
                await tracker.decommission([leaving.instance_id])
                leaving = tracker.get(leaving.instance_id)  # goal Decommissioned

                def update(instance: Any, state_name: str) -> Update:
                    task_id, uuid = str(instance.task.task_id), "q83vEjRWeJCrze8SNFZ4kA=="
                    return Update(TaskStatus(task_id, state_name, agent_id="S-a1", uuid=uuid))

                batch = (update(running, "TASK_RUNNING"), update(failing, "TASK_FAILED"),
                         update(leaving, "TASK_KILLED"))  # fmt: skip
                log.clear()
                for event in batch:  # queued together: the scheduler takes them as one batch
                    send.send_nowait(event)
                with trio.fail_after(5):
                    while len(log) < 4:
                        await trio.sleep(0.01)
                # One app: one rewrite (puts and expunge), and its last task failure.
                assert log[0] == "commit of 2 op(s)"
                launched = (running, failing, leaving)
                assert sorted(log[1:]) == sorted(f"ack {i.task.task_id}" for i in launched)
                stored = {i.instance_id: i.condition for i in await state.instances.by_app(app.id)}
                expected = {running.instance_id: Condition.RUNNING,
                            failing.instance_id: Condition.SCHEDULED}  # fmt: skip
                assert stored == expected

                # Again from the launch, but the process dies right after the commit.
                crash_after_commit = True

                async def commit_then_die(ops: Any) -> Any:
                    results = await real_commit(ops)
                    if crash_after_commit:
                        log.append("commit, then the crash")
                        crash.cancel()
                    return results

                await state.instances.change(put=launched)  # as launched
                state.storage.commit = commit_then_die  # type: ignore[method-assign]
                log.clear()
                for event in batch:
                    send.send_nowait(event)
                await trio.sleep_forever()
        assert log == ["commit, then the crash"]  # nothing acknowledged
        crash_after_commit = False
        async with trio.open_nursery() as nursery:
            mesos = Mesos(state)
            tracker, send = await start_scheduler(state, app, mesos, nursery)
            for event in batch:  # Mesos resends what was not acknowledged
                send.send_nowait(event)
            with trio.fail_after(5):
                while len(mesos.of("ACKNOWLEDGE")) < 3:
                    await trio.sleep(0.01)
            conditions = {i.instance_id: i.condition for i in tracker.instances_of(app.id)}
            assert conditions == expected
            assert not mesos.of("KILL")
            nursery.cancel_scope.cancel()


async def test_a_reconciliation_answer_that_changes_nothing_is_not_stored() -> None:
    """Reconciliation asks for every task (after each subscription and every
    ``--reconciliation_interval``): answers that change no instance must not rewrite
    100,000 records; the ones that do change something are stored as ever."""
    async with open_state() as state, trio.open_nursery() as nursery:
        app = make_app("/calm", instances=2)
        tracker, send = await start_scheduler(state, app, FakeMesos(state), nursery)
        await tracker.schedule(app, 2)
        await send.send(Offers((offer(host="a1", cpus=4.0),)))
        with trio.fail_after(5):
            while tracker.scheduled() or not all(i.task for i in tracker.instances_of(app.id)):
                await trio.sleep(0.01)
        first, second = (str(i.task.task_id) for i in tracker.instances_of(app.id))
        for task_id in (first, second):
            await send.send(Update(TaskStatus(task_id, "TASK_RUNNING", agent_id="S-a1")))
        with trio.fail_after(5):
            while tracker.counts_of(app.id).active_running < 2:
                await trio.sleep(0.01)
        running = {i.instance_id: i for i in tracker.instances_of(app.id)}
        writes = tracker.statistics().writes
        reason = "REASON_RECONCILIATION"
        await send.send(Update(TaskStatus(first, "TASK_RUNNING", agent_id="S-a1", reason=reason)))
        await trio.sleep(0.2)  # taken and handled (the scheduler has nothing else to do)
        assert tracker.statistics().writes == writes
        await send.send(Update(TaskStatus(second, "TASK_FAILED", agent_id="S-a1", reason=reason)))
        with trio.fail_after(5):
            while tracker.statistics().writes == writes:
                await trio.sleep(0.01)
        stored = {i.instance_id: i for i in await state.instances.by_app(app.id)}
        unchanged, relaunched = (running[parse_task_id(t).instance_id] for t in (first, second))
        assert stored[unchanged.instance_id] == unchanged
        assert stored[relaunched.instance_id].condition is Condition.SCHEDULED
        nursery.cancel_scope.cancel()
