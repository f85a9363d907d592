"""Health checks in ``marathon --master local``: real agents, real tasks, real probes.

One app serves HTTP with ``python3 -m http.server`` and becomes healthy; another
listens nowhere, so its check always fails and its task is killed and replaced.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from marathon_core.testing.processes import (
    RunningMarathon,
    local_cluster_args,
    running_marathon,
    searchable_state_dir,
    wait_for,
)

pytestmark = pytest.mark.processes


@pytest.fixture(scope="module")
def server() -> Iterator[RunningMarathon]:
    # Tasks run as nobody: http.server serves its cwd, which nobody must reach by path.
    with (
        searchable_state_dir() as state_dir,
        running_marathon(
            *local_cluster_args(1, agent_resources="cpus:2;mem:1024;disk:1000;ports:[31200-31300]"),
            state_dir=state_dir,
        ) as running,
    ):
        yield running
        assert running.stop() == 0


def app_of(server: RunningMarathon, app_id: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/v2/apps{app_id}", timeout=5)
    response.raise_for_status()
    app: dict[str, Any] = response.json()["app"]
    return app


def test_an_http_server_becomes_healthy(server: RunningMarathon) -> None:
    app = {
        "id": "/hc/web",
        "cmd": "exec python3 -m http.server --bind $HOST $PORT0",
        "cpus": 0.1,
        "mem": 32,
        "instances": 1,
        "portDefinitions": [{"port": 0}],
        "healthChecks": [
            {
                "protocol": "HTTP",
                "path": "/",
                "portIndex": 0,
                "gracePeriodSeconds": 30,
                "intervalSeconds": 1,
                "timeoutSeconds": 1,
                "maxConsecutiveFailures": 3,
            }
        ],
    }
    response = httpx.post(f"{server.url}/v2/apps", json=app, timeout=10)
    assert response.status_code == 201, response.text

    def healthy() -> dict[str, Any] | None:
        info = app_of(server, "/hc/web")
        return info if info["tasksHealthy"] == 1 else None

    info = wait_for(healthy, timeout=30, what="a healthy task")
    assert info["tasksUnhealthy"] == 0
    (task,) = info["tasks"]
    (result,) = task["healthCheckResults"]
    assert result["alive"] is True
    assert result["consecutiveFailures"] == 0
    assert result["firstSuccess"] is not None
    assert result["instanceId"]
    tasks = httpx.get(f"{server.url}/v2/apps/hc/web/tasks", timeout=5).json()["tasks"]
    assert tasks[0]["healthCheckResults"][0]["alive"] is True
    # The deployment waited for nothing it should not have and is over.
    wait_for(lambda: app_of(server, "/hc/web")["deployments"] == [], what="deployment done")


def test_a_task_failing_its_check_is_killed_and_replaced(server: RunningMarathon) -> None:
    app = {
        "id": "/hc/broken",
        "cmd": "sleep 1000",  # listens nowhere: the TCP check always fails
        "cpus": 0.1,
        "mem": 16,
        "instances": 1,
        "portDefinitions": [{"port": 0}],
        "healthChecks": [
            {
                "protocol": "TCP",
                "portIndex": 0,
                "gracePeriodSeconds": 0,
                "intervalSeconds": 1,
                "timeoutSeconds": 1,
                "maxConsecutiveFailures": 1,
            }
        ],
    }
    response = httpx.post(f"{server.url}/v2/apps", json=app, timeout=10)
    assert response.status_code == 201, response.text

    def first_task() -> str | None:
        tasks = app_of(server, "/hc/broken").get("tasks", [])
        return tasks[0]["id"] if tasks and tasks[0]["state"] == "TASK_RUNNING" else None

    first = wait_for(first_task, timeout=30, what="the first task running")

    def replaced() -> str | None:
        tasks = app_of(server, "/hc/broken").get("tasks", [])
        ids = [t["id"] for t in tasks if t["state"] == "TASK_RUNNING"]
        return ids[0] if ids and first not in ids else None

    second = wait_for(replaced, timeout=30, what="a replacement task")
    assert second != first
    info = app_of(server, "/hc/broken")
    assert info["tasksHealthy"] == 0


def test_a_deployment_waits_until_the_new_task_is_healthy(server: RunningMarathon) -> None:
    app = {
        "id": "/hc/slow-start",
        # Running at once, healthy only once the server listens 3 s later.
        "cmd": "sleep 3 && exec python3 -m http.server --bind $HOST $PORT0",
        "cpus": 0.1,
        "mem": 32,
        "instances": 1,
        "portDefinitions": [{"port": 0}],
        "healthChecks": [
            {
                "protocol": "HTTP",
                "gracePeriodSeconds": 60,
                "intervalSeconds": 1,
                "timeoutSeconds": 1,
            }
        ],
    }
    response = httpx.post(f"{server.url}/v2/apps", json=app, timeout=10)
    assert response.status_code == 201, response.text

    def running_unhealthy() -> dict[str, Any] | None:
        info = app_of(server, "/hc/slow-start")
        return info if info["tasksRunning"] == 1 and info["tasksHealthy"] == 0 else None

    info = wait_for(running_unhealthy, timeout=30, what="a running task not yet healthy")
    assert info["deployments"] != []  # the deployment waits for health, not just Running

    def done() -> dict[str, Any] | None:
        info = app_of(server, "/hc/slow-start")
        return info if info["deployments"] == [] else None

    info = wait_for(done, timeout=30, what="the deployment to finish")
    assert info["tasksHealthy"] == 1
