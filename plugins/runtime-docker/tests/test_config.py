"""ContainerInfo (Mesos v1 JSON) to an Engine container config: no daemon needed."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from marathon_core.testing.mesos_protos import parse_strict
from marathon_runtime_docker.config import container_config
from marathon_runtime_docker.engine import demultiplex

SANDBOX = Path("/work/agent/slaves/S0/frameworks/F/executors/t/runs/r")

#: A ContainerInfo using every field the containerizer reads, as the scheduler sends it.
FULL: dict[str, Any] = {
    "type": "DOCKER",
    "docker": {
        "image": "registry.local:5000/web:1.2",
        "network": "BRIDGE",
        "port_mappings": [
            {"host_port": 31001, "container_port": 80, "protocol": "tcp"},
            {"host_port": 31002, "container_port": 53, "protocol": "udp,tcp"},
        ],
        "privileged": True,
        "parameters": [
            {"key": "add-host", "value": "db:127.0.0.9"},
            {"key": "ulimit", "value": "nofile=1024:2048"},
            {"key": "env", "value": "EXTRA=1"},
        ],
        "force_pull_image": True,
    },
    "volumes": [
        {"container_path": "/etc/app", "host_path": "/srv/app", "mode": "RO"},
        {"container_path": "/cache", "host_path": "cache", "mode": "RW"},
        {
            "container_path": "data",
            "mode": "RW",
            "source": {"type": "DOCKER_VOLUME", "docker_volume": {"name": "shared"}},
        },
    ],
    "hostname": "web-1",
}


def config(container: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "container": container,
        "name": "mesos-c1",
        "command": "exec web",
        "arguments": [],
        "shell": True,
        "environment": {"PORT0": "31001"},
        "resources": {"cpus": 0.25, "mem": 16.0},
        "ports": {31001, 31002},
        "sandbox": SANDBOX,
        "labels": {"mesos-local.container-id": "c1"},
        **overrides,
    }
    return container_config(**arguments)


def test_the_fields_read_are_those_of_the_real_protos(mesos_protos: SimpleNamespace) -> None:
    parse_strict(mesos_protos, FULL, mesos_protos.mesos.ContainerInfo)


def test_a_full_container_info() -> None:
    found = config(FULL)
    host = found["HostConfig"]
    assert found["Image"] == "registry.local:5000/web:1.2"
    assert found["Entrypoint"] == ["/bin/sh"] and found["Cmd"] == ["-c", "exec web"]
    assert found["Hostname"] == "web-1"
    assert "PORT0=31001" in found["Env"] and "EXTRA=1" in found["Env"]
    assert "MESOS_SANDBOX=/mnt/mesos/sandbox" in found["Env"]
    assert "MESOS_CONTAINER_NAME=mesos-c1" in found["Env"]
    # Mesos's minimums: 32 MB of memory, and shares and quota from cpus.
    assert (host["Memory"], host["MemorySwap"]) == (32 << 20, 32 << 20)
    assert (host["CpuShares"], host["CpuPeriod"], host["CpuQuota"]) == (256, 100000, 25000)
    assert host["Privileged"] is True
    assert host["NetworkMode"] == "bridge"
    assert host["Binds"] == [
        "/srv/app:/etc/app:ro",
        f"{SANDBOX}/cache:/cache:rw",
        "shared:/mnt/mesos/sandbox/data:rw",
        f"{SANDBOX}:/mnt/mesos/sandbox",
    ]
    assert host["PortBindings"] == {
        "80/tcp": [{"HostPort": "31001"}],
        "53/udp": [{"HostPort": "31002"}],
        "53/tcp": [{"HostPort": "31002"}],
    }
    assert set(found["ExposedPorts"]) == {"80/tcp", "53/udp", "53/tcp"}
    assert host["ExtraHosts"] == ["db:127.0.0.9"]
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]


def test_arguments_run_under_the_image_entrypoint() -> None:
    found = config({"docker": {"image": "busybox"}}, command=None, shell=False,
                   arguments=["-p", "8080"])  # fmt: skip
    assert "Entrypoint" not in found and found["Cmd"] == ["-p", "8080"]
    assert found["HostConfig"]["NetworkMode"] == "host"  # the proto's default
    image_default = config({"docker": {"image": "busybox"}}, command=None, shell=False)
    assert "Cmd" not in image_default


@pytest.mark.parametrize(
    ("container", "message"),
    [
        ({"docker": {}}, "DockerInfo has no image"),
        (
            {"docker": {"image": "i", "parameters": [{"key": "log-driver", "value": "x"}]}},
            "Docker parameter 'log-driver' is not supported",
        ),
        (
            {"docker": {"image": "i", "parameters": [{"key": "shm-size", "value": "lots"}]}},
            "Docker parameter 'shm-size': 'lots' is not a size",
        ),
        (
            {
                "docker": {
                    "image": "i",
                    "network": "HOST",
                    "port_mappings": [{"host_port": 31001, "container_port": 80}],
                }
            },
            "Port mappings are only supported for bridge and user-defined networks",
        ),
        (
            {
                "docker": {
                    "image": "i",
                    "network": "BRIDGE",
                    "port_mappings": [{"host_port": 40000, "container_port": 80}],
                }
            },
            "Port [40000] not included in resources",
        ),
        ({"docker": {"image": "i", "network": "USER"}}, "A USER network needs exactly one"),
        ({"docker": {"image": "i"}, "hostname": "h"}, "Unable to set hostname with host network"),
        (
            {"docker": {"image": "i"}, "volumes": [{"container_path": "a", "host_path": "b"}]},
            "Both host_path 'b' and container_path 'a' of a volume are relative",
        ),
    ],
)
def test_what_cannot_run_is_refused_with_mesos_words(
    container: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as refused:
        config(container)
    assert message in str(refused.value)


def test_a_user_network_is_named_by_the_network_info() -> None:
    found = config(
        {"docker": {"image": "i", "network": "USER"}, "network_infos": [{"name": "overlay"}]}
    )
    assert found["HostConfig"]["NetworkMode"] == "overlay"


def test_a_label_parameter_cannot_take_the_agents_labels() -> None:
    found = config(
        {
            "docker": {
                "image": "i",
                "parameters": [
                    {"key": "label", "value": "team=blue"},
                    {"key": "label", "value": "mesos-local.container-id=forged"},
                ],
            }
        }
    )
    assert found["Labels"] == {"team": "blue", "mesos-local.container-id": "c1"}


def test_log_frames_are_taken_whole() -> None:
    stream = b"\x01\x00\x00\x00\x00\x00\x00\x03out" + b"\x02\x00\x00\x00\x00\x00\x00\x04er"
    buffer = bytearray(stream)
    assert demultiplex(buffer) == [(1, b"out")]
    assert buffer == bytearray(b"\x02\x00\x00\x00\x00\x00\x00\x04er")
    buffer += b"r\n"
    assert demultiplex(buffer) == [(2, b"err\n")] and buffer == bytearray()
