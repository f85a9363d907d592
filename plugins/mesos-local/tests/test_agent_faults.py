"""Agent faults with real processes: power cord, partition (SIGSTOP/SIGCONT), restart."""

from __future__ import annotations

import os

import pytest
import trio

from marathon_mesos_local.cluster import group_members
from marathon_mesos_local.testing import (
    pause_agent,
    power_off,
    power_on,
    restart_agent,
    resume_agent,
    task_info,
    task_pids,
)

#: Pings every 0.2 s, 3 misses: an agent is lost after about 0.6 s.
FAST_PINGS = {"agent_ping_timeout": 0.2, "max_agent_ping_timeouts": 3}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][0] != "Z"
    except OSError:
        return False


async def _launch(client, task_id: str, command: str = "sleep 300", **kwargs) -> dict:
    """Launch one task on the next offer; return its TASK_RUNNING status."""
    offer = (await client.wait_offers(since=_last_offers(client)))[0]
    await client.launch(
        [offer], [task_info(offer, task_id, command, **kwargs)], filters={"refuse_seconds": 0}
    )
    return await client.wait_update(task_id, "TASK_RUNNING")


def _last_offers(client) -> int:
    """Index of the newest OFFERS event, so the next wait sees only live offers."""
    for index in range(len(client.events) - 1, -1, -1):
        if client.events[index]["type"] == "OFFERS":
            return index
    return 0


@pytest.mark.cluster(**FAST_PINGS)
async def test_power_cord_takes_tasks_and_master_reports_them_lost(
    cluster, schedulers, nursery
) -> None:
    pa = schedulers(cluster.url)
    await pa.subscribe(nursery, name="pa", capabilities=["MULTI_ROLE", "PARTITION_AWARE"])
    plain = schedulers(cluster.url)
    await plain.subscribe(nursery, name="plain", capabilities=["MULTI_ROLE"])
    # A task with a child process, and a task of the non-PARTITION_AWARE framework.
    await _launch(pa, "pa.1", "sleep 300 & sleep 300; wait")
    await _launch(plain, "plain.1")
    with trio.fail_after(5):
        while len(task_pids(cluster, "pa.1")) < 3:  # sh and two sleeps
            await trio.sleep(0.02)
    pids = task_pids(cluster, "pa.1") + task_pids(cluster, "plain.1")
    host = cluster.hosts[0].pid
    agent_id = cluster.agent_id(0)
    assert {os.getpgid(p) for p in pids} == {host}

    marks = len(pa.events), len(plain.events)
    started = trio.current_time()
    await power_off(cluster, 0)
    assert not [p for p in pids if _alive(p)]
    assert group_members(host) == []

    lost = await pa.wait_update("pa.1", "TASK_UNREACHABLE", since=marks[0], timeout=5)
    took = trio.current_time() - started
    assert 0.3 < took < 3, took
    assert lost["reason"] == "REASON_AGENT_REMOVED"
    assert lost["source"] == "SOURCE_MASTER"
    assert "uuid" not in lost
    assert lost["agent_id"]["value"] == agent_id
    assert lost["unreachable_time"]["nanoseconds"] > 0
    lost = await plain.wait_update("plain.1", "TASK_LOST", since=marks[1], timeout=5)
    assert lost["reason"] == "REASON_AGENT_REMOVED"
    for client, mark in zip((pa, plain), marks, strict=True):
        failure = await client.wait_for(lambda e: e["type"] == "FAILURE", since=mark)
        assert failure["failure"] == {"agent_id": {"value": agent_id}}
    # Offers outstanding on the lost agent were rescinded.
    rescinded = [e for c in (pa, plain) for e in c.events[:] if e["type"] == "RESCIND"]
    assert rescinded

    state = cluster.master.state()
    assert state["unreachable_slaves"] == 1 and state["slaves"] == []
    pa_state = next(f for f in state["frameworks"] if f["name"] == "pa")
    assert [t["id"] for t in pa_state["unreachable_tasks"]] == ["pa.1"]
    assert pa_state["unreachable_tasks"][0]["state"] == "TASK_UNREACHABLE"
    assert pa_state["tasks"] == []

    # Reconciliation: implicit leaves unreachable tasks out, explicit answers them.
    mark = len(pa.events)
    await pa.call({"type": "RECONCILE", "reconcile": {"tasks": [{"task_id": {"value": "pa.1"}}]}})
    answer = await pa.wait_update("pa.1", "TASK_UNREACHABLE", since=mark)
    assert answer["reason"] == "REASON_RECONCILIATION"
    mark = len(plain.events)
    await plain.call(
        {"type": "RECONCILE", "reconcile": {"tasks": [{"task_id": {"value": "plain.1"}}]}}
    )
    assert (await plain.wait_update("plain.1", "TASK_LOST", since=mark))["reason"] == (
        "REASON_RECONCILIATION"
    )

    # Booting the machine again gives a new agent: nothing of the old one is recovered.
    new_id = await power_on(cluster, 0)
    assert new_id != agent_id
    assert agent_id in cluster.master.unreachable_agents
    await pa.wait_offers(since=mark)


