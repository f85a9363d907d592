"""Value types: path ids, timestamps, instance and task ids, conditions, groups."""

from __future__ import annotations

import random

import attrs
import pytest

from marathon_core.model import (
    AppDefinition,
    Condition,
    Group,
    InstanceId,
    PathId,
    TaskId,
    Timestamp,
    parse_instance_id,
    parse_task_id,
)
from marathon_core.model.group import AppChanges, app_changes, transitive_dependencies
from marathon_core.model.ids import valid_id_string
from marathon_core.model.validation import validate_group, validate_group_change


def test_path_id_basics() -> None:
    p = PathId.parse("/prod/web/")
    assert str(p) == "/prod/web" and p.safe_id == "prod_web"
    assert p.parent == PathId.parse("/prod") and p.parent.parent.is_root
    assert PathId.root().parent.is_root
    assert str(PathId.parse("a/b")) == "a/b" and not PathId.parse("a/b").absolute
    assert PathId.parse("c", base=PathId.parse("/a/b")) == PathId.parse("/a/b/c")
    assert PathId.parse("../c", base=PathId.parse("/a/b")) == PathId.parse("/a/c")
    assert PathId.parse("/a/./b/../c").canonical() == PathId.parse("/a/c")
    assert PathId.parse("/../..").canonical().is_root
    assert PathId.parse("/a/b").is_child_of(PathId.parse("/a"))
    assert not PathId.parse("/a").is_child_of(PathId.parse("/a"))
    assert sorted([PathId.parse("/b"), PathId.parse("/a/z"), PathId.parse("/a")]) == [
        PathId.parse("/a"),
        PathId.parse("/a/z"),
        PathId.parse("/b"),
    ]
    assert PathId.from_safe_id("prod_web") == p


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("/a/b", True),
        ("a.b-c/d", True),
        ("../x", True),
        ("/", True),
        ("/A", False),
        ("/a_b", False),
        ("/-a", False),
        ("/a-", False),
        ("/a//b", False),
        ("/a b", False),
    ],
)
def test_id_pattern(text: str, ok: bool) -> None:
    assert valid_id_string(text) is ok


def test_timestamp_format() -> None:
    t = Timestamp.parse("2015-09-29T15:59:51.164Z")
    assert str(t) == "2015-09-29T15:59:51.164Z"
    assert str(Timestamp.parse("2015-09-29T15:59:51Z")) == "2015-09-29T15:59:51.000Z"
    assert Timestamp.parse("2015-09-29T17:59:51.164+02:00") == t
    assert Timestamp.parse("2015-09-29T15:59:51.164999Z") == t
    assert str(Timestamp.now()).endswith("Z")
    with pytest.raises(ValueError):
        Timestamp.parse("yesterday")


def test_instance_and_task_ids() -> None:
    app_id = PathId.parse("/prod/web")
    iid = InstanceId.new(app_id)
    assert str(iid).startswith("prod_web.instance-")
    assert parse_instance_id(str(iid)) == iid
    tid = TaskId.for_instance(iid)
    assert str(tid) == f"{iid}._app.1"
    assert parse_task_id(str(tid)) == tid
    assert parse_task_id(str(tid.next_incarnation())).incarnation == 2
    pod = parse_task_id(f"{iid}.sidecar")
    assert pod.container_name == "sidecar" and pod.instance_id == iid
    uuid = "5e2c3c4e-1f2a-11e9-8d3c-0242ac110002"
    for sep in "._":
        legacy = parse_task_id(f"prod_web{sep}{uuid}")
        assert legacy.run_spec_id == app_id and str(legacy) == f"prod_web{sep}{uuid}"
        assert str(legacy.instance_id) == f"prod_web.marathon-{uuid}"
    resident = parse_task_id(f"prod_web.{uuid}.3")
    assert resident.attempt == 3 and str(resident) == f"prod_web.{uuid}.3"
    for bad in ("", "nodots", "prod_web.instance-"):
        with pytest.raises(ValueError):
            parse_task_id(bad)


def test_conditions() -> None:
    assert Condition.from_mesos("TASK_RUNNING") is Condition.RUNNING
    assert Condition.from_mesos("TASK_GONE_BY_OPERATOR") is Condition.GONE
    assert Condition.from_mesos("TASK_LOST", reason="REASON_TASK_UNKNOWN") is Condition.UNKNOWN
    assert (
        Condition.from_mesos("TASK_LOST", reason="REASON_RECONCILIATION") is Condition.UNREACHABLE
    )
    assert Condition.from_mesos("TASK_LOST", reason="REASON_AGENT_RESTARTED") is Condition.GONE
    assert (
        Condition.from_mesos("TASK_LOST", reason="REASON_COMMAND_EXECUTOR_FAILED")
        is Condition.DROPPED
    )
    assert Condition.FAILED.is_terminal and not Condition.RUNNING.is_terminal
    assert Condition.UNREACHABLE.is_active and Condition.UNREACHABLE.is_lost
    assert Condition.UNREACHABLE_INACTIVE.mesos_state == "TASK_UNREACHABLE"


def _app(path: str, *deps: str) -> AppDefinition:
    return AppDefinition(PathId.parse(path), cmd="x", dependencies=tuple(map(PathId.parse, deps)))


