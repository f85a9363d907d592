"""Scenarios with a real master, real agent processes and a scheduler over HTTP."""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path

import httpx
import pytest
import trio

from marathon_mesos_local.testing import executor_info, launch_group_operation, task_info


def sandbox_of(cluster, task_id: str) -> Path:
    found = list(
        cluster.work_dir.glob(f"agent-*/slaves/*/frameworks/*/executors/{task_id}/runs/latest")
    )
    assert len(found) == 1, found
    return found[0]


def updates(client, task_id: str) -> list[dict]:
    return [
        e["update"]["status"]
        for e in client.events
        if e["type"] == "UPDATE" and e["update"]["status"]["task_id"]["value"] == task_id
    ]


async def test_subscribe_streams_recordio_with_heartbeats(cluster) -> None:
    body = {
        "type": "SUBSCRIBE",
        "subscribe": {"framework_info": {"user": "root", "name": "raw"}},
    }
    url = cluster.url + "/api/v1/scheduler"
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream("POST", url, json=body) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert "content-length" not in response.headers
        stream_id = response.headers["mesos-stream-id"]
        assert len(stream_id) == 36
        data = b""
        async for chunk in response.aiter_bytes():
            data += chunk
            if data.count(b"\n") >= 2 and b"HEARTBEAT" in data:
                break
    length, rest = data.split(b"\n", 1)
    first = rest[: int(length)]
    assert first.startswith(b'{"type":"SUBSCRIBED"')
    second = rest[int(length) :]
    assert second.startswith(b'20\n{"type":"HEARTBEAT"}')


@pytest.mark.cluster(heartbeat_interval=0.3)
async def test_heartbeats_repeat_at_the_reported_interval(cluster, schedulers, nursery) -> None:
    client = schedulers(cluster.url)
    subscribed = await client.subscribe(nursery)
    assert subscribed["subscribed"]["heartbeat_interval_seconds"] == 0.3
    assert subscribed["subscribed"]["master_info"]["port"] == cluster.master.port
    with trio.fail_after(3):
        while sum(e["type"] == "HEARTBEAT" for e in client.events) < 3:
            await trio.sleep(0.05)
    assert client.events[1] == {"type": "HEARTBEAT"}


@pytest.mark.cluster(agents=2, agent_attributes=("rack:r1;zone:a", "rack:r2;zone:b;level:3"))
async def test_offers_from_every_agent(cluster, schedulers, nursery) -> None:
    client = schedulers(cluster.url)
    await client.subscribe(nursery, roles=["apps"])
    offers = []
    with trio.fail_after(5):
        while len(offers) < 2:
            offers += await client.wait_offers(since=len(client.events) and 0)
            offers = list({o["id"]["value"]: o for o in offers}.values())
    by_host = {o["hostname"]: o for o in offers}
    assert set(by_host) == {"127.0.0.2", "127.0.0.3"}
    offer = by_host["127.0.0.3"]
    assert offer["allocation_info"] == {"role": "apps"}
    names = [r["name"] for r in offer["resources"]]
    assert names == ["cpus", "mem", "disk", "ports"]
    for resource in offer["resources"]:
        assert resource["allocation_info"] == {"role": "apps"}
        assert resource["role"] == "*"
    assert offer["resources"][3]["ranges"]["range"] == [{"begin": 31000, "end": 32000}]
    assert {"name": "level", "type": "SCALAR", "scalar": {"value": 3.0}} in offer["attributes"]
    assert offer["url"]["address"]["ip"] == "127.0.0.3"
    state = cluster.master.state()
    assert len(state["slaves"]) == 2
    assert {s["attributes"]["rack"] for s in state["slaves"]} == {"r1", "r2"}


