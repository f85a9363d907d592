"""Fixtures: a private cgroup root per test, removed with everything in it afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from marathon_runtime_mesos.cgroups import CONTROLLERS, MOUNT, TaskCgroups, kill_now, own_paths


def cgroups_missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create cgroups"
    if not (MOUNT / "memory").is_dir():
        return f"no cgroup v1 memory hierarchy at {MOUNT / 'memory'}"
    return None


needs_cgroups = pytest.mark.skipif(cgroups_missing() is not None, reason=str(cgroups_missing()))


def root_dirs(name: str) -> list[Path]:
    own = own_paths()
    return [MOUNT / c / own.get(c, "/").lstrip("/") / name for c in CONTROLLERS]


def destroy_root(name: str) -> None:
    """Kill every process in the containers under ``name`` and remove their cgroups."""
    ids = {
        child.name for d in root_dirs(name) if d.is_dir() for child in d.iterdir() if child.is_dir()
    }
    for container_id in ids:
        kill_now(TaskCgroups.of(container_id, name))
    for d in root_dirs(name):
        if d.is_dir():
            d.rmdir()


@pytest.fixture
def cgroup_root() -> Iterator[str]:
    """A cgroup directory name of this test's own; nothing is left under it afterwards."""
    name = f"marathon-mesos-test-{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        destroy_root(name)
