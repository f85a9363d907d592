"""marathon-jobs on a real embedded cluster (agent processes, HTTP on loopback)."""

from __future__ import annotations

import getpass
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import trio

from marathon_core.framework import MesosClient
from marathon_core.testing.mesos_protos import parse_strict
from marathon_jobs.cli import parse_args, run
from marathon_mesos_local import cluster as mesos_local

pytestmark = pytest.mark.cluster


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def stamp(moment: str) -> float:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch, mesos_pb: SimpleNamespace | None) -> Iterator[list]:
    """Every call the framework sent, checked against the real protos afterwards."""
    calls: list[dict[str, Any]] = []
    original = MesosClient.call

    async def call(self: MesosClient, call: dict[str, Any]) -> None:
        await original(self, call)
        calls.append(call)

    monkeypatch.setattr(MesosClient, "call", call)
    yield calls
    if mesos_pb is not None:
        for call in calls:
            parse_strict(mesos_pb, call, mesos_pb.scheduler.Call)


@pytest.fixture
async def jobs(tmp_path: Path, sent: list) -> AsyncIterator[httpx.AsyncClient]:
    options = mesos_local.ClusterOptions(
        port=0, agents=2, agent_port=0, allocation_interval=0.1, status_update_retry=0.5,
        work_dir=tmp_path / "mesos",
    )  # fmt: skip
    async with mesos_local.open_cluster(options) as cluster:
        args = parse_args(
            ["--master", cluster.url, "--state_dir", str(tmp_path / "state"), "--http_port", "0",
             "--hostname", "127.0.0.1", "--mesos_user", getpass.getuser()]
        )  # fmt: skip
        async with trio.open_nursery() as instance:
            url = await instance.start(run, args)
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                yield client
            instance.cancel_scope.cancel()


async def wait_for(client: httpx.AsyncClient, name: str, check: Any, timeout: float) -> Any:
    with trio.fail_after(timeout):
        while True:
            found = (await client.get("/v1/scheduler/jobs/search", params={"name": name})).json()
            job = next((j for j in found if j["name"] == name), None)
            if job is not None and check(job):
                return job
            await trio.sleep(0.2)


async def test_every_slot_runs_exactly_once(
    jobs: httpx.AsyncClient, tmp_path: Path, sent: list
) -> None:
    log = tmp_path / "slots.log"
    start = int(datetime.now(UTC).timestamp()) + 2
    job = {
        "name": "tick",
        "command": f'echo "$CHRONOS_JOB_SCHEDULED_TIME" >> {log}',
        "schedule": f"R6/{iso(start)}/PT2S",
        "epsilon": "PT30S",
        "cpus": 0.1, "mem": 32, "disk": 0,
    }  # fmt: skip
    assert (await jobs.post("/v1/scheduler/iso8601", json=job)).status_code == 204
    done = await wait_for(jobs, "tick", lambda j: j["successCount"] == 6, timeout=60)
    assert (done["errorCount"], done["missedCount"]) == (0, 0)
    ran = sorted(stamp(line) for line in log.read_text().split())
    assert ran == [start + 2 * i for i in range(6)]
    assert {c["type"] for c in sent} >= {"ACCEPT", "ACKNOWLEDGE", "RECONCILE"}


async def test_dependents_and_retries(jobs: httpx.AsyncClient, tmp_path: Path) -> None:
    order = tmp_path / "order.log"
    soon = iso(datetime.now(UTC).timestamp() + 1)
    parent = {"name": "extract", "command": f"echo extract >> {order}", "cpus": 0.1, "mem": 32,
              "disk": 0, "schedule": f"R1/{soon}/PT1M"}  # fmt: skip
    failing = {"name": "flaky", "command": f"echo flaky >> {order}; exit 3", "cpus": 0.1,
               "mem": 32, "disk": 0, "retries": 2, "schedule": f"R1/{soon}/PT1M"}  # fmt: skip
    for body in (parent, failing):
        assert (await jobs.post("/v1/scheduler/iso8601", json=body)).status_code == 204
    child = {"name": "load", "command": f"echo load >> {order}", "cpus": 0.1, "mem": 32,
             "disk": 0, "parents": ["extract"]}  # fmt: skip
    after_failure = {**child, "name": "never", "parents": ["flaky"]}
    for body in (child, after_failure):
        assert (await jobs.post("/v1/scheduler/dependency", json=body)).status_code == 204
    await wait_for(jobs, "load", lambda j: j["successCount"] == 1, timeout=60)
    flaky = await wait_for(jobs, "flaky", lambda j: j["errorCount"] == 1, timeout=60)
    assert flaky["successCount"] == 0 and flaky["lastError"]
    lines = order.read_text().split()
    assert lines.index("extract") < lines.index("load")
    assert lines.count("flaky") == 3  # the first attempt and 2 retries
    never = await wait_for(jobs, "never", lambda j: True, timeout=5)
    assert never["successCount"] == 0 and "never" not in lines
    csv = (await jobs.get("/v1/scheduler/graph/csv")).text
    assert "node,flaky,failure,idle\n" in csv and "link,extract,load\n" in csv


