"""docs/datacenter.md, run: the seed's datacenter on one machine.

Marathon (``--master local``: three agent processes; a real ZooKeeper) runs two
marathon-jobs instances as an app (``hostname:UNIQUE``); a job writes its scheduled time
every 5 s; the leading instance's machine loses power (SIGKILL of the agent's whole
process group). Every ``sh`` block of the guide is run by bash, in order, with the
guide's fixed ports and paths replaced by the test's; the waits between blocks are the
test's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from marathon_core.testing.zookeeper import ZooKeeperEnsemble, free_ports

pytestmark = [pytest.mark.cluster, pytest.mark.zookeeper, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
GUIDE = ROOT / "docs" / "datacenter.md"
EXAMPLES = ROOT / "frameworks" / "jobs" / "examples"
BIN = Path(sys.executable).parent
SLOTS = 24  # two minutes of a job every 5 s


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


class Guide:
    """The guide's ``sh`` blocks, run one after another by bash with shared variables."""

    def __init__(self, tmp: Path, substitutions: dict[str, str]) -> None:
        self.blocks = re.findall(r"```sh\n(.*?)```", GUIDE.read_text(), re.S)
        self.tmp = tmp
        self.substitutions = substitutions
        self.done = 0

    def text(self, index: int) -> str:
        block: str = self.blocks[index]
        for old, new in self.substitutions.items():
            block = block.replace(old, new)
        return block

    def run(self) -> str:
        """The next block; its output. Variables it sets are kept for the next ones."""
        state = self.tmp / "guide.vars"
        script = (
            f"set -e; cd {ROOT}; [ -f {state} ] && . {state}\n{self.text(self.done)}\n"
            f"declare -p CHRONOS LEADER > {state} 2>/dev/null || true\n"
        )
        self.done += 1
        out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"block {self.done - 1}: {out.stderr}"
        return out.stdout


@pytest.fixture
async def guide(tmp_path: Path, zookeeper: ZooKeeperEnsemble) -> AsyncIterator[Guide]:
    """Block 0 of the guide: marathon, left running (exec'd, so it can be stopped)."""
    master_port, http_port = free_ports(2)
    # Tasks that run as nobody reach their sandboxes below marathon's --state_dir.
    state_dir = Path(tempfile.mkdtemp(prefix="marathon-datacenter-"))
    state_dir.chmod(0o755)
    start = int(datetime.now(UTC).timestamp()) + 40
    app = json.loads((EXAMPLES / "chronos-app.json").read_text())
    app["env"] = {"MESOS_MASTER": f"127.0.0.1:{master_port}", "ZK_HOSTS": zookeeper.hosts}
    (tmp_path / "chronos-app.json").write_text(json.dumps(app))
    job = json.loads((EXAMPLES / "tick-job.json").read_text())
    job["command"] = job["command"].replace("/tmp/ticks.log", str(tmp_path / "ticks.log"))
    job["schedule"] = f"R{SLOTS}/{iso(start)}/PT5S"
    (tmp_path / "tick-job.json").write_text(json.dumps(job))
    guide = Guide(
        tmp_path,
        {
            ". .venv/bin/activate": f". {BIN}/activate",
            "marathon --master local": (
                f"exec marathon --master local --local_master_port {master_port} "
                f"--local_agent_port 0 --http_port {http_port}"
            ),
            "> marathon.log 2>&1 &": f"> {tmp_path}/marathon.log 2>&1",
            "zk://127.0.0.1:2181/": f"zk://{zookeeper.hosts}/",
            "localhost:8080": f"127.0.0.1:{http_port}",
            "/tmp/marathon-datacenter": str(state_dir),
            "frameworks/jobs/examples/chronos-app.json": str(tmp_path / "chronos-app.json"),
            "frameworks/jobs/examples/tick-job.json": str(tmp_path / "tick-job.json"),
        },
    )
    guide.api = f"http://127.0.0.1:{http_port}"  # type: ignore[attr-defined]
    guide.start = start  # type: ignore[attr-defined]
    log = tmp_path / "marathon.log"
    process = await trio.lowlevel.open_process(
        ["bash", "-c", f"cd {ROOT}\n{guide.text(0)}"], stdin=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    guide.done = 1
    try:
        with trio.fail_after(60):
            while "REST API listening on" not in (log.read_text() if log.exists() else ""):
                assert process.returncode is None, log.read_text()[-3000:]
                await trio.sleep(0.2)
        yield guide
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)  # marathon stops its agents and their tasks
            with trio.move_on_after(20):
                await process.wait()
            if process.returncode is None:
                os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        shutil.rmtree(state_dir, ignore_errors=True)


