"""Docker apps through ``marathon --master local``: real agents, a real Docker Engine.

Two agents (127.0.0.2 and 127.0.0.3) with ``--local_containerizers mesos,docker`` on
the session's own dockerd; every app uses HOST networking (the daemon has no bridge).
"""

from __future__ import annotations

import json
import os
import signal
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
    wait_for,
)
from marathon_runtime_docker.containerizer import TASK_LABEL
from marathon_runtime_docker.testing import BUSYBOX, Dockerd

pytestmark = [pytest.mark.docker]

RESOURCES = "cpus:2;mem:1024;disk:1000;ports:[31300-31400]"


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="module")
def server(dockerd: Dockerd, state_dir: Path) -> Iterator[RunningMarathon]:
    with running_marathon(
        *local_cluster_args(2, agent_resources=RESOURCES),
        "--local_containerizers", "mesos,docker",
        "--local_docker_socket", dockerd.socket,
        state_dir=state_dir,
    ) as running:  # fmt: skip
        yield running
        assert running.stop() == 0
    # Nothing is left behind: every container removed, and with it its cgroups.
    assert dockerd.containers() == []
    assert dockerd.cgroups() == []


def docker_app(app_id: str, cmd: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": app_id,
        "cmd": cmd,
        "cpus": 0.1,
        "mem": 32,
        "instances": 1,
        "container": {"type": "DOCKER", "docker": {"image": BUSYBOX, "network": "HOST"}},
        **fields,
    }


def tasks(server: RunningMarathon, app_id: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}/v2/apps{app_id}/tasks", timeout=10)
    if response.status_code == 404:
        return []
    found: list[dict[str, Any]] = response.json()["tasks"]
    return found


def running_tasks(server: RunningMarathon, app_id: str, count: int) -> list[dict[str, Any]]:
    def ready() -> list[dict[str, Any]] | None:
        found = [t for t in tasks(server, app_id) if t.get("state") == "TASK_RUNNING"]
        return found if len(found) == count else None

    return wait_for(ready, timeout=60, what=f"{count} running task(s) of {app_id}")


def containers_of(dockerd: Dockerd, task_ids: list[str]) -> list[dict[str, Any]]:
    return [
        c
        for c in dockerd.containers()
        if isinstance(c["Labels"], dict) and c["Labels"].get(TASK_LABEL) in task_ids
    ]


def app_containers(dockerd: Dockerd, app_id: str) -> list[dict[str, Any]]:
    prefix = app_id.strip("/").replace("/", "_") + "."
    return [
        c
        for c in dockerd.containers()
        if isinstance(c["Labels"], dict) and str(c["Labels"].get(TASK_LABEL)).startswith(prefix)
    ]


def delete(server: RunningMarathon, app_id: str) -> None:
    response = httpx.delete(f"{server.url}/v2/apps{app_id}?force=true", timeout=10)
    assert response.status_code == 200, response.text


def first_event(
    server: RunningMarathon, app: dict[str, Any], state: str, *, timeout: float
) -> tuple[dict[str, Any], float]:
    """Post ``app`` and return its first status update in ``state`` and the seconds it took."""
    events = f"{server.url}/v2/events?event_type=status_update_event"
    with httpx.stream("GET", events, timeout=httpx.Timeout(30, read=timeout + 5)) as stream:
        started = time.monotonic()
        response = httpx.post(f"{server.url}/v2/apps", json=app, timeout=10)
        assert response.status_code == 201, response.text
        for line in stream.iter_lines():
            if line.startswith("data:"):
                event = json.loads(line[len("data:") :])
                if event["appId"] == app["id"] and event["taskStatus"] == state:
                    return event, time.monotonic() - started
            assert time.monotonic() - started < timeout, f"no {state} within {timeout} s"
    raise AssertionError("the event stream ended")


def test_a_docker_app_serves_on_its_agent_and_scales(
    server: RunningMarathon, dockerd: Dockerd
) -> None:
    app = docker_app(
        "/docker/web",
        'echo "hello from $MESOS_TASK_ID" > $MESOS_SANDBOX/index.html; '
        "exec httpd -f -p $HOST:$PORT0 -h $MESOS_SANDBOX",
        portDefinitions=[{"port": 0}],
    )
    response = httpx.post(f"{server.url}/v2/apps", json=app, timeout=10)
    assert response.status_code == 201, response.text
    (task,) = running_tasks(server, "/docker/web", 1)
    assert task["host"] in ("127.0.0.2", "127.0.0.3")
    page = wait_for(
        lambda: _get(f"http://{task['host']}:{task['ports'][0]}/index.html"),
        timeout=10,
        what="the container's httpd",
    )
    assert page == f"hello from {task['id']}\n"
    (container,) = containers_of(dockerd, [task["id"]])
    assert container["Image"] == BUSYBOX and container["State"] == "running"

    response = httpx.put(f"{server.url}/v2/apps/docker/web", json={"instances": 3}, timeout=10)
    assert response.status_code == 200, response.text
    scaled = running_tasks(server, "/docker/web", 3)
    assert len(containers_of(dockerd, [t["id"] for t in scaled])) == 3
    for each in scaled:
        assert _get(f"http://{each['host']}:{each['ports'][0]}/index.html") is not None

    response = httpx.put(f"{server.url}/v2/apps/docker/web", json={"instances": 1}, timeout=10)
    assert response.status_code == 200, response.text
    running_tasks(server, "/docker/web", 1)
    wait_for(
        lambda: len(app_containers(dockerd, "/docker/web")) == 1 or None,
        timeout=30,
        what="the scaled-down containers removed",
    )
    delete(server, "/docker/web")
    wait_for(
        lambda: not app_containers(dockerd, "/docker/web") or None,
        timeout=30,
        what="the last container removed",
    )


