"""The agent side of ``container.type: MESOS``: a task's processes in its own cgroups.

Like the embedded agents' command containerizer (same sandbox files, environment,
kill policy and exit wording), but every process of the task lives in per-task
cgroup v1 directories (:mod:`.cgroups`) with Mesos's limits: memory (and
memory+swap) at the task's ``mem``, swappiness 0, CFS quota and shares from its
``cpus``, plus ``cpuacct``, ``pids`` and ``freezer`` for accounting and killing.

- The child enters its cgroups between fork and exec (``preexec_fn`` writes ``0`` to
  each ``cgroup.procs``), so nothing it runs is ever outside them.
- OOM: the kernel's OOM notification (an eventfd on ``memory.oom_control``) or a
  non-zero ``oom_kill`` counter at exit ends the whole container as TASK_FAILED with
  REASON_CONTAINER_LIMITATION_MEMORY and Mesos's "Memory limit exceeded: ..." text.
- Kill: SIGTERM to every process of the cgroup, then after the grace period freeze
  it, SIGKILL every pid in ``cgroup.procs`` and thaw it: no survivor can fork away.
  When the main process ends the rest of the container is destroyed the same way and
  the directories are removed.
- Exec (a COMMAND health check): the command runs as the task does, inside its
  cgroups (it counts against the task's limits, as Mesos's check does).
- Recovery: a restarted agent reattaches to a container whose cgroup still exists
  (``runs/.<run>.container`` next to the sandbox keeps pid and container id).
- Orphans: at agent start, task cgroups with a process whose sandbox is under the
  agent's work dir, and whose container no recovered task owns, are destroyed. The
  cgroup root may be shared by the agents of a machine, so that is how a cgroup is
  told to be this agent's; empty ones cannot be told apart and are left alone.

Processes are started as the command containerizer starts them
(:func:`marathon_core.task_process.start_task_process`: sandbox files, the container
marker, the record for recovery), only inside the cgroups.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import uuid
from collections.abc import Collection
from functools import partial
from pathlib import Path

import trio

from marathon_core.contracts.containerizers import Launch, Termination
from marathon_core.task_process import (
    process_alive,
    read_task_record,
    run_in_task,
    start_task_process,
)
from marathon_runtime_mesos.cgroups import TaskCgroups, available, enter, kill_now

__all__ = ["CgroupTask", "MesosContainerizer"]

log = logging.getLogger(__name__)

#: How often a recovered task (not our child) is checked for exit.
RECOVERED_POLL = 0.1


async def _oom_event(cgroups: TaskCgroups) -> None:
    """Return when the kernel reports an OOM kill in the container's memory cgroup."""
    efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
    try:
        ofd = os.open(cgroups.memory / "memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
        try:
            with open(cgroups.memory / "cgroup.event_control", "w") as f:
                f.write(f"{efd} {ofd}")
        finally:
            os.close(ofd)
        while True:
            await trio.lowlevel.wait_readable(efd)
            with contextlib.suppress(BlockingIOError):
                os.eventfd_read(efd)
            if cgroups.oom_kills() > 0:
                return
            if not cgroups.exists():  # the event also fires when the cgroup goes
                await trio.sleep_forever()
    finally:
        os.close(efd)


class CgroupTask:
    """A MESOS container: its main process (when known) and its cgroups."""

    def __init__(
        self, cgroups: TaskCgroups, pid: int | None, process: trio.Process | None = None
    ) -> None:
        self.cgroups = cgroups
        self._pid = pid
        self._process = process
        self._termination: Termination | None = None
        self._exited = trio.Event()
        self._waiting = False
        self._oom = False

    @property
    def container_id(self) -> str:
        return self.cgroups.container_id

    @property
    def pid(self) -> int | None:
        return self._pid

    async def _main_ended(self) -> int | None:
        """Wait for the main process; its wait status when it is our child."""
        if self._process is not None:
            return await self._process.wait()
        while True:
            pids = self.cgroups.pids()
            if not pids or (
                self._pid is not None and not (self._pid in pids and process_alive(self._pid))
            ):
                return None
            await trio.sleep(RECOVERED_POLL)

    async def _watch_oom(self) -> None:
        try:
            await _oom_event(self.cgroups)
        except OSError as exc:  # no notification: the counter at exit still tells
            log.warning("no OOM notification for %s: %s", self.container_id, exc)
            await trio.sleep_forever()
        self._oom = True
        await self._destroy()

    def _unreaped(self) -> list[int]:
        """The main PID while it is still ours to signal, besides ``cgroup.procs``.

        The child enters its cgroups before it execs, so ``cgroup.procs`` already
        holds it; its PID is only added while it has not been reaped (``returncode``
        polls without blocking): once reaped it may be reused by an unrelated
        process. A recovered main process is not our child: the cgroup alone tells.
        """
        if self._process is None or self._process.returncode is not None:
            return []
        return [self._process.pid]

    async def _destroy(self) -> None:
        """Freeze, SIGKILL every process, thaw: nothing of the container survives."""
        cg = self.cgroups
        cg.freeze("FROZEN")
        with trio.move_on_after(1.0):
            while not cg.frozen():
                await trio.sleep(0.01)
        cg.signal_all(signal.SIGKILL, self._unreaped())
        cg.freeze("THAWED")

    async def wait(self) -> Termination:
        if self._termination is not None:
            return self._termination
        if self._waiting:
            await self._exited.wait()
            assert self._termination is not None
            return self._termination
        self._waiting = True
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_oom)
                returncode = await self._main_ended()
                nursery.cancel_scope.cancel()
        finally:
            self._waiting = False  # a cancelled waiter leaves the task running
        oom = self._oom or self.cgroups.oom_kills() > 0
        message = self.cgroups.memory_limitation() if oom else ""
        # What is left of the container goes with its main process, as in Mesos.
        with trio.move_on_after(5.0):
            while self.cgroups.pids():
                await self._destroy()
                await trio.sleep(0.02)
        if not await trio.to_thread.run_sync(self.cgroups.remove):
            log.warning("cgroups of %s could not all be removed", self.container_id)
        if oom:
            self._termination = Termination(
                None, signal=signal.SIGKILL, message=message, oom_killed=True
            )
        elif returncode is not None:
            self._termination = Termination.from_wait_status(returncode)
        else:
            self._termination = Termination(None, message="Command exited while its agent was down")
        self._exited.set()
        return self._termination

    async def kill(self, *, grace_period: float) -> None:
        if self._termination is not None:
            return
        self.cgroups.signal_all(signal.SIGTERM, self._unreaped())
        with trio.move_on_after(max(grace_period, 0.0)):
            await self._main_ended()
            return
        await self._destroy()

    async def exec(self, command: Launch) -> Termination:
        """Run a command (a COMMAND health check) inside the container's cgroups."""
        return await run_in_task(
            command, self.container_id, preexec_fn=partial(enter, self.cgroups.procs_files())
        )


