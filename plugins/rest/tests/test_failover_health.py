"""Leader-run health checks survive their leader: nothing healthy is killed.

Two ``marathon`` processes on a real ZooKeeper share one embedded Mesos master with
real agents. An app of 3 HTTP servers with a leader-run HTTP health check becomes
healthy; the leader is SIGKILLed. Health is kept in the leader's memory only, so the
standby that takes over starts with none: it must check again and must not count
"unknown" as failing. Asked through the new leader's API and the master's state: the
same 3 tasks still run (none killed, none replaced) and all are healthy again within
a bound.
"""

from __future__ import annotations

import signal
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from marathon_core.testing.processes import (
    RunningMarathon,
    agreed_leader,
    running_marathon,
    wait_for,
)

pytestmark = [pytest.mark.processes, pytest.mark.zookeeper]

SERVE = "exec python3 -m http.server --bind $HOST $PORT0"
APP = {
    "id": "/fo/healthy",
    "cmd": SERVE,
    "cpus": 0.05,
    "mem": 24,
    "instances": 3,
    "portDefinitions": [{"port": 0}],
    "healthChecks": [
        {
            "protocol": "HTTP",
            "path": "/",
            "portIndex": 0,
            "gracePeriodSeconds": 5,
            "intervalSeconds": 1,
            "timeoutSeconds": 1,
            "maxConsecutiveFailures": 3,
        }
    ],
}
#: Seconds the new leader may take to report every task healthy once it answers.
HEALTHY_AGAIN_WITHIN = 15.0


def test_healthy_tasks_stay_and_are_healthy_again_under_the_next_leader(
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
            for i in range(2)
        ]

        first = wait_for(lambda: agreed_leader(servers), what="one leader")
        created = httpx.post(f"{first.url}/v2/apps", json=APP, timeout=10)
        assert created.status_code == 201, created.text

        def all_healthy(server: RunningMarathon) -> dict[str, Any] | None:
            response = httpx.get(f"{server.url}/v2/apps{APP['id']}", timeout=5)
            if response.status_code != 200:
                return None
            app = response.json()["app"]
            running = [t for t in app["tasks"] if t["state"] == "TASK_RUNNING"]
            alive = [
                t
                for t in running
                if t.get("healthCheckResults") and all(h["alive"] for h in t["healthCheckResults"])
            ]
            done = len(alive) == 3 and app["tasksHealthy"] == 3 and not app["deployments"]
            return app if done else None

        before = wait_for(lambda: all_healthy(first), timeout=90, what="3 healthy tasks")
        task_ids = {t["id"] for t in before["tasks"]}

        killed, killed_at = time.monotonic(), datetime.now(UTC)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()

        def next_leader() -> RunningMarathon | None:
            current = agreed_leader(servers)
            return current if current is not first else None

        second = wait_for(next_leader, what="a new leader")
        took_over = time.monotonic()
        after = wait_for(
            lambda: all_healthy(second),
            timeout=HEALTHY_AGAIN_WITHIN + 30,
            what="3 healthy tasks under the new leader",
        )
        healthy_again = time.monotonic() - took_over
        assert healthy_again < HEALTHY_AGAIN_WITHIN, healthy_again

        assert {t["id"] for t in after["tasks"]} == task_ids  # none killed, none replaced
        checked = [h["lastSuccess"] for t in after["tasks"] for h in t["healthCheckResults"]]
        assert all(_parse(at) > killed_at for at in checked), checked  # by the new leader
        # A while later still the same tasks: no late kill once checks resumed.
        time.sleep(3)
        again = wait_for(lambda: all_healthy(second), what="still healthy")
        assert {t["id"] for t in again["tasks"]} == task_ids
        state = httpx.get(f"{mesos_master}/master/state", timeout=10).json()
        (framework,) = [f for f in state["frameworks"] if f["tasks"] or f["completed_tasks"]]
        assert {t["id"] for t in framework["tasks"]} == task_ids
        assert all(t["state"] == "TASK_RUNNING" for t in framework["tasks"])
        assert framework["completed_tasks"] == []  # the master saw no task end
        print(
            f"new leader after {took_over - killed:.1f} s; all healthy "
            f"{healthy_again:.1f} s after it answered"
        )


def _parse(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
