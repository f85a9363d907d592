"""Simulated agents: same API, no processes, cheap enough for thousands."""

from __future__ import annotations

import math

import pytest
import trio

from marathon_mesos_local.master import model
from marathon_mesos_local.testing import NullFramework, task_info


@pytest.mark.cluster(agents=1, simulated_agents=20, simulated_task_step=0.02)
async def test_simulated_tasks_go_staging_starting_running_and_die_when_killed(
    cluster, schedulers, nursery
) -> None:
    client = schedulers(cluster.url)
    await client.subscribe(nursery, capabilities=["MULTI_ROLE", "TASK_KILLING_STATE"])
    assert len(cluster.master.agents) == 21
    offers = []
    with trio.fail_after(5):
        while len({o["agent_id"]["value"] for o in offers}) < 21:
            offers += await client.wait_offers(since=len(client.events) - 1)
    simulated = [o for o in offers if o["hostname"].startswith("127.1.")]
    assert len({o["hostname"] for o in simulated}) == 20
    offer = simulated[0]
    await client.launch([offer], [task_info(offer, f"sim.{i}", "exit 1") for i in range(3)])
    for i in range(3):
        running = await client.wait_update(f"sim.{i}", "TASK_RUNNING")
        assert "uuid" in running and running["agent_id"] == offer["agent_id"]
        assert client.states(f"sim.{i}") == ["TASK_STARTING", "TASK_RUNNING"]
    await client.call({"type": "KILL", "kill": {"task_id": {"value": "sim.0"}}})
    await client.wait_update("sim.0", "TASK_KILLED")
    assert client.states("sim.0")[-2:] == ["TASK_KILLING", "TASK_KILLED"]
    with trio.fail_after(3):
        while "sim.0" in cluster.master.frameworks[client.framework_id].tasks:
            await trio.sleep(0.02)  # the acknowledged terminal update retires it
    state = cluster.master.state()
    tasks = state["frameworks"][0]["tasks"]
    assert sorted(t["id"] for t in tasks) == ["sim.1", "sim.2"]


@pytest.mark.cluster(
    agents=0, simulated_agents=3, simulated_task_step=0.02, status_update_retry=0.1
)
async def test_simulated_updates_are_resent_until_acknowledged(cluster, schedulers, nursery):
    client = schedulers(cluster.url, auto_ack=False)
    await client.subscribe(nursery)
    offer = (await client.wait_offers())[0]
    await client.launch([offer], [task_info(offer, "nack.1", "sleep 1")])
    with trio.fail_after(3):
        while client.states("nack.1").count("TASK_STARTING") < 3:
            await trio.sleep(0.02)
    assert set(client.states("nack.1")) == {"TASK_STARTING"}  # head of line
    await client.acknowledge(await client.wait_update("nack.1", "TASK_STARTING"))
    await client.wait_update("nack.1", "TASK_RUNNING")


@pytest.mark.alone
@pytest.mark.cluster(agents=0, simulated_agents=1000, simulated_task_step=0.01)
async def test_null_framework_fills_a_thousand_simulated_agents(cluster, schedulers, nursery):
    client = schedulers(cluster.url)
    framework = NullFramework(client, cpus=1.0, mem=128.0)
    started = trio.current_time()
    # One task per offer: the test client (httpx) is the slow part here, not the master.
    framework.tasks_per_offer = 1
    await framework.launch(nursery, 100, timeout=30)
    assert len(framework.running) == 100
    assert trio.current_time() - started < 15
    tasks = cluster.master.frameworks[client.framework_id].tasks
    assert sum(t.state == "TASK_RUNNING" for t in tasks.values()) == 100
    assert len({t.agent_id for t in tasks.values()}) == 100  # one per offer, one per agent


