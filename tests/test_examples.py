"""Every reference example: valid bodies normalise as documented, invalid ones fail as
Marathon answers (examples/README.md matching rule: status and message equal, every
expected detail present, extra details allowed)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from marathon_core.errors import UserError
from marathon_core.model.codec import app_to_json, group_to_json, parse_app, parse_group
from marathon_core.model.validation import ValidationContext

from .conftest import EXAMPLES, load_example

APP_EXAMPLES = sorted(p.name for p in EXAMPLES.glob("app-*.json"))
INVALID = json.loads((EXAMPLES / "invalid-requests.json").read_text())

#: Keys the normalised output of any app always has (README "Expected normalised app").
ALWAYS = {
    "id",
    "args",
    "backoffFactor",
    "backoffSeconds",
    "maxLaunchDelaySeconds",
    "gpus",
    "executor",
    "constraints",
    "dependencies",
    "fetch",
    "healthChecks",
    "readinessChecks",
    "secrets",
    "networks",
    "requirePorts",
    "upgradeStrategy",
    "unreachableStrategy",
    "killSelection",
    "role",
    "cpus",
    "mem",
    "disk",
    "instances",
    "labels",
    "env",
}
#: Every key marathon-python 0.13 accepts on an app: ``MarathonApp``'s arguments, camelCased.
CLIENT_APP_KEYS = set(
    [
        "acceptedResourceRoles",
        "args",
        "backoffFactor",
        "backoffSeconds",
        "cmd",
        "constraints",
        "container",
        "cpus",
        "dependencies",
        "deployments",
        "disk",
        "env",
        "executor",
        "healthChecks",
        "id",
        "role",
        "instances",
        "killSelection",
        "labels",
        "lastTaskFailure",
        "maxLaunchDelaySeconds",
        "mem",
        "ports",
        "requirePorts",
        "storeUrls",
        "taskRateLimit",
        "tasks",
        "tasksRunning",
        "tasksStaged",
        "tasksHealthy",
        "taskKillGracePeriodSeconds",
        "tasksUnhealthy",
        "upgradeStrategy",
        "unreachableStrategy",
        "uris",
        "user",
        "version",
        "versionInfo",
        "ipAddress",
        "fetch",
        "taskStats",
        "readinessChecks",
        "readinessCheckResults",
        "secrets",
        "portDefinitions",
        "residency",
        "gpus",
        "networks",
    ]
)
MAPPING_KEYS = {"name", "containerPort", "hostPort", "servicePort", "protocol", "labels"}
DEPRECATED = {"ports", "uris", "ipAddress"}


def _normalised(name: str, ctx: ValidationContext) -> dict[str, Any]:
    return app_to_json(parse_app((EXAMPLES / name).read_bytes(), context=ctx))


@pytest.mark.parametrize("name", APP_EXAMPLES)
def test_app_example_normalises_and_round_trips(name: str, request: pytest.FixtureRequest) -> None:
    # Only the constraints example needs the real operators (skipped without them).
    fixture = "validation_context" if name == "app-constraints.json" else "basic_context"
    validation_context: ValidationContext = request.getfixturevalue(fixture)
    out = _normalised(name, validation_context)
    assert out.keys() >= ALWAYS
    assert not (DEPRECATED & out.keys())
    assert out.keys() <= CLIENT_APP_KEYS
    container = out.get("container")
    if container is not None:
        assert set(container) <= {"type", "docker", "portMappings", "volumes"}
        for m in container["portMappings"]:
            assert set(m) <= MAPPING_KEYS
        if "docker" in container:
            assert not {"network", "portMappings"} & container["docker"].keys()
    host = out["networks"] == [{"mode": "host"}]
    assert ("portDefinitions" in out) == host
    # Submitted fields survive.
    submitted = load_example(name)
    for key in ("id", "instances", "cpus", "mem"):
        assert out[key] == submitted[key]
    # The output is itself a valid request that normalises to the same output.
    again = app_to_json(parse_app(json.dumps(out), context=validation_context))
    assert again == out


def test_simple_cmd_defaults(basic_context: ValidationContext) -> None:
    out = _normalised("app-simple-cmd.json", basic_context)
    expected = {
        "args": [],
        "backoffFactor": 1.15,
        "backoffSeconds": 1,
        "maxLaunchDelaySeconds": 300,
        "gpus": 0,
        "executor": "",
        "constraints": [],
        "dependencies": [],
        "fetch": [],
        "healthChecks": [],
        "readinessChecks": [],
        "secrets": {},
        "networks": [{"mode": "host"}],
        "portDefinitions": [{"port": 0, "protocol": "tcp", "name": "default"}],
        "requirePorts": False,
        "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 1},
        "unreachableStrategy": {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0},
        "killSelection": "YOUNGEST_FIRST",
        "role": "*",
        "env": {"GREETING": "hello"},
        "labels": {"team": "platform", "tier": "batch"},
    }
    assert {k: out[k] for k in expected} == expected
    assert not {"tty", "executorResources", "check", "resourceLimits", "user"} & out.keys()


def test_legacy_docker_deprecated_fields(basic_context: ValidationContext) -> None:
    out = _normalised("app-legacy-docker-deprecated.json", basic_context)
    assert out["networks"] == [{"mode": "container/bridge"}]
    assert out["container"]["docker"] == {
        "image": "python:3.9-alpine",
        "forcePullImage": False,
        "privileged": False,
        "parameters": [],
    }
    assert out["container"]["portMappings"] == [
        {"containerPort": 8080, "hostPort": 0, "servicePort": 0, "protocol": "tcp", "name": "web"}
    ]
    assert out["fetch"] == [
        {
            "uri": "https://example.com/config/settings.tar.gz",
            "extract": True,
            "executable": False,
            "cache": False,
        }
    ]
    assert "portDefinitions" not in out and "uris" not in out


def test_docker_bridge_mappings(basic_context: ValidationContext) -> None:
    out = _normalised("app-docker-bridge.json", basic_context)
    first, second = out["container"]["portMappings"]
    assert first["servicePort"] == 10080 and first["hostPort"] == 0
    assert second["hostPort"] == 0 and second["servicePort"] == 0
    assert out["healthChecks"][0]["portIndex"] == 0


def test_ucr_mapping_without_host_port(basic_context: ValidationContext) -> None:
    out = _normalised("app-ucr-container-network.json", basic_context)
    assert "hostPort" not in out["container"]["portMappings"][0]
    assert out["networks"] == [{"mode": "container", "name": "dcos", "labels": {"team": "a"}}]


def test_resident_app(basic_context: ValidationContext) -> None:
    out = _normalised("app-resident-persistent-volume.json", basic_context)
    assert out["unreachableStrategy"] == "disabled"
    assert out["role"] == "examples"
    assert out["container"]["volumes"][0]["persistent"]["size"] == 1024


def test_health_checks_keep_port_indices(basic_context: ValidationContext) -> None:
    out = _normalised("app-health-checks.json", basic_context)
    assert [h["portIndex"] for h in out["healthChecks"]] == [0, 1]
    assert out["healthChecks"][1]["maxConsecutiveFailures"] == 0
    assert out["taskKillGracePeriodSeconds"] == 15


def test_group_example(basic_context: ValidationContext) -> None:
    group = parse_group(
        (EXAMPLES / "group-with-dependencies.json").read_bytes(), context=basic_context
    )
    ids = sorted(str(a.id) for a in group.transitive_apps())
    assert ids == ["/shop/backend", "/shop/db", "/shop/web/frontend"]
    out = group_to_json(group)
    assert "enforceRole" not in out
    assert out["groups"][0]["apps"][0]["dependencies"] == ["/shop/backend"]
    again = group_to_json(parse_group(json.dumps(out), context=basic_context))
    assert again == out


@pytest.mark.parametrize("case", INVALID, ids=[c["name"] for c in INVALID])
def test_invalid_request(case: dict[str, Any], request: pytest.FixtureRequest) -> None:
    needs_ops = "constraints" in json.dumps(case.get("body", {}))
    fixture = "validation_context" if needs_ops else "basic_context"
    ctx: ValidationContext = request.getfixturevalue(fixture)
    body = case["body"] if "body" in case else case["rawBody"]
    if not isinstance(body, str):
        body = json.dumps(body)
    parse = parse_group if case["path"].startswith("/v2/groups") else parse_app
    with pytest.raises(UserError) as info:
        parse(body, context=ctx)
    err, expect = info.value, case["expect"]
    assert err.status == expect["status"]
    assert err.message == expect["message"]
    if expect.get("detailsType") == "string":
        assert isinstance(err.details, str) and err.details
    got = {d["path"]: d["errors"] for d in err.details or () if isinstance(d, dict)}
    for detail in expect.get("details", ()):
        assert detail["path"] in got, (detail, got)
        for message in detail["errors"]:
            assert message in got[detail["path"]]