async def running(client: httpx.AsyncClient, url: str) -> list[dict[str, Any]]:
    tasks = (await client.get(url)).json().get("tasks", [])
    return [t for t in tasks if t.get("state") == "TASK_RUNNING"]


async def leader_seen_by(client: httpx.AsyncClient, task: dict[str, Any]) -> str | None:
    try:
        answer = await client.get(f"http://{task['host']}:{task['ports'][0]}/v1/scheduler/leader")
    except httpx.HTTPError:
        return None
    leader = answer.json().get("leader") if answer.status_code == 200 else None
    return str(leader) if leader else None


async def until(condition: Any, timeout: float, what: str) -> Any:
    with trio.move_on_after(timeout):
        while not (found := await condition()):
            await trio.sleep(0.5)
        return found
    raise AssertionError(f"not within {timeout} s: {what}")


async def test_the_guide(guide: Guide, tmp_path: Path) -> None:
    api, start = guide.api, guide.start  # type: ignore[attr-defined]
    ticks = tmp_path / "ticks.log"
    async with httpx.AsyncClient(timeout=10) as client:
        chronos_tasks = f"{api}/v2/apps/chronos/tasks"

        async def two_instances_and_a_leader() -> Any:
            tasks = await running(client, chronos_tasks)
            return len(tasks) == 2 and await leader_seen_by(client, tasks[0]) and tasks

        assert '"id":"/chronos"' in guide.run()  # 2. the job scheduler as an app
        tasks = await until(two_instances_and_a_leader, 90, "two instances and a leader")
        assert len({t["host"] for t in tasks}) == 2  # hostname:UNIQUE
        assert '"leader":"127.0.0.' in guide.run()
        out = guide.run()  # 3. a job (every 5 s here)
        assert '"name":"tick"' in out and '"missedCount":0' in out
        guide.run()  # 4. web apps with constraints

        async def web_deployed() -> bool:
            app = (await client.get(f"{api}/v2/apps/web")).json()["app"]
            return not app["deployments"] and app["tasksRunning"] == 1

        await until(web_deployed, 60, "the web app")
        guide.run()

        async def web_scaled() -> bool:
            app = (await client.get(f"{api}/v2/apps/web")).json()["app"]
            return bool(app["tasksRunning"] == 3)

        await until(web_scaled, 60, "three web instances")
        await until(lambda: trio.to_thread.run_sync(
            lambda: ticks.exists() and len(ticks.read_text().splitlines()) >= 3
        ), 90, "three ticks")  # fmt: skip
        leader = await leader_seen_by(client, tasks[0])
        assert leader is not None
        leader_host = leader.rsplit(":", 1)[0]
        killed_at = trio.current_time()
        guide.run()  # 5. the power cord
        survivor = next(t for t in tasks if t["host"] != leader_host)

        async def survivor_leads() -> bool:
            seen = await leader_seen_by(client, survivor)
            return seen is not None and seen.rsplit(":", 1)[0] == survivor["host"]

        await until(survivor_leads, 5 + 10, "the standby leading")  # session timeout + 10 s
        took_over = trio.current_time() - killed_at

        async def replaced() -> bool:
            hosts = {t["host"] for t in await running(client, chronos_tasks)}
            return len(hosts) == 2 and leader_host not in hosts

        await until(replaced, 60, "Marathon restarting the lost instance elsewhere")
        out = guide.run()  # ask the survivor
        assert survivor["host"] in out

        async def all_slots_accounted() -> Any:
            jobs = (await client.get(f"http://{survivor['host']}:{survivor['ports'][0]}"
                                     "/v1/scheduler/jobs")).json()  # fmt: skip
            tick = next(j for j in jobs if j["name"] == "tick")
            counted = tick["successCount"] + tick["errorCount"] + tick["missedCount"]
            return counted == SLOTS and tick

        tick = await until(all_slots_accounted, SLOTS * 5 + 90, "every slot accounted for")
    ran = [line.split()[0] for line in ticks.read_text().splitlines()]
    print(f"standby led {took_over:.1f} s after the power cord; {len(ran)} of {SLOTS} ran; "
          f"success {tick['successCount']}, error {tick['errorCount']}, "
          f"missed {tick['missedCount']}")  # fmt: skip
    assert len(ran) == len(set(ran)), f"a slot ran twice: {sorted(ran)}"
    assert set(ran) <= {iso(start + 5 * i).replace("Z", ".000Z") for i in range(SLOTS)}
    # A run whose task died with its machine is an error, never started again.
    assert tick["successCount"] <= len(ran) <= SLOTS - tick["missedCount"]
