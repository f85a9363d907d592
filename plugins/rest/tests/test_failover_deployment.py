"""A deployment survives its leader (Marathon's RestartIntegrationTest, #3783).

Three ``marathon`` processes on a real ZooKeeper share one embedded Mesos master with
real agents. A rolling upgrade with a readiness check runs; once a task of the new
version is Running and ready, the leader is SIGKILLed. Asked only through the
survivors' API: exactly one deployment exists until it completes under the new
leader, the new-version tasks that ran before the kill still run (they were not
killed and relaunched), and every final task is of the new version.
"""

from __future__ import annotations

import signal
import threading
from contextlib import ExitStack, suppress
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

pytestmark = [pytest.mark.processes, pytest.mark.zookeeper]

SERVE = "exec python3 -m http.server --bind $HOST $PORT0"


def app(cmd: str) -> dict[str, Any]:
    return {
        "id": "/fo/roll",
        "cmd": cmd,
        "cpus": 0.05,
        "mem": 24,
        "instances": 4,
        "portDefinitions": [{"port": 0, "name": "http"}],
        # Two at a time: the deployment is mid-way for a while.
        "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.0},
        "readinessChecks": [
            {"portName": "http", "path": "/", "intervalSeconds": 2, "timeoutSeconds": 1}
        ],
    }


def test_a_deployment_in_progress_completes_under_the_next_leader(
    zk_url: str, mesos_master: str, tmp_path: Path
) -> None:
    args = (
        "--master", mesos_master, "--hostname", "127.0.0.1", "--zk", zk_url,
        "--zk_session_timeout", "2000", "--reconciliation_initial_delay", "500",
        "--min_revive_offers_interval", "200",
    )  # fmt: skip
    with ExitStack() as stack:
        servers = [
            stack.enter_context(running_marathon(*args, state_dir=tmp_path / f"m{i}"))
            for i in range(3)
        ]

        first = wait_for(lambda: agreed_leader(servers), what="one leader")

        def get(path: str) -> Any:
            current = agreed_leader(servers)
            if current is None:
                return None
            response = httpx.get(f"{current.url}{path}", timeout=5)
            return response.json() if response.status_code == 200 else None

        created = httpx.post(f"{first.url}/v2/apps", json=app(SERVE), timeout=10)
        assert created.status_code == 201, created.text

        def settled() -> dict[str, Any] | None:
            found = get("/v2/apps/fo/roll")
            if found is None:
                return None
            current = found["app"]
            running = [t for t in current["tasks"] if t["state"] == "TASK_RUNNING"]
            return current if not current["deployments"] and len(running) == 4 else None

        v1 = wait_for(settled, timeout=90, what="4 running tasks of v1")
        upgrade = httpx.put(f"{first.url}/v2/apps/fo/roll", json=app(f"sleep 2 && {SERVE}"))
        assert upgrade.status_code == 200, upgrade.text

        # Watch the deployments from every live process without pause, throughout.
        counts: list[int] = []
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                for server in live(servers):
                    with suppress(httpx.HTTPError):
                        r = httpx.get(f"{server.url}/v2/deployments", timeout=5)
                        if r.status_code == 200:
                            counts.append(len(r.json()))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()

        def ready_new_tasks() -> set[str] | None:
            found = get("/v2/apps/fo/roll?embed=app.readiness")
            if found is None or not found["app"]["deployments"]:
                return None
            ready = {r["taskId"] for r in found["app"].get("readinessCheckResults", [])}
            new = {
                t["id"]
                for t in found["app"]["tasks"]
                if t["version"] != v1["version"] and t["state"] == "TASK_RUNNING"
            }
            return (new & ready) or None

        survivors_must_keep = wait_for(ready_new_tasks, timeout=60, what="a ready new task")
        assert get("/v2/deployments") != []  # still mid-deployment
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()

        second = wait_for(
            lambda: (s := agreed_leader(servers)) is not first and s, what="a new leader"
        )
        assert second is not first
        v2 = wait_for(settled, timeout=120, what="the deployment done under the new leader")
        stop.set()
        watcher.join()

        final = {t["id"] for t in v2["tasks"]}
        assert {t["version"] for t in v2["tasks"]} == {v2["version"]} != {v1["version"]}
        assert survivors_must_keep <= final  # running tasks of the new version not killed
        assert len(final) == 4
        assert counts and max(counts) == 1, counts  # never a second deployment
        assert counts[-1] == 0 or get("/v2/deployments") == []
