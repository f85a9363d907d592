"""The agent's options and its records of tasks and default executors."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import attrs
import trio

from marathon_core.contracts.containerizers import (
    DEFAULT_CONTAINERIZERS,
    DEFAULT_DOCKER_SOCKET,
    AgentSettings,
    Running,
)
from marathon_mesos_local.resources import DEFAULT_RESOURCES, Resources

__all__ = ["AgentOptions", "ExecutorRun", "TaskRun"]

#: The kill grace period of the command and the default executor when no kill policy
#: says otherwise (``src/launcher/executor.cpp``, ``default_executor.cpp``).
DEFAULT_GRACE_PERIOD = 3.0
#: Grace period for tasks when the agent itself shuts down.
SHUTDOWN_GRACE_PERIOD = 1.0
#: How long a stopping agent tries to unregister from the master.
UNREGISTER_TIMEOUT = 2.0
#: Status update retries: 10 s doubling to 10 min (``src/slave/constants.hpp``).
STATUS_UPDATE_RETRY_MIN = 10.0
STATUS_UPDATE_RETRY_MAX = 600.0


@attrs.frozen(kw_only=True)
class AgentOptions:
    """Where the agent's master is, where the agent listens, what it offers."""

    master: str
    ip: str
    port: int = 5051
    work_dir: Path
    resources: Resources = attrs.field(factory=lambda: Resources.parse(DEFAULT_RESOURCES))
    attributes: list[dict[str, Any]] = attrs.field(factory=list)
    status_update_retry: float = STATUS_UPDATE_RETRY_MIN
    parent_pid: int | None = None
    #: Identifies the machine's boot (see :mod:`marathon_mesos_local.host`); checkpoints
    #: of another boot are not recovered.
    boot_id: str | None = None
    #: Mesos's ``--containerizers``: the enabled ones by name (``mesos``, ``docker``);
    #: plain command tasks always run.
    containerizers: frozenset[str] = DEFAULT_CONTAINERIZERS
    #: Mesos's ``--docker_socket``.
    docker_socket: str = DEFAULT_DOCKER_SOCKET

    def settings(self) -> AgentSettings:
        """What the runtime plugins' containerizers are told about this agent."""
        return AgentSettings(
            work_dir=self.work_dir,
            containerizers=self.containerizers,
            docker_socket=self.docker_socket,
        )


@attrs.define(eq=False)
class TaskRun:
    """One task on this agent and its status-update stream."""

    framework_id: str
    framework_info: dict[str, Any]
    info: dict[str, Any]
    run_id: str
    sandbox: Path
    running: Running | None = None
    state: str = "TASK_STAGING"
    kill: trio.Event = attrs.field(factory=trio.Event)
    grace_period: float | None = None
    killed: bool = False
    updates: deque[dict[str, Any]] = attrs.field(factory=deque)
    #: Set when the head update is acknowledged.
    acked: trio.Event = attrs.field(factory=trio.Event)
    sender_running: bool = False
    container_id: str | None = None
    #: The containerizer that runs it: ``"command"`` or a container type.
    containerizer: str | None = None
    #: Ids of the tasks of its task group (empty for a command task).
    group: tuple[str, ...] = ()
    #: Its group is being killed because a task of it failed or was killed.
    killing_group: bool = False
    #: Killed by the agent because its health check failed too often.
    killed_by_health_check: bool = False

    @property
    def id(self) -> str:
        return str(self.info["task_id"]["value"])

    @property
    def executor_id(self) -> str:
        """Its executor: the group's default executor, or the command executor (whose
        id is the task's)."""
        executor = self.info.get("executor")
        return str(executor["executor_id"]["value"]) if executor else self.id

    @property
    def capabilities(self) -> set[str]:
        return {c.get("type", "") for c in self.framework_info.get("capabilities", [])}


@attrs.define(eq=False)
class ExecutorRun:
    """A default executor: the task groups it runs, until its last task has ended."""

    framework_id: str
    info: dict[str, Any]
    sandbox: Path
    #: Ids of its tasks that have not ended yet.
    live: set[str] = attrs.field(factory=set)
    #: Shut down by the scheduler or the agent: no group kills, its tasks are killed.
    shutting_down: bool = False

    @property
    def id(self) -> str:
        return str(self.info["executor_id"]["value"])
