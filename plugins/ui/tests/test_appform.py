"""The form <-> definition mapping and the error path -> input mapping (no server)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from marathon_ui.appform import (
    ROW_COLUMNS,
    Pairs,
    blank_row,
    definition_from_form,
    field_of,
    form_values,
)

#: Every field the form shows, and some it does not (kept through the form).
FULL: dict[str, Any] = {
    "id": "/shop/web",
    "cmd": "python -m http.server $PORT0",
    "args": ["--verbose", "--port=1"],
    "user": "nobody",
    "cpus": 0.25,
    "mem": 64.0,
    "disk": 10.0,
    "instances": 3,
    "container": {
        "type": "DOCKER",
        "docker": {"image": "busybox:local", "privileged": False, "parameters": []},
        "portMappings": [
            {
                "containerPort": 80,
                "hostPort": 0,
                "servicePort": 10000,
                "protocol": "tcp",
                "name": "http",
            },
            {"containerPort": 53, "protocol": "udp", "labels": {"kept": "yes"}},
        ],
        "volumes": [{"containerPath": "/data", "hostPath": "/srv", "mode": "RW"}],
    },
    "networks": [{"mode": "container", "name": "overlay", "labels": {"net": "kept"}}],
    "env": {"PLAIN": "1", "TOKEN": {"secret": "token"}, "OTHER": "two"},
    "secrets": {"token": {"source": "/vault/token"}},
    "labels": {"team": "shop", "tier": "front"},
    "constraints": [["hostname", "UNIQUE"], ["rack", "GROUP_BY", "2"]],
    "portDefinitions": [{"port": 0, "protocol": "tcp", "name": "admin", "labels": {"k": "v"}}],
    "healthChecks": [
        {
            "protocol": "HTTP",
            "path": "/health",
            "portIndex": 0,
            "gracePeriodSeconds": 30,
            "intervalSeconds": 10,
            "timeoutSeconds": 5,
            "maxConsecutiveFailures": 2,
            "delaySeconds": 15,
            "ipProtocol": "IPv4",
        },
        {"protocol": "COMMAND", "command": {"value": "true"}, "intervalSeconds": 60},
    ],
    "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.2},
    "backoffSeconds": 2,
    "backoffFactor": 1.5,
    "maxLaunchDelaySeconds": 600,
    "fetch": [{"uri": "https://example.invalid/a.tgz", "extract": True}],
    "killSelection": "OLDEST_FIRST",
    "readinessChecks": [{"name": "ready", "path": "/ready"}],
}


def pairs(values: dict[str, Any]) -> list[tuple[str, str]]:
    """The fields as the browser's FormData lists them (document order per name)."""
    out = [(name, value) for name, value in values.items() if name != "rows"]
    for name, rows in values["rows"].items():
        for row in rows:
            out.extend((f"{name}.{column}", value) for column, value in row.items())
    return out


def edited(values: dict[str, Any], **changes: str) -> list[tuple[str, str]]:
    return pairs({**values, **changes})


def test_the_form_round_trip_keeps_every_field_and_the_unknown_ones() -> None:
    values = form_values(FULL)
    assert definition_from_form(pairs(values), FULL) == FULL


