"""The installed distribution is found through its entry point, and apps with health
checks pass the API's validation once it is installed."""

from __future__ import annotations

import importlib.metadata

import pytest

import marathon_healthchecks.plugin
from marathon_core.errors import ValidationError
from marathon_core.model.codec import parse_app
from marathon_core.model.validation import ValidationContext
from marathon_core.plugins import get_plugin_host

MARATHON_SIDE = {"HTTP", "HTTPS", "TCP"}
AGENT_SIDE = {"COMMAND", "MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP"}


def test_entry_point_is_installed() -> None:
    eps = importlib.metadata.entry_points(group="marathon")
    ours = [ep for ep in eps if ep.name == "healthchecks"]
    assert [ep.value for ep in ours] == ["marathon_healthchecks.plugin"]
    assert ours[0].dist is not None and ours[0].dist.name == "marathon-healthchecks"


def test_installed_plugin_host_lists_it() -> None:
    others = {ep.name for ep in importlib.metadata.entry_points(group="marathon")} - {
        "healthchecks"
    }
    host = get_plugin_host(blocked=others)
    assert set(host.health_check_protocols()) == MARATHON_SIDE | AGENT_SIDE


def test_only_marathon_side_protocols_can_probe() -> None:
    host = get_plugin_host(
        load_entrypoints=False, extra={"healthchecks": marathon_healthchecks.plugin}
    )
    protocols = host.health_check_protocols()
    assert {name for name, p in protocols.items() if p.checker is not None} == MARATHON_SIDE


def context() -> ValidationContext:
    host = get_plugin_host(
        load_entrypoints=False, extra={"healthchecks": marathon_healthchecks.plugin}
    )
    return ValidationContext(health_check_protocols=host.health_check_protocols())


@pytest.mark.parametrize("protocol", sorted(MARATHON_SIDE | AGENT_SIDE))
def test_apps_with_each_protocol_are_accepted(protocol: str) -> None:
    check: dict[str, object] = {"protocol": protocol}
    if protocol == "COMMAND":
        check["command"] = {"value": "true"}
    app = parse_app(
        {"id": "/a", "cmd": "sleep 1", "portDefinitions": [{"port": 0}], "healthChecks": [check]},
        context=context(),
    )
    (hc,) = app.health_checks
    assert hc.protocol == protocol
    if protocol != "COMMAND":
        assert hc.port_index == 0


def test_an_unknown_protocol_is_still_a_422() -> None:
    with pytest.raises(ValidationError) as info:
        parse_app(
            {"id": "/a", "cmd": "x", "healthChecks": [{"protocol": "GOPHER"}]}, context=context()
        )
    assert "/healthChecks(0)/protocol" in str(info.value.details)
