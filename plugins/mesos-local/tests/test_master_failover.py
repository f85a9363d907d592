"""Master failover: the registry, re-registration of agents, re-subscription of frameworks.

The master runs alone in a process of its own (``marathon-mesos-local --agents 0``) and
the agent machines are children of the test (a cluster with ``master_url``), so the
master can be SIGKILLed and started again on the same port and work dir while the
agents and their tasks keep running.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from marathon_mesos_local.cluster import open_cluster
from marathon_mesos_local.master.registry import REGISTRY_FILE, REGISTRY_VERSION
from marathon_mesos_local.testing import (
    MasterProcess,
    NullFramework,
    SchedulerClient,
    master_state,
    pause_agent,
    resume_agent,
    task_info,
    task_pids,
)

from .conftest import cluster_options  # type: ignore[import-not-found]

pytestmark = pytest.mark.cluster

#: Pings every 0.3 s: agents notice a new master within about a second.
FAST = ("--allocation_interval", "0.2secs", "--agent_ping_timeout", "0.3secs",
        "--max_agent_ping_timeouts", "3")  # fmt: skip
PA = ["MULTI_ROLE", "PARTITION_AWARE"]


@pytest.fixture
async def master_process(tmp_path: Path) -> AsyncIterator[Callable[..., MasterProcess]]:
    """Make master processes (work dir ``<tmp>/master``); each is stopped at the end."""
    made: list[MasterProcess] = []

    def make(*flags: str) -> MasterProcess:
        made.append(MasterProcess(tmp_path / "master", *FAST, *flags))
        return made[-1]

    try:
        yield make
    finally:
        with trio.CancelScope(shield=True):
            for master in made:
                await master.stop()


async def wait_state(url: str, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The master's state once ``predicate`` holds for it."""
    with trio.fail_after(20):
        while not predicate(state := await master_state(url)):
            await trio.sleep(0.1)
    return state


def registry(master: MasterProcess) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((master.work_dir / "master" / REGISTRY_FILE).read_text())
    return data


def agent_of(state: dict[str, Any], task_id: str) -> str:
    for framework in state["frameworks"]:
        for task in framework["tasks"]:
            if task["id"] == task_id:
                return str(task["slave_id"])
    raise KeyError(task_id)


async def reconcile(
    client: SchedulerClient, tasks: dict[str, str], state: str, *, timeout: float = 20.0
) -> dict[str, dict[str, Any]]:
    """Explicit reconciliation of ``tasks`` (task id -> agent id) until each is answered
    in ``state``; the master drops it while their agents may still re-register."""
    answers: dict[str, dict[str, Any]] = {}
    with trio.fail_after(timeout):
        while len(answers) < len(tasks):
            mark = len(client.events)
            await client.call(
                {
                    "type": "RECONCILE",
                    "reconcile": {
                        "tasks": [
                            {"task_id": {"value": t}, "agent_id": {"value": a}}
                            for t, a in tasks.items()
                            if t not in answers
                        ]
                    },
                }
            )
            await trio.sleep(0.3)
            for event in client.events[mark:]:
                if event["type"] == "UPDATE":
                    status = event["update"]["status"]
                    if status.get("reason") == "REASON_RECONCILIATION":
                        assert status["state"] == state, status
                        answers[status["task_id"]["value"]] = status
    return answers


