"""Semantic rules, plugin registries in the context, and garbage in (always a UserError)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marathon_core.errors import BadRequestError, UserError, ValidationError, Violation
from marathon_core.model.codec import parse_app, parse_app_update, parse_group
from marathon_core.model.ids import PathId
from marathon_core.model.validation import ValidationContext, operator_list_message

from .conftest import EXAMPLES, make_context


def _details(body: Any, ctx: ValidationContext) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as info:
        parse_app(json.dumps(body), context=ctx)
    return {d["path"]: d["errors"] for d in info.value.details}


def test_all_problems_reported_at_once(basic_context: ValidationContext) -> None:
    body = {
        "id": "/a/tasks",
        "cmd": "x",
        "args": ["y"],
        "portDefinitions": [{"port": 80, "name": "a"}, {"port": 80, "name": "a"}],
        "readinessChecks": [{"portName": "nope"}, {"portName": "a"}],
        "healthChecks": [{"protocol": "MESOS_TCP"}, {"protocol": "MESOS_HTTP"}],
    }
    got = _details(body, basic_context)
    assert "must not end with any of the following reserved keywords" in got["/id"][0]
    assert "AppDefinition can contain at most one Mesos health check" in got["/"]
    assert set(got["/portDefinitions"]) == {"Port names must be unique.", "Ports must be unique."}
    assert got["/readinessChecks"] == ["got 2, expected 1 or less"]
    assert got["/readinessChecks(0)/portName"] == ["No port definition reference for portName nope"]


def test_operator_names_in_marathon_order() -> None:
    names = ["IS", "ZZZ", "UNIQUE", "LIKE", "AAA"]
    assert operator_list_message(names) == (
        "operator must be one of the following UNIQUE, LIKE, IS, AAA or ZZZ"
    )


def test_operator_is_upper_cased(validation_context: ValidationContext) -> None:
    app = parse_app(
        b'{"id": "/a", "cmd": "x", "constraints": [["hostname", "unique"]]}',
        context=validation_context,
    )
    assert app.constraints[0].operator == "unique"


def test_unknown_container_type_and_health_protocol(basic_context: ValidationContext) -> None:
    body = {
        "id": "/a",
        "cmd": "x",
        "container": {"type": "RKT"},
        "healthChecks": [{"protocol": "GOPHER"}],
    }
    got = _details(body, basic_context)
    assert got["/container/type"] == ["is not one of (DOCKER,MESOS)"]
    assert got["/healthChecks(0)/protocol"][0].startswith("is not one of (COMMAND,HTTP")


def test_plugin_rules_are_asked() -> None:
    class NoPrivileged:
        def validate(self, app: Any) -> list[Violation]:
            return [Violation("/container/docker/privileged", "no")]

    class NeedsPath:
        def validate(self, check: Any, *, path: str, app: Any) -> list[Violation]:
            return [] if check.path == "/health" else [Violation(f"{path}/path", "bad path")]

    ctx = ValidationContext(
        container_runtimes={"DOCKER": NoPrivileged()},
        health_check_protocols={"HTTP": NeedsPath()},
    )
    body = {
        "id": "/a",
        "networks": [{"mode": "container/bridge"}],
        "container": {"docker": {"image": "i"}},
        "healthChecks": [{}],
    }
    got = _details(body, ctx)
    assert got["/container/docker/privileged"] == ["no"]
    assert got["/healthChecks(0)/path"] == ["bad path"]


def test_role_and_accepted_roles(basic_context: ValidationContext) -> None:
    got = _details({"id": "/a/b", "cmd": "x", "role": "other"}, basic_context)
    assert got["/role"] == ["got other, expected one of: [*, a]"]
    got = _details({"id": "/a", "cmd": "x", "acceptedResourceRoles": ["x"]}, basic_context)
    assert got["/acceptedResourceRoles"] == ["acceptedResourceRoles can only contain * and *"]


def test_deprecated_misuse(basic_context: ValidationContext) -> None:
    body = {
        "id": "/a",
        "cmd": "x",
        "ports": [1],
        "portDefinitions": [{"port": 2}],
        "uris": ["http://x"],
        "fetch": [{"uri": "http://y"}],
    }
    got = _details(body, basic_context)
    assert got["/"] == ["cannot specify both ports and port definitions"]
    assert got["/uris"] == ["may not be set in conjunction with fetch"]


def test_resident_and_single_instance_rules(basic_context: ValidationContext) -> None:
    body = json.loads((EXAMPLES / "app-resident-persistent-volume.json").read_text())
    body["unreachableStrategy"] = {"inactiveAfterSeconds": 1, "expungeAfterSeconds": 2}
    body["upgradeStrategy"] = {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.5}
    got = _details(body, basic_context)
    assert "unreachableStrategy must be disabled for resident tasks" in got["/"]
    assert got["/upgradeStrategy/maximumOverCapacity"] == ["got 0.5, expected 0.0"]
    body = {
        "id": "/s",
        "cmd": "x",
        "instances": 2,
        "labels": {"MARATHON_SINGLE_INSTANCE_APP": "true"},
    }
    assert "Single instance app may only have one instance" in _details(body, basic_context)["/"]


def test_ids_relative_and_dotted(basic_context: ValidationContext) -> None:
    app = parse_app(
        b'{"id": "b/../c", "cmd": "x", "dependencies": ["d", "../e"]}',
        context=basic_context,
        base=PathId.parse("/g"),
    )
    assert str(app.id) == "/g/c"
    assert [str(d) for d in app.dependencies] == ["/g/d", "/e"]
    got = _details({"id": "/", "cmd": "x"}, basic_context)
    assert got["/"] == ["must not be root"]


def test_secrets_need_feature(basic_context: ValidationContext) -> None:
    body = {
        "id": "/a",
        "cmd": "x",
        "env": {"P": {"secret": "s"}},
        "secrets": {"s": {"source": "v"}},
    }
    got = _details(body, basic_context)
    assert got["/secrets"] and got["/env/P"]
    ctx = make_context({}, features=frozenset({"secrets"}))
    body["env"] = {"P": {"secret": "missing"}}
    assert _details(body, ctx)["/env/P"] == ["references an undefined secret"]


# -- garbage in ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "Please specify data in JSON format"),
        (b"   \n", "Please specify data in JSON format"),
        (b"{", "Invalid JSON"),
        (b"not json", "Invalid JSON"),
        (b"\xff\xfe\x00garbage", "Invalid JSON"),
        (b'{"id": NaN}', "Invalid JSON"),
        (b"[" * 100_000, "Invalid JSON"),
        (b'{"a":' * 100_000, "Invalid JSON"),
        (b"1" * 10_000, "Invalid JSON"),
    ],
)
def test_unparseable_bodies_are_400(
    raw: bytes, message: str, basic_context: ValidationContext
) -> None:
    for parse in (parse_app, parse_group):
        with pytest.raises(BadRequestError) as info:
            parse(raw, context=basic_context)
        assert info.value.status == 400 and info.value.message == message


@pytest.mark.parametrize(
    ("body", "path", "code"),
    [
        ([], "/", "error.expected.jsobject"),
        ("x", "/", "error.expected.jsobject"),
        ({}, "/id", "error.path.missing"),
        ({"id": None}, "/id", "error.expected.jsstring"),
        ({"id": "/a", "cpus": "1"}, "/cpus", "error.expected.jsnumber"),
        ({"id": "/a", "cpus": 0}, "/cpus", "error.min"),
        ({"id": "/a", "instances": 1.5}, "/instances", "error.expected.int"),
        ({"id": "/a", "instances": True}, "/instances", "error.expected.jsnumber"),
        ({"id": "/a", "instances": 10**30}, "/instances", "error.expected.int"),
        ({"id": "/a", "requirePorts": "yes"}, "/requirePorts", "error.expected.jsboolean"),
        ({"id": "/a", "args": "x"}, "/args", "error.expected.jsarray"),
        ({"id": "/a", "args": [1]}, "/args(0)", "error.expected.jsstring"),
        ({"id": "/a", "env": []}, "/env", "error.expected.jsobject"),
        ({"id": "/a", "env": {"K": 1}}, "/env/K", "error.expected.jsstring"),
        ({"id": "/a", "constraints": [["a"]]}, "/constraints(0)", "error.minLength"),
        ({"id": "/a", "constraints": [[1, 2]]}, "/constraints(0)(0)", "error.expected.jsstring"),
        (
            {"id": "/a", "container": {"docker": {}}},
            "/container/docker/image",
            "error.path.missing",
        ),
        (
            {"id": "/a", "container": {"volumes": [{"containerPath": 3}]}},
            "/container/volumes(0)/containerPath",
            "error.expected.jsstring",
        ),
        (
            {"id": "/a", "healthChecks": [{"portIndex": -1}]},
            "/healthChecks(0)/portIndex",
            "error.min",
        ),
        ({"id": "/a", "killSelection": "RANDOM"}, "/killSelection", "error.unknown.enum.literal"),
        ({"id": "/a", "unreachableStrategy": 5}, "/unreachableStrategy", "error.expected.jsobject"),
        (
            {"id": "/a", "unreachableStrategy": "x"},
            "/unreachableStrategy",
            "error.unknown.enum.literal",
        ),
        (
            {"id": "/a", "networks": [{"mode": "x"}]},
            "/networks(0)/mode",
            "error.unknown.enum.literal",
        ),
        ({"id": "/a", "version": "yesterday"}, "/version", "error.pattern"),
        ({"id": "/a", "fetch": [{"uri": "x" * 2000}]}, "/fetch(0)/uri", "error.maxLength"),
        (
            {"id": "/a", "resourceLimits": {"cpus": "lots"}},
            "/resourceLimits/cpus",
            "error.unknown.enum.literal",
        ),
    ],
)
def test_wrong_shapes_are_invalid_json(
    body: Any, path: str, code: str, basic_context: ValidationContext
) -> None:
    with pytest.raises(ValidationError) as info:
        parse_app(json.dumps(body), context=basic_context)
    assert info.value.message == "Invalid JSON"
    got = {d["path"]: d["errors"] for d in info.value.details}
    assert code in got.get(path, []), got


def test_unknown_fields_are_ignored(basic_context: ValidationContext) -> None:
    app = parse_app(
        b'{"id": "/a", "cmd": "x", "frobnicate": {"deep": [1]}, "container": null, "pods": 3}',
        context=basic_context,
    )
    assert app.cmd == "x" and app.container is None


def test_huge_id_is_a_user_error(basic_context: ValidationContext) -> None:
    body = json.dumps({"id": "/" + "a" * 10_000_000, "cmd": "x"})
    app = parse_app(body, context=basic_context)  # long but valid: one 10 MB segment
    assert len(app.id.name) == 10_000_000
    body = json.dumps({"id": "/" + "a-" * 5_000_000, "cmd": "x"})
    with pytest.raises(ValidationError) as info:
        parse_app(body, context=basic_context)
    assert info.value.details == [{"path": "/id", "errors": ["error.pattern"]}]


def test_deep_group_nesting_is_a_user_error(basic_context: ValidationContext) -> None:
    body: dict[str, Any] = {"id": "g"}
    deepest = body
    for i in range(400):
        child: dict[str, Any] = {"id": f"g{i}"}
        deepest["groups"] = [child]
        deepest = child
    with pytest.raises(UserError):
        parse_group(json.dumps(body), context=basic_context)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
_app_keys = st.sampled_from(
    [
        "id",
        "cmd",
        "args",
        "container",
        "portDefinitions",
        "healthChecks",
        "networks",
        "env",
        "constraints",
        "upgradeStrategy",
        "unreachableStrategy",
        "fetch",
        "ports",
        "uris",
        "ipAddress",
        "readinessChecks",
        "dependencies",
        "secrets",
        "resourceLimits",
        "version",
    ]
)


@given(st.dictionaries(_app_keys, _json, max_size=8))
@settings(max_examples=300, deadline=None)
def test_random_bodies_only_raise_user_errors(body: dict[str, Any]) -> None:
    ctx = make_context({})
    for parse in (parse_app, parse_group):
        try:
            parse(json.dumps(body), context=ctx)
        except UserError as e:
            assert e.status in (400, 422)
    try:
        parse_app_update(json.dumps(body), context=ctx, app_id=PathId.parse("/x"))
    except UserError as e:
        assert e.status in (400, 422)