async def test_launch_runs_command_with_mesos_environment(cluster, schedulers, nursery) -> None:
    client = schedulers(cluster.url)
    await client.subscribe(nursery)
    offer = (await client.wait_offers())[0]
    command = (
        'echo "id=$MESOS_TASK_ID host=$HOST p0=$PORT0 p1=$PORT1 ports=$PORTS x=$X '
        'sb=$MESOS_SANDBOX"; echo oops >&2'
    )
    info = task_info(offer, "echo.1", command, ports=2, env={"X": "42"})
    response = await client.launch([offer], [info])
    assert response.status_code == 202
    assert response.content == b""
    finished = await client.wait_update("echo.1", "TASK_FINISHED")
    assert client.states("echo.1") == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
    assert finished["message"] == "Command exited with status 0"
    assert finished["source"] == "SOURCE_EXECUTOR"
    assert finished["agent_id"] == offer["agent_id"]
    assert finished["executor_id"] == {"value": "echo.1"}
    assert len(base64.b64decode(finished["uuid"])) == 16
    running = updates(client, "echo.1")[1]
    ips = running["container_status"]["network_infos"][0]["ip_addresses"]
    assert ips == [{"ip_address": "127.0.0.2"}]
    sandbox = sandbox_of(cluster, "echo.1")
    out = (sandbox / "stdout").read_text()
    assert (
        f"id=echo.1 host=127.0.0.2 p0=31000 p1=31001 ports=31000,31001 x=42 sb={sandbox.resolve()}"
        in out
        or (f"sb={sandbox.parent}" in out and "p0=31000 p1=31001 ports=31000,31001 x=42" in out)
    )
    assert (sandbox / "stderr").read_text() == "oops\n"


async def test_failing_command_is_task_failed(cluster, schedulers, nursery) -> None:
    client = schedulers(cluster.url)
    await client.subscribe(nursery)
    offer = (await client.wait_offers())[0]
    await client.launch([offer], [task_info(offer, "fail.1", "exit 3")])
    failed = await client.wait_update("fail.1", "TASK_FAILED")
    assert failed["message"] == "Command exited with status 3"
    # Once the terminal update is acknowledged the master forgets the task.
    with trio.fail_after(5):
        while cluster.master.frameworks[client.framework_id].tasks:
            await trio.sleep(0.05)


async def test_kill_with_killing_state_and_grace_period(cluster, schedulers, nursery) -> None:
    client = schedulers(cluster.url)
    await client.subscribe(nursery, capabilities=["MULTI_ROLE", "TASK_KILLING_STATE"])
    offer = (await client.wait_offers())[0]
    tasks = [
        task_info(offer, "sleep.1", "sleep 60"),
        task_info(offer, "stubborn.1", "trap '' TERM; sleep 60 & wait; sleep 60"),
    ]
    await client.launch([offer], tasks)
    for task in ("sleep.1", "stubborn.1"):
        await client.wait_update(task, "TASK_RUNNING")
    pids = {}
    for pid_file in cluster.work_dir.glob("agent-*/meta/pids/*"):
        pid, sandbox = pid_file.read_text().split("\n")[:2]
        pids[Path(sandbox).parent.parent.name] = int(pid)
    assert set(pids) == {"sleep.1", "stubborn.1"}
    kill = {"type": "KILL", "kill": {"task_id": {"value": "sleep.1"}}}
    assert (await client.call(kill)).status_code == 202
    killed = await client.wait_update("sleep.1", "TASK_KILLED")
    assert client.states("sleep.1")[-2:] == ["TASK_KILLING", "TASK_KILLED"]
    # SIGTERM reaches the task's whole process group: the shell dies of it, or, when
    # its child dies first, exits 128 + 15; Mesos's executor reports either as it is.
    assert killed["message"] in (
        "Command terminated with signal Terminated",
        "Command exited with status 143",
    )

    started = trio.current_time()
    stubborn = {
        "type": "KILL",
        "kill": {
            "task_id": {"value": "stubborn.1"},
            "agent_id": offer["agent_id"],
            "kill_policy": {"grace_period": {"nanoseconds": 500_000_000}},
        },
    }
    await client.call(stubborn)
    killed = await client.wait_update("stubborn.1", "TASK_KILLED")
    assert 0.4 < trio.current_time() - started < 3
    assert killed["message"] == "Command terminated with signal Killed"
    for pid in pids.values():
        with trio.fail_after(2):
            while os.path.exists(f"/proc/{pid}") and "Z" not in _proc_state(pid):
                await trio.sleep(0.05)


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[0]
    except OSError:
        return "gone"


