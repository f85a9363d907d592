"""The ``runtime-mesos`` plugin: ``container.type: MESOS`` for the scheduler and agents."""

from __future__ import annotations

from collections.abc import Mapping

from marathon_core import hookimpl
from marathon_core.contracts.containerizers import AgentSettings, Containerizer
from marathon_core.contracts.runtimes import ContainerRuntime
from marathon_runtime_mesos.containerizer import MesosContainerizer
from marathon_runtime_mesos.runtime import MesosRuntime


@hookimpl
def marathon_container_runtimes() -> Mapping[str, ContainerRuntime]:
    """MESOS containers without image: validation and the TaskInfo's ``container``."""
    return {"MESOS": MesosRuntime()}


@hookimpl
def marathon_agent_containerizers(settings: AgentSettings) -> Mapping[str, Containerizer]:
    """The cgroup v1 containerizer the embedded agents use for MESOS containers."""
    return {"MESOS": MesosContainerizer(work_dir=settings.work_dir)}
