"""The scheduler side of DOCKER: Marathon's messages for ``container.docker`` and the
``ContainerInfo`` of a launch, parsed whole into the real Mesos ``TaskInfo``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from marathon_core.errors import ValidationError
from marathon_core.model.codec import app_to_json, parse_app
from marathon_core.model.validation import ValidationContext
from marathon_core.testing.mesos_protos import parse_strict
from marathon_runtime_docker.container_info import container_info, docker_port_mappings
from marathon_runtime_docker.runtime import EXTERNAL_VOLUMES_UNSUPPORTED, DockerRuntime

CTX = ValidationContext(container_runtimes={"DOCKER": DockerRuntime()})


class _MesosStandIn:
    def validate(self, app: Any) -> list[Any]:
        return []

    def build_task_info(self, **_: Any) -> None:
        """Never called: validation only."""


WITHOUT_DOCKER = ValidationContext(container_runtimes={"MESOS": _MesosStandIn()})


def app(docker: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    container = fields.pop("container", {})
    return {
        "id": "/d",
        "container": {"type": "DOCKER", "docker": {"image": "busybox", **(docker or {})}}
        | container,
        **fields,
    }


def errors(body: dict[str, Any], ctx: ValidationContext = CTX) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as raised:
        parse_app(body, context=ctx)
    assert raised.value.status == 422
    return {d["path"]: d["errors"] for d in raised.value.details}


# -- validation: Marathon's paths and messages ---------------------------------------


def test_image_is_required_and_not_empty() -> None:
    body = app()
    del body["container"]["docker"]["image"]
    assert errors(body) == {"/container/docker/image": ["error.path.missing"]}
    assert errors(app({"image": ""})) == {"/container/docker/image": ["error.minLength"]}
    no_docker = {"id": "/d", "cmd": "x", "container": {"type": "DOCKER"}}
    assert errors(no_docker) == {"/container/docker": ["not defined"]}


def test_field_shapes() -> None:
    got = errors(
        app(
            {"privileged": "yes", "forcePullImage": 1, "parameters": [{"key": "add-host"}]},
            container={
                "portMappings": [{"containerPort": 70000, "protocol": "sctp", "name": "Web"}],
                "volumes": [{"containerPath": "/a", "hostPath": "/b", "mode": "RX"}],
            },
            networks=[{"mode": "container/bridge"}],
        )
    )
    assert got == {
        "/container/docker/privileged": ["error.expected.jsboolean"],
        "/container/docker/forcePullImage": ["error.expected.jsboolean"],
        "/container/docker/parameters(0)/value": ["error.path.missing"],
        "/container/portMappings(0)/containerPort": ["error.max"],
        "/container/portMappings(0)/protocol": ["error.unknown.enum.literal"],
        "/container/portMappings(0)/name": ["error.pattern"],
        "/container/volumes(0)/mode": ["error.unknown.enum.literal"],
    }


def test_deprecated_credential_must_be_empty() -> None:
    got = errors(app({"credential": {"principal": "me", "secret": "s"}}, cmd="x"))
    assert got == {"/container/docker/credential": ["must be empty"]}
    assert parse_app(app({"credential": None}, cmd="x"), context=CTX).docker_image == "busybox"


def test_deprecated_network_against_networks() -> None:
    body = app({"network": "BRIDGE"}, networks=[{"mode": "container/bridge"}])
    assert errors(body) == {"/": ["must not specify both container.docker.network and networks"]}
    assert errors(app({"network": "NONE"})) == {
        "/container/docker/network": ["NONE networking is not supported"]
    }
    user = errors(app({"network": "USER"}))
    assert user == {
        "/networks": ["Network name must be specified when container network is selected."]
    }


def test_deprecated_network_and_port_mappings_are_normalised() -> None:
    mapping = {"containerPort": 8080, "hostPort": 0, "protocol": "tcp", "name": "web"}
    for network, mode in (("BRIDGE", "container/bridge"), ("HOST", "host")):
        parsed = parse_app(app({"network": network, "portMappings": [mapping]}), context=CTX)
        out = app_to_json(parsed)
        assert out["networks"] == [{"mode": mode}]
        assert "network" not in out["container"]["docker"]
        assert "portMappings" not in out["container"]["docker"]
    assert out["portDefinitions"] == [{"port": 0, "protocol": "tcp", "name": "default"}]
    bridge = app({"network": "BRIDGE", "portMappings": [mapping]})
    bridge["container"]["portMappings"] = [mapping]
    assert errors(bridge) == {
        "/container": [
            "cannot specify both container.portMappings and container.docker.portMappings"
        ]
    }


def test_port_mapping_rules() -> None:
    bridge = [{"mode": "container/bridge"}]
    twice = [{"containerPort": 80, "name": "web"}, {"containerPort": 81, "name": "web"}]
    assert errors(app(container={"portMappings": twice}, networks=bridge)) == {
        "/container/portMappings": ["Port names must be unique."]
    }
    host = app(container={"portMappings": [{"containerPort": 80}]}, networks=[{"mode": "host"}])
    assert parse_app(host, context=CTX).port_mappings == ()  # dropped, as Marathon does


def test_one_container_network_with_the_docker_engine() -> None:
    nets = [{"mode": "container", "name": "a"}, {"mode": "container", "name": "b"}]
    got = errors(app(container={"portMappings": []}, networks=nets))
    assert got == {
        "/": ["may only specify a single container network when using the Docker container engine"]
    }


def test_pull_config_and_gpus_are_not_for_docker() -> None:
    got = errors(app({"pullConfig": {"secret": "s"}}, gpus=1))
    assert got["/container/docker/pullConfig"] == [
        "pullConfig is not supported with Docker containerizer"
    ]
    assert "GPU resources only work with the Mesos containerizer" in got["/"]


def test_external_volumes_are_refused_here() -> None:
    external = {
        "containerPath": "/data",
        "mode": "RW",
        "external": {"name": "v", "provider": "dvdi"},
    }
    ctx = ValidationContext(
        container_runtimes={"DOCKER": DockerRuntime()}, features=frozenset({"external_volumes"})
    )
    got = errors(app(container={"volumes": [external]}), ctx)
    assert got == {"/container/volumes(0)": [EXTERNAL_VOLUMES_UNSUPPORTED]}


def test_env_keys_must_not_be_empty() -> None:
    assert errors(app(env={"": "x"})) == {"/env": ["must not be empty"]}


def test_without_this_runtime_the_422_names_the_distribution() -> None:
    assert parse_app(app(), context=CTX).docker_image == "busybox"
    assert errors(app(), WITHOUT_DOCKER) == {
        "/container/type": [
            "is not one of (MESOS); container.type DOCKER needs the marathon-runtime-docker "
            "distribution"
        ]
    }


# -- the ContainerInfo ---------------------------------------------------------------


def launch(body: dict[str, Any], host_ports: list[int]) -> dict[str, Any]:
    """The TaskInfo as the core hands it to the runtime (command, resources, env), with
    the runtime's container added."""
    parsed = parse_app(body, context=CTX)
    info: dict[str, Any] = {
        "name": "d",
        "task_id": {"value": "d.instance-1._app.1"},
        "agent_id": {"value": "S0"},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 128.0}},
            *(
                [
                    {
                        "name": "ports",
                        "type": "RANGES",
                        "ranges": {"range": [{"begin": p, "end": p} for p in host_ports]},
                    }
                ]
                if host_ports
                else []
            ),
        ],
        "command": {
            "shell": False,
            "environment": {"variables": [{"name": "PORT0", "value": "1", "type": "VALUE"}]},
        },
        "labels": {"labels": [{"key": "team", "value": "a"}]},
    }
    DockerRuntime().build_task_info(app=parsed, task_info=info, host_ports=host_ports)
    return info