async def test_kill_ends_a_run_without_retries(jobs: httpx.AsyncClient, tmp_path: Path) -> None:
    starts = tmp_path / "starts.log"
    job = {"name": "sleepy", "command": f"echo start >> {starts}; sleep 100", "cpus": 0.1,
           "mem": 32, "disk": 0, "retries": 3, "schedule": "R0//PT1M"}  # fmt: skip
    assert (await jobs.post("/v1/scheduler/iso8601", json=job)).status_code == 204
    assert (await jobs.put("/v1/scheduler/job/sleepy")).status_code == 204  # run now
    await wait_for(jobs, "sleepy", lambda j: j["state"] == "running", timeout=30)
    assert (await jobs.delete("/v1/scheduler/task/kill/sleepy")).status_code == 204
    done = await wait_for(jobs, "sleepy", lambda j: j["errorCount"] == 1, timeout=30)
    assert done["state"] == "idle" and done["successCount"] == 0
    await trio.sleep(1)
    assert starts.read_text().split() == ["start"]


@pytest.mark.alone
async def test_a_restart_starts_late_within_epsilon_or_counts_missed(tmp_path: Path) -> None:
    """One instance (SQLite) stops for longer than epsilon: the slots it could not start
    in time are counted as missed; it comes back as the same framework."""
    log = tmp_path / "slots.log"
    options = mesos_local.ClusterOptions(
        port=0, agents=1, agent_port=0, allocation_interval=0.1, status_update_retry=0.5,
        work_dir=tmp_path / "mesos",
    )  # fmt: skip
    argv = ["--state_dir", str(tmp_path / "state"), "--http_port", "0",
            "--hostname", "127.0.0.1", "--mesos_user", getpass.getuser()]  # fmt: skip
    start = int(datetime.now(UTC).timestamp()) + 2
    job = {"name": "tick", "command": f'echo "$CHRONOS_JOB_SCHEDULED_TIME" >> {log}',
           "schedule": f"R10/{iso(start)}/PT2S", "epsilon": "PT3S", "cpus": 0.1, "mem": 32,
           "disk": 0}  # fmt: skip
    async with mesos_local.open_cluster(options) as cluster:
        args = parse_args(["--master", cluster.url, *argv])
        async with trio.open_nursery() as first:
            url = await first.start(run, args)
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                assert (await client.post("/v1/scheduler/iso8601", json=job)).status_code == 204
                await wait_for(client, "tick", lambda j: j["successCount"] >= 2, timeout=30)
            first.cancel_scope.cancel()
        ids = {f["id"] for f in cluster.master.state()["frameworks"]}
        await trio.sleep(8)  # about 4 slots due, 2-3 of them more than epsilon ago
        async with trio.open_nursery() as second:
            url = await second.start(run, args)
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                done = await wait_for(
                    client, "tick",
                    lambda j: j["successCount"] + j["missedCount"] + j["errorCount"] == 10,
                    timeout=60,
                )  # fmt: skip
            second.cancel_scope.cancel()
        assert {f["id"] for f in cluster.master.state()["frameworks"]} == ids
    ran = log.read_text().split()
    assert len(ran) == len(set(ran))
    assert done["missedCount"] >= 2 and done["errorCount"] == 0
    assert len(ran) + done["missedCount"] == 10 and done["lastMissed"]
