"""Fixtures: one private Docker Engine per test session (marathon_runtime_docker.testing)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from marathon_core.testing.pytest_plugin import in_ci
from marathon_runtime_docker.testing import Dockerd, dockerd_missing, running_dockerd


@pytest.fixture(scope="session")
def dockerd() -> Iterator[Dockerd]:
    """A Docker Engine of the tests' own with ``busybox:local``; removed at the end."""
    why = dockerd_missing()
    if why is not None:
        if in_ci():
            pytest.fail(f"a Docker Engine is required when CI=true: {why}")
        pytest.skip(f"no Docker Engine: {why}")
    with running_dockerd() as daemon:
        yield daemon
