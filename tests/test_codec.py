"""The converter: storage round trips, output forms, updates, property-based round trips."""

from __future__ import annotations

import json
import string
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck as HypoHealthCheck
from hypothesis import given, settings
from hypothesis import strategies as st

from marathon_core.errors import ValidationError
from marathon_core.model import (
    ActionKind,
    AgentInfo,
    AppDefinition,
    Condition,
    Constraint,
    Container,
    Deployment,
    DeploymentAction,
    DeploymentStep,
    DockerContainer,
    EnvSecret,
    FetchUri,
    Group,
    HealthCheck,
    HostVolume,
    Instance,
    InstanceId,
    Network,
    NetworkMode,
    PathId,
    PersistentVolume,
    PersistentVolumeInfo,
    PortDefinition,
    PortMapping,
    ReadinessCheck,
    Task,
    TaskId,
    Timestamp,
    UnreachableStrategy,
    UpgradeStrategy,
    VersionInfo,
    assign_service_ports,
)
from marathon_core.model.codec import (
    AppRollback,
    app_to_json,
    deployment_to_json,
    from_storage,
    group_to_json,
    instance_to_json,
    parse_app,
    parse_app_update,
    parse_group_update,
    task_to_json,
    to_storage,
    wire_name,
)
from marathon_core.model.ports import NoFreeServicePortError
from marathon_core.model.validation import ValidationContext

from .conftest import EXAMPLES

TS = Timestamp.parse("2015-09-29T15:59:51.164Z")


def _rich_app() -> AppDefinition:
    return AppDefinition(
        PathId.parse("/prod/web"),
        cmd="run",
        env={"A": "1", "S": EnvSecret("db")},
        constraints=(Constraint("hostname", "UNIQUE"), Constraint("rack", "GROUP_BY", "2")),
        container=Container(
            "MESOS",
            DockerContainer("img", pull_config={"secret": "s"}),
            volumes=(
                HostVolume("/a", "/b", "RO"),
                PersistentVolume("data", PersistentVolumeInfo(10, max_size=20)),
            ),
        ),
        port_definitions=(PortDefinition(0, name="http", labels={"x": "y"}),),
        health_checks=(HealthCheck(port_index=0, path="/"),),
        readiness_checks=(ReadinessCheck(port_name="http"),),
        unreachable_strategy=UnreachableStrategy.disabled(),
        upgrade_strategy=UpgradeStrategy(0.5, 0.0),
        fetch=(FetchUri("http://x/y.tgz", dest_path="d"),),
        tty=True,
        check={"http": {"portIndex": 0}},
        version=TS,
        version_info=VersionInfo(TS, TS),
    )


def test_storage_round_trip_app() -> None:
    app = _rich_app()
    data = to_storage(app)
    assert isinstance(data, bytes)
    assert from_storage(AppDefinition, data) == app


def test_storage_round_trip_group_instance_deployment() -> None:
    app = _rich_app()
    root = Group.empty_root(TS).update_app(app)
    assert root.find_group(PathId.parse("/prod")) is not None
    assert from_storage(Group, to_storage(root)) == root
    iid = InstanceId.new(app.id)
    inst = Instance(
        iid,
        condition=Condition.RUNNING,
        agent=AgentInfo("h1", "agent-1", attributes={"rack": "r1"}),
        tasks=(Task(TaskId(iid, 3), Condition.RUNNING, TS, TS, (31000,), ("10.0.0.1",), TS, True),),
        run_spec_version=TS,
        since=TS,
    )
    assert from_storage(Instance, to_storage(inst)) == inst
    dep = Deployment(
        Deployment.new_id(),
        TS,
        original_version=TS,
        target_version=TS,
        steps=(DeploymentStep((DeploymentAction(ActionKind.RESTART, app.id),)),),
        current_step=1,
    )
    assert from_storage(Deployment, to_storage(dep)) == dep


