"""A MESOS-container app through ``marathon --master local``: real agents, real cgroups."""

from __future__ import annotations

import functools
import http.server
import json
import os
import threading
import time
import uuid
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

from .conftest import destroy_root, needs_cgroups, root_dirs  # type: ignore[import-not-found]

pytestmark = [needs_cgroups, pytest.mark.processes]

ENV = "MARATHON_RUNTIME_MESOS_CGROUP_ROOT"


@pytest.fixture(scope="module")
def root() -> Iterator[str]:
    """The agents (children of marathon) put task cgroups under this name."""
    name = f"marathon-mesos-e2e-{uuid.uuid4().hex[:12]}"
    old = os.environ.get(ENV)
    os.environ[ENV] = name
    try:
        yield name
    finally:
        if old is None:
            del os.environ[ENV]
        else:
            os.environ[ENV] = old
        destroy_root(name)


@pytest.fixture(scope="module")
def server(root: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningMarathon]:
    with running_marathon(
        *local_cluster_args(1, agent_resources="cpus:2;mem:1024;disk:1000;ports:[31300-31400]"),
        state_dir=tmp_path_factory.mktemp("state"),
    ) as running:
        yield running
        assert running.stop() == 0


def containers(root: str) -> dict[str, list[int]]:
    memory = root_dirs(root)[0]
    if not memory.is_dir():
        return {}
    return {
        d.name: [int(p) for p in (d / "cgroup.procs").read_text().split()]
        for d in memory.iterdir()
        if d.is_dir()
    }


def test_a_mesos_container_app_runs_in_its_memory_cgroup(
    server: RunningMarathon, root: str
) -> None:
    app = {
        "id": "/mesos/sleeper",
        "cmd": "exec sleep 300",
        "cpus": 0.25,
        "mem": 48,
        "instances": 1,
        "container": {"type": "MESOS"},
    }
    response = httpx.post(f"{server.url}/v2/apps", json=app, timeout=10)
    assert response.status_code == 201, response.text

    def running() -> dict[str, Any] | None:
        info = httpx.get(f"{server.url}/v2/apps/mesos/sleeper", timeout=5).json()["app"]
        return info if info["tasksRunning"] == 1 else None

    wait_for(running, timeout=30, what="a running MESOS task")
    ((container_id, pids),) = containers(root).items()
    (pid,) = pids
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", b"300"]
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert b"MARATHON_APP_ID=/mesos/sleeper" in environ
    memory_line = next(
        line
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        if line.split(":")[1] == "memory"
    )
    assert memory_line.endswith(f"/{root}/{container_id}")
    memory = root_dirs(root)[0] / container_id
    assert (memory / "memory.limit_in_bytes").read_text().strip() == str(48 * 1024 * 1024)

    response = httpx.delete(f"{server.url}/v2/apps/mesos/sleeper", timeout=10)
    assert response.status_code == 200, response.text
    wait_for(lambda: not containers(root) or None, timeout=30, what="the cgroups removed")


def test_an_image_is_refused(server: RunningMarathon) -> None:
    app = {
        "id": "/mesos/image",
        "cmd": "sleep 1",
        "container": {"type": "MESOS", "docker": {"image": "busybox"}},
    }
    response = httpx.post(f"{server.url}/v2/apps", json=app, timeout=10)
    assert response.status_code == 422, response.text
    assert "/container/docker/image" in response.text


def test_a_task_over_its_memory_is_reported_as_mesos_reports_it(server: RunningMarathon) -> None:
    """The OOM kill travels the whole way: agent -> master -> scheduler -> event stream."""
    app = {
        "id": "/mesos/hog",
        "cmd": "exec python3 -c 'b = []\nwhile True: b.append(bytearray(1 << 20))'",
        "cpus": 0.25,
        "mem": 32,
        "instances": 1,
        "container": {"type": "MESOS"},
    }
    events = f"{server.url}/v2/events?event_type=status_update_event"
    failed: dict[str, Any] | None = None
    with httpx.stream("GET", events, timeout=httpx.Timeout(30, read=30)) as stream:
        response = httpx.post(f"{server.url}/v2/apps", json=app, timeout=10)
        assert response.status_code == 201, response.text
        deadline = time.monotonic() + 30
        for line in stream.iter_lines():
            if line.startswith("data:"):
                event = json.loads(line[len("data:") :])
                if event["appId"] == "/mesos/hog" and event["taskStatus"] == "TASK_FAILED":
                    failed = event
                    break
            assert time.monotonic() < deadline, "no TASK_FAILED within 30 s"
    assert failed is not None
    assert failed["message"].startswith("Memory limit exceeded: Requested: 32MB")
    response = httpx.delete(f"{server.url}/v2/apps/mesos/hog?force=true", timeout=10)
    assert response.status_code == 200, response.text


@pytest.fixture
def served_script(tmp_path: Path) -> Iterator[str]:
    """A script on a real HTTP server on loopback (in a thread); its URL."""
    (tmp_path / "whoami.sh").write_text("#!/bin/sh\nexec sleep 300\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/whoami.sh"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_a_fetched_script_runs_as_the_apps_user_in_its_cgroups(
    server: RunningMarathon, root: str, served_script: str
) -> None:
    app = {
        "id": "/mesos/nobody",
        "cmd": "./whoami.sh",
        "user": "nobody",
        "cpus": 0.1,
        "mem": 32,
        "instances": 1,
        "container": {"type": "MESOS"},
        "fetch": [{"uri": served_script, "executable": True}],
    }
    response = httpx.post(f"{server.url}/v2/apps", json=app, timeout=10)
    assert response.status_code == 201, response.text

    def sleeping() -> int | None:
        """The task's process once it has exec'd the script's ``sleep``."""
        for pids in containers(root).values():
            for pid in pids:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if cmdline[:2] == [b"sleep", b"300"]:
                    return pid
        return None

    pid = wait_for(sleeping, timeout=30, what="the fetched script running")
    assert os.stat(f"/proc/{pid}").st_uid == 65534  # nobody, inside its memory cgroup
    response = httpx.delete(f"{server.url}/v2/apps/mesos/nobody?force=true", timeout=10)
    assert response.status_code == 200, response.text
    wait_for(lambda: not containers(root) or None, timeout=30, what="the cgroups removed")
