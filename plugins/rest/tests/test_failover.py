"""Issue 7's failover scenario: three ``marathon`` processes on a 3-node ZooKeeper
ensemble and one shared Mesos master with real agents. The leader is SIGKILLed
repeatedly while a client keeps writing through any process: every write that got a
2xx is there afterwards, no task is relaunched because of a failover, and all live
processes agree on one leader."""

from __future__ import annotations

import signal
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from marathon_core.testing.processes import (
    agreed_leader,
    live,
    running_marathon,
    wait_for,
)

#: Leader kills in the kill loop; each killed process is restarted as a standby.
KILLS = 4


@pytest.mark.slow
def test_repeated_leader_kills_lose_no_write_and_relaunch_no_task(
    zk_ensemble: Any, mesos_master: str, tmp_path: Path
) -> None:
    args = (
        "--master",
        mesos_master,
        "--hostname",
        "127.0.0.1",
        "--zk",
        zk_ensemble.url("/marathon"),
        "--zk_session_timeout",
        "2000",
        "--reconciliation_initial_delay",
        "500",
    )
    with ExitStack() as stack:
        servers = [
            stack.enter_context(running_marathon(*args, state_dir=tmp_path / f"m{i}"))
            for i in range(3)
        ]

        def through_any(method: str, path: str, body: dict[str, Any], ok: set[int]) -> None:
            """Send through any live process, retrying until one answers with a code in ``ok``."""

            def attempt() -> bool:
                return any(
                    httpx.request(method, f"{s.url}{path}", json=body, timeout=10).status_code in ok
                    for s in live(servers)
                )

            wait_for(attempt, what=f"{method} {path} accepted")

        writes: list[str] = []

        def write(name: str) -> None:
            # 409: an earlier attempt that timed out had created it.
            through_any("POST", "/v2/apps", {"id": f"/fo/{name}", "cmd": "sleep 1"}, {201, 409})
            writes.append(name)

        leader = wait_for(lambda: agreed_leader(servers), what="one leader")
        created = httpx.post(
            f"{leader.url}/v2/apps",
            timeout=10,
            json={"id": "/fo/steady", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 2},
        )
        assert created.status_code == 201

        def steady_tasks() -> set[str] | None:
            current = agreed_leader(servers)
            if current is None:
                return None
            app = httpx.get(f"{current.url}/v2/apps/fo/steady", timeout=5).json()["app"]
            running = {t["id"] for t in app["tasks"] if t["state"] == "TASK_RUNNING"}
            return running if len(running) == 2 and not app["deployments"] else None

        tasks_before = wait_for(steady_tasks, what="2 running tasks")

        scales: list[int] = []

        def scale(instances: int) -> None:
            body = {"cmd": "sleep 1000", "cpus": 0.01, "mem": 16, "instances": instances}
            through_any("PUT", "/v2/apps/fo/scaled?force=true", body, {200, 201})
            scales.append(instances)

        for round_ in range(KILLS):
            old = wait_for(lambda: agreed_leader(servers), what="one leader")
            old.process.send_signal(signal.SIGKILL)
            old.process.wait()
            write(f"during{round_}")
            scale(round_ % 3)
            new = wait_for(lambda: agreed_leader(servers), what="a new leader")
            assert new is not old
            write(f"after{round_}")
            # The killed process comes back as a new standby, as a supervisor would restart it.
            servers.append(
                stack.enter_context(running_marathon(*args, state_dir=tmp_path / f"r{round_}"))
            )

        survivor = wait_for(lambda: agreed_leader(servers), what="the last leader")
        apps = {a["id"] for a in httpx.get(f"{survivor.url}/v2/apps", timeout=10).json()["apps"]}
        assert {f"/fo/{name}" for name in writes} <= apps
        scaled = httpx.get(f"{survivor.url}/v2/apps/fo/scaled", timeout=10).json()["app"]
        assert scaled["instances"] == scales[-1]
        time.sleep(2)  # let reconciliation run on the last leader
        assert wait_for(steady_tasks, what="the same 2 tasks") == tasks_before


def test_zookeeper_faults_answer_503_and_recover(
    zk_ensemble: Any, mesos_master: str, tmp_path: Path
) -> None:
    args = (
        "--master",
        mesos_master,
        "--hostname",
        "127.0.0.1",
        "--zk",
        zk_ensemble.url("/marathon"),
        "--zk_session_timeout",
        "4000",
    )
    with running_marathon(*args, state_dir=tmp_path / "m") as server:
        own = server.url.removeprefix("http://")
        wait_for(lambda: server.leader() == own, what="leadership")
        assert (
            httpx.post(
                f"{server.url}/v2/apps", json={"id": "/zk/a", "cmd": "sleep 1"}, timeout=10
            ).status_code
            == 201
        )

        follower = next(s for s in zk_ensemble.servers if s.mode() == "follower")
        follower.stop()
        follower.start()
        follower.wait_serving()
        assert server.leader() == own  # one node restarting changes nothing

        zk_ensemble.stop()

        def unavailable() -> bool:
            started = time.monotonic()
            status = httpx.get(f"{server.url}/v2/apps", timeout=10).status_code
            return status == 503 and time.monotonic() - started < 5  # an answer, not a hang

        try:
            wait_for(unavailable, timeout=20, what="503 while ZooKeeper is down")
        except AssertionError:
            print(f"exit status {server.process.poll()}; log:\n{''.join(server.log[-60:])}")
            raise
        assert server.process.poll() is None

        zk_ensemble.start()
        wait_for(lambda: server.leader() == own, timeout=40, what="leadership again")

        def listed() -> list[str] | None:
            # Leading comes before loading: until the term has loaded, the API says 503.
            response = httpx.get(f"{server.url}/v2/apps", timeout=10)
            return [a["id"] for a in response.json()["apps"]] if response.is_success else None

        assert wait_for(listed, timeout=20, what="the apps listed again") == ["/zk/a"]
        assert (
            httpx.post(
                f"{server.url}/v2/apps", json={"id": "/zk/b", "cmd": "sleep 1"}, timeout=10
            ).status_code
            == 201
        )
