"""An app's Mesos-level health check becomes ``TaskInfo.health_check``, as Marathon's
``TaskBuilder`` gives it to Mesos (checked against the real protos where present)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from marathon_core.model.codec import parse_app
from marathon_core.model.validation import ValidationContext
from marathon_core.scheduler.taskinfo import build_task_info
from marathon_core.testing.mesos_protos import parse_strict


def task_info_of(
    app_json: dict[str, Any], context: ValidationContext, host_ports: list[int]
) -> dict[str, Any]:
    app = parse_app({"cpus": 0.1, "mem": 16, **app_json}, context=context)
    return build_task_info(
        app, task_id="t.1", agent_id="S1", host="127.0.0.2", resources=[], host_ports=host_ports
    )


def check(protocol: str, **fields: Any) -> dict[str, Any]:
    return {
        "protocol": protocol,
        "gracePeriodSeconds": 7,
        "intervalSeconds": 2,
        "timeoutSeconds": 1,
        "maxConsecutiveFailures": 4,
        "delaySeconds": 3,
        **fields,
    }


def strictly(mesos_pb: SimpleNamespace | None, info: dict[str, Any]) -> None:
    if mesos_pb is not None:
        parse_strict(mesos_pb, info, mesos_pb.mesos.TaskInfo)


def test_a_command_check_is_the_tasks_command_health_check(
    basic_context: ValidationContext, mesos_pb: SimpleNamespace | None
) -> None:
    info = task_info_of(
        {
            "id": "/c",
            "cmd": "sleep 100",
            "healthChecks": [check("COMMAND", command={"value": "true"})],
        },
        basic_context,
        [],
    )
    assert info["health_check"] == {
        "type": "COMMAND",
        "command": {"shell": True, "value": "true"},
        "delay_seconds": 3.0,
        "interval_seconds": 2.0,
        "timeout_seconds": 1.0,
        "consecutive_failures": 4,
        "grace_period_seconds": 7.0,
    }
    strictly(mesos_pb, info)


@pytest.mark.parametrize(("protocol", "scheme"), [("MESOS_HTTP", "http"), ("MESOS_HTTPS", "https")])
def test_an_http_check_names_the_host_port_of_its_index(
    protocol: str, scheme: str, basic_context: ValidationContext, mesos_pb: SimpleNamespace | None
) -> None:
    info = task_info_of(
        {
            "id": "/h",
            "cmd": "serve",
            "portDefinitions": [{"port": 0}, {"port": 0}],
            "healthChecks": [check(protocol, path="/ping", portIndex=1)],
        },
        basic_context,
        [31001, 31002],
    )
    assert info["health_check"]["type"] == "HTTP"
    assert info["health_check"]["http"] == {
        "scheme": scheme,
        "port": 31002,
        "path": "/ping",
        "protocol": "IPv4",
    }
    strictly(mesos_pb, info)


def test_a_tcp_check_of_a_bridged_container_names_the_container_port(
    basic_context: ValidationContext, mesos_pb: SimpleNamespace | None
) -> None:
    info = task_info_of(
        {
            "id": "/t",
            "cmd": "serve",
            "container": {
                "type": "DOCKER",
                "docker": {"image": "busybox"},
                "portMappings": [{"containerPort": 8080, "hostPort": 0}],
            },
            "networks": [{"mode": "container/bridge"}],
            "healthChecks": [check("MESOS_TCP")],
        },
        basic_context,
        [31005],
    )
    # Mesos checks from inside the container's network: the container port.
    assert info["health_check"]["tcp"] == {"port": 8080, "protocol": "IPv4"}
    strictly(mesos_pb, info)


def test_leader_run_checks_give_the_task_no_health_check(
    basic_context: ValidationContext,
) -> None:
    info = task_info_of(
        {
            "id": "/m",
            "cmd": "serve",
            "portDefinitions": [{"port": 0}],
            "healthChecks": [check("HTTP")],
        },
        basic_context,
        [31001],
    )
    assert "health_check" not in info


def test_only_the_first_mesos_check_is_given(basic_context: ValidationContext) -> None:
    info = task_info_of(
        {
            "id": "/two",
            "cmd": "serve",
            "portDefinitions": [{"port": 0}],
            "healthChecks": [
                check("HTTP"),
                check("COMMAND", command={"value": "first"}),
                check("COMMAND", command={"value": "second"}),
            ],
        },
        basic_context,
        [31001],
    )
    assert info["health_check"]["command"]["value"] == "first"
