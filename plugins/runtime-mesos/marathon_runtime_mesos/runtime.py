"""The scheduler side of ``container.type: MESOS``: API-time rules and the TaskInfo.

A MESOS container here has no image: the task runs on the agent's own filesystem,
as Mesos's ``MesosContainerizer`` runs a ``ContainerInfo`` without ``mesos.image``.
No image registry is reachable from this project's agents, so an image
(``container.docker.image`` under a MESOS container) is a 422 rather than a task
that can never start. Host volumes are supported when their ``containerPath`` is
relative (the agent links it into the sandbox); an absolute one would need a mount
namespace, which this runtime does not create.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from marathon_core.errors import Violation
from marathon_core.model.app import AppDefinition, HostVolume

__all__ = ["IMAGES_UNSUPPORTED", "MesosRuntime", "container_info"]

IMAGES_UNSUPPORTED = (
    "container images are not supported by the MESOS runtime of this installation "
    "(no image registry is reachable); remove the image to run the command on the "
    "agent's filesystem"
)


def container_info(app: AppDefinition) -> dict[str, Any]:
    """The ``ContainerInfo`` (Mesos v1 JSON) of a MESOS app without image."""
    info: dict[str, Any] = {"type": "MESOS", "mesos": {}}
    assert app.container is not None
    volumes = [
        {"container_path": v.container_path, "host_path": v.host_path, "mode": v.mode}
        for v in app.container.volumes
        if isinstance(v, HostVolume)
    ]
    if volumes:
        info["volumes"] = volumes
    return info


class MesosRuntime:
    """``marathon_container_runtimes()["MESOS"]``: validation and TaskInfo building."""

    def validate(self, app: AppDefinition) -> Iterator[Violation]:
        c = app.container
        if c is None:
            return
        if c.docker is not None:
            yield Violation("/container/docker/image", IMAGES_UNSUPPORTED)
        for i, v in enumerate(c.volumes):
            path = f"/container/volumes({i})"
            if not isinstance(v, HostVolume):
                yield Violation(
                    path, "only host volumes (hostPath) are supported by the MESOS runtime"
                )
                continue
            if v.container_path.startswith("/"):
                yield Violation(
                    f"{path}/containerPath",
                    "must be relative to the sandbox: the MESOS runtime runs tasks without "
                    "an image or mount namespace",
                )
            elif ".." in v.container_path.split("/"):
                yield Violation(f"{path}/containerPath", 'must not contain ".."')
            if not v.host_path.startswith("/"):
                yield Violation(f"{path}/hostPath", "must be an absolute path")
            if v.mode not in ("RW", "RO"):
                yield Violation(f"{path}/mode", "must be RW or RO")

    def build_task_info(
        self, *, app: AppDefinition, task_info: dict[str, Any], host_ports: Sequence[int]
    ) -> None:
        """The container part; host ports need no mapping (tasks share the agent's network)."""
        task_info["container"] = container_info(app)
