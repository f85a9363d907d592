"""Agent side: start a task's process in its sandbox as Mesos's command executor does.

Shared by every containerizer of the embedded agents (the plain command one and the
cgroups one of ``marathon-runtime-mesos``), so that each task's processes carry the
same marker and leave the same record for an agent that restarts. Nothing here runs
in the scheduler.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import trio

from marathon_core.contracts.containerizers import Launch

__all__ = ["CONTAINER_MARKER", "process_alive", "read_task_record", "start_task_process"]

#: Every process of a task carries ``CONTAINER_MARKER=<container id>`` in its
#: environment, whichever containerizer started it: the embedded agents find a
#: container's processes (and those left behind at shutdown) by it.
CONTAINER_MARKER = "MESOS_LOCAL_CONTAINER"


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
