"""The scheduler side of ``container.type: DOCKER``: API-time rules and the TaskInfo.

Marathon's rules for a DOCKER app are mostly the core's already: the JSON shape of
``container.docker`` (``image`` non-empty, ``parameters`` with ``key`` and ``value``,
``protocol`` and ``mode`` enums), the deprecated ``docker.network`` and
``docker.portMappings`` turned into ``networks`` and ``container.portMappings``,
``credential`` refused, ``pullConfig`` refused, one container network at most, and the
port and network rules every container type shares. What is left here is what only
this runtime knows: the ``ContainerInfo`` it cannot build.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from marathon_core.errors import Violation
from marathon_core.model.app import AppDefinition, ExternalVolume
from marathon_runtime_docker.container_info import container_info

__all__ = ["EXTERNAL_VOLUMES_UNSUPPORTED", "DockerRuntime"]

EXTERNAL_VOLUMES_UNSUPPORTED = (
    "external volumes are not supported by the DOCKER runtime of this installation "
    "(no Docker volume driver is configured); use a host volume (hostPath)"
)


class DockerRuntime:
    """``marathon_container_runtimes()["DOCKER"]``: validation and TaskInfo building."""

    def validate(self, app: AppDefinition) -> Iterator[Violation]:
        container = app.container
        if container is None:
            return
        for i, volume in enumerate(container.volumes):
            if isinstance(volume, ExternalVolume):
                yield Violation(f"/container/volumes({i})", EXTERNAL_VOLUMES_UNSUPPORTED)

    def build_task_info(
        self, *, app: AppDefinition, task_info: dict[str, Any], host_ports: Sequence[int]
    ) -> None:
        task_info["container"] = container_info(app, host_ports)
