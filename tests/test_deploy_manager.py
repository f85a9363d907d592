"""The root-group writer: versions, service ports, conflicts, atomic storage."""

from __future__ import annotations

import attrs
import pytest
import trio

from marathon_core.deploy.manager import (
    DeploymentRegistry,
    GroupManager,
    TooManyDeploymentsError,
    _RootFacts,
)
from marathon_core.errors import AppLockedError, ValidationError
from marathon_core.events import EventBus
from marathon_core.model.app import AppDefinition
from marathon_core.model.codec import parse_app
from marathon_core.model.deployment import ActionKind
from marathon_core.model.group import Group
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.validation import ValidationContext
from marathon_core.state.memory import MemoryStorage
from marathon_core.state.store import StateStore

WEB = PathId.parse("/prod/web")


def web(**fields: object) -> AppDefinition:
    """An app as the API would store it (normalised: one default port definition)."""
    body = {"id": str(WEB), "cmd": "sleep 100", **fields}
    return parse_app(body, context=ValidationContext())


@pytest.fixture
async def manager() -> GroupManager:
    state = await StateStore.open(MemoryStorage())
    return GroupManager(state, DeploymentRegistry(), EventBus())


def put(app: AppDefinition):  # type: ignore[no-untyped-def]
    return lambda root: root.update_app(app)


def actions(change) -> list[tuple[ActionKind, str]]:  # type: ignore[no-untyped-def]
    return [(a.action, str(a.app_id)) for s in change.deployment.steps for a in s.actions]


async def test_a_new_app_is_versioned_given_service_ports_and_deployed(
    manager: GroupManager,
) -> None:
    change = await manager.update_root(put(web(instances=2)))
    app = change.root.find_app(WEB)
    assert app is not None and app.version == change.version
    assert app.version_info is not None
    assert app.version_info.last_config_change_at == app.version_info.last_scaling_at == app.version
    assert app.service_ports == (10000,)
    assert actions(change) == [(ActionKind.START, "/prod/web"), (ActionKind.SCALE, "/prod/web")]
    stored = await manager.root()
    assert stored.find_app(WEB) == app
    assert [d.id for d in await manager._state.deployments.all()] == [change.deployment.id]


async def test_scaling_keeps_the_config_version(manager: GroupManager) -> None:
    first = await manager.update_root(put(web(instances=1)))
    manager._registry.remove(first.deployment.id)
    await trio.sleep(0.002)  # versions have millisecond resolution
    scaled = await manager.update_root(
        lambda root: root.update_app(attrs.evolve(root.find_app(WEB), instances=3))
    )
    before, after = first.root.find_app(WEB), scaled.root.find_app(WEB)
    assert before is not None and after is not None
    assert after.version_info is not None and before.version_info is not None
    assert after.version_info.last_config_change_at == before.version_info.last_config_change_at
    assert after.version_info.last_scaling_at > before.version_info.last_scaling_at
    assert after.service_ports == before.service_ports
    assert actions(scaled) == [(ActionKind.SCALE, "/prod/web")]