def test_group_helpers_and_cycles() -> None:
    root = Group.empty_root()
    for a in (_app("/s/db"), _app("/s/api", "/s/db"), _app("/s/web/ui", "/s/api")):
        root = root.update_app(a)
    assert {str(a.id) for a in root.transitive_apps()} == {"/s/db", "/s/api", "/s/web/ui"}
    assert root.find_app(PathId.parse("/s/web/ui")) is not None
    assert root.find_app(PathId.parse("/s/nope")) is None
    assert not root.has_cycle()
    ui, api, db = (PathId.parse(f"/s/{name}") for name in ("web/ui", "api", "db"))
    assert transitive_dependencies(ui, root.dependency_edges()) == {api, db}
    assert transitive_dependencies(db, root.dependency_edges()) == set()
    cyclic = root.update_app(_app("/s/db", "/s/web"))  # db -> group /s/web -> ui -> api -> db
    assert cyclic.has_cycle()
    assert transitive_dependencies(db, cyclic.dependency_edges()) == {ui, api, db}
    removed = root.remove_app(PathId.parse("/s/api"))
    assert {str(a.id) for a in removed.transitive_apps()} == {"/s/db", "/s/web/ui"}


def _index_diff(before: Group, after: Group) -> tuple[dict[PathId, AppDefinition], set[PathId]]:
    """What :func:`app_changes` must find, by comparing the two whole app indexes (an
    equal app is no change)."""
    old, new = before.app_index(), after.app_index()
    return {i: a for i, a in new.items() if old.get(i) != a}, set(old) - set(new)


def test_app_changes_match_comparing_whole_indexes() -> None:
    rng = random.Random(7)
    ids = [f"/g{g}/s{s}/a{a}" for g in range(3) for s in range(3) for a in range(3)]
    root = Group.empty_root()
    for _ in range(300):
        before = root
        move = rng.random()
        app_id = PathId.parse(rng.choice(ids))
        if move < 0.5:
            root = root.update_app(_app(str(app_id)))
        elif move < 0.7:
            root = root.remove_app(app_id)
        elif move < 0.8:
            root = root.remove_group(app_id.parent)
        elif move < 0.9:  # a group replaced by a copy that keeps some of its apps
            group = root.find_group(app_id.parent) or Group(app_id.parent)
            kept = tuple(a for a in group.apps if a.id != app_id and rng.random() < 0.5)
            root = root.put_group(attrs.evolve(group, apps=(*kept, _app(str(app_id)))))
        changes = app_changes(before, root)
        changed, removed = _index_diff(before, root)
        assert changes.changed == changed and list(changes.changed) == [
            a.id for a in root.transitive_apps() if a.id in changed
        ]
        assert set(changes.removed) == removed
        assert changes.previous == {
            i: before.app_index()[i] for i in changed if i in before.app_index()
        }
        old_groups = {g.id for g in before.transitive_groups()}
        assert set(changes.new_groups) == {
            g.id for g in root.transitive_groups() if g.id not in old_groups
        }
    assert app_changes(root, root) == AppChanges({}, {}, {}, ())


def test_large_groups_find_put_remove_and_diff_apps_as_a_list_would() -> None:
    """Groups of many apps search an index and diff by position; check both against a
    plain list of the group's apps, through appends, replacements, removals and a group
    replaced by a reordered copy."""
    rng = random.Random(11)
    big = PathId.parse("/big")
    ids = [PathId.parse(f"/big/a{n}") for n in range(150)]
    root = Group.empty_root().put_group(Group(big))
    expected: list[AppDefinition] = []
    for step in range(400):
        before = root
        app_id = rng.choice(ids)
        move = rng.random()
        if move < 0.6:
            app = attrs.evolve(_app(str(app_id)), cmd=f"x{step}")
            root = root.update_app(app)
            if any(a.id == app_id for a in expected):  # replaced in place
                expected = [app if a.id == app_id else a for a in expected]
            else:
                expected.append(app)
        elif move < 0.9:
            root = root.remove_app(app_id)
            expected = [a for a in expected if a.id != app_id]
        elif expected:
            shuffled = list(expected)
            rng.shuffle(shuffled)
            root = root.put_group(Group(big, apps=tuple(shuffled)))
            expected = shuffled
        group = root.find_group(big)
        assert group is not None
        assert len(group.apps) == len(expected)
        assert all(a is b for a, b in zip(group.apps, expected, strict=True)), step
        for probe in rng.sample(ids, 5):
            assert root.find_app(probe) is next((a for a in expected if a.id == probe), None)
        changes = app_changes(before, root)
        changed, removed = _index_diff(before, root)
        assert changes.changed == changed and set(changes.removed) == removed, step


def test_validating_a_change_finds_what_validating_the_tree_finds() -> None:
    base = Group.empty_root()
    for a in (_app("/s/db"), _app("/s/api"), _app("/s/web/ui")):
        base = base.update_app(a)
    assert validate_group(base) == []
    web = base.find_group(PathId.parse("/s/web"))
    assert web is not None
    candidates = [
        base.update_app(_app("/s/web")),  # an app where a group is
        base.put_group(Group(PathId.parse("/s/api/v2"))),  # a group where an app is
        base.update_app(_app("/s/api/v2/x")),  # the same, made by mkdir -p
        base.update_app(_app("/s/db", "/s/api")).update_app(_app("/s/api", "/s/db")),
        base.update_app(_app("/s/db", "/s/web")).update_app(_app("/s/web/ui", "/s/db")),
        base.put_group(
            attrs.evolve(
                base.find_group(PathId.parse("/s/web")), dependencies=(PathId.parse("/s/web/ui"),)
            )
        ),  # type: ignore[arg-type]
        base.update_app(_app("/s/db", "/s/api")),  # fine
        base.update_app(_app("/t/x")).remove_app(PathId.parse("/s/api")),  # fine
    ]
    for after in candidates:
        expected = validate_group(after)
        deps = any(a.dependencies for a in after.transitive_apps()) or any(
            g.dependencies for g in after.transitive_groups()
        )
        changes = app_changes(base, after)
        assert validate_group_change(after, changes, has_dependencies=deps) == expected
