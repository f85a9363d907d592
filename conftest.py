"""How the whole suite is spread over pytest-xdist workers (``-n 3 --dist loadgroup``).

Most tests that start processes spend their time waiting (on a schedule, a session
timeout, a process starting), so several run side by side even on two cores. A unit of
work is one test, or a whole file where the file has module-scoped fixtures (its
servers start once, on one worker); the users of the Docker Engine share a unit (one
``dockerd``). Units are handed out longest first, as far as the markers tell: ``slow``
tests, then the ones starting a cluster, a ZooKeeper, a Docker Engine or other
processes, and the unit tests last, filling the workers' final minutes.
"""

from __future__ import annotations

import pytest

#: Units of work, longest first: the first of these markers a unit's tests carry ranks it.
RANKS = ("slow", "cluster", "zookeeper", "docker", "processes")


def _shares_module_fixtures(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(
        definition.scope in ("module", "class", "package")
        for definitions in info.name2fixturedefs.values()
        for definition in definitions
    )


def _unit(item: pytest.Item) -> str:
    if "dockerd" in getattr(item, "fixturenames", ()):
        return "dockerd"
    path = item.nodeid.split("::", 1)[0]
    return path if _shares_module_fixtures(item) else item.nodeid


def _rank(items: list[pytest.Item]) -> int:
    for rank, marker in enumerate(RANKS):
        if any(item.get_closest_marker(marker) for item in items):
            return rank
    return len(RANKS)


def _spread(config: pytest.Config) -> bool:
    return config.pluginmanager.hasplugin("xdist") and config.getoption("dist") == "loadgroup"


def pytest_configure(config: pytest.Config) -> None:
    if _spread(config):
        # Hand the units out in the order below, not by how many tests each holds.
        config.option.loadscopereorder = False


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Units longest first, and an ``xdist_group`` for each unit of several tests
    (tryfirst: before xdist turns the groups into node ids). Every worker sorts alike,
    as xdist requires."""
    if not _spread(config):
        return
    units: dict[str, list[pytest.Item]] = {}
    for item in items:
        units.setdefault(_unit(item), []).append(item)
    ordered = sorted(units.values(), key=_rank)  # stable: collection order within a rank
    items[:] = [item for unit in ordered for item in unit]
    for name, unit in units.items():
        if name != unit[0].nodeid:
            for item in unit:
                item.add_marker(pytest.mark.xdist_group(name))