def test_the_form_shows_every_field() -> None:
    values = form_values(FULL)
    assert values["id"] == "/shop/web"
    assert values["args"] == "--verbose\n--port=1"
    assert (values["cpus"], values["mem"], values["instances"]) == ("0.25", "64", "3")
    assert values["container.type"] == "DOCKER"
    assert values["container.docker.image"] == "busybox:local"
    assert (values["network"], values["network.name"]) == ("container", "overlay")
    assert values["upgradeStrategy.minimumHealthCapacity"] == "0.5"
    assert (values["backoffSeconds"], values["backoffFactor"]) == ("2", "1.5")
    assert values["maxLaunchDelaySeconds"] == "600"
    rows = values["rows"]
    # Secret references are not editable as text: the form leaves them out (and keeps them).
    assert rows["env"] == [{"key": "PLAIN", "value": "1"}, {"key": "OTHER", "value": "two"}]
    assert rows["labels"][1] == {"key": "tier", "value": "front"}
    assert rows["constraints"] == [
        {"field": "hostname", "operator": "UNIQUE", "value": ""},
        {"field": "rack", "operator": "GROUP_BY", "value": "2"},
    ]
    assert rows["portMappings"][0] == {
        "origin": "0",
        "containerPort": "80",
        "hostPort": "0",
        "servicePort": "10000",
        "protocol": "tcp",
        "name": "http",
    }
    assert rows["healthChecks"][1]["command"] == "true"
    assert rows["healthChecks"][0]["gracePeriodSeconds"] == "30"
    assert rows["portDefinitions"] == [
        {"origin": "0", "port": "0", "protocol": "tcp", "name": "admin"}
    ]


def test_each_field_reaches_its_place_in_the_definition() -> None:
    values = form_values(FULL)
    out = definition_from_form(
        edited(
            values,
            cpus="0.5",
            mem="128",
            disk="",
            instances="4",
            user="",
            cmd="",
            args="a\nb\n",
            **{
                "container.type": "MESOS",
                "container.docker.image": "other:1",
                "network": "container/bridge",
                "network.name": "",
                "upgradeStrategy.maximumOverCapacity": "0",
                "backoffFactor": "2",
            },
        ),
        FULL,
    )
    assert (out["cpus"], out["mem"], out["instances"]) == (0.5, 128, 4)
    assert "disk" not in out and "user" not in out and "cmd" not in out  # emptied: default
    assert out["args"] == ["a", "b"]
    assert out["container"]["type"] == "MESOS"
    assert out["container"]["docker"] == {**FULL["container"]["docker"], "image": "other:1"}
    assert out["container"]["volumes"] == FULL["container"]["volumes"]
    assert out["networks"] == [{"mode": "container/bridge", "labels": {"net": "kept"}}]
    assert out["upgradeStrategy"] == {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0}
    assert out["backoffFactor"] == 2
    no_container = definition_from_form(edited(values, **{"container.type": ""}), FULL)
    assert "container" not in no_container


def test_rows_added_removed_and_reordered_keep_what_the_form_does_not_show() -> None:
    values = form_values(FULL)
    rows = copy.deepcopy(values["rows"])
    second = rows["healthChecks"][1]
    rows["healthChecks"] = [
        second,
        {**blank_row("healthChecks"), "protocol": "TCP", "portIndex": "1"},
    ]
    rows["portMappings"] = rows["portMappings"][1:]
    rows["env"].append({"key": "NEW", "value": "x y"})
    rows["env"].append({"key": "", "value": ""})  # an added row left blank: no entry
    rows["constraints"] = [
        rows["constraints"][1],
        {"field": "zone", "operator": "IS", "value": "a"},
    ]
    rows["labels"] = []
    rows["portDefinitions"] = [{**rows["portDefinitions"][0], "port": "8080"}]
    out = definition_from_form(pairs({**values, "rows": rows}), FULL)
    assert out["healthChecks"] == [FULL["healthChecks"][1], {"protocol": "TCP", "portIndex": 1}]
    assert out["container"]["portMappings"] == [FULL["container"]["portMappings"][1]]
    assert out["env"] == {"PLAIN": "1", "OTHER": "two", "NEW": "x y", "TOKEN": {"secret": "token"}}
    assert out["constraints"] == [["rack", "GROUP_BY", "2"], ["zone", "IS", "a"]]
    assert out["labels"] == {}  # the base had labels: all removed
    assert out["portDefinitions"] == [
        {"port": 8080, "protocol": "tcp", "name": "admin", "labels": {"k": "v"}}
    ]