async def test_agents_and_framework_come_back_after_master_sigkill(
    tmp_path, master_process, schedulers, nursery
) -> None:
    master = master_process("--agent_reregister_timeout", "30secs")
    url = await master.start()
    options = cluster_options(master_url=url, agents=2, work_dir=tmp_path / "agents")
    async with open_cluster(options) as cluster:
        before = await wait_state(url, lambda s: len(s["slaves"]) == 2)
        stored = registry(master)["slaves"]
        assert {s["info"]["id"]["value"] for s in stored} == {s["id"] for s in before["slaves"]}
        client = schedulers(url)
        await NullFramework(client, command="sleep 300", tasks_per_offer=2).launch(nursery, 4)
        framework_id = client.framework_id
        state = await master_state(url)
        tasks = {t: agent_of(state, t) for t in ("null.0", "null.1", "null.2", "null.3")}
        pids = {t: task_pids(cluster, t) for t in tasks}
        assert all(pids.values())

        await master.kill()
        await client.stream_closed.wait()
        restarted = await master.start()
        assert restarted == url
        mark = len(client.events)
        subscribed = await client.subscribe(
            nursery, name="null-framework", framework_id=framework_id
        )
        assert subscribed["subscribed"]["framework_id"]["value"] == framework_id

        # Explicit reconciliation goes unanswered until the agents re-registered, then
        # finds every task RUNNING where it was: nothing was relaunched.
        answers = await reconcile(client, tasks, "TASK_RUNNING")
        assert {t: a["agent_id"]["value"] for t, a in answers.items()} == tasks
        assert {t: task_pids(cluster, t) for t in tasks} == pids
        assert not [e for e in client.events[mark:] if e["type"] == "UPDATE"
                    and e["update"]["status"]["state"] == "TASK_STARTING"]  # fmt: skip

        after = await wait_state(url, lambda s: len(s["slaves"]) == 2)
        assert {s["id"] for s in after["slaves"]} == {s["id"] for s in before["slaves"]}
        assert after["id"] != before["id"] and after["recovered_slaves"] == []
        (entry,) = after["frameworks"]
        assert entry["id"] == framework_id and entry["active"] and not entry["recovered"]
        assert sorted((t["id"], t["state"]) for t in entry["tasks"]) == [
            (t, "TASK_RUNNING") for t in sorted(tasks)
        ]
        # Implicit reconciliation knows them too, and offers resume.
        since = len(client.events)
        await client.call({"type": "RECONCILE", "reconcile": {"tasks": []}})
        for task_id in tasks:
            await client.wait_update(task_id, "TASK_RUNNING", since=since)
        await client.wait_offers(since=mark)


async def test_framework_known_from_its_agents_before_it_resubscribes(
    tmp_path, master_process, schedulers, nursery
) -> None:
    master = master_process("--agent_reregister_timeout", "30secs")
    url = await master.start()
    options = cluster_options(master_url=url, agents=1, work_dir=tmp_path / "agents")
    async with open_cluster(options):
        await wait_state(url, lambda s: len(s["slaves"]) == 1)
        client = schedulers(url)
        await NullFramework(client, command="sleep 300").launch(nursery, 1)
        await master.kill()
        await master.start()
        # The agent brings the framework back: recovered, not connected, its task kept.
        state = await wait_state(url, lambda s: len(s["slaves"]) == 1)
        (entry,) = state["frameworks"]
        assert entry["id"] == client.framework_id and entry["name"] == "null-framework"
        assert entry["recovered"] and not entry["connected"] and not entry["active"]
        assert [t["id"] for t in entry["tasks"]] == ["null.0"]


