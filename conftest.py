"""How the whole suite is spread over pytest-xdist workers (``-n 3 --dist loadgroup``).

Most tests that start processes spend their time waiting (on a schedule, a session
timeout, a process starting), so several run side by side even on two cores. A unit of
work is one test, or a whole file where the file has module-scoped fixtures (its
servers start once, on one worker); the users of the Docker Engine share a unit (one
``dockerd``). Units are handed out longest first, as far as the markers tell: ``slow``
tests, then the ones starting a cluster, a ZooKeeper, a Docker Engine or other
processes, then the unit tests, filling the workers' final minutes; ``alone`` tests
come last.

A test marked ``alone`` (one that needs the cores to itself: a 10,000-instance launch,
a bound on how long something takes) waits until no other test runs, and no test
starts until it is done: a readers-writer lock of two lock files that all workers share.
"""

from __future__ import annotations

import fcntl
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path

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
    if any(item.get_closest_marker("alone") for item in items):
        return len(RANKS) + 1  # last: the others wait while it runs, so nothing else is left
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


@contextmanager
def _turn(directory: Path, *, alone: bool) -> Iterator[None]:
    """Hold the room shared, or alone. The turnstile keeps new tests out while an
    ``alone`` test waits for the room to empty (flock would let them starve it)."""
    with open(directory / "turnstile", "a") as turnstile, open(directory / "room", "a") as room:
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        try:
            fcntl.flock(room, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        finally:
            if not alone:
                fcntl.flock(turnstile, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(room, fcntl.LOCK_UN)
            if alone:
                fcntl.flock(turnstile, fcntl.LOCK_UN)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """On an xdist worker, run the test inside the shared lock (see the module's doc)."""
    if not hasattr(item.config, "workerinput"):
        return (yield)
    # Every worker's temporary directory lies in the run's own (popen-gw0, popen-gw1, ...).
    directory = item.config._tmp_path_factory.getbasetemp().parent  # type: ignore[attr-defined]
    with _turn(directory, alone=item.get_closest_marker("alone") is not None):
        return (yield)