def test_a_new_app_gets_only_what_was_filled_in() -> None:
    base = {"id": "/my-app", "cmd": "sleep 3600", "cpus": 0.1, "mem": 32, "instances": 1}
    values = form_values(base)
    assert all(rows == [] for rows in values["rows"].values())
    assert definition_from_form(pairs(values), base) == base
    fields = [
        *edited(values, cpus="-1", mem="abc"),
        ("env.key", "GREETING"),
        ("env.value", "hello"),
        *[
            (f"constraints.{c}", v)
            for c, v in zip(ROW_COLUMNS["constraints"], ["hostname", "UNIQUE", ""], strict=True)
        ],
    ]
    out = definition_from_form(fields, base)
    # What is not a number goes through as typed: validation names it at its path.
    assert out == {
        **base,
        "cpus": -1,
        "mem": "abc",
        "env": {"GREETING": "hello"},
        "constraints": [["hostname", "UNIQUE"]],
    }


def form_of(definition: dict[str, Any]) -> Pairs:
    return pairs(form_values(definition))


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/id", ("id", 0)),
        ("/cmd", ("cmd", 0)),
        ("/args(1)", ("args", 0)),
        ("/cpus", ("cpus", 0)),
        ("/mem", ("mem", 0)),
        ("/disk", ("disk", 0)),
        ("/instances", ("instances", 0)),
        ("/user", ("user", 0)),
        ("/backoffSeconds", ("backoffSeconds", 0)),
        ("/backoffFactor", ("backoffFactor", 0)),
        ("/maxLaunchDelaySeconds", ("maxLaunchDelaySeconds", 0)),
        ("/upgradeStrategy/maximumOverCapacity", ("upgradeStrategy.maximumOverCapacity", 0)),
        ("/upgradeStrategy", ("upgradeStrategy.minimumHealthCapacity", 0)),
        ("/container", ("container.type", 0)),
        ("/container/type", ("container.type", 0)),
        ("/container/docker", ("container.docker.image", 0)),
        ("/container/docker/image", ("container.docker.image", 0)),
        ("/container/docker/network", ("network", 0)),
        ("/container/portMappings(1)/hostPort", ("portMappings.hostPort", 1)),
        ("/container/portMappings(0)", ("portMappings.containerPort", 0)),
        ("/container/portMappings(0)/networkNames(0)", ("portMappings.containerPort", 0)),
        ("/networks", ("network", 0)),
        ("/networks(0)/name", ("network.name", 0)),
        ("/env/OTHER", ("env.value", 1)),
        ("/labels/tier", ("labels.value", 1)),
        ("/constraints(0)", ("constraints.field", 0)),
        ("/constraints(1)/2", ("constraints.field", 1)),
        ("/constraints", ("constraints.field", 0)),
        ("/portDefinitions(0)/name", ("portDefinitions.name", 0)),
        ("/healthChecks(1)", ("healthChecks.protocol", 1)),
        ("/healthChecks(0)/path", ("healthChecks.path", 0)),
        ("/healthChecks(1)/command", ("healthChecks.command", 1)),
        ("/healthChecks(0)/delaySeconds", ("healthChecks.protocol", 0)),
        # What the form does not show: shown on top of the form.
        ("/", None),
        ("/fetch(0)/uri", None),
        ("/container/volumes(0)", None),
        ("/env/TOKEN", None),
        ("/env/MISSING", None),
        ("/healthChecks(5)", None),
        ("/readinessChecks(0)", None),
    ],
)
def test_an_error_path_names_its_input(path: str, field: tuple[str, int] | None) -> None:
    assert field_of(path, form_of(FULL)) == field


def test_row_errors_skip_blank_rows() -> None:
    """Entry i of a list is the i-th row that is not blank: the error goes to that row."""
    fields = [
        ("constraints.field", ""),
        ("constraints.operator", ""),
        ("constraints.value", ""),
        ("constraints.field", "hostname"),
        ("constraints.operator", "NOPE"),
        ("constraints.value", ""),
    ]
    assert field_of("/constraints(0)", fields) == ("constraints.field", 1)