@pytest.mark.cluster(agents=0, simulated_agents=2, simulated_task_step=0.02)
async def test_simulated_groups_start_together_and_die_together(cluster, schedulers, nursery):
    client = schedulers(cluster.url)
    await client.subscribe(nursery, capabilities=["MULTI_ROLE", "TASK_KILLING_STATE"])
    framework = NullFramework(client, group_size=3, tasks_per_offer=3)
    await framework.launch(nursery, 6)
    assert sorted(framework.groups) == ["null.executor.0", "null.executor.1"]
    for executor_id, task_ids in framework.groups.items():
        for task_id in task_ids:
            running = await client.wait_update(task_id, "TASK_RUNNING")
            assert running["executor_id"] == {"value": executor_id}
            assert client.states(task_id) == ["TASK_STARTING", "TASK_RUNNING"]
    state = cluster.master.state()["frameworks"][0]
    assert sorted(e["executor_id"] for e in state["executors"]) == sorted(framework.groups)
    # KILL of one task kills its group; SHUTDOWN of an executor kills all of its tasks.
    first, second = framework.groups["null.executor.0"], framework.groups["null.executor.1"]
    mark = len(client.events)
    await client.call({"type": "KILL", "kill": {"task_id": {"value": first[1]}}})
    executor = next(e for e in state["executors"] if e["executor_id"] == "null.executor.1")
    await client.call(
        {
            "type": "SHUTDOWN",
            "shutdown": {
                "executor_id": {"value": "null.executor.1"},
                "agent_id": {"value": executor["slave_id"]},
            },
        }
    )
    for task_id in first + second:
        await client.wait_update(task_id, "TASK_KILLED", since=mark)
        assert client.states(task_id)[-2:] == ["TASK_KILLING", "TASK_KILLED"]
    for executor_id in framework.groups:  # both executors exited
        failure = await client.wait_for(
            lambda e, executor_id=executor_id: (
                e["type"] == "FAILURE" and e["failure"]["executor_id"]["value"] == executor_id
            ),
            since=mark,
        )
        assert failure["failure"]["status"] == 0
    assert not cluster.master.frameworks[client.framework_id].executors


@pytest.mark.cluster(agents=0, simulated_agents=1, simulated_task_step=0.02)
async def test_a_simulated_task_passes_its_health_check(cluster, schedulers, nursery) -> None:
    client = schedulers(cluster.url)
    await client.subscribe(nursery)
    offer = (await client.wait_offers())[0]
    info = task_info(offer, "sim.hc", "serve")
    info["health_check"] = {"type": "COMMAND", "command": {"value": "true"}}
    await client.launch([offer], [info])
    healthy = await client.wait_for(
        lambda e: e["type"] == "UPDATE" and e["update"]["status"].get("healthy") is True
    )
    status = healthy["update"]["status"]
    assert status["state"] == "TASK_RUNNING"
    assert status["reason"] == "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"
    assert client.states("sim.hc") == ["TASK_STARTING", "TASK_RUNNING", "TASK_RUNNING"]


@pytest.mark.cluster(agents=0, simulated_agents=2, simulated_task_step=0.01)
async def test_reconciling_more_tasks_than_the_stream_buffer_keeps_the_stream(
    cluster, schedulers, nursery, monkeypatch, caplog
) -> None:
    # The answers to one RECONCILE are queued at once: counted as a slow reader's
    # backlog they cut the stream of any framework with more tasks than the buffer
    # (and its reconciliation after re-subscribing cut the next stream, forever).
    client = schedulers(cluster.url)
    framework = NullFramework(client, cpus=0.01, mem=1.0)
    await framework.launch(nursery, 60, timeout=30)
    monkeypatch.setattr(model, "STREAM_BUFFER", 20)  # 60 tasks, 120 answers
    stream = cluster.master.frameworks[client.framework_id].stream
    mark = len(client.events)
    everything = [{"task_id": {"value": t}} for t in framework.launched]
    await client.call({"type": "RECONCILE", "reconcile": {"tasks": everything}})
    await client.call({"type": "RECONCILE", "reconcile": {"tasks": []}})
    with trio.fail_after(10):
        while sum(e["type"] == "UPDATE" for e in client.events[mark:]) < 2 * len(everything):
            await trio.sleep(0.02)
    assert cluster.master.frameworks[client.framework_id].stream is stream
    assert not stream.closed and stream.answers_queued == 0
    assert "too slow" not in caplog.text


def test_a_subscriber_is_too_slow_when_events_besides_answers_fill_the_buffer(
    monkeypatch,
) -> None:
    monkeypatch.setattr(model, "STREAM_BUFFER", 3)
    send, receive = trio.open_memory_channel[tuple[bytes, bool]](math.inf)
    subscription = model.Subscription("s", send)
    for _ in range(10):
        subscription.event({"type": "UPDATE"}, answer=True)
    for _ in range(3):
        subscription.event({"type": "OFFERS"})
    assert not subscription.closed and subscription.answers_queued == 10
    for _ in range(11):  # the answers and one event are written
        subscription.taken(receive.receive_nowait()[1])
    assert subscription.answers_queued == 0
    subscription.event({"type": "OFFERS"})
    assert not subscription.closed
    subscription.event({"type": "OFFERS"})
    assert subscription.closed
