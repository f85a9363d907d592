"""The agent as a whole: its parts wired together, its run, and its HTTP API for the
master (``run_task``, ``run_task_group``, ``kill_task``, ``acknowledge``,
``shutdown_executor``, ``shutdown_framework``, ``framework_message``, ``ping``), and
for clients: ``/state`` (its frameworks, executors and their sandbox ``directory``)
and ``/files/browse`` / ``/files/read`` on those sandboxes (:mod:`.files`)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import trio

from marathon_core.contracts.containerizers import Containerizer
from marathon_mesos_local.agent.containerizers import Containerizers
from marathon_mesos_local.agent.files import SandboxFiles
from marathon_mesos_local.agent.lifecycle import TaskLifecycle
from marathon_mesos_local.agent.master_link import MasterLink
from marathon_mesos_local.agent.model import (
    DEFAULT_GRACE_PERIOD,
    SHUTDOWN_GRACE_PERIOD,
    UNREGISTER_TIMEOUT,
    AgentOptions,
    ExecutorRun,
    TaskRun,
)
from marathon_mesos_local.agent.store import TaskStore
from marathon_mesos_local.agent.updates import StatusUpdates
from marathon_mesos_local.containerizer import CommandContainerizer
from marathon_mesos_local.http import Request, Response, serve_http
from marathon_mesos_local.messages import TERMINAL_STATES

__all__ = ["Agent"]

log = logging.getLogger(__name__)


class Agent:
    """One agent: call :meth:`run` to serve until cancelled."""

    def __init__(
        self, options: AgentOptions, containerizers: Mapping[str, Containerizer] | None = None
    ) -> None:
        self.options = options
        self.store = TaskStore(options.work_dir / "meta", options.boot_id)
        self.link = MasterLink(options, self.store)
        self.updates = StatusUpdates(self.store, self.link, options.status_update_retry)
        command = CommandContainerizer(exits=self.store.meta / "exits", work_dir=options.work_dir)
        self.files = SandboxFiles(options.work_dir)
        self.lifecycle = TaskLifecycle(
            options,
            self.store,
            self.updates,
            Containerizers(command, containerizers or {}, options.containerizers),
            self.link,
        )

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        async with self.link.connect():
            try:
                async with trio.open_nursery() as nursery:
                    agent_id, recovered = self.store.recover()
                    self.link.agent_id = agent_id
                    await self.lifecycle.containerizers.remove_orphans(
                        {t.container_id for t in recovered if t.container_id is not None}
                    )
                    await nursery.start(self.updates.run)
                    await nursery.start(self.lifecycle.run)
                    self.link.port = await nursery.start(
                        partial(
                            serve_http, self.handle, host=self.options.ip, port=self.options.port
                        )
                    )
                    await self.link.register()
                    self.store.save_agent(self.link.agent_id)
                    log.info(
                        "agent %s at %s:%s registered",
                        self.link.agent_id,
                        self.options.ip,
                        self.link.port,
                    )
                    for task in recovered:
                        self.lifecycle.resume(task)
                    nursery.start_soon(self.link.registration_loop)
                    nursery.start_soon(self.link.watchdog)
                    task_status.started(self.link.agent_id or "")
            finally:
                with trio.CancelScope(shield=True):
                    with trio.move_on_after(SHUTDOWN_GRACE_PERIOD + 1):
                        await self.lifecycle.kill_all()
                    with trio.move_on_after(SHUTDOWN_GRACE_PERIOD):
                        # What a launch cut short left behind: no task owns anything now.
                        await self.lifecycle.containerizers.remove_orphans(())
                    with trio.move_on_after(UNREGISTER_TIMEOUT):
                        await self.link.unregister()

    async def handle(self, request: Request) -> Response:
        path = request.path
        if path == "/_local/ping":
            if not self.link.pinged(request.query.get("agent_id", [None])[0]):
                return Response.text(409, f"This is agent {self.link.agent_id}")
            return Response(200)
        if path == "/health":
            return Response(200)
        if request.method == "GET":
            if path == "/files/browse":
                return self.files.browse(request)
            if path == "/files/read":
                return self.files.read(request)
            if path == "/state":
                return Response.json(self._state())
        if request.method != "POST" or not path.startswith("/_local/"):
            return Response(404)
        try:
            body = request.json()
            action = path.removeprefix("/_local/")
            if action == "run_task":
                return self._run_task(body)
            if action == "run_task_group":
                return self._run_task_group(body)
            if action == "kill_task":
                return self._kill_task(body)
            if action == "acknowledge":
                return self._acknowledge(body)
            if action == "shutdown_executor":
                return self._shutdown_executor(body)
            if action == "shutdown_framework":
                return self._shutdown_framework(body)
            if action == "framework_message":
                return self._framework_message(body)
        except (ValueError, KeyError, TypeError) as exc:
            return Response.text(400, f"Bad request: {exc}")
        return Response(404)

    def _state(self) -> dict[str, Any]:
        """The agent's ``/state`` as Mesos shapes it, trimmed to what clients use to
        find sandboxes: frameworks, their executors (``directory``) and tasks."""
        frameworks: dict[str, dict[str, Any]] = {}
        executors: dict[tuple[str, str], dict[str, Any]] = {}
        for task in self.store.tasks.values():
            framework = frameworks.setdefault(
                task.framework_id,
                {
                    "id": task.framework_id,
                    "name": task.framework_info.get("name", ""),
                    "user": task.framework_info.get("user", ""),
                    "executors": [],
                    "completed_executors": [],
                },
            )
            key = (task.framework_id, task.executor_id)
            executor = executors.get(key)
            if executor is None:
                run = task.sandbox.parent.parent if task.group else task.sandbox
                executor = executors[key] = {
                    "id": task.executor_id,
                    "name": "" if task.group else f"Command Executor (Task: {task.id})",
                    "framework_id": task.framework_id,
                    "container": task.container_id or run.name,
                    "directory": str(run),
                    "tasks": [],
                    "queued_tasks": [],
                    "completed_tasks": [],
                }
                framework["executors"].append(executor)
            entry = {
                "id": task.id,
                "name": task.info.get("name", ""),
                "framework_id": task.framework_id,
                "executor_id": task.executor_id,
                "slave_id": self.link.agent_id,
                "state": task.state,
            }
            executor["completed_tasks" if task.state in TERMINAL_STATES else "tasks"].append(entry)
        return {
            "id": self.link.agent_id,
            "pid": f"slave(1)@{self.options.ip}:{self.link.port}",
            "hostname": self.options.ip,
            "frameworks": list(frameworks.values()),
            "completed_frameworks": [],
        }

    def _executor_runs(self, framework_id: str, executor_id: str) -> Path:
        assert self.link.agent_id is not None
        return (
            self.options.work_dir
            / "slaves" / self.link.agent_id
            / "frameworks" / framework_id
            / "executors" / executor_id
            / "runs"
        )  # fmt: skip

    def _run_task(self, body: Mapping[str, Any]) -> Response:
        info = dict(body["task"])
        framework_id = str(body["framework_id"])
        task_id = str(info["task_id"]["value"])
        if (framework_id, task_id) in self.store.tasks:
            return Response.text(409, f"Task {task_id} is already on this agent")
        run_id = str(uuid.uuid4())
        task = TaskRun(
            framework_id,
            dict(body.get("framework_info", {})),
            info,
            run_id,
            self._executor_runs(framework_id, task_id) / run_id,
        )
        self.store.tasks[(framework_id, task_id)] = task
        self.store.save(task)
        self.lifecycle.start(task)
        return Response(202)

    def _run_task_group(self, body: Mapping[str, Any]) -> Response:
        """Hand a task group to its default executor, starting one if the master says so.

        A group meant for a live executor that has just exited (the master has not
        heard of it yet) is dropped, as the Mesos agent drops it.
        """
        framework_id = str(body["framework_id"])
        framework_info = dict(body.get("framework_info", {}))
        executor_info = dict(body["executor"])
        infos = [dict(t) for t in body["tasks"]]
        for info in infos:
            if (framework_id, info["task_id"]["value"]) in self.store.tasks:
                return Response.text(
                    409, f"Task {info['task_id']['value']} is already on this agent"
                )
        executor_id = str(executor_info["executor_id"]["value"])
        group = tuple(str(info["task_id"]["value"]) for info in infos)
        executor = self.store.executors.get((framework_id, executor_id))
        if executor is None and not body["launch_executor"]:
            for info in infos:
                task = TaskRun(framework_id, framework_info, info, str(uuid.uuid4()), Path())
                self.store.tasks[(framework_id, task.id)] = task
                self.lifecycle.emit(
                    task,
                    "TASK_DROPPED" if "PARTITION_AWARE" in task.capabilities else "TASK_LOST",
                    reason="REASON_EXECUTOR_TERMINATED",
                    message="No executor is expected to launch and there is none running",
                    source="SOURCE_AGENT",
                )
            return Response(202)
        if executor is None:
            run_id = str(uuid.uuid4())
            executor = ExecutorRun(
                framework_id, executor_info, self._executor_runs(framework_id, executor_id) / run_id
            )
            self.store.executors[(framework_id, executor_id)] = executor
        tasks = []
        for info in infos:
            task = TaskRun(
                framework_id,
                framework_info,
                info,
                str(uuid.uuid4()),
                executor.sandbox / "tasks" / info["task_id"]["value"],
                group=group,
            )
            self.store.tasks[(framework_id, task.id)] = task
            executor.live.add(task.id)
            self.store.save(task)
            tasks.append(task)
        self.lifecycle.start_group(executor, tasks)
        return Response(202)

    def _kill_task(self, body: Mapping[str, Any]) -> Response:
        task = self.store.tasks.get((str(body["framework_id"]), str(body["task_id"])))
        if task is None:
            return Response(404)
        grace = body.get("grace_period")
        task.grace_period = DEFAULT_GRACE_PERIOD if grace is None else float(grace)
        task.kill.set()
        return Response(202)

    def _acknowledge(self, body: Mapping[str, Any]) -> Response:
        task = self.store.tasks.get((str(body["framework_id"]), str(body["task_id"])))
        if task is None or not self.updates.acknowledge(task, body["uuid"]):
            return Response(200)  # duplicate or unexpected: ignored, as Mesos does
        return Response(202)

    def _shutdown_executor(self, body: Mapping[str, Any]) -> Response:
        """Shut an executor down: a default executor kills all its tasks (no group kills
        meanwhile); the command executor kills its one task."""
        framework_id, executor_id = str(body["framework_id"]), str(body["executor_id"])
        executor = self.store.executors.get((framework_id, executor_id))
        command_task = self.store.tasks.get((framework_id, executor_id))
        if executor is not None:
            executor.shutting_down = True
            doomed = [self.store.tasks[(framework_id, task_id)] for task_id in executor.live]
        elif command_task is not None and not command_task.group:
            doomed = [command_task]
        else:
            log.warning(
                "Ignoring shutdown of unknown executor '%s' of framework %s",
                executor_id,
                framework_id,
            )
            return Response(202)
        for task in doomed:
            if not task.kill.is_set():
                task.grace_period = DEFAULT_GRACE_PERIOD
                task.kill.set()
        return Response(202)

    def _framework_message(self, body: Mapping[str, Any]) -> Response:
        """A framework's message for an executor: both built-in executors ignore them
        (the command executor and the default executor alike); unknown recipients are
        dropped with a log line, as the Mesos agent does."""
        framework_id, executor_id = str(body["framework_id"]), str(body["executor_id"])
        command_task = self.store.tasks.get((framework_id, executor_id))
        if not any(fid == framework_id for fid, _ in [*self.store.tasks, *self.store.executors]):
            log.warning(
                "Dropping message from framework %s because framework does not exist",
                framework_id,
            )
        elif (framework_id, executor_id) in self.store.executors or (
            command_task is not None
            and not command_task.group
            and command_task.state not in TERMINAL_STATES
        ):
            log.info(
                "Message for executor '%s' of framework %s ignored by the executor",
                executor_id,
                framework_id,
            )
        else:
            log.warning(
                "Dropping message for executor '%s' because executor does not exist",
                executor_id,
            )
        return Response(202)

    def _shutdown_framework(self, body: Mapping[str, Any]) -> Response:
        framework_id = str(body["framework_id"])
        for (fid, _), executor in self.store.executors.items():
            if fid == framework_id:
                executor.shutting_down = True
        for (fid, _), task in list(self.store.tasks.items()):
            if fid == framework_id:
                task.grace_period = DEFAULT_GRACE_PERIOD
                task.kill.set()
                if task.state in TERMINAL_STATES or task.running is None:
                    task.updates.clear()  # nobody will acknowledge them any more
                    if task.state in TERMINAL_STATES:
                        self.store.forget(task)
        return Response(202)
