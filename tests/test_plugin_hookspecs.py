"""Hooks that plugins specify for each other (``marathon_addhooks``): the REST frontend
takes routes from other plugins this way."""

from __future__ import annotations

import types

import pluggy
import pytest

from marathon_core import PROJECT_NAME, hookimpl
from marathon_core.errors import PluginError
from marathon_core.hookspecs import HookspecAdder
from marathon_core.plugins import get_plugin_host

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


class Specs:
    @hookspec
    def marathon_example_widgets(self, size: int) -> list[str] | None:
        """A hook of the ``host`` plugin."""


@hookimpl
def marathon_addhooks(pluginmanager: HookspecAdder) -> None:
    pluginmanager.add_hookspecs(Specs)


@hookimpl
def marathon_example_widgets(size: int) -> list[str]:
    return [f"widget-{size}"]


HOST = types.SimpleNamespace(__name__="host", marathon_addhooks=marathon_addhooks)
EXTENSION = types.SimpleNamespace(__name__="ext", marathon_example_widgets=marathon_example_widgets)


@pytest.mark.parametrize("order", [("host", "ext"), ("ext", "host")])
def test_a_plugin_hook_is_implemented_by_others_whatever_the_load_order(
    order: tuple[str, str],
) -> None:
    plugins = {"host": HOST, "ext": EXTENSION}
    host = get_plugin_host(load_entrypoints=False, extra={n: plugins[n] for n in order})
    assert host.call_extension("marathon_example_widgets", size=3) == [["widget-3"]]


def test_an_implementation_of_a_hook_nobody_specifies_is_refused() -> None:
    with pytest.raises(PluginError, match="unknown hook 'marathon_example_widgets'"):
        get_plugin_host(load_entrypoints=False, extra={"ext": EXTENSION})


def test_calling_a_hook_nobody_specifies_is_an_error() -> None:
    host = get_plugin_host(load_entrypoints=False)
    with pytest.raises(PluginError, match="no plugin specifies"):
        host.call_extension("marathon_example_widgets", size=1)


def test_an_optional_implementation_waits_for_a_plugin_that_may_be_absent() -> None:
    @hookimpl(optionalhook=True)
    def marathon_example_widgets(size: int) -> list[str]:
        return []

    optional = types.SimpleNamespace(
        __name__="opt", marathon_example_widgets=marathon_example_widgets
    )
    get_plugin_host(load_entrypoints=False, extra={"opt": optional})
