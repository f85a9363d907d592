"""Acceptance: marathon-python's "complex app" (its own integration suite's Docker app)
through the real client against ``marathon --master local`` with this runtime installed.

The body has what Marathon users send: the deprecated ``docker.network: BRIDGE`` and
``docker.portMappings``, ``parameters`` (``add-host``), a read-only host volume,
``uris`` and an HTTP health check. Marathon answers 201 and reads it back in canonical
form; so must we. The launch that follows is checked up to the TaskInfo the master
handed to the agent (its ``container``); running it on a Docker Engine is the agent
side's business.
"""

from __future__ import annotations

import collections
import collections.abc
import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from marathon_core.testing.mesos_protos import parse_strict
from marathon_core.testing.processes import (
    RunningMarathon,
    local_cluster_args,
    running_marathon,
    wait_for,
)

# marathon 0.13 still imports these from ``collections`` (removed in Python 3.10).
for _name in ("Iterable", "Mapping", "MutableMapping", "Sequence"):
    setattr(collections, _name, getattr(collections.abc, _name))

from marathon import MarathonClient  # type: ignore[import-untyped]  # noqa: E402
from marathon.models import MarathonApp  # type: ignore[import-untyped]  # noqa: E402

pytestmark = pytest.mark.processes

PORTS = (31300, 31400)

#: The facts of marathon-python's itests "complex app" (steps/marathon_steps.py),
#: in the keyword form its users pass to MarathonApp.
COMPLEX_APP: dict[str, Any] = {
    "container": {
        "type": "DOCKER",
        "docker": {
            "image": "localhost/fake_docker_url",
            "network": "BRIDGE",
            "portMappings": [{"protocol": "tcp", "containerPort": 8888, "hostPort": 0}],
            "parameters": [{"key": "add-host", "value": "google-public-dns-a.google.com:8.8.8.8"}],
        },
        "volumes": [{"hostPath": "/etc/stuff", "containerPath": "/etc/stuff", "mode": "RO"}],
    },
    "instances": 1,
    "mem": 30,
    "cpus": 0.25,
    "args": [],
    "cmd": "/bin/true",
    "uris": ["file:///root/.dockercfg"],
    "constraints": None,
    "backoff_factor": 2,
    "backoff_seconds": 1,
    "health_checks": [
        {
            "protocol": "HTTP",
            "path": "/health",
            "gracePeriodSeconds": 3,
            "intervalSeconds": 10,
            "portIndex": 0,
            "timeoutSeconds": 10,
            "maxConsecutiveFailures": 3,
        }
    ],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningMarathon]:
    resources = f"cpus:2;mem:1024;disk:1000;ports:[{PORTS[0]}-{PORTS[1]}]"
    with running_marathon(
        *local_cluster_args(1, agent_resources=resources),
        state_dir=tmp_path_factory.mktemp("state"),
    ) as running:
        yield running
        assert running.stop() == 0


def master_url(server: RunningMarathon) -> str:
    """The embedded master's URL, from the line marathon logs when it is ready."""
    for line in server.log:
        found = re.search(r"marathon ready: master (http://[^\s,]+)", line)
        if found:
            return found.group(1)
    raise AssertionError("no master URL in the log:\n" + "\n".join(server.log[-20:]))


def launched_task(master: str, app_id: str) -> dict[str, Any] | None:
    """The first task of ``app_id`` the master knows (running or finished), if any."""
    state = httpx.get(f"{master}/master/state", timeout=10).json()
    prefix = app_id.strip("/").replace("/", "_") + "."
    for framework in (*state["frameworks"], *state.get("completed_frameworks", [])):
        for task in (*framework.get("tasks", []), *framework.get("completed_tasks", [])):
            if task["id"].startswith(prefix):
                return dict(task)
    return None


def test_the_complex_app_is_created_and_reads_back(
    server: RunningMarathon, mesos_protos: SimpleNamespace
) -> None:
    client = MarathonClient(server.url)
    created = client.create_app("test-complex-app", MarathonApp(**COMPLEX_APP))
    assert isinstance(created, MarathonApp), "create_app returns the app only on a 201"
    try:
        app = client.get_app("test-complex-app")
        assert (app.id, app.cmd, app.instances, app.mem, app.cpus) == (
            "/test-complex-app",
            "/bin/true",
            1,
            30,
            0.25,
        )
        assert (app.backoff_factor, app.backoff_seconds) == (2, 1)
        assert app.container.type == "DOCKER"
        assert app.container.docker.image == "localhost/fake_docker_url"
        assert app.container.docker.parameters == [
            {"key": "add-host", "value": "google-public-dns-a.google.com:8.8.8.8"}
        ]
        # Marathon >= 1.5 reads deprecated docker.network/portMappings back canonically.
        docker = app.container.docker
        assert getattr(docker, "network", None) is None and docker.port_mappings == []
        assert app.networks == [{"mode": "container/bridge"}]
        [mapping] = app.container.port_mappings
        assert (mapping.container_port, mapping.host_port, mapping.protocol) == (8888, 0, "tcp")
        assert 10000 <= mapping.service_port <= 20000
        [volume] = app.container.volumes
        assert (volume.host_path, volume.container_path, volume.mode) == (
            "/etc/stuff",
            "/etc/stuff",
            "RO",
        )
        [check] = app.health_checks
        assert (check.protocol, check.path, check.port_index) == ("HTTP", "/health", 0)
        assert (check.grace_period_seconds, check.interval_seconds) == (3, 10)
        assert (check.timeout_seconds, check.max_consecutive_failures) == (10, 3)
        assert [f["uri"] for f in app.fetch] == ["file:///root/.dockercfg"]

        # The launch: what the master passed on to the agent.
        master = master_url(server)
        task = wait_for(lambda: launched_task(master, "/test-complex-app"), what="a launch")
        container = task["container"]
        [host_port] = [p["number"] for p in task["discovery"]["ports"]["ports"]]
        assert PORTS[0] <= host_port <= PORTS[1]
        assert container == {
            "type": "DOCKER",
            "docker": {
                "image": "localhost/fake_docker_url",
                "network": "BRIDGE",
                "privileged": False,
                "force_pull_image": False,
                "port_mappings": [
                    {"host_port": host_port, "container_port": 8888, "protocol": "tcp"}
                ],
                "parameters": [
                    {"key": "add-host", "value": "google-public-dns-a.google.com:8.8.8.8"}
                ],
            },
            "volumes": [{"container_path": "/etc/stuff", "host_path": "/etc/stuff", "mode": "RO"}],
        }
        parse_strict(mesos_protos, container, mesos_protos.mesos.ContainerInfo)
    finally:
        client.delete_app("test-complex-app", force=True)
