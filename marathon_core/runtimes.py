"""The agent-side containerizer protocol that runtime plugins implement.

The embedded Mesos agents run every task through the containerizer registered for
its container type (hook ``marathon_agent_containerizers``). A containerizer starts
the task's process or container, reports how it ended and stops it with Mesos's kill
policy (SIGTERM, then SIGKILL after the grace period). The scheduler-side half of a
runtime (validation, TaskInfo building) is
:class:`marathon_core.model.validation.ContainerRuntime`.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import attrs
import trio

__all__ = [
    "CONTAINER_MARKER",
    "Containerizer",
    "Launch",
    "Running",
    "Termination",
    "process_alive",
    "read_task_record",
    "start_task_process",
]

#: Every process of a task carries ``CONTAINER_MARKER=<container id>`` in its
#: environment, whichever containerizer started it: the embedded agents find a
#: container's processes (and those left behind at shutdown) by it.
CONTAINER_MARKER = "MESOS_LOCAL_CONTAINER"


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


class Containerizer(Protocol):
    """Starts tasks of one container type and finds them again after an agent restart."""

    async def launch(self, launch: Launch) -> Running:
        """Start the task; raise an exception (its text becomes TASK_FAILED's message)."""
        ...

    async def recover(self, container_id: str, sandbox: Path) -> Running | None:
        """Reattach to a task that survived an agent restart, or None if it is gone."""
        ...


def process_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b") ", 1)[1][:1] != b"Z"
    except (OSError, IndexError):
        return False


def _record_path(sandbox: Path) -> Path:
    return sandbox.parent / f".{sandbox.name}.container"


async def start_task_process(
    launch: Launch, container_id: str, *, preexec_fn: Callable[[], None] | None = None
) -> trio.Process:
    """Start ``launch``'s command in its sandbox, as Mesos's command executor would.

    stdout and stderr go to files in the sandbox, the environment carries
    :data:`CONTAINER_MARKER`, and a record next to the sandbox (pid and container id)
    lets a restarted agent find the task again (:func:`read_task_record`).
    """
    if launch.command is None:
        raise ValueError("CommandInfo has no value to run")
    launch.sandbox.mkdir(parents=True, exist_ok=True)
    if launch.shell:
        argv: list[str] = ["/bin/sh", "-c", launch.command]
        executable = None
    else:
        argv = list(launch.arguments) or [launch.command]
        executable = launch.command
    env = {**launch.environment, CONTAINER_MARKER: container_id}
    with (
        open(launch.sandbox / "stdout", "ab") as stdout,
        open(launch.sandbox / "stderr", "ab") as stderr,
    ):
        process = await trio.lowlevel.open_process(
            argv,
            executable=executable,
            cwd=str(launch.sandbox),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            preexec_fn=preexec_fn,
        )
    _record_path(launch.sandbox).write_text(f"{process.pid}\n{container_id}\n")
    return process


def read_task_record(sandbox: Path) -> tuple[int, str] | None:
    """(pid, container id) that :func:`start_task_process` recorded for ``sandbox``."""
    try:
        pid_text, container_id = _record_path(sandbox).read_text().split("\n")[:2]
        return int(pid_text), container_id
    except (OSError, ValueError):
        return None