@pytest.mark.cluster(**FAST_PINGS)
async def test_partition_and_return(cluster, schedulers, nursery) -> None:
    pa = schedulers(cluster.url)
    await pa.subscribe(nursery, name="pa", capabilities=["MULTI_ROLE", "PARTITION_AWARE"])
    plain = schedulers(cluster.url)
    await plain.subscribe(nursery, name="plain", capabilities=["MULTI_ROLE"])
    await _launch(pa, "pa.2")
    await _launch(plain, "plain.2")
    pids = task_pids(cluster, "pa.2") + task_pids(cluster, "plain.2")
    agent_id = cluster.agent_id(0)

    pause_agent(cluster, 0)
    try:
        await pa.wait_update("pa.2", "TASK_UNREACHABLE", timeout=5)
        await plain.wait_update("plain.2", "TASK_LOST", timeout=5)
        assert all(_alive(p) for p in pids)  # the tasks themselves keep running
        marks = len(pa.events), len(plain.events)
    finally:
        resume_agent(cluster, 0)
    back = await pa.wait_update("pa.2", "TASK_RUNNING", since=marks[0], timeout=10)
    assert back["reason"] == "REASON_AGENT_REREGISTERED"
    assert back["source"] == "SOURCE_MASTER" and "uuid" not in back
    back = await plain.wait_update("plain.2", "TASK_RUNNING", since=marks[1], timeout=10)
    assert back["reason"] == "REASON_AGENT_REREGISTERED"
    assert plain.states("plain.2")[-2:] == ["TASK_LOST", "TASK_RUNNING"]
    assert cluster.agent_id(0) == agent_id and agent_id in cluster.master.agents
    assert cluster.master.state()["unreachable_slaves"] == 0
    assert task_pids(cluster, "pa.2") + task_pids(cluster, "plain.2") == pids

    # The returned tasks are the master's again: they can be killed.
    await pa.call({"type": "KILL", "kill": {"task_id": {"value": "pa.2"}}})
    await pa.wait_update("pa.2", "TASK_KILLED")


@pytest.mark.cluster(**FAST_PINGS)
async def test_tasks_of_a_framework_removed_during_a_partition_are_killed(
    cluster, schedulers, nursery
) -> None:
    client = schedulers(cluster.url)
    await client.subscribe(nursery, capabilities=["MULTI_ROLE", "PARTITION_AWARE"])
    await _launch(client, "gone.1")
    pids = task_pids(cluster, "gone.1")
    pause_agent(cluster, 0)
    try:
        await client.wait_update("gone.1", "TASK_UNREACHABLE", timeout=5)
        assert (await client.call({"type": "TEARDOWN"})).status_code == 202
    finally:
        resume_agent(cluster, 0)
    with trio.fail_after(10):
        while any(_alive(p) for p in pids):
            await trio.sleep(0.05)


@pytest.mark.cluster(status_update_retry=0.3)
async def test_agent_restart_recovers_running_tasks(cluster, schedulers, nursery) -> None:
    client = schedulers(cluster.url)
    await client.subscribe(
        nursery, capabilities=["MULTI_ROLE", "PARTITION_AWARE", "TASK_KILLING_STATE"]
    )
    await _launch(client, "keep.1")
    await _launch(client, "ends.1", "sleep 0.6; exit 3")
    pids = task_pids(cluster, "keep.1")
    old_agent = cluster.agent_pid(0)
    agent_id = await restart_agent(cluster, 0)
    assert cluster.agent_pid(0) not in (None, old_agent)
    assert agent_id == cluster.agent_id(0)
    assert task_pids(cluster, "keep.1") == pids  # not killed, not restarted

    # The other task ends during or after the restart: its exit status is not lost.
    failed = await client.wait_update("ends.1", "TASK_FAILED", timeout=10)
    assert failed["message"] == "Command exited with status 3"
    # A recovered task can still be killed, SIGTERM first.
    await client.call({"type": "KILL", "kill": {"task_id": {"value": "keep.1"}}})
    killed = await client.wait_update("keep.1", "TASK_KILLED")
    assert killed["message"] == "Command terminated with signal Terminated"
    assert client.states("keep.1").count("TASK_RUNNING") == 1  # no LOST, no re-run
    assert not [p for p in pids if _alive(p)]
    # Nothing was reported lost or unreachable for a quick restart.
    assert not [
        e
        for e in client.events
        if e["type"] == "UPDATE"
        and e["update"]["status"]["state"] in ("TASK_LOST", "TASK_UNREACHABLE")
    ]