async def test_updates_are_resent_until_acknowledged(cluster, schedulers, nursery) -> None:
    client = schedulers(cluster.url, auto_ack=False)
    await client.subscribe(nursery)
    offer = (await client.wait_offers())[0]
    await client.launch([offer], [task_info(offer, "slow.1", "sleep 30")])
    first = await client.wait_update("slow.1", "TASK_STARTING")
    with trio.fail_after(3):
        while client.states("slow.1").count("TASK_STARTING") < 2:
            await trio.sleep(0.05)
    resent = updates(client, "slow.1")
    assert [u["uuid"] for u in resent] == [first["uuid"]] * len(resent)
    assert "TASK_RUNNING" not in client.states("slow.1")  # held behind the unacknowledged head
    assert (await client.acknowledge(first)).status_code == 202
    running = await client.wait_update("slow.1", "TASK_RUNNING")
    assert running["uuid"] != first["uuid"]
    # A duplicate acknowledgement is accepted and ignored.
    assert (await client.acknowledge(first)).status_code == 202


async def test_reconcile_explicit_and_implicit(cluster, schedulers, nursery) -> None:
    client = schedulers(cluster.url)
    await client.subscribe(nursery, capabilities=["MULTI_ROLE", "PARTITION_AWARE"])
    offer = (await client.wait_offers())[0]
    await client.launch([offer], [task_info(offer, "r.1", "sleep 30")])
    await client.wait_update("r.1", "TASK_RUNNING")
    mark = len(client.events)
    call = {
        "type": "RECONCILE",
        "reconcile": {
            "tasks": [
                {"task_id": {"value": "r.1"}},
                {"task_id": {"value": "ghost.1"}, "agent_id": offer["agent_id"]},
                {"task_id": {"value": "ghost.2"}, "agent_id": {"value": "no-such-agent"}},
                {"task_id": {"value": "ghost.3"}},
            ]
        },
    }
    assert (await client.call(call)).status_code == 202
    expected = {
        "r.1": "TASK_RUNNING",
        "ghost.1": "TASK_GONE",
        "ghost.2": "TASK_UNKNOWN",
        "ghost.3": "TASK_UNKNOWN",
    }
    for task_id, state in expected.items():
        status = await client.wait_update(task_id, state, since=mark)
        assert status["reason"] == "REASON_RECONCILIATION"
        assert status["source"] == "SOURCE_MASTER"
        assert "uuid" not in status
    mark = len(client.events)
    await client.call({"type": "RECONCILE", "reconcile": {"tasks": []}})
    status = await client.wait_update("r.1", "TASK_RUNNING", since=mark)
    assert status["agent_id"] == offer["agent_id"]
    # Killing an unknown task answers like explicit reconciliation.
    mark = len(client.events)
    await client.call({"type": "KILL", "kill": {"task_id": {"value": "ghost.4"}}})
    await client.wait_update("ghost.4", "TASK_UNKNOWN", since=mark)


async def test_reconcile_unknown_task_without_partition_awareness_is_lost(
    cluster, schedulers, nursery
) -> None:
    client = schedulers(cluster.url)
    await client.subscribe(nursery)
    offer = (await client.wait_offers())[0]
    call = {
        "type": "RECONCILE",
        "reconcile": {"tasks": [{"task_id": {"value": "x"}, "agent_id": offer["agent_id"]}]},
    }
    await client.call(call)
    status = await client.wait_update("x", "TASK_LOST")
    assert status["message"] == "Reconciliation: Task is unknown to the agent"


async def test_decline_filters_and_revive(cluster, schedulers, nursery) -> None:
    client = schedulers(cluster.url)
    await client.subscribe(nursery)
    offers = await client.wait_offers()
    mark = len(client.events)
    await client.decline(offers, refuse_seconds=0)  # no filter: offered again soon
    offers = await client.wait_offers(since=mark, timeout=3)
    mark = len(client.events)
    await client.decline(offers, refuse_seconds=3600)
    await trio.sleep(1.0)
    assert not [e for e in client.events[mark:] if e["type"] == "OFFERS"]
    assert (await client.call({"type": "REVIVE"})).status_code == 202
    await client.wait_offers(since=mark, timeout=3)


async def test_suppress_stops_offers_until_revive(cluster, schedulers, nursery) -> None:
    client = schedulers(cluster.url)
    await client.subscribe(nursery, roles=["a"])
    offers = await client.wait_offers()
    await client.call({"type": "SUPPRESS", "suppress": {"roles": ["a"]}})
    mark = len(client.events)
    await client.decline(offers, refuse_seconds=0)
    await trio.sleep(1.0)
    assert not [e for e in client.events[mark:] if e["type"] == "OFFERS"]
    await client.call({"type": "REVIVE", "revive": {"roles": ["a"]}})
    await client.wait_offers(since=mark, timeout=3)