class MesosContainerizer:
    """``marathon_agent_containerizers()["MESOS"]``: tasks in per-task cgroups.

    ``cgroup_root`` names the directory under this process's cgroups that holds the
    task cgroups (default :data:`~marathon_runtime_mesos.cgroups.ROOT`); ``work_dir``
    is the agent's, whose orphans :meth:`remove_orphans` destroys (None: none).
    """

    def __init__(self, cgroup_root: str | None = None, *, work_dir: Path | None = None) -> None:
        self.cgroup_root = cgroup_root
        self.work_dir = work_dir

    async def launch(self, launch: Launch) -> CgroupTask:
        if launch.command is None:
            raise ValueError("CommandInfo has no value to run")
        problem = available()
        if problem is not None:
            raise RuntimeError(problem)
        if (launch.container or {}).get("mesos", {}).get("image"):
            raise ValueError("container images are not supported by this MESOS containerizer")
        launch.sandbox.mkdir(parents=True, exist_ok=True)
        for volume in (launch.container or {}).get("volumes", []):
            self._link_volume(launch.sandbox, volume)
        container_id = str(uuid.uuid4())
        cgroups = TaskCgroups.of(container_id, self.cgroup_root)
        await trio.to_thread.run_sync(cgroups.create, launch.resources)
        try:
            process = await start_task_process(
                launch, container_id, preexec_fn=partial(enter, cgroups.procs_files())
            )
        except BaseException:
            await trio.to_thread.run_sync(cgroups.remove)
            raise
        return CgroupTask(cgroups, process.pid, process)

    @staticmethod
    def _link_volume(sandbox: Path, volume: dict[str, str]) -> None:
        """A host volume with a relative ``container_path``: a link in the sandbox."""
        target = sandbox / volume["container_path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_symlink():
            target.symlink_to(volume["host_path"])

    async def recover(self, container_id: str, sandbox: Path) -> CgroupTask | None:
        """The container of an earlier agent run, if its cgroups still exist."""
        cgroups = TaskCgroups.of(container_id, self.cgroup_root)
        if not cgroups.exists():
            return None
        record = read_task_record(sandbox)
        pid = record[0] if record is not None and record[1] == container_id else None
        if pid is not None and pid not in cgroups.pids():
            pid = None  # ended (or the pid was reused): only the cgroup is left
        return CgroupTask(cgroups, pid)

    async def remove_orphans(self, known: Collection[str]) -> None:
        """Destroy this agent's task cgroups that no recovered task owns."""
        if self.work_dir is None or available() is not None:
            return
        root = TaskCgroups.of("-", self.cgroup_root).memory.parent
        if not root.is_dir():
            return
        work_dir = os.path.realpath(self.work_dir).encode() + b"/"
        for child in root.iterdir():
            if not child.is_dir() or child.name in known:
                continue
            cgroups = TaskCgroups.of(child.name, self.cgroup_root)
            if any(_sandbox_of(pid).startswith(work_dir) for pid in cgroups.pids()):
                log.info("destroying orphan container %s", child.name)
                await trio.to_thread.run_sync(kill_now, cgroups)


def _sandbox_of(pid: int) -> bytes:
    """The real path of a process's ``MESOS_SANDBOX`` (empty if it has none)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return b""
    for variable in environ:
        if variable.startswith(b"MESOS_SANDBOX="):
            return os.path.realpath(variable[len(b"MESOS_SANDBOX=") :]) + b"/"
    return b""
