"""Agent side: start a task's process in its sandbox as Mesos's command executor does.

Shared by every containerizer of the embedded agents (the plain command one and the
cgroups one of ``marathon-runtime-mesos``), so that each task's processes carry the
same marker and leave the same record for an agent that restarts. Nothing here runs
in the scheduler.

A task runs as its ``CommandInfo.user`` (:attr:`Launch.user`), as a Mesos agent with
``--switch_user`` runs it: its sandbox is handed to that user (``chown -R``) and the
child sets its groups, gid and uid before it execs. Asking for a user the agent cannot
become is an error, never a task silently running as the agent's own user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from marathon_core.contracts.containerizers import Launch, Termination

__all__ = [
    "CONTAINER_MARKER",
    "TaskUser",
    "TaskUserError",
    "hand_over",
    "process_alive",
    "read_task_record",
    "run_in_task",
    "start_task_process",
    "task_user",
]

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


class TaskUserError(Exception):
    """A task's user does not exist, or the agent cannot become it."""


@attrs.frozen
class TaskUser:
    """A user a task runs as, resolved once in the agent (never between fork and exec,
    where a lookup through NSS is not safe)."""

    name: str
    uid: int
    gid: int
    #: Supplementary groups, as ``initgroups`` would set them.
    groups: tuple[int, ...]

    def permits(self, path: Path, bit: int) -> bool:
        """Whether this user has ``bit`` (4 read, 2 write, 1 search/execute) on ``path``
        by its mode bits (the check the kernel makes; ACLs aside)."""
        if self.uid == 0:
            return True
        st = path.stat()
        if st.st_uid == self.uid:
            return bool(st.st_mode >> 6 & bit)
        if st.st_gid in self.groups or st.st_gid == self.gid:
            return bool(st.st_mode >> 3 & bit)
        return bool(st.st_mode & bit)


def task_user(name: str | None) -> TaskUser | None:
    """The user to switch to for a task that asks for ``name``; None when the task runs
    as the agent's own user (no name, or the agent's uid).

    Raises :class:`TaskUserError` for an unknown user, or one an agent that is not
    root cannot become.
    """
    if not name:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise TaskUserError(
            f"Failed to get user information for '{name}': No such user '{name}'"
        ) from None
    if entry.pw_uid == os.geteuid():
        return None
    if os.geteuid() != 0:
        raise TaskUserError(
            f"Cannot run the task as user '{name}': the agent runs as uid {os.geteuid()}, "
            "not as root"
        )
    groups = tuple(os.getgrouplist(name, entry.pw_gid))
    return TaskUser(name, entry.pw_uid, entry.pw_gid, groups)


def hand_over(directory: Path, user: TaskUser) -> None:
    """``chown -R`` a sandbox to its task's user, as the Mesos agent does (links are
    changed themselves, never followed)."""
    os.lchown(directory, user.uid, user.gid)
    for root, dirs, files in os.walk(directory):
        for name in (*dirs, *files):
            os.lchown(os.path.join(root, name), user.uid, user.gid)


def _become(user: TaskUser, first: Callable[[], None]) -> Callable[[], None]:
    """A ``preexec_fn`` that runs ``first`` with the agent's privileges (entering
    cgroups needs them), then drops to ``user``: subprocess would switch user before
    any ``preexec_fn``."""

    def preexec() -> None:
        first()
        os.setgroups(list(user.groups))
        os.setgid(user.gid)
        os.setuid(user.uid)

    return preexec


def _record_path(sandbox: Path) -> Path:
    return sandbox.parent / f".{sandbox.name}.container"


async def start_task_process(
    launch: Launch, container_id: str, *, preexec_fn: Callable[[], None] | None = None
) -> trio.Process:
    """Start ``launch``'s command in its sandbox, as Mesos's command executor would.

    stdout and stderr go to files in the sandbox, the environment carries
    :data:`CONTAINER_MARKER`, and a record next to the sandbox (pid and container id)
    lets a restarted agent find the task again (:func:`read_task_record`). A task with
    a :attr:`~Launch.user` gets its sandbox and runs as that user (see
    :func:`task_user`).
    """
    if launch.command is None:
        raise ValueError("CommandInfo has no value to run")
    user = task_user(launch.user)
    launch.sandbox.mkdir(parents=True, exist_ok=True)
    if launch.shell:
        argv: list[str] = ["/bin/sh", "-c", launch.command]
        executable = None
    else:
        argv = list(launch.arguments) or [launch.command]
        executable = launch.command
    env = {**launch.environment, CONTAINER_MARKER: container_id}
    switch: dict[str, Any] = {}
    if user is not None and preexec_fn is not None:
        preexec_fn = _become(user, preexec_fn)
    elif user is not None:
        switch = {"user": user.uid, "group": user.gid, "extra_groups": list(user.groups)}
    with (
        open(launch.sandbox / "stdout", "ab") as stdout,
        open(launch.sandbox / "stderr", "ab") as stderr,
    ):
        if user is not None:
            await trio.to_thread.run_sync(hand_over, launch.sandbox, user)
        process = await trio.lowlevel.open_process(
            argv,
            executable=executable,
            cwd=str(launch.sandbox),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            preexec_fn=preexec_fn,
            **switch,
        )
    _record_path(launch.sandbox).write_text(f"{process.pid}\n{container_id}\n")
    return process


async def run_in_task(
    command: Launch, container_id: str, *, preexec_fn: Callable[[], None] | None = None
) -> Termination:
    """Run ``command`` as a process of the task's container and wait for it
    (:meth:`~marathon_core.contracts.containerizers.Running.exec`).

    Started as the task's processes are (its user, sandbox, environment and the
    container's marker, so killing the container takes it along) but in a session of
    its own, and not recorded: cancelling the call SIGKILLs its whole process group.
    Its stdout and stderr are appended to the sandbox's ``stderr``, as Mesos's checks
    write to the executor's.
    """
    user = task_user(command.user)
    if command.shell:
        argv: list[str] = ["/bin/sh", "-c", command.command or ""]
        executable = None
    else:
        argv = list(command.arguments) or [command.command or ""]
        executable = command.command
    switch: dict[str, Any] = {}
    if user is not None and preexec_fn is not None:
        preexec_fn = _become(user, preexec_fn)
    elif user is not None:
        switch = {"user": user.uid, "group": user.gid, "extra_groups": list(user.groups)}
    with open(command.sandbox / "stderr", "ab") as stderr:
        process = await trio.lowlevel.open_process(
            argv,
            executable=executable,
            cwd=str(command.sandbox),
            env={**command.environment, CONTAINER_MARKER: container_id},
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            preexec_fn=preexec_fn,
            start_new_session=True,
            **switch,
        )
    try:
        returncode = await process.wait()
    finally:
        if process.returncode is None:  # cancelled: the check outlasted its timeout
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with trio.CancelScope(shield=True):
                await process.wait()
    return Termination.from_wait_status(returncode)


def read_task_record(sandbox: Path) -> tuple[int, str] | None:
    """(pid, container id) that :func:`start_task_process` recorded for ``sandbox``."""
    try:
        pid_text, container_id = _record_path(sandbox).read_text().split("\n")[:2]
        return int(pid_text), container_id
    except (OSError, ValueError):
        return None
