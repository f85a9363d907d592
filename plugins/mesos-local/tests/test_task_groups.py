"""Task groups (ACCEPT with LAUNCH_GROUP) under the default executor, on real agents.

What Mesos's ``default_executor.cpp`` does: every task of a group is a process of its
own; a task that ends TASK_FAILED or TASK_KILLED takes the rest of its group down, a
TASK_FINISHED one does not; when the executor's last task has ended the executor
exits, the framework gets ``FAILURE`` with the executor id, and the executor's
resources are offered again.
"""

from __future__ import annotations

import os
import signal

import httpx
import pytest
import trio

from marathon_core.testing.mesos_protos import parse_strict
from marathon_mesos_local.testing import (
    NullFramework,
    executor_info,
    pause_agent,
    restart_agent,
    resume_agent,
    task_info,
    task_pids,
)


def _scalars(resources: list[dict]) -> dict[str, float]:
    return {r["name"]: r["scalar"]["value"] for r in resources if r["type"] == "SCALAR"}


async def _operator(url: str, kind: str) -> dict:
    async with httpx.AsyncClient() as http:
        response = await http.post(url + "/api/v1", json={"type": kind})
    assert response.status_code == 200, response.text
    return response.json()


async def wait_executor_gone(client, executor_id: str, *, since: int = 0) -> dict:
    """The FAILURE event that reports the executor's exit."""
    event = await client.wait_for(
        lambda e: (
            e["type"] == "FAILURE"
            and e["failure"].get("executor_id", {}).get("value") == executor_id
        ),
        since=since,
    )
    return event["failure"]


async def test_a_group_runs_under_one_default_executor(cluster, schedulers, nursery, mesos_pb):
    client = schedulers(cluster.url)
    await client.subscribe(nursery, capabilities=["MULTI_ROLE", "TASK_KILLING_STATE"])
    offer = (await client.wait_offers())[0]
    executor = executor_info(client.framework_id, "g.executor", disk=20.0)
    tasks = [
        task_info(offer, "g.0", "sleep 3600"),
        task_info(offer, "g.1", 'echo "$MESOS_EXECUTOR_ID $MESOS_ALLOCATION_ROLE" > out'),
        task_info(offer, "g.2", "sleep 3600"),
    ]
    mark = len(client.events)
    response = await client.launch_group([offer], executor, tasks, filters={"refuse_seconds": 0})
    assert response.status_code == 202, response.text
    for task_id in ("g.0", "g.2"):
        running = await client.wait_update(task_id, "TASK_RUNNING")
        assert running["executor_id"] == {"value": "g.executor"}
        assert running["source"] == "SOURCE_EXECUTOR" and "uuid" in running
        assert client.states(task_id) == ["TASK_STARTING", "TASK_RUNNING"]
    # A task that finishes leaves the rest of its group alone.
    finished = await client.wait_update("g.1", "TASK_FINISHED")
    assert finished["executor_id"] == {"value": "g.executor"}
    sandboxes = cluster.work_dir / "agent-0/slaves"
    run = next(sandboxes.glob("*/frameworks/*/executors/g.executor/runs/latest"))
    assert (run / "tasks/g.1/out").read_text() == "g.executor *\n"
    assert task_pids(cluster, "g.0") and task_pids(cluster, "g.2")

    # The executor and its resources, as /master/state and the operator API show them.
    state = cluster.master.state()
    [fw] = state["frameworks"]
    [shown] = fw["executors"]
    assert shown["executor_id"] == "g.executor" and shown["type"] == "DEFAULT"
    assert shown["framework_id"] == client.framework_id and shown["role"] == "*"
    assert shown["slave_id"] == offer["agent_id"]["value"]
    assert shown["resources"]["disk"] == 20.0 and shown["command"] == {"argv": [], "uris": []}
    shown_tasks = fw["tasks"] + fw["completed_tasks"]
    assert {t["id"]: t["executor_id"] for t in shown_tasks} == dict.fromkeys(
        ("g.0", "g.1", "g.2"), "g.executor"
    )
    assert fw["used_resources"]["disk"] == 20.0  # the executor's
    assert fw["used_resources"]["cpus"] == pytest.approx(0.3)  # two tasks and the executor
    assert state["slaves"][0]["used_resources"]["cpus"] == pytest.approx(0.3)
    executors = (await _operator(cluster.url, "GET_EXECUTORS"))["get_executors"]["executors"]
    assert [e["executor_info"]["executor_id"] for e in executors] == [{"value": "g.executor"}]
    assert executors[0]["agent_id"] == offer["agent_id"]
    tasks_answer = await _operator(cluster.url, "GET_TASKS")
    listed = tasks_answer["get_tasks"]["tasks"] + tasks_answer["get_tasks"]["completed_tasks"]
    assert {t["executor_id"]["value"] for t in listed} == {"g.executor"}
    if mesos_pb is not None:
        for kind in ("GET_EXECUTORS", "GET_STATE", "GET_FRAMEWORKS", "GET_TASKS"):
            parse_strict(mesos_pb, await _operator(cluster.url, kind), mesos_pb.master.Response)
    # Offers name the framework's executors on the agent (the rest of the first offer).
    offers = await client.wait_offers(since=mark)
    assert offers[0]["executor_ids"] == [{"value": "g.executor"}]


