"""The command containerizer: a task with no container is a process in its own session.

Its stdout and stderr go to files in the sandbox. Stopping it follows Mesos's kill
policy: SIGTERM to the whole process group, SIGKILL after the grace period. When the
task's main process ends, whatever is left of its process group is killed too, as
Mesos does when it destroys a container.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import uuid
from pathlib import Path

import trio

from marathon_core.runtimes import Launch, Termination

__all__ = ["CommandContainerizer", "CommandProcess", "describe_exit"]


def describe_exit(returncode: int) -> Termination:
    """A :class:`Termination` with the command executor's wording for a wait status."""
    if returncode < 0:
        sig = -returncode
        name = signal.strsignal(sig) or f"signal {sig}"
        return Termination(None, signal=sig, message=f"Command terminated with signal {name}")
    return Termination(returncode, message=f"Command exited with status {returncode}")


def signal_group(pgid: int, sig: int) -> None:
    """Signal a process group that may already be gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class CommandProcess:
    """A running command task."""

    def __init__(self, process: trio.Process, container_id: str) -> None:
        self._process = process
        self._container_id = container_id
        self._exited = trio.Event()
        self._waiting = False
        self._termination: Termination | None = None

    @property
    def container_id(self) -> str:
        return self._container_id

    @property
    def pid(self) -> int:
        return self._process.pid

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
        signal_group(self._process.pid, signal.SIGKILL)  # what is left of the group
        self._termination = describe_exit(returncode)
        self._exited.set()
        return self._termination

    async def kill(self, *, grace_period: float) -> None:
        if self._termination is not None:
            return
        signal_group(self._process.pid, signal.SIGTERM)
        with trio.move_on_after(max(grace_period, 0.0)):
            await self.wait()
            return
        signal_group(self._process.pid, signal.SIGKILL)

    def kill_now(self) -> None:
        """SIGKILL the task's process group; for shutdown paths that cannot wait."""
        signal_group(self._process.pid, signal.SIGKILL)


class CommandContainerizer:
    """Runs tasks that have no ``container`` (``CommandInfo`` only)."""

    async def launch(self, launch: Launch) -> CommandProcess:
        if launch.command is None:
            raise ValueError("CommandInfo has no value to run")
        launch.sandbox.mkdir(parents=True, exist_ok=True)
        if launch.shell:
            argv: list[str] = ["/bin/sh", "-c", launch.command]
            executable = None
        else:
            argv = list(launch.arguments) or [launch.command]
            executable = launch.command
        with (
            open(launch.sandbox / "stdout", "ab") as stdout,
            open(launch.sandbox / "stderr", "ab") as stderr,
        ):
            process = await trio.lowlevel.open_process(
                argv,
                executable=executable,
                cwd=str(launch.sandbox),
                env=dict(launch.environment),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        return CommandProcess(process, str(uuid.uuid4()))

    async def recover(self, container_id: str, sandbox: Path) -> CommandProcess | None:
        # Agent recovery is not implemented yet: a restarted agent finds nothing.
        return None