def test_wire_names_are_camel_case() -> None:
    assert wire_name(AppDefinition, "max_launch_delay_seconds") == "maxLaunchDelaySeconds"
    assert wire_name(HealthCheck, "ignore_http1xx") == "ignoreHttp1xx"
    assert wire_name(DeploymentAction, "app_id") == "app"
    out = app_to_json(_rich_app())
    assert out["versionInfo"] == {
        "lastScalingAt": "2015-09-29T15:59:51.164Z",
        "lastConfigChangeAt": "2015-09-29T15:59:51.164Z",
    }
    assert out["env"]["S"] == {"secret": "db"}
    assert out["constraints"] == [["hostname", "UNIQUE"], ["rack", "GROUP_BY", "2"]]
    assert out["unreachableStrategy"] == "disabled"


def test_task_and_instance_json() -> None:
    app = _rich_app()
    iid = InstanceId.new(app.id)
    task = Task(TaskId(iid, 2), Condition.RUNNING, TS, None, (31000,))
    inst = Instance(iid, agent=AgentInfo("h1", "a1"), tasks=(task,), run_spec_version=TS)
    out = task_to_json(inst, task, app=app)
    assert out["id"] == f"{iid}._app.2"
    assert out["state"] == "TASK_RUNNING"
    assert out["stagedAt"] == "2015-09-29T15:59:51.164Z"
    assert "startedAt" not in out
    assert len(out["servicePorts"]) == len(out["ports"])
    assert out["slaveId"] == "a1" and out["appId"] == "/prod/web"
    ij = instance_to_json(inst)
    assert ij["id"] == str(iid) and ij["goal"] == "Running"


def test_deployment_json() -> None:
    a, b = PathId.parse("/a"), PathId.parse("/b")
    dep = Deployment(
        "d1",
        TS,
        steps=(
            DeploymentStep((DeploymentAction(ActionKind.START, a),)),
            DeploymentStep(
                (DeploymentAction(ActionKind.SCALE, a), DeploymentAction(ActionKind.SCALE, b))
            ),
        ),
        current_step=2,
    )
    out = deployment_to_json(dep)
    assert out["totalSteps"] == 2 and out["currentStep"] == 2
    assert out["affectedApps"] == ["/a", "/b"]
    assert out["steps"][0] == {"actions": [{"action": "StartApplication", "app": "/a"}]}
    assert [c["app"] for c in out["currentActions"]] == ["/a", "/b"]


def test_group_json_omits_enforce_role() -> None:
    g = Group(PathId.parse("/x"), enforce_role=True, version=TS)
    out = group_to_json(g)
    assert out == {
        "id": "/x",
        "apps": [],
        "groups": [],
        "pods": [],
        "dependencies": [],
        "version": "2015-09-29T15:59:51.164Z",
    }


# -- updates ---------------------------------------------------------------------------


def _current(ctx: ValidationContext) -> AppDefinition:
    return parse_app((EXAMPLES / "app-simple-cmd.json").read_bytes(), context=ctx)


def test_app_update_overrides_given_fields(basic_context: ValidationContext) -> None:
    cur = _current(basic_context)
    new = parse_app_update(b'{"instances": 5}', context=basic_context, app_id=cur.id, current=cur)
    assert isinstance(new, AppDefinition)
    assert new.instances == 5 and cur.is_only_scale_change(new)
    new = parse_app_update(b'{"cmd": "sleep 5"}', context=basic_context, app_id=cur.id, current=cur)
    assert isinstance(new, AppDefinition)
    assert new.cmd == "sleep 5" and cur.is_upgrade(new)


def test_app_update_ignores_read_only_fields(basic_context: ValidationContext) -> None:
    cur = _current(basic_context)
    body = app_to_json(cur) | {
        "mem": 64,
        "tasks": [{"id": "x"}],
        "tasksRunning": 2,
        "deployments": [],
        "versionInfo": {"lastScalingAt": str(TS), "lastConfigChangeAt": str(TS)},
        "version": None,
    }
    new = parse_app_update(json.dumps(body), context=basic_context, app_id=cur.id, current=cur)
    assert isinstance(new, AppDefinition)
    assert new == attrs.evolve(cur, mem=64.0)