async def test_agent_down_across_failover_is_marked_unreachable(
    tmp_path, master_process, schedulers, nursery
) -> None:
    master = master_process("--agent_reregister_timeout", "2secs")
    url = await master.start()
    options = cluster_options(master_url=url, agents=2, work_dir=tmp_path / "agents")
    async with open_cluster(options) as cluster:
        await wait_state(url, lambda s: len(s["slaves"]) == 2)
        pa = schedulers(url)
        await pa.subscribe(nursery, name="pa", capabilities=PA, failover_timeout=3600.0)
        plain = schedulers(url)
        await plain.subscribe(nursery, name="plain", failover_timeout=3600.0)
        ids = {}
        # One task of each framework on each agent; what is left of an offer goes to
        # the other framework (filtered for this one).
        for index in (0, 1):
            ip = cluster.options.agent_ip(index)
            for client in (pa, plain):
                offer = await client.wait_for(
                    lambda e, ip=ip: (
                        e["type"] == "OFFERS"
                        and any(o["hostname"] == ip for o in e["offers"]["offers"])
                    )
                )
                offer = next(o for o in offer["offers"]["offers"] if o["hostname"] == ip)
                ids[index] = offer["agent_id"]["value"]
                task_id = f"{'pa' if client is pa else 'plain'}.{index}"
                await client.launch(
                    [offer],
                    [task_info(offer, task_id, "sleep 300")],
                    filters={"refuse_seconds": 3600},
                )
                await client.wait_update(task_id, "TASK_RUNNING")

        pause_agent(cluster, 1)  # agent 1 stays down across the failover
        await master.kill()
        await master.start()
        started = trio.current_time()
        marks = {}
        for client, name, caps in ((pa, "pa", PA), (plain, "plain", ["MULTI_ROLE"])):
            marks[name] = len(client.events)
            await client.subscribe(
                nursery, name=name, capabilities=caps, failover_timeout=3600.0,
                framework_id=client.framework_id,
            )  # fmt: skip

        # After --agent_reregister_timeout, the connected frameworks hear of its loss...
        for client, name in ((pa, "pa"), (plain, "plain")):
            failure = await client.wait_for(lambda e: e["type"] == "FAILURE", since=marks[name])
            assert failure["failure"] == {"agent_id": {"value": ids[1]}}
        assert trio.current_time() - started >= 1.5
        state = await master_state(url)
        assert [s["id"] for s in state["slaves"]] == [ids[0]]
        assert state["unreachable_slaves"] == 1 and state["recovered_slaves"] == []
        stored = registry(master)
        assert [s["info"]["id"]["value"] for s in stored["slaves"]] == [ids[0]]
        assert [u["info"]["id"]["value"] for u in stored["unreachable"]] == [ids[1]]

        # ...and reconciliation reports its tasks as Mesos does, the others as running.
        unreachable = await reconcile(pa, {"pa.1": ids[1]}, "TASK_UNREACHABLE")
        assert unreachable["pa.1"]["unreachable_time"]["nanoseconds"] > 0
        await reconcile(plain, {"plain.1": ids[1]}, "TASK_LOST")
        await reconcile(pa, {"pa.0": ids[0]}, "TASK_RUNNING")

        # The agent comes back: its tasks are reported again, running.
        marks = {"pa": len(pa.events), "plain": len(plain.events)}
        resume_agent(cluster, 1)
        for client, task_id in ((pa, "pa.1"), (plain, "plain.1")):
            back = await client.wait_update(
                task_id, "TASK_RUNNING", since=marks[task_id.split(".")[0]], timeout=20
            )
            assert back["reason"] == "REASON_AGENT_REREGISTERED"
        state = await wait_state(url, lambda s: len(s["slaves"]) == 2)
        assert state["unreachable_slaves"] == 0
        assert registry(master)["unreachable"] == []


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"version": 1, "slaves": [{"inf', "is damaged (not JSON"),
        (json.dumps({"version": 99, "slaves": [], "unreachable": []}).encode(), "has version 99"),
        (json.dumps({"version": REGISTRY_VERSION, "slaves": [{}]}).encode(), "is damaged"),
    ],
)
def test_unusable_registry_stops_the_master_with_one_line(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "master" / REGISTRY_FILE
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    result = subprocess.run(
        [sys.executable, "-m", "marathon_mesos_local.cli", "--agents", "0", "--port", "0",
         "--work_dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"marathon-mesos-local: error: the registry {path} {problem}"), line
    assert path.read_bytes() == content  # nothing dropped, nothing rewritten


async def test_agents_that_stop_leave_the_registry(tmp_path) -> None:
    options = cluster_options(agents=2, work_dir=tmp_path / "mesos")
    path = tmp_path / "mesos" / "master" / REGISTRY_FILE
    async with open_cluster(options) as cluster:
        stored = json.loads(path.read_text())
        assert stored["version"] == REGISTRY_VERSION
        assert {s["info"]["id"]["value"] for s in stored["slaves"]} == set(cluster.master.agents)
        assert stored["slaves"][0]["info"]["hostname"] in ("127.0.0.2", "127.0.0.3")
    # Stopped agents unregister before the master stops: nothing is left to wait for.
    assert json.loads(path.read_text())["slaves"] == []
    assert not list(path.parent.glob(".*.tmp"))