async def test_changes_within_one_millisecond_get_distinct_versions(
    manager: GroupManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen = Timestamp.now()
    monkeypatch.setattr(Timestamp, "now", classmethod(lambda cls: frozen))
    first = await manager.update_root(put(web(instances=1)))
    manager._registry.remove(first.deployment.id)
    second = await manager.update_root(put(web(instances=2, cmd="sleep 200")))
    assert first.version == frozen and second.version > first.version
    stored = await manager._state.root_group(first.version)
    assert stored is not None and stored.find_app(WEB) == first.root.find_app(WEB)
    assert second.root.find_app(WEB).version == second.version  # type: ignore[union-attr]


async def test_locked_apps_answer_409_unless_forced(manager: GroupManager) -> None:
    first = await manager.update_root(put(web(instances=1)))
    with pytest.raises(AppLockedError) as locked:
        await manager.update_root(put(web(instances=5)))
    assert locked.value.to_json()["deployments"] == [{"id": first.deployment.id}]
    forced = await manager.update_root(put(web(instances=5)), force=True)
    assert [d.id for d in manager._registry.all()] == [forced.deployment.id]
    assert [d.id for d in await manager._state.deployments.all()] == [forced.deployment.id]


async def test_a_forced_update_over_the_limit_cancels_nothing(manager: GroupManager) -> None:
    """The 403 comes before any cancellation: a refused update loses no deployment."""
    for name in ("a", "b", "c"):
        app = AppDefinition(id=PathId.parse(f"/{name}"), cmd="x")
        await manager.update_root(lambda root, app=app: root.update_app(app))
    running = [d.id for d in manager._registry.all()]
    # A new leader started with a lower --max_running_deployments finds three running.
    lower = GroupManager(manager._state, manager._registry, EventBus(), max_running_deployments=2)
    again = AppDefinition(id=PathId.parse("/a"), cmd="y")
    with pytest.raises(TooManyDeploymentsError):
        await lower.update_root(lambda root: root.update_app(again), force=True)
    assert [d.id for d in manager._registry.all()] == running
    assert sorted(d.id for d in await manager._state.deployments.all()) == sorted(running)


async def test_restart_moves_the_config_version_without_a_change(manager: GroupManager) -> None:
    first = await manager.update_root(put(web()))
    manager._registry.remove(first.deployment.id)
    await trio.sleep(0.002)
    restarted = await manager.update_root(lambda root: root, restart=[WEB])
    assert actions(restarted) == [(ActionKind.RESTART, "/prod/web")]
    app = restarted.root.find_app(WEB)
    assert app is not None and app.version_info is not None
    assert app.version_info.last_config_change_at == restarted.version


async def test_an_invalid_root_stores_nothing(manager: GroupManager) -> None:
    a = AppDefinition(id=PathId.parse("/a"), cmd="x", dependencies=(PathId.parse("/b"),))
    b = AppDefinition(id=PathId.parse("/b"), cmd="x", dependencies=(PathId.parse("/a"),))
    with pytest.raises(ValidationError) as invalid:
        await manager.update_root(lambda root: root.update_app(a).update_app(b))
    assert invalid.value.to_json()["details"] == [
        {"path": "/", "errors": ["Dependency graph has cyclic dependencies."]}
    ]
    assert await manager._state.root_group() is None
    assert manager._registry.all() == []


async def test_dry_run_plans_without_storing(manager: GroupManager) -> None:
    change = await manager.update_root(put(web()), dry_run=True)
    assert actions(change)
    assert await manager._state.root_group() is None
    assert manager._registry.all() == []


async def test_unchanged_apps_keep_their_version(manager: GroupManager) -> None:
    other = AppDefinition(id=PathId.parse("/other"), cmd="sleep 1")
    first = await manager.update_root(put(web()))
    manager._registry.remove(first.deployment.id)
    second = await manager.update_root(put(other))
    assert second.root.find_app(WEB) == first.root.find_app(WEB)
    assert [str(a) for a in second.deployment.affected_app_ids()] == ["/other"]
    assert Group.empty_root().find_app(WEB) is None


async def test_later_changes_are_validated_as_strictly_as_the_first(
    manager: GroupManager,
) -> None:
    """After the first change the manager validates only what changed (see its module
    docstring); what the whole-tree rules reject must still be rejected."""
    first = await manager.update_root(put(web()))
    manager._registry.remove(first.deployment.id)
    a = AppDefinition(id=PathId.parse("/a"), cmd="x", dependencies=(PathId.parse("/b"),))
    b = AppDefinition(id=PathId.parse("/b"), cmd="x")
    ok = await manager.update_root(lambda root: root.update_app(a).update_app(b))
    manager._registry.remove(ok.deployment.id)
    b_cycle = attrs.evolve(b, dependencies=(PathId.parse("/a"),))
    rejected = [
        (lambda root: root.update_app(b_cycle), "Dependency graph has cyclic dependencies."),
        (
            lambda root: root.update_app(attrs.evolve(b, id=PathId.parse("/prod"))),
            "Groups and Applications may not have the same identifier.",
        ),
        (
            lambda root: root.put_group(Group(PathId.parse("/a"))),
            "Groups and Applications may not have the same identifier.",
        ),
    ]
    for change, message in rejected:
        with pytest.raises(ValidationError) as invalid:
            await manager.update_root(change)
        assert invalid.value.to_json()["details"] == [{"path": "/", "errors": [message]}]
        assert await manager.root() is ok.root
        assert await manager._state.root_group() == ok.root


async def test_service_ports_in_use_follow_every_change(manager: GroupManager) -> None:
    def other(name: str) -> AppDefinition:
        return parse_app({"id": f"/other/{name}", "cmd": "x"}, context=ValidationContext())

    def ports(root: Group) -> dict[str, tuple[int, ...]]:
        return {str(a.id): a.service_ports for a in root.transitive_apps()}

    await manager.update_root(put(web()))
    await manager.update_root(put(other("one")), force=True)
    change = await manager.update_root(put(other("two")), force=True)
    assert ports(change.root) == {
        "/prod/web": (10000,),
        "/other/one": (10001,),
        "/other/two": (10002,),
    }
    change = await manager.update_root(lambda root: root.remove_app(WEB), force=True)
    change = await manager.update_root(put(other("three")), force=True)
    assert ports(change.root)["/other/three"] == (10000,)  # freed by the removal
    # What the manager keeps about all apps equals a fresh look at the whole tree.
    facts = manager._facts
    assert facts is not None and facts.root is change.root
    assert facts == _RootFacts.of(change.root)


async def test_a_reloaded_root_is_validated_whole_again(manager: GroupManager) -> None:
    first = await manager.update_root(put(web()))
    manager._registry.remove(first.deployment.id)
    manager.forget_root()
    b = AppDefinition(id=PathId.parse("/b"), cmd="x")
    second = await manager.update_root(lambda root: root.update_app(b))
    assert second.root.find_app(WEB) == first.root.find_app(WEB)
    assert manager._facts == _RootFacts.of(second.root)