async def test_a_failed_task_takes_its_group_down(cluster, schedulers, nursery):
    client = schedulers(cluster.url)
    await client.subscribe(nursery, capabilities=["MULTI_ROLE", "TASK_KILLING_STATE"])
    offer = (await client.wait_offers())[0]
    total = _scalars(offer["resources"])
    executor = executor_info(client.framework_id, "f.executor")
    patient = {"grace_period": {"nanoseconds": 100 * 10**9}}
    long = task_info(offer, "f.long", "sleep 3600", kill_policy=patient)
    tasks = [long, task_info(offer, "f.bad", "sleep 0.3; exit 3")]
    await client.launch_group([offer], executor, tasks, filters={"refuse_seconds": 0})
    await client.wait_update("f.long", "TASK_RUNNING")
    failed = await client.wait_update("f.bad", "TASK_FAILED")
    assert failed["message"] == "Command exited with status 3"
    # The default executor kills the rest with its own 3 s grace period, not the
    # task's 100 s kill policy: sleep dies of SIGTERM at once.
    with trio.fail_after(3):
        killed = await client.wait_update("f.long", "TASK_KILLED")
    assert killed["message"] == "Command terminated with signal Terminated"
    assert client.states("f.long") == [
        "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_KILLED",
    ]  # fmt: skip
    failure = await wait_executor_gone(client, "f.executor")
    assert failure == {
        "agent_id": offer["agent_id"],
        "executor_id": {"value": "f.executor"},
        "status": 0,
    }
    assert task_pids(cluster, "f.long") == []
    # Everything comes back, tasks' and executor's resources: decline partial offers
    # until the agent is offered whole again.
    index = 0
    with trio.fail_after(5):
        while True:
            event = await client.wait_for(lambda e: e["type"] == "OFFERS", since=index)
            index = client.events.index(event) + 1
            offer = event["offers"]["offers"][0]
            if _scalars(offer["resources"]) == total:
                break
            await client.decline([offer], 0)
    assert offer["executor_ids"] == []
    assert cluster.master.state()["frameworks"][0]["executors"] == []


async def test_killing_one_task_kills_its_group_only(cluster, schedulers, nursery):
    client = schedulers(cluster.url)
    framework = NullFramework(client, group_size=2, prefix="k")
    await framework.launch(nursery, 4)  # two groups, two executors
    assert framework.groups == {"k.executor.0": ["k.0", "k.1"], "k.executor.1": ["k.2", "k.3"]}
    mark = len(client.events)
    await client.call({"type": "KILL", "kill": {"task_id": {"value": "k.0"}}})
    for task_id in ("k.0", "k.1"):
        killed = await client.wait_update(task_id, "TASK_KILLED", since=mark)
        assert killed["executor_id"] == {"value": "k.executor.0"}
    await wait_executor_gone(client, "k.executor.0", since=mark)
    executors = cluster.master.state()["frameworks"][0]["executors"]
    assert [e["executor_id"] for e in executors] == ["k.executor.1"]
    assert client.states("k.2")[-1] == "TASK_RUNNING"
    assert task_pids(cluster, "k.3")