def _get(url: str) -> str | None:
    try:
        response = httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None
    return response.text if response.status_code == 200 else None


def test_a_kill_honours_the_grace_period(server: RunningMarathon, dockerd: Dockerd) -> None:
    # PID 1 of a container ignores SIGTERM without a handler: only SIGKILL ends it.
    app = docker_app("/docker/stubborn", "exec sleep 300", taskKillGracePeriodSeconds=3)
    response = httpx.post(f"{server.url}/v2/apps", json=app, timeout=10)
    assert response.status_code == 201, response.text
    (task,) = running_tasks(server, "/docker/stubborn", 1)
    assert len(containers_of(dockerd, [task["id"]])) == 1
    started = time.monotonic()
    delete(server, "/docker/stubborn")
    wait_for(
        lambda: not containers_of(dockerd, [task["id"]]) or None,
        timeout=20,
        what="the container stopped and removed",
    )
    elapsed = time.monotonic() - started
    assert 3.0 <= elapsed < 10.0, elapsed


def test_an_oom_kill_reaches_the_event_stream_as_a_memory_limitation(
    server: RunningMarathon,
) -> None:
    app = docker_app("/docker/hog", "x=a; while true; do x=$x$x; done")
    failed, _ = first_event(server, app, "TASK_FAILED", timeout=60)
    assert failed["message"].startswith("Memory limit exceeded: Requested: 32MB"), failed
    delete(server, "/docker/hog")


def test_a_missing_image_fails_the_task_within_seconds(server: RunningMarathon) -> None:
    image = "127.0.0.1:9/missing:1"  # its registry refuses at once, on loopback
    app = docker_app("/docker/missing", "true")
    app["container"]["docker"]["image"] = image
    failed, took = first_event(server, app, "TASK_FAILED", timeout=10)
    assert took < 10
    assert f"Failed to pull image '{image}'" in failed["message"], failed
    assert "connection refused" in failed["message"], failed
    delete(server, "/docker/missing")


def agent_pid(state_dir: Path, ip: str) -> int | None:
    """The agent process serving ``ip`` for the marathon on ``state_dir``."""
    work_dir = str(state_dir).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            argv[1:3] == [b"-m", b"marathon_mesos_local.agent"]  # not its host's
            and ip.encode() in argv
            and any(arg.startswith(work_dir) for arg in argv)
        ):
            return int(entry.name)
    return None


def test_a_container_survives_an_agent_restart(
    server: RunningMarathon, dockerd: Dockerd, state_dir: Path
) -> None:
    app = docker_app("/docker/survivor", "exec sleep 300", taskKillGracePeriodSeconds=0)
    response = httpx.post(f"{server.url}/v2/apps", json=app, timeout=10)
    assert response.status_code == 201, response.text
    (task,) = running_tasks(server, "/docker/survivor", 1)
    (container,) = containers_of(dockerd, [task["id"]])
    old = agent_pid(state_dir, task["host"])
    assert old is not None
    os.kill(old, signal.SIGKILL)
    new = wait_for(
        lambda: pid if (pid := agent_pid(state_dir, task["host"])) not in (None, old) else None,
        timeout=30,
        what="the agent restarted by its host",
    )
    time.sleep(3)  # the restarted agent recovers its tasks and re-registers
    assert agent_pid(state_dir, task["host"]) == new, "".join(server.log[-60:])
    (again,) = running_tasks(server, "/docker/survivor", 1)
    assert again["id"] == task["id"]
    (same,) = containers_of(dockerd, [task["id"]])
    assert same["Id"] == container["Id"] and same["State"] == "running"
    # The restarted agent watches it: a kill reaches the container.
    delete(server, "/docker/survivor")
    wait_for(
        lambda: not containers_of(dockerd, [task["id"]]) or None,
        timeout=30,
        what="the recovered container killed and removed",
    )


@pytest.mark.processes
def test_an_agent_without_docker_fails_docker_tasks_saying_why(tmp_path: Path) -> None:
    with running_marathon(*local_cluster_args(1), state_dir=tmp_path / "state") as plain:
        failed, _ = first_event(plain, docker_app("/docker/nowhere", "true"), "TASK_FAILED",
                                timeout=30)  # fmt: skip
        assert failed["message"] == (
            "Container type DOCKER is not enabled on this agent (--containerizers=mesos); "
            "start the agent with --containerizers=mesos,docker"
        ), failed
        delete(plain, "/docker/nowhere")
        assert plain.stop() == 0


def test_bridge_port_mappings_reach_the_engine(server: RunningMarathon, dockerd: Dockerd) -> None:
    """The engine is given the mapping; with ``--bridge=none`` it publishes nothing."""
    app = docker_app("/docker/bridged", "exec sleep 300", taskKillGracePeriodSeconds=0)
    app["container"]["docker"].update(
        network="BRIDGE", portMappings=[{"containerPort": 80, "hostPort": 0, "protocol": "tcp"}]
    )
    response = httpx.post(f"{server.url}/v2/apps", json=app, timeout=10)
    assert response.status_code == 201, response.text
    (task,) = running_tasks(server, "/docker/bridged", 1)
    (container,) = containers_of(dockerd, [task["id"]])
    with dockerd.client() as client:
        host = client.get(f"/containers/{container['Id']}/json").json()["HostConfig"]
    assert host["NetworkMode"] == "bridge"
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": str(task["ports"][0])}]}
    delete(server, "/docker/bridged")
    wait_for(
        lambda: not containers_of(dockerd, [task["id"]]) or None,
        timeout=30,
        what="the container removed",
    )
