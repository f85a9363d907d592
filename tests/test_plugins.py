"""The plugin host: loading, listing, merging registries, and refusing broken plugin sets."""

from __future__ import annotations

import types

import pytest

from marathon_core import hookimpl
from marathon_core.contracts.auth import ANONYMOUS, Action, Identity, SystemResource
from marathon_core.errors import PluginConflictError, PluginError
from marathon_core.plugins import get_plugin_host


def plugin(name: str, **hooks: object) -> types.SimpleNamespace:
    """A plugin object whose attributes are hook implementations."""
    for fn in hooks.values():
        hookimpl(fn)  # type: ignore[call-overload]
    return types.SimpleNamespace(__name__=name, **hooks)


class Operator:
    """Just enough of a constraint operator to be registered."""

    def validate(self, field: str, value: str | None) -> None: ...

    def filter(self, *args: object) -> None: ...


def operators(*names: str):  # type: ignore[no-untyped-def]
    def marathon_constraint_operators() -> dict[str, Operator]:
        return {n: Operator() for n in names}

    return marathon_constraint_operators


def test_builtins_are_listed_with_their_hooks() -> None:
    host = get_plugin_host(load_entrypoints=False)
    (info,) = host.plugins()
    assert info.builtin
    assert info.distribution == "marathon-core"
    assert "marathon_mesos_master" in info.hooks


def test_registries_merge_across_plugins() -> None:
    host = get_plugin_host(
        load_entrypoints=False,
        extra={
            "a": plugin("a", marathon_constraint_operators=operators("UNIQUE")),
            "b": plugin("b", marathon_constraint_operators=operators("LIKE", "UNLIKE")),
        },
    )
    assert sorted(host.constraint_operators()) == ["LIKE", "UNIQUE", "UNLIKE"]


def test_two_plugins_claiming_one_key_is_an_error_naming_both() -> None:
    host = get_plugin_host(
        load_entrypoints=False,
        extra={
            "first": plugin("first", marathon_constraint_operators=operators("UNIQUE")),
            "second": plugin("second", marathon_constraint_operators=operators("UNIQUE")),
        },
    )
    with pytest.raises(PluginConflictError) as info:
        host.constraint_operators()
    message = str(info.value)
    assert "'UNIQUE'" in message
    assert "'first'" in message and "'second'" in message


def test_a_registry_entry_breaking_its_contract_stops_the_start() -> None:
    class ValidateOnly:
        def validate(self, app: object) -> list[object]:
            return []

    def marathon_container_runtimes() -> dict[str, ValidateOnly]:
        return {"DOCKER": ValidateOnly()}

    host = get_plugin_host(
        load_entrypoints=False,
        extra={"old": plugin("old", marathon_container_runtimes=marathon_container_runtimes)},
    )
    with pytest.raises(PluginError, match=r"runtime 'DOCKER' of old .* lacks build_task_info"):
        host.container_runtimes()


def test_a_misspelled_hook_is_refused() -> None:
    def marathon_constraint_operator() -> dict[str, str]:  # missing the final "s"
        return {}

    with pytest.raises(PluginError, match="unknown hook 'marathon_constraint_operator'"):
        get_plugin_host(
            load_entrypoints=False,
            extra={
                "typo": plugin("typo", marathon_constraint_operator=marathon_constraint_operator)
            },
        )


def test_blocked_builtin_is_not_loaded() -> None:
    host = get_plugin_host(load_entrypoints=False, blocked=["builtin-masters"])
    assert host.plugins() == []


def test_auth_defaults_to_allow_all() -> None:
    host = get_plugin_host(load_entrypoints=False)
    assert host.authenticate(request=object()) is ANONYMOUS  # type: ignore[arg-type]
    assert host.authorize(ANONYMOUS, Action.VIEW_RESOURCE, SystemResource.LEADER) is True


def test_auth_plugin_decides_when_installed() -> None:
    def marathon_authenticate(request: object) -> Identity:
        return Identity("alice")

    def marathon_authorize(identity: Identity, action: Action, resource: object) -> bool | None:
        return action is not Action.DELETE_RUN_SPEC

    host = get_plugin_host(
        load_entrypoints=False,
        extra={
            "auth": plugin(
                "auth",
                marathon_authenticate=marathon_authenticate,
                marathon_authorize=marathon_authorize,
            )
        },
    )
    alice = host.authenticate(request=object())  # type: ignore[arg-type]
    assert alice.name == "alice"
    assert host.authorize(alice, Action.VIEW_RUN_SPEC, "/prod/web") is True
    assert host.authorize(alice, Action.DELETE_RUN_SPEC, "/prod/web") is False


def test_master_urls_served_by_the_builtin() -> None:
    from marathon_core.mesos.detector import master_url_of

    assert master_url_of("http://10.0.0.1:5050/") == "http://10.0.0.1:5050"
    assert master_url_of("https://m.example:5050") == "https://m.example:5050"
    assert master_url_of("mesos-1:5050") == "http://mesos-1:5050"
    assert master_url_of("local") is None
    assert master_url_of("zk://zk:2181/mesos") is None