BRIDGE_MAPPINGS = [
    {"containerPort": 80, "hostPort": 0, "name": "http", "labels": {"VIP_0": "/web:80"}},
    {"containerPort": 0, "protocol": "udp,tcp", "name": "dns"},  # hostPort 0 in bridge mode
    {"containerPort": 443, "hostPort": 31443, "servicePort": 10443, "name": "https"},
]


def test_bridge_maps_the_offered_host_ports_in_order(mesos_protos: SimpleNamespace) -> None:
    body = app(
        {"image": "nginx:1.21", "forcePullImage": True},
        container={"portMappings": BRIDGE_MAPPINGS},
        networks=[{"mode": "container/bridge"}],
    )
    info = launch(body, [31005, 31006, 31443])
    assert info["container"] == {
        "type": "DOCKER",
        "docker": {
            "image": "nginx:1.21",
            "network": "BRIDGE",
            "privileged": False,
            "force_pull_image": True,
            "port_mappings": [
                {"host_port": 31005, "container_port": 80, "protocol": "tcp"},
                {"host_port": 31006, "container_port": 31006, "protocol": "udp"},
                {"host_port": 31006, "container_port": 31006, "protocol": "tcp"},
                {"host_port": 31443, "container_port": 443, "protocol": "tcp"},
            ],
        },
    }
    parsed = parse_strict(mesos_protos, info, mesos_protos.mesos.TaskInfo)
    docker_pb = mesos_protos.mesos.ContainerInfo.DockerInfo
    assert parsed.container.docker.network == docker_pb.BRIDGE
    assert [m.host_port for m in parsed.container.docker.port_mappings] == [
        31005,
        31006,
        31006,
        31443,
    ]
    assert not parsed.container.network_infos


