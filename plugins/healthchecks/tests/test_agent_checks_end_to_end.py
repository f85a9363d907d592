"""Checks run by the agents, and the kill rate, in ``marathon --master local``: real agent
processes, real tasks, real checks.

- a COMMAND check that starts failing gets its task killed by the agent and the task
  replaced after ``maxConsecutiveFailures``, never while ``gracePeriodSeconds`` lasts;
- a MESOS_HTTP check of a task serving HTTP makes it healthy in ``/v2/apps``;
- when every instance of an app fails its (leader-run) check at once, the leader kills
  them no faster than its kill tokens per refresh interval (one for 4 instances at
  ``--health_kill_fraction_per_app`` 0.1).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
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

pytestmark = pytest.mark.cluster

KILL_INTERVAL = 4.0


@pytest.fixture(scope="module")
def server() -> Iterator[RunningMarathon]:
    # Tasks (and their COMMAND checks) run as nobody: they reach their sandboxes by path.
    with (
        searchable_state_dir() as state_dir,
        running_marathon(
            *local_cluster_args(1, agent_resources="cpus:4;mem:2048;disk:1000;ports:[31400-31500]"),
            "--health_kill_fraction_per_app", "0.1",
            "--health_kill_token_refresh_interval", str(int(KILL_INTERVAL * 1000)),
            state_dir=state_dir,
        ) as running,
    ):  # fmt: skip
        yield running
        assert running.stop() == 0


def app_of(server: RunningMarathon, app_id: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/v2/apps{app_id}", params={"embed": "apps.tasks"}, timeout=5)
    response.raise_for_status()
    app: dict[str, Any] = response.json()["app"]
    return app


def running_tasks(server: RunningMarathon, app_id: str) -> list[dict[str, Any]]:
    return [t for t in app_of(server, app_id).get("tasks", []) if t["state"] == "TASK_RUNNING"]


def post(server: RunningMarathon, app: dict[str, Any]) -> None:
    response = httpx.post(f"{server.url}/v2/apps", json=app, timeout=10)
    assert response.status_code == 201, response.text


def command_app(app_id: str, cmd: str, check: str, **hc: Any) -> dict[str, Any]:
    return {
        "id": app_id,
        "cmd": cmd,
        "cpus": 0.1,
        "mem": 16,
        "instances": 1,
        "healthChecks": [
            {
                "protocol": "COMMAND",
                "command": {"value": check},
                "delaySeconds": 0,
                "intervalSeconds": 1,
                "timeoutSeconds": 1,
                **hc,
            }
        ],
    }


def replaced(server: RunningMarathon, app_id: str, first: str) -> str | None:
    ids = [t["id"] for t in running_tasks(server, app_id)]
    return ids[0] if ids and first not in ids else None


def test_a_command_check_that_starts_failing_gets_the_task_replaced(
    server: RunningMarathon,
) -> None:
    # Healthy while ./ok exists in the sandbox (the check runs there, as the task).
    post(
        server,
        command_app(
            "/agent/flaky",
            "touch ok; sleep 4; rm ok; sleep 600",
            "test -e ok",
            gracePeriodSeconds=60,
            maxConsecutiveFailures=3,
        ),
    )

    def healthy_task() -> dict[str, Any] | None:
        tasks = running_tasks(server, "/agent/flaky")
        results = tasks[0].get("healthCheckResults") if tasks else None
        return tasks[0] if results and results[0]["alive"] else None

    first = wait_for(healthy_task, timeout=30, what="a task healthy by its COMMAND check")
    assert app_of(server, "/agent/flaky")["tasksHealthy"] == 1
    wait_for(
        lambda: app_of(server, "/agent/flaky")["tasksUnhealthy"] == 1,
        timeout=15,
        what="the check failing",
    )
    unhealthy_at = time.monotonic()
    second = wait_for(
        lambda: replaced(server, "/agent/flaky", first["id"]), timeout=30, what="a replacement"
    )
    # Killed at the 3rd failure (1 s apart), not at the first: the grace period no
    # longer applied after the first success, maxConsecutiveFailures did.
    assert time.monotonic() - unhealthy_at >= 1.5
    assert second != first["id"]


def test_no_kill_while_the_grace_period_lasts(server: RunningMarathon) -> None:
    grace = 8
    post(
        server,
        command_app(
            "/agent/never",
            "sleep 600",
            "false",
            gracePeriodSeconds=grace,
            maxConsecutiveFailures=1,
        ),
    )
    first = wait_for(
        lambda: next(iter(running_tasks(server, "/agent/never")), None),
        timeout=30,
        what="the task running",
    )
    seen_running = time.monotonic()
    second = wait_for(
        lambda: replaced(server, "/agent/never", first["id"]), timeout=40, what="a replacement"
    )
    # Failures before a first success are ignored for the grace period (counted from
    # the launch, a little before we saw it running), then the first counted one kills.
    assert time.monotonic() - seen_running >= grace - 1.5
    assert second != first["id"]


def test_a_mesos_http_check_of_a_task_serving_http_makes_it_healthy(
    server: RunningMarathon,
) -> None:
    post(
        server,
        {
            "id": "/agent/web",
            "cmd": "exec python3 -m http.server --bind $HOST $PORT0",
            "cpus": 0.1,
            "mem": 32,
            "instances": 1,
            "portDefinitions": [{"port": 0}],
            "healthChecks": [
                {
                    "protocol": "MESOS_HTTP",
                    "path": "/",
                    "portIndex": 0,
                    "delaySeconds": 0,
                    "gracePeriodSeconds": 30,
                    "intervalSeconds": 1,
                    "timeoutSeconds": 1,
                }
            ],
        },
    )
    info = wait_for(
        lambda: (app := app_of(server, "/agent/web"))["tasksHealthy"] == 1 and app,
        timeout=30,
        what="a healthy task",
    )
    (task,) = info["tasks"]
    (result,) = task["healthCheckResults"]
    assert result["alive"] is True and result["firstSuccess"] is not None
    tasks = httpx.get(f"{server.url}/v2/tasks", timeout=5).json()["tasks"]
    (listed,) = [t for t in tasks if t["appId"] == "/agent/web"]
    assert listed["healthCheckResults"][0]["alive"] is True
    wait_for(lambda: app_of(server, "/agent/web")["deployments"] == [], what="deployment done")


def gauges(server: RunningMarathon) -> dict[str, float]:
    found = httpx.get(f"{server.url}/metrics", timeout=5).json()["gauges"]
    return {name: value["value"] for name, value in found.items()}


def test_the_kill_rate_holds_when_every_instance_turns_unhealthy_at_once(
    server: RunningMarathon,
) -> None:
    with searchable_state_dir() as served:  # the tasks (nobody) serve it
        kill_rate_holds(server, served)


def kill_rate_holds(server: RunningMarathon, served: Path) -> None:
    (served / "ok").write_text("ok")
    (served / "ok").chmod(0o644)
    instances = 4
    post(
        server,
        {
            "id": "/agent/fleet",
            "cmd": f"exec python3 -m http.server --bind $HOST --directory {served} $PORT0",
            "cpus": 0.1,
            "mem": 32,
            "instances": instances,
            "portDefinitions": [{"port": 0}],
            "healthChecks": [
                {
                    "protocol": "HTTP",
                    "path": "/ok",
                    "portIndex": 0,
                    # Replacements never pass, but the grace period spares them.
                    "gracePeriodSeconds": 120,
                    "intervalSeconds": 1,
                    "timeoutSeconds": 1,
                    "maxConsecutiveFailures": 1,
                }
            ],
        },
    )
    wait_for(
        lambda: app_of(server, "/agent/fleet")["tasksHealthy"] == instances,
        timeout=60,
        what="every instance healthy",
    )
    originals = {t["id"] for t in running_tasks(server, "/agent/fleet")}
    before = gauges(server)
    (served / "ok").unlink()  # all of them fail at once
    started = time.monotonic()
    kills: list[float] = []
    while len(kills) < instances and time.monotonic() - started < 60:
        alive = {t["id"] for t in app_of(server, "/agent/fleet").get("tasks", [])}
        gone = len(originals - alive)
        kills += [time.monotonic() - started] * (gone - len(kills))
        # Never more than the burst (1) plus one per interval so far.
        assert gone <= 1 + int((time.monotonic() - started) / KILL_INTERVAL) + 1, kills
        time.sleep(0.2)
    assert len(kills) == instances, kills
    gaps = [b - a for a, b in itertools.pairwise(kills)]
    assert all(gap >= KILL_INTERVAL - 1.0 for gap in gaps), kills
    after = gauges(server)
    assert after["marathon.health.kills.gauge"] - before["marathon.health.kills.gauge"] == instances
    assert (
        after["marathon.health.kills.deferred.gauge"]
        > before["marathon.health.kills.deferred.gauge"]
    )
