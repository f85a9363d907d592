"""The command containerizer: a task with no container is a process of the agent's machine.

A task runs in the agent's process group (so that powering off the agent's machine,
``killpg`` of that group, takes the task with it) and carries the variable
``MESOS_LOCAL_CONTAINER=<container id>`` that its descendants inherit. That marker is
how a task's processes are found when it is killed: SIGTERM to all of them, SIGKILL
after the kill policy's grace period, and SIGKILL to whatever is left once the main
process ends, as Mesos does when it destroys a container. Processes that both leave
the process group (``setsid``) and clear their environment escape both nets; nothing
short of a PID namespace or cgroup would catch those.

A command run in a task (:meth:`~_Stoppable.exec`, a COMMAND health check) carries
the same marker, as the task's user in its sandbox.

At agent start, task processes under the agent's work dir whose container no
recovered task owns (the agent died before it checkpointed them) are SIGKILLed.

Its stdout and stderr go to files in the sandbox. Each launch leaves a small record
next to the sandbox (``runs/.<run>.container``: pid and container id) so that a
restarted agent can :meth:`~CommandContainerizer.recover` the task; the exit status of
a task whose agent died is written by the agent's host process (see :mod:`.host`).
"""

from __future__ import annotations

import abc
import contextlib
import os
import signal
import uuid
from collections.abc import Collection
from pathlib import Path

import trio

from marathon_core.contracts.containerizers import Launch, Termination
from marathon_core.task_process import (
    CONTAINER_MARKER,
    process_alive,
    read_task_record,
    run_in_task,
    start_task_process,
)

__all__ = [
    "CommandContainerizer",
    "CommandProcess",
    "RecoveredProcess",
    "container_pids",
]

#: How often a recovered task (not our child) is checked for exit.
RECOVERED_POLL = 0.1


def _has_marker(pid: int, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return marker in f.read().split(b"\0")
    except OSError:
        return False


def container_pids(container_id: str) -> list[int]:
    """Live processes that carry the container's marker."""
    marker = f"{CONTAINER_MARKER}={container_id}".encode()
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit() and _has_marker(int(entry.name), marker):
                pid = int(entry.name)
                if process_alive(pid):
                    found.append(pid)
    return found


def signal_container(container_id: str, sig: int, *also: int) -> None:
    """Send ``sig`` to every process of a container (and to ``also``)."""
    for pid in {*container_pids(container_id), *also}:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


class _Stoppable(abc.ABC):
    """Kill and wait logic shared by launched and recovered tasks."""

    def __init__(self, pid: int | None, container_id: str) -> None:
        self._pid = pid
        self._container_id = container_id
        self._termination: Termination | None = None

    @property
    def container_id(self) -> str:
        return self._container_id

    @property
    def pid(self) -> int | None:
        return self._pid

    def _signal(self, sig: int) -> None:
        signal_container(self._container_id, sig, *([] if self._pid is None else [self._pid]))

    @abc.abstractmethod
    async def wait(self) -> Termination: ...

    async def kill(self, *, grace_period: float) -> None:
        if self._termination is not None:
            return
        self._signal(signal.SIGTERM)
        with trio.move_on_after(max(grace_period, 0.0)):
            await self.wait()
            return
        self._signal(signal.SIGKILL)

    async def exec(self, command: Launch) -> Termination:
        """Run a command (a COMMAND health check) as a process of this container."""
        return await run_in_task(command, self._container_id)


class CommandProcess(_Stoppable):
    """A command task this agent process started (its child)."""

    def __init__(self, process: trio.Process, container_id: str) -> None:
        super().__init__(process.pid, container_id)
        self._process = process
        self._exited = trio.Event()
        self._waiting = False

    async def wait(self) -> Termination:
        if self._termination is not None:
            return self._termination
        if self._waiting:
            await self._exited.wait()
            assert self._termination is not None
            return self._termination
        self._waiting = True
        try:
            returncode = await self._process.wait()
        finally:
            self._waiting = False  # a cancelled waiter leaves the task running
        signal_container(self._container_id, signal.SIGKILL)  # what is left of it
        self._termination = Termination.from_wait_status(returncode)
        self._exited.set()
        return self._termination


class RecoveredProcess(_Stoppable):
    """A command task started by an earlier incarnation of this agent (not our child).

    Its exit is noticed by polling; the wait status comes from the record the host
    process wrote when it reaped the task.
    """

    def __init__(self, pid: int | None, container_id: str, exits: Path | None) -> None:
        super().__init__(pid, container_id)
        self._exits = exits

    async def wait(self) -> Termination:
        while self._termination is None:
            if self._pid is None or not process_alive(self._pid):
                signal_container(self._container_id, signal.SIGKILL)
                self._termination = await self._exit_status()
                break
            await trio.sleep(RECOVERED_POLL)
        return self._termination

    async def _exit_status(self) -> Termination:
        if self._exits is not None and self._pid is not None:
            path = self._exits / str(self._pid)
            with trio.move_on_after(1.0):
                while not path.exists():
                    await trio.sleep(0.02)
            with contextlib.suppress(OSError, ValueError):
                kind, number = path.read_text().split()
                path.unlink()
                code = int(number)
                return Termination.from_wait_status(-code if kind == "signal" else code)
        return Termination(None, message="Command exited while its agent was down")


class CommandContainerizer:
    """Runs tasks that have no ``container`` (``CommandInfo`` only).

    ``exits`` is where the agent's host records the wait status of tasks it reaped
    (``<work_dir>/meta/exits``); without it recovered tasks end with an unknown status.
    ``work_dir`` is the agent's, whose orphans :meth:`remove_orphans` kills (None: none).
    """

    def __init__(self, exits: Path | None = None, work_dir: Path | None = None) -> None:
        self.exits = exits
        self.work_dir = work_dir

    async def launch(self, launch: Launch) -> CommandProcess:
        container_id = str(uuid.uuid4())
        process = await start_task_process(launch, container_id)
        return CommandProcess(process, container_id)

    async def recover(self, container_id: str, sandbox: Path) -> RecoveredProcess | None:
        """The task of an earlier agent run, if its record matches ``container_id``.

        A task that ended while no agent watched it is returned too (its
        :meth:`~RecoveredProcess.wait` returns at once); None means there is no
        record of it at all.
        """
        found = read_task_record(sandbox)
        if found is None or found[1] != container_id:
            return None
        pid: int | None = found[0]
        if (
            pid is not None
            and process_alive(pid)
            and not _has_marker(pid, f"{CONTAINER_MARKER}={container_id}".encode())
        ):
            pid = None  # the pid was reused by something else: the task is gone
        return RecoveredProcess(pid, container_id, self.exits)

    async def remove_orphans(self, known: Collection[str]) -> None:
        """SIGKILL task processes with a sandbox under the agent's work dir and a
        container marker that no recovered task owns."""
        if self.work_dir is None:
            return
        root = os.path.realpath(self.work_dir).encode() + b"/"
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                environ = dict(
                    v.split(b"=", 1)
                    for v in (entry / "environ").read_bytes().split(b"\0")
                    if b"=" in v
                )
            except OSError:
                continue
            container = environ.get(CONTAINER_MARKER.encode())
            sandbox = os.path.realpath(environ.get(b"MESOS_SANDBOX", b"/")) + b"/"
            if (
                container is not None
                and container.decode() not in known
                and sandbox.startswith(root)
            ):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(entry.name), signal.SIGKILL)