def test_host_networking_leaves_the_network_unset(mesos_protos: SimpleNamespace) -> None:
    body = app({"privileged": True}, portDefinitions=[{"port": 0}, {"port": 0}])
    info = launch(body, [31001, 31002])  # portDefinitions' ports: nothing to map
    assert info["container"]["docker"] == {
        "image": "busybox",
        "privileged": True,
        "force_pull_image": False,
    }
    parsed = parse_strict(mesos_protos, info, mesos_protos.mesos.TaskInfo)
    assert not parsed.container.docker.HasField("network")
    assert parsed.container.docker.network == mesos_protos.mesos.ContainerInfo.DockerInfo.HOST


def test_user_network_names_the_network(mesos_protos: SimpleNamespace) -> None:
    mappings = [{"containerPort": 8080, "name": "api"}, {"containerPort": 9090, "hostPort": 0}]
    body = app(
        container={"portMappings": mappings},
        networks=[{"mode": "container", "name": "dcos", "labels": {"zone": "a"}}],
    )
    info = launch(body, [31007])  # only the mapping with a hostPort gets one
    container = info["container"]
    assert container["docker"]["network"] == "USER"
    assert container["docker"]["port_mappings"] == [
        {"host_port": 31007, "container_port": 9090, "protocol": "tcp"}
    ]
    assert container["network_infos"] == [
        {
            "name": "dcos",
            "ip_addresses": [{}],
            "labels": {"labels": [{"key": "zone", "value": "a"}]},
        }
    ]
    parsed = parse_strict(mesos_protos, info, mesos_protos.mesos.TaskInfo)
    assert parsed.container.network_infos[0].name == "dcos"
    assert not parsed.container.network_infos[0].port_mappings


def test_volumes_and_parameters(mesos_protos: SimpleNamespace) -> None:
    body = app(
        {
            "parameters": [
                {"key": "add-host", "value": "db:127.0.0.1"},
                {"key": "env", "value": "A=1"},
            ]
        },
        container={
            "volumes": [
                {"containerPath": "/etc/stuff", "hostPath": "/etc/stuff", "mode": "RO"},
                {"containerPath": "data", "hostPath": "/var/data", "mode": "RW"},
            ]
        },
        cmd="sleep 1",
    )
    info = launch(body, [31001])
    container = info["container"]
    assert container["docker"]["parameters"] == [
        {"key": "add-host", "value": "db:127.0.0.1"},
        {"key": "env", "value": "A=1"},
    ]
    assert container["volumes"] == [
        {"container_path": "/etc/stuff", "host_path": "/etc/stuff", "mode": "RO"},
        {"container_path": "data", "host_path": "/var/data", "mode": "RW"},
    ]
    parsed = parse_strict(mesos_protos, info, mesos_protos.mesos.TaskInfo)
    assert [v.mode for v in parsed.container.volumes] == [
        mesos_protos.mesos.Volume.RO,
        mesos_protos.mesos.Volume.RW,
    ]


def test_the_host_ports_must_be_one_per_mapping_with_host_port() -> None:
    parsed = parse_app(
        app(container={"portMappings": BRIDGE_MAPPINGS}, networks=[{"mode": "container/bridge"}]),
        context=CTX,
    )
    with pytest.raises(ValueError, match="2 host ports assigned for 3 port mappings"):
        container_info(parsed, [31005, 31006])
    assert docker_port_mappings(parsed.port_mappings, [1, 2, 3])[0]["host_port"] == 1