async def test_a_group_joins_its_live_executor(cluster, schedulers, nursery):
    client = schedulers(cluster.url)
    await client.subscribe(nursery)
    offer = (await client.wait_offers())[0]
    executor = executor_info(client.framework_id, "j.executor")
    mark = len(client.events)
    await client.launch_group([offer], executor, [task_info(offer, "j.1", "sleep 3600")],
                              filters={"refuse_seconds": 0})  # fmt: skip
    await client.wait_update("j.1", "TASK_RUNNING")
    offer = (await client.wait_offers(since=mark))[0]  # the rest of the first one
    assert offer["executor_ids"] == [{"value": "j.executor"}]
    await client.launch_group([offer], executor, [task_info(offer, "j.2", "sleep 3600")])
    await client.wait_update("j.2", "TASK_RUNNING")
    # Only the new task's resources were taken: the executor's are held once.
    used = cluster.master.state()["frameworks"][0]["used_resources"]
    assert (used["cpus"], used["mem"], used["disk"]) == (pytest.approx(0.3), 96.0, 10.0)
    # A second group of the same executor is its own group: it survives the first.
    await client.call({"type": "KILL", "kill": {"task_id": {"value": "j.1"}}})
    await client.wait_update("j.1", "TASK_KILLED")
    await trio.sleep(0.3)
    assert client.states("j.2")[-1] == "TASK_RUNNING"
    # SHUTDOWN of the executor kills what is left of it.
    await client.call(
        {
            "type": "SHUTDOWN",
            "shutdown": {"executor_id": {"value": "j.executor"}, "agent_id": offer["agent_id"]},
        }
    )
    await client.wait_update("j.2", "TASK_KILLED")
    await wait_executor_gone(client, "j.executor")


async def test_group_tasks_survive_an_agent_restart(cluster, schedulers, nursery):
    client = schedulers(cluster.url)
    framework = NullFramework(client, group_size=2, prefix="r")
    await framework.launch(nursery, 2)
    first, second = task_pids(cluster, "r.0"), task_pids(cluster, "r.1")
    assert first and second
    await restart_agent(cluster, 0)
    assert (task_pids(cluster, "r.0"), task_pids(cluster, "r.1")) == (first, second)
    state = cluster.master.state()["frameworks"][0]
    assert [e["executor_id"] for e in state["executors"]] == ["r.executor.0"]
    assert sorted(t["state"] for t in state["tasks"]) == ["TASK_RUNNING"] * 2
    # The recovered executor still applies the group policy.
    mark = len(client.events)
    for pid in first:
        os.kill(pid, signal.SIGKILL)
    failed = await client.wait_update("r.0", "TASK_FAILED", since=mark)
    assert failed["message"] == "Command terminated with signal Killed"
    await client.wait_update("r.1", "TASK_KILLED", since=mark)
    await wait_executor_gone(client, "r.executor.0", since=mark)
    assert task_pids(cluster, "r.1") == []


@pytest.mark.cluster(agent_ping_timeout=0.2, max_agent_ping_timeouts=3)
async def test_a_partition_takes_the_executor_away_and_brings_it_back(cluster, schedulers, nursery):
    client = schedulers(cluster.url)
    await client.subscribe(nursery, capabilities=["MULTI_ROLE", "PARTITION_AWARE"])
    framework = NullFramework(client, group_size=2, prefix="p")
    await framework.launch(nursery, 2)
    pause_agent(cluster, 0)
    try:
        for task_id in ("p.0", "p.1"):
            lost = await client.wait_update(task_id, "TASK_UNREACHABLE", timeout=5)
            assert lost["executor_id"] == {"value": "p.executor.0"}
        # An unreachable agent's executors are forgotten with their resources.
        assert cluster.master.state()["frameworks"][0]["executors"] == []
        mark = len(client.events)
    finally:
        resume_agent(cluster, 0)
    for task_id in ("p.0", "p.1"):
        back = await client.wait_update(task_id, "TASK_RUNNING", since=mark, timeout=10)
        assert back["reason"] == "REASON_AGENT_REREGISTERED"
        assert back["executor_id"] == {"value": "p.executor.0"}
    # The re-registered agent reported its executor: it is the master's again.
    [executor] = cluster.master.state()["frameworks"][0]["executors"]
    assert executor["executor_id"] == "p.executor.0"
    await client.call({"type": "KILL", "kill": {"task_id": {"value": "p.1"}}})
    await client.wait_update("p.0", "TASK_KILLED", since=mark)
    await wait_executor_gone(client, "p.executor.0", since=mark)
