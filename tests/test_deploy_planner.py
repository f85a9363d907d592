"""Deployment plans as Marathon computes them."""

from __future__ import annotations

import attrs

from marathon_core.deploy.planner import dependency_depths, plan_deployment
from marathon_core.model.app import AppDefinition
from marathon_core.model.codec import parse_group
from marathon_core.model.deployment import ActionKind
from marathon_core.model.group import Group, app_changes
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.validation import ValidationContext

from .conftest import EXAMPLES

NOW = Timestamp(1_700_000_000_000)


def app(path: str, **fields: object) -> AppDefinition:
    return AppDefinition(id=PathId.parse(path), cmd="sleep 1", **fields)  # type: ignore[arg-type]


def root_with(*apps: AppDefinition) -> Group:
    root = Group.empty_root()
    for a in apps:
        root = root.update_app(a)
    return root


def shape(plan) -> list[list[tuple[str, str]]]:  # type: ignore[no-untyped-def]
    return [sorted((a.action.value, str(a.app_id)) for a in step.actions) for step in plan.steps]


def test_group_with_dependencies_on_a_fresh_cluster() -> None:
    body = (EXAMPLES / "group-with-dependencies.json").read_text()
    root = Group.empty_root().put_group(parse_group(body, context=ValidationContext()))
    plan = plan_deployment(Group.empty_root(), root, version=NOW)
    assert shape(plan) == [
        [
            ("StartApplication", "/shop/backend"),
            ("StartApplication", "/shop/db"),
            ("StartApplication", "/shop/web/frontend"),
        ],
        [("ScaleApplication", "/shop/db")],
        [("ScaleApplication", "/shop/backend")],
        [("ScaleApplication", "/shop/web/frontend")],
    ]
    deleted = plan_deployment(root, Group.empty_root(), version=NOW)
    assert shape(deleted) == [
        [
            ("StopApplication", "/shop/backend"),
            ("StopApplication", "/shop/db"),
            ("StopApplication", "/shop/web/frontend"),
        ]
    ]


def test_scale_only_change_is_a_scale_and_config_change_a_restart() -> None:
    original = root_with(app("/a", instances=2), app("/b", instances=1))
    target = root_with(app("/a", instances=3), attrs.evolve(app("/b"), cmd="sleep 5"))
    plan = plan_deployment(original, target, version=NOW)
    assert shape(plan) == [[("RestartApplication", "/b"), ("ScaleApplication", "/a")]]
    assert set(plan.affected_app_ids()) == {PathId.parse("/a"), PathId.parse("/b")}


def test_nothing_changed_is_an_empty_plan_unless_a_restart_is_asked() -> None:
    root = root_with(app("/a"))
    assert plan_deployment(root, root, version=NOW).steps == ()
    restart = plan_deployment(root, root, version=NOW, restart={PathId.parse("/a")})
    assert shape(restart) == [[("RestartApplication", "/a")]]
    assert restart.steps[0].actions[0].action is ActionKind.RESTART


def test_depths_follow_the_longest_chain() -> None:
    root = root_with(
        app("/c", dependencies=(PathId.parse("/b"), PathId.parse("/a"))),
        app("/b", dependencies=(PathId.parse("/a"),)),
        app("/a"),
        app("/x"),
    )
    ids = [PathId.parse(p) for p in ("/a", "/b", "/c", "/x")]
    depths = dependency_depths(root, ids)
    assert [depths[i] for i in ids] == [1, 2, 3, 1]


def test_deep_chains_do_not_recurse() -> None:
    apps = [app("/n0")] + [
        app(f"/n{i}", dependencies=(PathId.parse(f"/n{i - 1}"),)) for i in range(1, 3000)
    ]
    depths = dependency_depths(root_with(*apps), [PathId.parse("/n2999")])
    assert depths[PathId.parse("/n2999")] == 3000


def test_put_and_remove_group_keep_the_rest_of_the_tree() -> None:
    root = root_with(app("/keep/me"), app("/shop/old"))
    shop = Group(PathId.parse("/shop/web"), apps=(app("/shop/web/frontend"),))
    replaced = root.put_group(shop)
    assert sorted(str(a.id) for a in replaced.transitive_apps()) == [
        "/keep/me",
        "/shop/old",
        "/shop/web/frontend",
    ]
    assert sorted(
        str(a.id) for a in replaced.remove_group(PathId.parse("/shop")).transitive_apps()
    ) == ["/keep/me"]
    assert list(replaced.remove_group(PathId.root()).transitive_apps()) == []


def test_without_dependencies_every_change_is_one_step_as_the_graph_walk_finds() -> None:
    original = root_with(app("/a/x"), app("/a/y", instances=2), app("/b/z"))
    target = (
        original.update_app(app("/a/y", instances=4))
        .update_app(attrs.evolve(app("/b/z"), cmd="sleep 9"))
        .update_app(app("/c/new"))
        .remove_app(PathId.parse("/a/x"))
    )
    restart = {PathId.parse("/a/y"), PathId.parse("/b/z"), PathId.parse("/gone")}
    walked = plan_deployment(original, target, version=NOW, restart=restart, deployment_id="d")
    promised = plan_deployment(
        original,
        target,
        version=NOW,
        restart=restart,
        deployment_id="d",
        changes=app_changes(original, target),
        has_dependencies=False,
    )
    assert promised == walked
    assert shape(walked) == [
        [("StopApplication", "/a/x")],
        [("StartApplication", "/c/new")],
        [
            ("RestartApplication", "/a/y"),
            ("RestartApplication", "/b/z"),
            ("ScaleApplication", "/c/new"),
        ],
    ]
