"""pytest fixtures for marathon-core and plugin authors (the ``marathon`` pytest11 plugin).

Fixtures:

``zookeeper``
    session-scoped: one real standalone ZooKeeper on a free loopback port
    (a :class:`~marathon_core.testing.zookeeper.ZooKeeperEnsemble` of one).
``zk_url``
    per test: ``zk://127.0.0.1:<port>/marathon-test/<uuid>`` on that server, so
    tests never see each other's nodes.
``zk_ensemble``
    per test: a fresh 3-node ensemble, for tests that kill or restart nodes.

Without ZooKeeper (Debian package ``zookeeper``, plus java) the tests that use
them are skipped with the reason, except under ``CI=true``, where a missing
prerequisite is a failure: a CI run that skipped its ZooKeeper tests is not
green.  Imports stay lazy so loading this plugin costs nothing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from marathon_core.testing.zookeeper import ZooKeeperEnsemble


def require_zookeeper() -> None:
    """Skip (or under ``CI=true`` fail) the current test if ZooKeeper cannot run here."""
    from marathon_core.testing.zookeeper import missing_zookeeper

    why = missing_zookeeper()
    if why is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"ZooKeeper is required when CI=true: {why}")
    pytest.skip(f"ZooKeeper not available: {why}")


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
