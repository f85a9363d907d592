"""The scheduler-side container runtime contract (hook ``marathon_container_runtimes``).

A runtime owns one ``container.type``: at API time it checks the rules Marathon has
for that type, at launch time it adds the container to the Mesos ``TaskInfo`` the
core built (command, resources, environment). Its agent-side half is a
:class:`~marathon_core.contracts.containerizers.Containerizer`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from marathon_core.errors import Violation
from marathon_core.model.app import AppDefinition

__all__ = ["ContainerRuntime"]


class ContainerRuntime(Protocol):
    """One container type: API-time validation and TaskInfo building."""

    def validate(self, app: AppDefinition) -> Iterable[Violation]:
        """Runtime-specific problems of ``app`` (whose ``container.type`` is this runtime's).

        Called after the core's own rules; paths are Marathon paths (``/container/...``).
        Must not block and must not raise for a bad app: return violations instead.
        """
        ...

    def build_task_info(
        self, *, app: AppDefinition, task_info: dict[str, Any], host_ports: Sequence[int]
    ) -> None:
        """Add the container (and anything runtime-specific) to ``task_info`` in place.

        ``task_info`` is a Mesos v1 ``TaskInfo`` in JSON form with the command,
        resources and Marathon's environment already set. ``host_ports`` are the
        ports the core took from the offer, in Marathon's order: one per
        ``portDefinitions`` entry with host networking, otherwise one per
        ``container.portMappings`` entry that has a ``hostPort``, in order (a
        ``hostPort`` of 0 got any offered port, a fixed one is that very port);
        a runtime that maps ports (Docker BRIDGE) needs them for its mappings.
        Called on the event loop for every launch: no I/O.
        """
        ...
