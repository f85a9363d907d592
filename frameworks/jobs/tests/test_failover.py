"""Two marathon-jobs processes on one ZooKeeper: the leader dies, the standby takes over.

Real processes (SIGKILL of the leader's process group), a real ZooKeeper and an embedded
cluster with agent processes. Every slot of the schedule runs exactly once or is counted
as missed; a task running at the failover is adopted, not started again; the framework
keeps its id.
"""

from __future__ import annotations

import getpass
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from marathon_core.testing.zookeeper import ZooKeeperEnsemble
from marathon_mesos_local import cluster as mesos_local

pytestmark = [pytest.mark.cluster, pytest.mark.zookeeper, pytest.mark.slow]


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


class Instance:
    """One ``marathon-jobs`` process; its log in ``<dir>/<name>.log``."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.argv = argv
        self.log = log
        self.process: trio.Process | None = None
        self.url = ""

    async def start(self) -> str:
        with open(self.log, "ab") as out:
            self.process = await trio.lowlevel.open_process(
                self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                start_new_session=True,
            )  # fmt: skip
        with trio.fail_after(30):
            while not (found := re.search(r"API listening on (http://\S+)", self.log.read_text())):
                assert self.process.returncode is None, self.log.read_text()
                await trio.sleep(0.1)
        self.url = found.group(1)
        return self.url

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            os.killpg(self.process.pid, signal.SIGKILL)

    async def reap(self) -> None:
        if self.process is not None:
            self.kill()
            await self.process.wait()


@pytest.fixture
async def pair(
    tmp_path: Path, zookeeper: ZooKeeperEnsemble
) -> AsyncIterator[tuple[Any, list[Instance]]]:
    options = mesos_local.ClusterOptions(
        port=0, agents=2, agent_port=0, allocation_interval=0.1, status_update_retry=0.5,
        work_dir=tmp_path / "mesos",
    )  # fmt: skip
    async with mesos_local.open_cluster(options) as cluster:
        zk_path = f"/jobs-{uuid.uuid4().hex[:8]}"
        instances = [
            Instance(
                [
                    sys.executable,
                    "-m",
                    "marathon_jobs.cli",
                    "--master",
                    cluster.url,
                    "--zk_hosts",
                    zookeeper.hosts,
                    "--zk_path",
                    zk_path,
                    "--zk_timeout",
                    "3000",
                    "--http_port",
                    "0",
                    "--hostname",
                    "127.0.0.1",
                    "--mesos_user",
                    getpass.getuser(),
                    "--task_epsilon",
                    "20",
                ],
                tmp_path / f"jobs-{i}.log",
            )
            for i in range(2)
        ]
        try:
            for instance in instances:
                await instance.start()
            yield cluster, instances
        finally:
            for instance in instances:
                await instance.reap()


async def get_job(url: str, name: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(f"{url}/v1/scheduler/jobs/search", params={"name": name})
    if answer.status_code != 200:
        raise ValueError(answer.text)
    return next(j for j in answer.json() if j["name"] == name)


async def wait_job(url: str, name: str, check: Any, timeout: float) -> dict[str, Any]:
    last: object = None
    with trio.move_on_after(timeout):
        while True:
            try:
                job = last = await get_job(url, name)
            except (httpx.HTTPError, ValueError, StopIteration) as exc:
                job, last = None, exc
            if job is not None and check(job):
                return job
            await trio.sleep(0.3)
    raise AssertionError(f"job {name} not there in {timeout} s: {last!r}")


def frameworks(cluster: Any) -> list[dict[str, Any]]:
    return [f for f in cluster.master.state()["frameworks"] if f["name"] == "chronos"]


@pytest.mark.parametrize("fault", ["kill", "pause"])
async def test_the_standby_takes_over_and_every_slot_is_accounted_for(
    pair: tuple[Any, list[Instance]], tmp_path: Path, fault: str
) -> None:
    """``kill``: SIGKILL of the leader. ``pause``: SIGSTOP until the standby leads, then
    SIGCONT (a GC pause, a frozen VM): the old leader wakes up without its leadership and
    must not start anything."""
    cluster, instances = pair
    async with httpx.AsyncClient(timeout=10) as client:
        with trio.fail_after(20):
            while not (await client.get(f"{instances[0].url}/v1/scheduler/leader")).json()[
                "leader"
            ]:
                await trio.sleep(0.2)
        leader_id = (await client.get(f"{instances[1].url}/v1/scheduler/leader")).json()["leader"]
        leader = next(i for i in instances if i.url.endswith(leader_id.split(":")[1]))
        standby = next(i for i in instances if i is not leader)
        slots_log, adopted_log = tmp_path / "slots.log", tmp_path / "adopted.log"
        start = int(datetime.now(UTC).timestamp()) + 3
        small = {"cpus": 0.1, "mem": 32, "disk": 0}
        tick = {"name": "tick", "command": f'echo "$CHRONOS_JOB_SCHEDULED_TIME" >> {slots_log}',
                "schedule": f"R12/{iso(start)}/PT2S", **small}  # fmt: skip
        long = {"name": "long", "command": f"sleep 6; echo done >> {adopted_log}",
                "schedule": f"R1/{iso(start + 3)}/PT1M", **small}  # fmt: skip
        for job in (tick, long):  # through the standby: it forwards to the leader
            answer = await client.post(f"{standby.url}/v1/scheduler/iso8601", json=job)
            assert answer.status_code == 204, answer.text
    await wait_job(standby.url, "long", lambda j: j["state"] == "running", timeout=30)
    await wait_job(standby.url, "tick", lambda j: j["successCount"] >= 3, timeout=30)
    (before,) = frameworks(cluster)
    assert leader.process is not None
    if fault == "kill":
        leader.kill()
    else:
        os.killpg(leader.process.pid, signal.SIGSTOP)
    killed = trio.current_time()
    async with httpx.AsyncClient(timeout=5) as client:
        with trio.fail_after(3 + 10):  # the ZooKeeper session timeout, and a few seconds
            while (
                not (await client.get(f"{standby.url}/v1/scheduler/leader"))
                .json()["leader"]
                .endswith(standby.url.rsplit(":", 1)[1])
            ):
                await trio.sleep(0.1)
    print(f"the standby leads {trio.current_time() - killed:.1f} s after the {fault}")
    if fault == "pause":
        os.killpg(leader.process.pid, signal.SIGCONT)
        await stepped_down(leader, standby)
    tick_done = await wait_job(
        standby.url, "tick",
        lambda j: j["successCount"] + j["missedCount"] + j["errorCount"] == 12, timeout=90,
    )  # fmt: skip
    long_done = await wait_job(standby.url, "long", lambda j: j["successCount"] == 1, timeout=30)
    ran = slots_log.read_text().split()
    assert len(ran) == len(set(ran)), f"a slot ran twice: {sorted(ran)}"
    expected = {iso(start + 2 * i).replace("+00:00", "Z") for i in range(12)}
    assert {r.replace(".000Z", "Z") for r in ran} <= expected
    assert len(ran) + tick_done["missedCount"] == 12 and tick_done["errorCount"] == 0
    print(f"slots: {len(ran)} ran once, {tick_done['missedCount']} missed")
    assert adopted_log.read_text().split() == ["done"]  # adopted, not started again
    assert long_done["errorCount"] == 0
    (after,) = frameworks(cluster)
    assert after["id"] == before["id"] and after["active"]
    if fault == "pause":
        assert leader.process.returncode is None, leader.log.read_text()[-3000:]
        job = await get_job(leader.url, "tick")  # still served, by the new leader
        assert job["successCount"] == tick_done["successCount"]
        # And it can lead again: the new leader dies, the old one takes over once more.
        standby.kill()
        own_id = leader.url.removeprefix("http://")
        async with httpx.AsyncClient(timeout=5) as client:
            with trio.fail_after(3 + 10):
                while (await client.get(f"{leader.url}/v1/scheduler/leader")).json()[
                    "leader"
                ] != own_id:
                    await trio.sleep(0.1)
        again = await wait_job(leader.url, "tick", lambda j: True, timeout=15)
        assert again["successCount"] == tick_done["successCount"]
        assert (len(frameworks(cluster)), frameworks(cluster)[0]["id"]) == (1, before["id"])


async def stepped_down(old: Instance, new: Instance) -> None:
    """The old leader, woken up, steps down cleanly: it stays up, says why, names the new
    leader and proxies the API to it."""
    assert old.process is not None
    new_id = new.url.removeprefix("http://")
    async with httpx.AsyncClient(timeout=10) as client:
        with trio.fail_after(20):
            while True:
                assert old.process.returncode is None, old.log.read_text()[-3000:]
                try:
                    answer = await client.get(f"{old.url}/v1/scheduler/leader")
                    if answer.json()["leader"] == new_id:
                        break
                except httpx.HTTPError:
                    pass
                await trio.sleep(0.2)
        answer = await client.get(f"{old.url}/v1/scheduler/jobs")
        assert answer.status_code == 200, answer.text
        assert {j["name"] for j in answer.json()} == {"tick", "long"}
    text = old.log.read_text()
    assert "stops leading" in text or "leadership ends" in text, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
