"""The scheduler side of ``container.type: DOCKER`` (placeholder: being written)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from marathon_core.errors import Violation
from marathon_core.model.app import AppDefinition

__all__ = ["DockerRuntime"]


class DockerRuntime:
    """``marathon_container_runtimes()["DOCKER"]``: validation and TaskInfo building."""

    def validate(self, app: AppDefinition) -> Iterator[Violation]:
        return iter(())

    def build_task_info(self, *, app: AppDefinition, task_info: dict[str, Any]) -> None:
        assert app.container is not None and app.container.docker is not None
        task_info["container"] = {"type": "DOCKER", "docker": {"image": app.container.docker.image}}