async def test_invalid_launches(cluster, schedulers, nursery) -> None:
    client = schedulers(cluster.url)
    await client.subscribe(nursery, capabilities=["MULTI_ROLE", "PARTITION_AWARE"])
    offer = (await client.wait_offers())[0]
    too_big = task_info(offer, "big.1", "true", cpus=1000)
    good = task_info(offer, "ok.1", "sleep 30")
    dup = task_info(offer, "ok.1", "sleep 30")
    no_command = task_info(offer, "nocmd.1", "true")
    del no_command["command"]
    await client.launch([offer], [too_big, good, dup, no_command])
    error = await client.wait_update("big.1", "TASK_ERROR")
    assert error["reason"] == "REASON_TASK_INVALID"
    assert "uuid" not in error
    await client.wait_update("ok.1", "TASK_RUNNING")
    dup_error = await client.wait_update("ok.1", "TASK_ERROR")
    assert "duplicate" in dup_error["message"]
    await client.wait_update("nocmd.1", "TASK_ERROR")
    # The same offer again: it is used up, so the task is dropped.
    await client.launch([offer], [task_info(offer, "again.1", "true")])
    dropped = await client.wait_update("again.1", "TASK_DROPPED")
    assert dropped["reason"] == "REASON_INVALID_OFFERS"
    await client.launch([{"id": {"value": "bogus"}}], [task_info(offer, "bogus.1", "true")])
    await client.wait_update("bogus.1", "TASK_DROPPED")
    # The master still serves.
    async with httpx.AsyncClient() as http:
        assert (await http.get(cluster.url + "/health")).status_code == 200


async def test_teardown_kills_tasks_and_removes_the_framework(cluster, schedulers, nursery) -> None:
    client = schedulers(cluster.url)
    await client.subscribe(nursery)
    offer = (await client.wait_offers())[0]
    await client.launch([offer], [task_info(offer, "td.1", "sleep 60")])
    await client.wait_update("td.1", "TASK_RUNNING")
    pid = int(next(iter(cluster.work_dir.glob("agent-*/meta/pids/*"))).read_text().split()[0])
    assert (await client.call({"type": "TEARDOWN"})).status_code == 202
    with trio.fail_after(5):
        await client.stream_closed.wait()
        while _proc_state(pid) not in ("gone", "Z"):
            await trio.sleep(0.05)
    assert client.framework_id not in cluster.master.frameworks
    state = cluster.master.state()
    assert state["completed_frameworks"][0]["id"] == client.framework_id
    again = schedulers(cluster.url)
    error = await again.subscribe(nursery, framework_id=client.framework_id)
    assert error == {"type": "ERROR", "error": {"message": "Framework has been removed"}}


async def test_resubscribe_takes_over_and_keeps_tasks(cluster, schedulers, nursery) -> None:
    first = schedulers(cluster.url)
    await first.subscribe(nursery, failover_timeout=60.0)
    offer = (await first.wait_offers())[0]
    await first.launch([offer], [task_info(offer, "keep.1", "sleep 30")])
    await first.wait_update("keep.1", "TASK_RUNNING")
    second = schedulers(cluster.url)
    subscribed = await second.subscribe(
        nursery, framework_id=first.framework_id, failover_timeout=60.0
    )
    assert subscribed["subscribed"]["framework_id"]["value"] == first.framework_id
    assert second.stream_id != first.stream_id
    error = await first.wait_for(lambda e: e["type"] == "ERROR")
    assert error["error"]["message"] == "Framework failed over"
    with trio.fail_after(3):
        await first.stream_closed.wait()
    # The old stream id is now refused; the new one works.
    stale = await second.call({"type": "REVIVE"}, stream_id=first.stream_id)
    assert stale.status_code == 400
    mark = len(second.events)
    await second.call({"type": "RECONCILE", "reconcile": {"tasks": []}})
    await second.wait_update("keep.1", "TASK_RUNNING", since=mark)
    # The launch left a default 5 s filter on the rest of the agent; REVIVE clears it.
    await second.call({"type": "REVIVE"})
    await second.wait_offers(since=mark, timeout=3)


@pytest.mark.cluster(agents=2)
async def test_two_frameworks_share_the_agents(cluster, schedulers, nursery) -> None:
    one, two = schedulers(cluster.url), schedulers(cluster.url)
    await one.subscribe(nursery, name="one")
    first = await one.wait_offers()
    await two.subscribe(nursery, name="two")
    await one.decline(first, refuse_seconds=0)
    offers = await two.wait_offers(timeout=5)
    assert offers[0]["framework_id"]["value"] == two.framework_id
    state = cluster.master.state()
    assert {f["name"] for f in state["frameworks"]} == {"one", "two"}


