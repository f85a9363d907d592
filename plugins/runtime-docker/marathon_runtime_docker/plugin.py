"""The ``runtime-docker`` plugin: ``container.type: DOCKER`` for the scheduler and agents."""

from __future__ import annotations

from collections.abc import Mapping

from marathon_core import hookimpl
from marathon_core.contracts.containerizers import AgentSettings, Containerizer
from marathon_core.contracts.runtimes import ContainerRuntime
from marathon_runtime_docker.containerizer import DockerContainerizer
from marathon_runtime_docker.runtime import DockerRuntime


@hookimpl
def marathon_container_runtimes() -> Mapping[str, ContainerRuntime]:
    """Marathon's rules for DOCKER apps and the ``ContainerInfo`` sent to Mesos."""
    return {"DOCKER": DockerRuntime()}


@hookimpl
def marathon_agent_containerizers(settings: AgentSettings) -> Mapping[str, Containerizer]:
    """The Docker Engine containerizer on the agent's ``--docker_socket`` (used only
    where ``--containerizers`` names ``docker``; it connects at the first launch)."""
    return {"DOCKER": DockerContainerizer(settings.docker_socket, work_dir=settings.work_dir)}
