"""pytest fixtures and markers for marathon-core and plugin authors (pytest11 ``marathon``).

Markers (``pytest -m "not processes"`` is the unit run):

``processes``
    the test starts OS processes: a ZooKeeper, embedded Mesos agents, a ``marathon``
    server, a helper server, pip.  A test that starts a process without this marker
    (or one of the two below, which imply it) fails, saying so: the unit run cannot
    silently grow slow.
``zookeeper``
    the test needs a real ZooKeeper; given to every user of the ZooKeeper fixtures below.
``cluster(**options)``
    the test runs an embedded Mesos cluster (master and agent processes); the options
    shape the cluster of marathon-mesos-local's ``cluster`` test fixture.
``docker``
    the test runs a Docker Engine of its own (a ``dockerd`` its fixtures start and
    stop; see marathon-runtime-docker's tests).
``slow``
    the test takes half a minute or more on idle cores (a schedule to play out, a soak,
    a 10,000-instance launch); the repository's ``conftest.py`` starts these first when
    the suite is spread over pytest-xdist workers, so none of them is left to run alone
    at the end.
``alone``
    the test needs the cores to itself: it loads them (a 10,000-instance launch) or
    bounds how long something takes; spread over pytest-xdist workers, it runs while
    no other test does (the repository's ``conftest.py``).

Fixtures:

``zookeeper``
    session-scoped: one real standalone ZooKeeper on a free loopback port
    (a :class:`~marathon_core.testing.zookeeper.ZooKeeperEnsemble` of one).
``zk_url``
    per test: ``zk://127.0.0.1:<port>/marathon-test/<uuid>`` on that server, so
    tests never see each other's nodes.
``zk_ensemble``
    per test: a fresh 3-node ensemble, for tests that kill or restart nodes.
``mesos_pb``
    session-scoped: the real Mesos v1 protos compiled
    (:mod:`~marathon_core.testing.mesos_protos`), or None where they are not found,
    for tests that check what they can.
``mesos_protos``
    the same for contract tests, which are skipped without them.

Without ZooKeeper (Debian package ``zookeeper``, plus java) or the protos the tests
that use them are skipped with the reason, except under ``CI=true``, where a missing
prerequisite is a failure: a CI run that skipped its ZooKeeper or contract tests is
not green.  Imports stay lazy so loading this plugin costs nothing.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Generator, Iterator
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from marathon_core.testing.zookeeper import ZooKeeperEnsemble

MARKERS = (
    "processes: starts OS processes (ZooKeeper, Mesos agents, marathon, a helper server, pip)",
    "zookeeper: needs a real ZooKeeper (implies processes)",
    "cluster(**options): runs an embedded Mesos cluster with agent processes (implies processes)",
    "docker: runs a Docker Engine of its own (implies processes)",
    "slow: takes half a minute or more on idle cores (started first when spread over workers)",
    "alone: needs the cores to itself (never beside another test when spread over workers)",
)

#: Markers that imply ``processes``, and the fixtures that give their users one.
IMPLY_PROCESSES = ("zookeeper", "cluster", "docker")
ZOOKEEPER_FIXTURES = frozenset({"zookeeper", "zk_url", "zk_ensemble"})

MISSING_PROTOS = "Mesos protos not found (tests/data/mesos-protos, or $MESOS_PROTOS_DIR)"

#: Audit events of a process being started.
_PROCESS_STARTS = frozenset({"subprocess.Popen", "os.posix_spawn", "os.fork", "os.system"})
#: The processes the running test started (audit event, arguments); None between tests.
_started: list[tuple[str, tuple[Any, ...]]] | None = None
_audit_hook_added = False


def in_ci() -> bool:
    """Whether this is a CI run (``CI=true``), where a missing prerequisite fails."""
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def require_zookeeper() -> None:
    """Skip (or under ``CI=true`` fail) the current test if ZooKeeper cannot run here."""
    from marathon_core.testing.zookeeper import missing_zookeeper

    why = missing_zookeeper()
    if why is None:
        return
    if in_ci():
        pytest.fail(f"ZooKeeper is required when CI=true: {why}")
    pytest.skip(f"ZooKeeper not available: {why}")


def _note_process_start(event: str, args: tuple[Any, ...]) -> None:
    if _started is not None and event in _PROCESS_STARTS:
        _started.append((event, args))


def pytest_configure(config: pytest.Config) -> None:
    global _audit_hook_added
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    if not _audit_hook_added:  # audit hooks stay for the life of the interpreter
        sys.addaudithook(_note_process_start)
        _audit_hook_added = True


@pytest.hookimpl(trylast=True)
def pytest_itemcollected(item: pytest.Item) -> None:
    """Mark the users of the ZooKeeper fixtures; ``zookeeper``, ``cluster`` and
    ``docker`` imply ``processes`` (trylast: after conftests marked their own fixtures' users)."""
    if ZOOKEEPER_FIXTURES & set(getattr(item, "fixturenames", ())):
        item.add_marker(pytest.mark.zookeeper)
    if item.get_closest_marker("processes") is None and any(
        item.get_closest_marker(name) for name in IMPLY_PROCESSES
    ):
        item.add_marker(pytest.mark.processes)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    global _started
    _started = []
    try:
        return (yield)
    finally:
        _started = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Fail a passing test that started a process without being marked ``processes``."""
    report = yield
    unmarked = item.get_closest_marker("processes") is None
    if report.when == "call" and report.passed and _started and unmarked:
        event, args = _started[0]
        what = args[1] if event == "subprocess.Popen" else args[:1]
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} started {len(_started)} process(es), the first "
            f"{event} {what!r}, but is not marked: mark it `processes` (or `cluster` / "
            "`zookeeper` / `docker`), so that `pytest -m 'not processes'` stays a unit run"
        )
    return report


@pytest.fixture(scope="session")
def zookeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperEnsemble]:
    """A standalone ZooKeeper for the whole session; stopped and removed at its end."""
    require_zookeeper()
    from marathon_core.testing.zookeeper import running_zookeeper

    with running_zookeeper(tmp_path_factory.mktemp("zookeeper")) as ensemble:
        yield ensemble


@pytest.fixture
def zk_url(zookeeper: ZooKeeperEnsemble) -> str:
    """A ``zk://`` URL with a chroot path of its own on the session's ZooKeeper."""
    return zookeeper.url(f"/marathon-test/{uuid.uuid4().hex}")


@pytest.fixture
def zk_ensemble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperEnsemble]:
    """A fresh 3-node ensemble on loopback; the test may kill and restart its nodes."""
    require_zookeeper()
    from marathon_core.testing.zookeeper import running_zookeeper

    with running_zookeeper(tmp_path_factory.mktemp("zk-ensemble"), size=3) as ensemble:
        yield ensemble


@pytest.fixture(scope="session")
def mesos_pb(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimpleNamespace | None]:
    """The real Mesos protos compiled once, or None where they are not found (a failure
    under ``CI=true``, where every contract check has to run)."""
    from marathon_core.testing.mesos_protos import compiled_protos, find_protos

    protos = find_protos(pytestconfig.rootpath)
    if protos is None:
        if in_ci():
            pytest.fail(f"{MISSING_PROTOS}; CI=true, so contract checks may not be skipped")
        yield None
        return
    with compiled_protos(protos, tmp_path_factory.mktemp("mesos_pb")) as compiled:
        yield compiled


@pytest.fixture
def mesos_protos(mesos_pb: SimpleNamespace | None) -> SimpleNamespace:
    """The compiled protos for a contract test; skipped without them."""
    if mesos_pb is None:
        pytest.skip(MISSING_PROTOS)
    return mesos_pb