def test_app_update_version_is_rollback(basic_context: ValidationContext) -> None:
    cur = _current(basic_context)
    body = json.dumps({"id": str(cur.id), "version": str(TS)})
    got = parse_app_update(body, context=basic_context, app_id=cur.id, current=cur)
    assert got == AppRollback(cur.id, TS)
    with pytest.raises(ValidationError) as info:
        parse_app_update(
            json.dumps({"version": str(TS), "cmd": "x"}),
            context=basic_context,
            app_id=cur.id,
            current=cur,
        )
    assert info.value.details == [
        {"path": "/", "errors": ["The 'version' field may only be combined with the 'id' field."]}
    ]


def test_app_update_deprecated_ports_replace_definitions(basic_context: ValidationContext) -> None:
    cur = _current(basic_context)
    new = parse_app_update(b'{"ports": [0, 0]}', context=basic_context, app_id=cur.id, current=cur)
    assert isinstance(new, AppDefinition)
    assert [p.port for p in new.port_definitions] == [0, 0]


def test_app_update_without_current_creates(basic_context: ValidationContext) -> None:
    got = parse_app_update(b'{"cmd": "x"}', context=basic_context, app_id=PathId.parse("/new"))
    assert isinstance(got, AppDefinition) and got.id == PathId.parse("/new")


def test_group_update_flags(basic_context: ValidationContext) -> None:
    upd = parse_group_update(b'{"id": "/g", "scaleBy": 2}', context=basic_context)
    assert upd.scale_by == 2.0 and not upd.gives(PathId.parse("/g"), "apps")
    upd = parse_group_update(
        b'{"apps": [{"id": "a", "cmd": "x"}]}', context=basic_context, base=PathId.parse("/g")
    )
    assert upd.gives(PathId.parse("/g"), "apps") and upd.group.apps[0].id == PathId.parse("/g/a")
    nested = {"id": "/g", "groups": [{"id": "s", "groups": [{"id": "t", "apps": []}]}]}
    upd = parse_group_update(json.dumps(nested), context=basic_context)
    assert upd.given == {
        PathId.parse("/g"): {"groups"},
        PathId.parse("/g/s"): {"groups"},
        PathId.parse("/g/s/t"): {"apps"},
    }
    with pytest.raises(ValidationError):
        parse_group_update(b'{"scaleBy": 2, "apps": []}', context=basic_context)


def test_group_rejects_app_and_group_with_same_id(basic_context: ValidationContext) -> None:
    body = {"id": "/g", "apps": [{"id": "x", "cmd": "c"}], "groups": [{"id": "x"}]}
    with pytest.raises(ValidationError) as info:
        parse_group_update(json.dumps(body), context=basic_context)
    assert info.value.details == [
        {"path": "/", "errors": ["Groups and Applications may not have the same identifier."]}
    ]


def test_group_nested_app_errors_are_prefixed(basic_context: ValidationContext) -> None:
    body = {"id": "/g", "groups": [{"id": "s", "apps": [{"id": "a", "cmd": "c", "args": ["x"]}]}]}
    with pytest.raises(ValidationError) as info:
        parse_group_update(json.dumps(body), context=basic_context)
    paths = [d["path"] for d in info.value.details]
    assert paths == ["/groups(0)/apps(0)"]


# -- service ports ---------------------------------------------------------------------


def test_assign_service_ports_host() -> None:
    app = AppDefinition(
        PathId.parse("/a"),
        cmd="x",
        port_definitions=(PortDefinition(0), PortDefinition(10001), PortDefinition(0)),
    )
    got = assign_service_ports(app, {10000, 10002})
    assert [p.port for p in got.port_definitions] == [10003, 10001, 10004]
    assert assign_service_ports(got, set()) is got


