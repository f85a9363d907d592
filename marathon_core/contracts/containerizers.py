"""The agent-side containerizer contract that runtime plugins implement.

The embedded Mesos agents run every task through the containerizer registered for
its container type (hook ``marathon_agent_containerizers``). A containerizer starts
the task's process or container, reports how it ended and stops it with Mesos's kill
policy (SIGTERM, then SIGKILL after the grace period), and runs commands inside a
running task (:meth:`Running.exec`: the agent's COMMAND health checks, run in the
task's context as Mesos runs them). The scheduler-side half of a
runtime (validation, TaskInfo building) is
:class:`marathon_core.contracts.runtimes.ContainerRuntime`; the process handling both
containerizers share is :mod:`marathon_core.task_process`.
"""

from __future__ import annotations

import signal
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import attrs

__all__ = ["AgentSettings", "Containerizer", "Launch", "Running", "Termination"]

#: Mesos's agent flag ``--containerizers`` by default: only the ``mesos`` one.
DEFAULT_CONTAINERIZERS = frozenset({"mesos"})
#: Mesos's agent flag ``--docker_socket`` by default.
DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock"


@attrs.frozen(kw_only=True)
class AgentSettings:
    """The flags of the agent that asks for containerizers (``marathon_agent_containerizers``).

    Named as Mesos names its agent flags, so a containerizer reads what a Mesos agent
    would have been given.
    """

    #: The agent's work directory; unique per agent on a machine, so containerizers
    #: that share a daemon (or a cgroup root) tell their own containers by it.
    work_dir: Path
    #: ``--containerizers``: the enabled ones by name (``mesos``, ``docker``: a container
    #: type in lower case). Tasks of any other container type fail on this agent.
    containerizers: frozenset[str] = DEFAULT_CONTAINERIZERS
    #: ``--docker_socket``: the Docker Engine's unix socket.
    docker_socket: str = DEFAULT_DOCKER_SOCKET


@attrs.frozen
class Launch:
    """Everything a containerizer needs to start one task."""

    task_id: str
    #: Shell command (``/bin/sh -c``) when ``shell`` is true, else the executable.
    command: str | None
    arguments: Sequence[str]
    shell: bool
    environment: Mapping[str, str]
    #: The task's sandbox; stdout and stderr files go here.
    sandbox: Path
    #: Resources of the task, e.g. ``{"cpus": 0.5, "mem": 128.0}``.
    resources: Mapping[str, float]
    #: The task's ``ContainerInfo`` as Mesos v1 JSON, or None for a plain command.
    container: Mapping[str, Any] | None = None
    #: The user the task runs as (``CommandInfo.user``), or None for the agent's own.
    user: str | None = None


@attrs.frozen
class Termination:
    """How a task ended: exit status or signal, and a message for TaskStatus."""

    exit_code: int | None
    signal: int | None = None
    message: str = ""
    #: True when the task was killed for exceeding its memory limit.
    oom_killed: bool = False

    @classmethod
    def from_wait_status(cls, returncode: int) -> Termination:
        """The command executor's wording for a wait status (negative: a signal)."""
        if returncode < 0:
            sig = -returncode
            name = signal.strsignal(sig) or f"signal {sig}"
            return cls(None, signal=sig, message=f"Command terminated with signal {name}")
        return cls(returncode, message=f"Command exited with status {returncode}")


class Running(Protocol):
    """A started task."""

    @property
    def container_id(self) -> str: ...

    async def wait(self) -> Termination:
        """Return once the task has ended, however it ended."""
        ...

    async def kill(self, *, grace_period: float) -> None:
        """Stop the task: SIGTERM, then SIGKILL after ``grace_period`` seconds."""
        ...

    async def exec(self, command: Launch) -> Termination:
        """Run ``command`` inside this task's container and wait for it to end.

        What Mesos does for a COMMAND health check: the command runs where the task runs
        (a plain task's user, sandbox and environment, which ``command`` carries; the
        cgroups of a MESOS container; ``docker exec`` in a Docker container), its output
        appended to the sandbox's ``stderr``. Cancelling the call kills what it started
        (as Mesos kills a check that outlasts its timeout); a command that cannot be
        started at all raises.
        """
        ...


class Containerizer(Protocol):
    """Starts tasks of one container type and finds them again after an agent restart."""

    async def launch(self, launch: Launch) -> Running:
        """Start the task; raise an exception (its text becomes TASK_FAILED's message)."""
        ...

    async def recover(self, container_id: str, sandbox: Path) -> Running | None:
        """Reattach to a task that survived an agent restart, or None if it is gone."""
        ...

    async def remove_orphans(self, known: Collection[str]) -> None:
        """Destroy this agent's containers whose id is not in ``known``.

        Called once when the agent starts, before it recovers anything: ``known`` are
        the container ids of the tasks it will recover. Anything else of this agent
        (started by a run that died before it checkpointed the task, or belonging to a
        previous boot) is left over and would hold resources nobody accounts for.
        """
        ...
