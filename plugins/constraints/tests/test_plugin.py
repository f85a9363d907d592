"""The installed distribution is discovered through its ``marathon`` entry point."""

from __future__ import annotations

import importlib.metadata

import pluggy

from marathon_core import PROJECT_NAME, hookspecs
from marathon_core.contracts.placement import ConstraintOperator

EXPECTED = {"UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS"}


def test_entry_point_is_installed() -> None:
    eps = importlib.metadata.entry_points(group="marathon")
    ours = [ep for ep in eps if ep.name == "constraints"]
    assert [ep.value for ep in ours] == ["marathon_constraints.plugin"]
    assert ours[0].dist is not None and ours[0].dist.name == "marathon-constraints"


def test_pluggy_loads_the_operators_from_the_entry_point() -> None:
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.load_setuptools_entrypoints("marathon", name="constraints")
    pm.check_pending()
    results = pm.hook.marathon_constraint_operators()
    merged: dict[str, ConstraintOperator] = {}
    for result in results:
        merged.update(result or {})
    assert set(merged) >= EXPECTED
    assert all(isinstance(op, ConstraintOperator) for op in merged.values())


def test_core_plugin_host_merges_the_operators() -> None:
    from marathon_core.plugins import get_plugin_host

    # Other plugins installed in the same environment are not this test's business.
    others = {ep.name for ep in importlib.metadata.entry_points(group="marathon")} - {"constraints"}
    host = get_plugin_host(blocked=others)
    operators = host.constraint_operators()
    assert set(operators) >= EXPECTED
    names = {info.name: info for info in host.plugins()}
    assert names["constraints"].distribution == "marathon-constraints"
    assert "marathon_constraint_operators" in names["constraints"].hooks