def test_assign_service_ports_mappings_and_exhaustion() -> None:
    app = AppDefinition(
        PathId.parse("/a"),
        networks=(Network(NetworkMode.BRIDGE),),
        container=Container(
            "DOCKER", DockerContainer("i"), (PortMapping(80, 0), PortMapping(81, 0))
        ),
    )
    got = assign_service_ports(app, set(), port_range=(5, 6))
    assert [m.service_port for m in got.port_mappings] == [5, 6]
    with pytest.raises(NoFreeServicePortError):
        assign_service_ports(app, {5}, port_range=(5, 6))


# -- property-based round trips --------------------------------------------------------

_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True).filter(
    lambda s: s not in ("restart", "tasks", "versions")
)
_ids = st.lists(_label, min_size=1, max_size=4).map(lambda p: PathId(tuple(p)))
_text = st.text(string.printable, max_size=20)
_port_name = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True)
_maps = st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=10), max_size=3)
_nonneg = st.integers(0, 10_000)


@st.composite
def _apps(draw: st.DrawFn) -> AppDefinition:
    host = draw(st.booleans())
    names = draw(st.lists(_port_name, max_size=3, unique=True))
    n_ports = len(names)
    health = draw(
        st.lists(
            st.builds(
                HealthCheck,
                protocol=st.sampled_from(["HTTP", "HTTPS", "MESOS_HTTP"]),
                path=st.just("/"),
                port_index=st.integers(0, max(n_ports - 1, 0)),
                grace_period_seconds=_nonneg,
                interval_seconds=st.integers(1, 100),
                timeout_seconds=st.integers(1, 100),
                max_consecutive_failures=_nonneg,
                ignore_http1xx=st.booleans(),
            ),
            max_size=1 if n_ports else 0,
        )
    )
    inactive = draw(_nonneg)
    common: dict[str, Any] = dict(
        id=draw(_ids),
        instances=draw(_nonneg),
        cpus=draw(st.floats(0.001, 64, allow_nan=False)),
        mem=draw(st.floats(0, 1e6, allow_nan=False)),
        disk=draw(st.floats(0, 1e6, allow_nan=False)),
        env=draw(_maps),
        labels=draw(_maps),
        health_checks=tuple(health),
        backoff_seconds=draw(_nonneg),
        backoff_factor=draw(st.floats(1.0, 10.0)),
        max_launch_delay_seconds=draw(_nonneg),
        upgrade_strategy=UpgradeStrategy(draw(st.floats(0, 1)), draw(st.floats(0, 1))),
        unreachable_strategy=UnreachableStrategy(True, inactive, inactive + draw(_nonneg)),
        dependencies=tuple(draw(st.lists(_ids, max_size=2))),
        task_kill_grace_period_seconds=draw(st.none() | _nonneg),
        user=draw(st.none() | _text.filter(bool)),
    )
    if host:
        pds = tuple(
            PortDefinition(0, draw(st.sampled_from(["tcp", "udp"])), n, draw(_maps)) for n in names
        )
        return AppDefinition(
            cmd=draw(_text.filter(lambda s: len(s) > 1)), port_definitions=pds, **common
        )
    mappings = tuple(
        PortMapping(
            draw(st.integers(0, 65535)),
            draw(st.integers(0, 65535)),
            draw(st.integers(0, 65535)),
            "tcp",
            n,
        )
        for n in names
    )
    container = Container("DOCKER", DockerContainer(draw(_text.filter(bool))), mappings)
    return AppDefinition(
        networks=(Network(NetworkMode.BRIDGE),),
        container=container,
        args=tuple(draw(st.lists(_text, max_size=3))),
        **common,
    )


@given(_apps())
@settings(max_examples=200, suppress_health_check=[HypoHealthCheck.too_slow])
def test_generated_apps_round_trip(app: AppDefinition) -> None:
    ctx = _CTX
    out = app_to_json(app)
    parsed = parse_app(json.dumps(out), context=ctx)
    assert parsed == app
    assert app_to_json(parsed) == out
    assert from_storage(AppDefinition, to_storage(app)) == app


def _make_ctx() -> ValidationContext:
    from .conftest import make_context

    return make_context({})


_CTX = _make_ctx()