async def test_failover_within_timeout_keeps_tasks(cluster, schedulers, nursery) -> None:
    first = schedulers(cluster.url)
    await first.subscribe(nursery, failover_timeout=5.0)
    offer = (await first.wait_offers())[0]
    await first.launch([offer], [task_info(offer, "fo.1", "sleep 30")])
    await first.wait_update("fo.1", "TASK_RUNNING")
    await first.disconnect()
    await trio.sleep(0.5)
    second = schedulers(cluster.url)
    subscribed = await second.subscribe(
        nursery, framework_id=first.framework_id, failover_timeout=5.0
    )
    assert subscribed["type"] == "SUBSCRIBED"
    await second.call(
        {"type": "RECONCILE", "reconcile": {"tasks": [{"task_id": {"value": "fo.1"}}]}}
    )
    await second.wait_update("fo.1", "TASK_RUNNING")


async def test_failover_timeout_expiry_kills_tasks(cluster, schedulers, nursery) -> None:
    first = schedulers(cluster.url)
    await first.subscribe(nursery, failover_timeout=0.3)
    offer = (await first.wait_offers())[0]
    await first.launch([offer], [task_info(offer, "fx.1", "sleep 30")])
    await first.wait_update("fx.1", "TASK_RUNNING")
    pid = int(next(iter(cluster.work_dir.glob("agent-*/meta/pids/*"))).read_text().split()[0])
    await first.disconnect()
    with trio.fail_after(5):
        while first.framework_id in cluster.master.frameworks:
            await trio.sleep(0.05)
        while _proc_state(pid) not in ("gone", "Z"):
            await trio.sleep(0.05)
    again = schedulers(cluster.url)
    error = await again.subscribe(nursery, framework_id=first.framework_id)
    assert error == {"type": "ERROR", "error": {"message": "Framework has been removed"}}


async def test_message_goes_to_the_agent_and_the_executors_ignore_it(
    cluster, schedulers, nursery, caplog, capfd
) -> None:
    caplog.set_level(logging.INFO, logger="marathon_mesos_local.master")
    client = schedulers(cluster.url)
    await client.subscribe(nursery)
    offer = (await client.wait_offers())[0]
    agent_id = offer["agent_id"]["value"]
    group = launch_group_operation(
        executor_info(client.framework_id, "msg.executor"),
        [task_info(offer, "msg.2", "sleep 3600")],
    )
    launch = {"type": "LAUNCH", "launch": {"task_infos": [task_info(offer, "msg.1", "sleep 3600")]}}
    await client.accept([offer], [launch, group])
    await client.wait_update("msg.1", "TASK_RUNNING")
    await client.wait_update("msg.2", "TASK_RUNNING")
    data = base64.b64encode(b"hello").decode()
    for executor_id, to in (
        ("msg.1", agent_id),  # the command executor of msg.1
        ("msg.executor", agent_id),  # a default executor
        ("nope", agent_id),  # no such executor on the agent
        ("msg.1", "no-such-agent"),
    ):
        message = {"agent_id": {"value": to}, "executor_id": {"value": executor_id}, "data": data}
        response = await client.call({"type": "MESSAGE", "message": message})
        assert (response.status_code, response.content) == (202, b"")
    assert caplog.text.count(f"Processing MESSAGE call from framework {client.framework_id}") == 3
    assert (
        f"Cannot send framework message for framework {client.framework_id} to agent "
        "no-such-agent because agent is not registered" in caplog.text
    )
    # The agent (a process of its own, logging to our stderr) routes and drops them.
    seen = ""
    with trio.fail_after(30):
        while seen.count("ignored by the executor") < 2 or "executor 'nope'" not in seen:
            seen += capfd.readouterr().err
            await trio.sleep(0.05)
    assert "Dropping message for executor 'nope' because executor does not exist" in seen
    assert "refused framework_message" not in caplog.text
    # Nothing else happened: the master serves, the tasks run.
    async with httpx.AsyncClient() as http:
        assert (await http.get(cluster.url + "/health")).status_code == 200
    assert client.states("msg.1")[-1] == client.states("msg.2")[-1] == "TASK_RUNNING"
