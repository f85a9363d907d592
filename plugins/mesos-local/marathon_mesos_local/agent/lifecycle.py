"""Running tasks as Mesos's executors do, inside the agent process.

A command task runs like the command executor runs it: TASK_STARTING, its container,
TASK_RUNNING, then TASK_FINISHED / TASK_FAILED / TASK_KILLED. A task group runs like
the default executor runs it (``src/launcher/default_executor.cpp``): TASK_STARTING
for every task, all launched, then TASK_RUNNING for those that started; when one ends
TASK_FAILED or TASK_KILLED the rest of its group is killed (3 s grace period), and
when the executor's last task ends, the executor exits and the master is told.

A task with a ``health_check`` is checked while it runs, by the rules of Mesos's
health checker (:mod:`.health`); a task its checks kill ends TASK_KILLED with
``healthy`` false.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import trio

from marathon_core.contracts.containerizers import Running
from marathon_core.task_process import TaskUser, task_user
from marathon_mesos_local.agent.containerizers import Containerizers, launch_of
from marathon_mesos_local.agent.fetcher import fetch
from marathon_mesos_local.agent.health import (
    HEALTH_REASON,
    HealthReport,
    parse_check,
    probe_once,
    run_health_checks,
)
from marathon_mesos_local.agent.master_link import MasterLink
from marathon_mesos_local.agent.model import (
    DEFAULT_GRACE_PERIOD,
    SHUTDOWN_GRACE_PERIOD,
    AgentOptions,
    ExecutorRun,
    TaskRun,
)
from marathon_mesos_local.agent.store import TaskStore
from marathon_mesos_local.agent.updates import StatusUpdates
from marathon_mesos_local.background import Background
from marathon_mesos_local.messages import TERMINAL_STATES

__all__ = ["TaskLifecycle", "unreachable_ancestor"]

log = logging.getLogger(__name__)

#: The agent's words for a task killed before it ran (alone, or one of a group).
KILLED_DURING_LAUNCH = "Task killed before delivery to the executor"
GROUP_KILLED_DURING_LAUNCH = (
    "A task within the task group was killed before delivery to the executor"
)


class TaskLifecycle:
    """Runs, watches and kills the agent's tasks, and applies the default executor's rules."""

    def __init__(
        self,
        options: AgentOptions,
        store: TaskStore,
        updates: StatusUpdates,
        containerizers: Containerizers,
        link: MasterLink,
    ) -> None:
        self.options = options
        self.store = store
        self.updates = updates
        self.containerizers = containerizers
        self.link = link
        self._background = Background()
        #: Users already warned that they cannot reach their sandboxes by path.
        self._warned_users: set[str] = set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run tasks until cancelled."""
        await self._background.run(task_status=task_status)

    def start(self, task: TaskRun) -> None:
        """Run a command task."""
        self._background.start_soon(self._run, task)

    def start_group(self, executor: ExecutorRun, tasks: list[TaskRun]) -> None:
        """Run a task group under its default executor."""
        self._background.start_soon(self._run_group, executor, tasks)

    def resume(self, task: TaskRun) -> None:
        """Carry on with a task recovered from its checkpoint."""
        self._background.start_soon(self._resume, task)

    def emit(
        self,
        task: TaskRun,
        state: str,
        *,
        message: str | None = None,
        reason: str | None = None,
        source: str = "SOURCE_EXECUTOR",
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue a reliable status update for the task's stream (an ending task of a
        default executor also has consequences for its group, see :meth:`_ended`)."""
        self.updates.queue(task, state, message=message, reason=reason, source=source, extra=extra)
        if state in TERMINAL_STATES:
            self._ended(task, state)

    def _ended(self, task: TaskRun, state: str) -> None:
        """A task of a default executor ended: apply the default executor's policy (a
        task that failed or was killed takes the rest of its group down, each with the
        default 3 s grace period) and let the executor exit once no task is left."""
        executor = self.store.executors.get((task.framework_id, task.executor_id))
        if executor is None or task.id not in executor.live:
            return  # a command task, or a dropped one
        executor.live.discard(task.id)
        if (
            state in ("TASK_FAILED", "TASK_KILLED")
            and not executor.shutting_down
            and not task.killing_group
        ):
            log.info("killing task group %s of task %s", list(task.group), task.id)
            for task_id in task.group:
                other = self.store.tasks.get((task.framework_id, task_id))
                if other is None or other.id not in executor.live:
                    continue
                other.killing_group = True
                if not other.kill.is_set():
                    other.grace_period = DEFAULT_GRACE_PERIOD
                    other.kill.set()
        if not executor.live:
            del self.store.executors[(executor.framework_id, executor.id)]
            self._background.start_soon(self.link.report_exit, executor)

    async def kill_all(self) -> None:
        """Kill every running task (the agent stops)."""
        async with trio.open_nursery() as nursery:
            for task in self.store.tasks.values():
                if task.running is not None:
                    nursery.start_soon(
                        partial(task.running.kill, grace_period=SHUTDOWN_GRACE_PERIOD)
                    )

    async def _resume(self, task: TaskRun) -> None:
        """Carry on with a recovered task: watch it if it still runs, resend updates."""
        if task.updates:
            self.updates.deliver(task)
        if task.state in TERMINAL_STATES:
            if not task.updates:
                self.store.forget(task)
            return
        running: Running | None = None
        containerizer = self.containerizers.named(task.containerizer)
        if task.container_id is not None and containerizer is not None:
            try:
                running = await containerizer.recover(task.container_id, task.sandbox)
            except Exception as exc:
                log.warning("recovery of %s failed: %s", task.id, exc)
        if running is None:
            self.emit(
                task,
                "TASK_FAILED",
                reason="REASON_EXECUTOR_TERMINATED",
                message="Task could not be recovered after the agent restarted",
                source="SOURCE_AGENT",
            )
            return
        log.info("recovered task %s (container %s)", task.id, task.container_id)
        await self._watch(task, running)

    async def _run(self, task: TaskRun) -> None:
        """Run a command task as Mesos's command executor does."""
        if task.kill.is_set():
            self._killed_during_launch(task)
            return
        self.emit(task, "TASK_STARTING")
        _link_latest(task.sandbox)
        running = await self._launch(task)
        if running is None:
            self._killed_during_launch(task)
            return
        if isinstance(running, str):
            self._launch_failed(task, running)
            return
        self._emit_running(task, running)
        await self._watch(task, running)

    async def _run_group(self, executor: ExecutorRun, tasks: list[TaskRun]) -> None:
        """Run a task group as Mesos's default executor does: TASK_STARTING for every
        task, launch them all, then TASK_RUNNING for those that started and
        TASK_FAILED for those that did not (which takes the group down)."""
        if any(task.kill.is_set() for task in tasks):
            for task in tasks:
                self._killed_during_launch(task, GROUP_KILLED_DURING_LAUNCH)
            return
        if not executor.sandbox.exists():
            _link_latest(executor.sandbox)
        for task in tasks:
            self.emit(task, "TASK_STARTING")
        started = [(task, await self._launch(task)) for task in tasks]
        async with trio.open_nursery() as nursery:
            for task, running in started:
                if running is not None and not isinstance(running, str):
                    self._emit_running(task, running)
                    nursery.start_soon(self._watch, task, running)
            for task, running in started:
                if running is None:
                    self._killed_during_launch(task)
                elif isinstance(running, str):
                    self._launch_failed(task, running)

    async def _launch(self, task: TaskRun) -> Running | str | None:
        """Start a task's container: the running task, why it could not start, or None
        when it was killed while its URIs were being fetched.

        Its user is checked and its URIs fetched into the sandbox first, whichever
        containerizer runs it (the run id names the container, as in Mesos's paths).
        """
        name, containerizer = self.containerizers.of(task)
        if containerizer is None:
            return self.containerizers.unsupported(str(task.info["container"].get("type")))
        try:
            launch = launch_of(
                task, agent_id=self.link.agent_id, ip=self.options.ip, port=self.link.port
            )
            task.sandbox.mkdir(parents=True, exist_ok=True)
            if not await self._fetch(task, launch.user):
                return None
            running = await containerizer.launch(launch)
        except Exception as exc:
            log.warning("launch of %s failed: %s", task.id, exc)
            return f"Failed to launch container: {exc}"
        task.container_id = running.container_id
        task.containerizer = name
        return running

    async def _fetch(self, task: TaskRun, user: str | None) -> bool:
        """Fetch the task's URIs; False if it was killed meanwhile (the fetch is then
        abandoned: a stalled download must not hold a kill up)."""
        uris = task.info.get("command", {}).get("uris", [])
        as_user = task_user(user)
        if as_user is not None:
            self._warn_if_unreachable(task.sandbox, as_user)
        if not uris:
            return True
        failed: list[Exception] = []
        async with trio.open_nursery() as nursery:

            async def fetching() -> None:
                try:
                    await fetch(
                        uris,
                        task.sandbox,
                        cache=self.options.work_dir / "fetch-cache",
                        user=as_user,
                        container_id=task.run_id,
                    )
                except Exception as exc:
                    failed.append(exc)
                nursery.cancel_scope.cancel()

            async def abandon_when_killed() -> None:
                await task.kill.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(fetching)
            nursery.start_soon(abandon_when_killed)
        if failed:
            raise failed[0]
        return not task.kill.is_set()

    def _warn_if_unreachable(self, sandbox: Path, user: TaskUser) -> None:
        """Warn once per user whose tasks cannot reach their sandbox by its path.

        The task still starts in its sandbox and writes it by relative paths, but
        ``$MESOS_SANDBOX/...`` fails when an ancestor of the work dir (a home
        directory holding ``--state_dir``, say) denies the user search permission.
        """
        if user.name in self._warned_users:
            return
        blocked = unreachable_ancestor(sandbox, user)
        if blocked is not None:
            self._warned_users.add(user.name)
            log.warning(
                "tasks running as %r cannot reach their sandboxes by path: %s denies them "
                "search permission; move the agent's work dir (marathon's --state_dir) or "
                "allow search on it (chmod o+x)",
                user.name,
                blocked,
            )

    def _killed_during_launch(self, task: TaskRun, message: str = KILLED_DURING_LAUNCH) -> None:
        """A kill that came before the task ran (queued, or while its URIs were fetched)."""
        self.emit(
            task,
            "TASK_KILLED",
            reason="REASON_TASK_KILLED_DURING_LAUNCH",
            message=message,
            source="SOURCE_AGENT",
        )

    def _launch_failed(self, task: TaskRun, message: str) -> None:
        """The agent reports a container that failed to start (its executor never
        ran), as the Mesos agent does for a failed fetch or launch."""
        self.emit(
            task,
            "TASK_FAILED",
            reason="REASON_CONTAINER_LAUNCH_FAILED",
            message=message,
            source="SOURCE_AGENT",
        )

    def _container_status(self, running: Running) -> dict[str, Any]:
        return {
            "container_id": {"value": running.container_id},
            "network_infos": [{"ip_addresses": [{"ip_address": self.options.ip}]}],
        }

    def _emit_running(self, task: TaskRun, running: Running) -> None:
        self.emit(task, "TASK_RUNNING", extra={"container_status": self._container_status(running)})

    async def _check_health(self, task: TaskRun, running: Running) -> None:
        """Run the task's health check until it is killed or ends (Mesos pauses its
        checker on a kill); nothing to do for a task without one."""
        spec = parse_check(task.info)
        if spec is None:
            return
        launch = launch_of(
            task, agent_id=self.link.agent_id, ip=self.options.ip, port=self.link.port
        )
        probe = partial(
            probe_once, spec, running=running, launch=launch, host=self.options.ip, info=task.info
        )
        try:
            async with trio.open_nursery() as nursery:

                async def stop_when_killed() -> None:
                    await task.kill.wait()
                    nursery.cancel_scope.cancel()

                nursery.start_soon(stop_when_killed)
                await run_health_checks(
                    spec, probe=probe, report=partial(self._health_changed, task, running)
                )
        except Exception:  # a checker's bug must not stop the task being watched
            log.exception("health checking of task %s stopped", task.id)

    def _health_changed(self, task: TaskRun, running: Running, report: HealthReport) -> None:
        """The command executor's ``taskHealthUpdated``: a TASK_RUNNING update with the
        health, and the kill the checker asked for."""
        if task.kill.is_set() or task.state in TERMINAL_STATES:
            return
        self.emit(
            task,
            "TASK_RUNNING",
            reason=HEALTH_REASON,
            extra={"healthy": report.healthy, "container_status": self._container_status(running)},
        )
        if report.kill_task:
            log.info(
                "killing task %s: %d consecutive failed health checks",
                task.id,
                report.consecutive_failures,
            )
            task.killed_by_health_check = True
            nanos = task.info.get("kill_policy", {}).get("grace_period", {}).get("nanoseconds")
            task.grace_period = DEFAULT_GRACE_PERIOD if nanos is None else nanos / 1e9
            task.kill.set()

    async def _watch(self, task: TaskRun, running: Running) -> None:
        """Wait for a running task to end (killing it when asked); report how it ended."""
        task.running = running
        pid_file = self._record_pid(task, running)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._kill_when_asked, task, running)
                nursery.start_soon(self._check_health, task, running)
                termination = await running.wait()
                nursery.cancel_scope.cancel()
        finally:
            if pid_file is not None:
                pid_file.unlink(missing_ok=True)
        if task.killed:
            # The command executor marks a task its health checks killed unhealthy.
            unhealthy = {"healthy": False} if task.killed_by_health_check else None
            self.emit(task, "TASK_KILLED", message=termination.message, extra=unhealthy)
        elif termination.exit_code == 0:
            self.emit(task, "TASK_FINISHED", message=termination.message)
        elif termination.oom_killed:
            # The agent's containerizer saw the limitation, not the executor: Mesos's
            # agent reports it (executorTerminated) with the container's reason.
            self.emit(
                task,
                "TASK_FAILED",
                message=termination.message,
                reason="REASON_CONTAINER_LIMITATION_MEMORY",
                source="SOURCE_AGENT",
            )
        else:
            self.emit(task, "TASK_FAILED", message=termination.message)

    async def _kill_when_asked(self, task: TaskRun, running: Running) -> None:
        if not task.killed:
            await task.kill.wait()
            task.killed = True
            self.store.save(task)
            if "TASK_KILLING_STATE" in task.capabilities:
                self.emit(task, "TASK_KILLING")
        grace = DEFAULT_GRACE_PERIOD if task.grace_period is None else task.grace_period
        await running.kill(grace_period=grace)

    def _record_pid(self, task: TaskRun, running: Running) -> Path | None:
        """Leave ``meta/pids/<run>`` (pid, sandbox) while the task runs, for tools and tests."""
        pid = getattr(running, "pid", None)
        if pid is None:
            return None
        path = self.store.meta / "pids" / task.run_id
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{pid}\n{task.sandbox}\n")
        return path


def _link_latest(run: Path) -> None:
    """Create an executor run's directory and point ``runs/latest`` at it, as the Mesos
    agent does."""
    try:
        run.mkdir(parents=True, exist_ok=True)
        latest = run.parent / "latest"
        if latest.is_symlink():
            latest.unlink()
        latest.symlink_to(run.name)
    except OSError as exc:
        log.warning("cannot make %s the latest run: %s", run, exc)


def unreachable_ancestor(path: Path, user: TaskUser) -> Path | None:
    """The first ancestor of ``path`` that ``user`` may not search, None if none."""
    for directory in reversed(path.parents):
        if not user.permits(directory, 1):
            return directory
    return None
