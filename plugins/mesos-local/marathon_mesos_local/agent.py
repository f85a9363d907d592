"""A Mesos agent: its own OS process on its own loopback address, running tasks.

``python -m marathon_mesos_local.agent --master URL --ip 127.0.0.2 ...`` serves a
small HTTP API on ``ip:port`` for the master (``run_task``, ``run_task_group``,
``kill_task``, ``acknowledge``, ``shutdown_executor``, ``shutdown_framework``,
``framework_message``, ``ping``), registers with the master, and runs every task like
Mesos's command executor: TASK_STARTING, TASK_RUNNING, then TASK_FINISHED /
TASK_FAILED / TASK_KILLED. Each task has one status-update stream: only its head
update is in flight, resent with doubling backoff until the scheduler acknowledges it,
exactly as the agent's status update manager does.

Task groups run under a "default executor" (:class:`ExecutorRun`), which lives in the
agent process rather than in one of its own, and follows Mesos's
``src/launcher/default_executor.cpp``: each task of a group is a process of the command
containerizer; when one ends TASK_FAILED or TASK_KILLED the rest of its group is killed
(3 s grace period); when the executor's last task ends, the executor exits and the
master is told, which recovers its resources.

On SIGTERM/SIGINT (or when its parent dies) the agent kills its tasks and exits.

Checkpoints: ``<work_dir>/meta/agent.json`` (agent id and boot id) and one JSON file per
task under ``meta/tasks/<framework>/<task>.json`` (TaskInfo, container id, state, the
updates not yet acknowledged). An agent restarted on the same machine (same boot id,
see :mod:`.host`) recovers its tasks from them instead of killing them, re-registers
with its old id and resends its pending updates. An agent that is not pinged for
``(max_agent_ping_timeouts + 2) * agent_ping_timeout``, or whose updates the master
refuses as coming from an unregistered agent, re-registers. So does one that misses a
ping and finds another master at the master's address (a failover: the new master
waits for the agents of its registry), as a Mesos agent does when its detector
reports a new leading master.

An agent that stops (SIGTERM, SIGINT, its parent's death) kills its tasks and
unregisters, as a Mesos agent shut down with SIGUSR1 does: it leaves the cluster for
good.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import os
import signal
import sys
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio

from marathon_core.contracts.containerizers import Containerizer, Launch, Running
from marathon_mesos_local.containerizer import CommandContainerizer
from marathon_mesos_local.http import Request, Response, serve_http
from marathon_mesos_local.resources import (
    DEFAULT_RESOURCES,
    ResourceError,
    Resources,
    parse_attributes,
)

__all__ = ["Agent", "AgentOptions", "main"]

log = logging.getLogger(__name__)

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
TERMINAL = frozenset(
    {
        "TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST",
        "TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR",
    }
)  # fmt: skip


@attrs.frozen(kw_only=True)
class AgentOptions:
    master: str
    ip: str
    port: int = 5051
    work_dir: Path
    resources: Resources = attrs.field(factory=lambda: Resources.parse(DEFAULT_RESOURCES))
    attributes: list[dict[str, Any]] = attrs.field(factory=list)
    status_update_retry: float = STATUS_UPDATE_RETRY_MIN
    parent_pid: int | None = None
    #: Identifies the machine's boot (see :mod:`.host`); checkpoints of another boot
    #: are not recovered.
    boot_id: str | None = None


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


class Agent:
    """One agent: call :meth:`run` to serve until cancelled."""

    def __init__(
        self, options: AgentOptions, containerizers: Mapping[str, Containerizer] | None = None
    ) -> None:
        self.options = options
        self.containerizers = dict(containerizers or {})
        self.meta = options.work_dir / "meta"
        self.command = CommandContainerizer(exits=self.meta / "exits")
        self.agent_id: str | None = None
        #: The id of the master this agent registered with (a new one means a failover).
        self.master_id: str | None = None
        self.port = options.port
        self.tasks: dict[tuple[str, str], TaskRun] = {}
        #: Default executors by (framework id, executor id).
        self.executors: dict[tuple[str, str], ExecutorRun] = {}
        #: From the master at registration: the watchdog's clock.
        self.ping_timeout = 15.0
        self.max_ping_timeouts = 5
        self.last_ping = 0.0
        self.registered = trio.Event()
        #: Successful (re-)registrations so far.
        self.registrations = 0
        self._reregister = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._client: httpx.AsyncClient | None = None

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        transport = httpx.AsyncHTTPTransport(local_address=self.options.ip)
        timeout = httpx.Timeout(10.0, connect=5.0)
        async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
            self._client = client
            try:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    recovered = self._load_checkpoints()
                    self.port = await nursery.start(
                        partial(
                            serve_http, self.handle, host=self.options.ip, port=self.options.port
                        )
                    )
                    await self._register()
                    self._checkpoint_agent()
                    log.info(
                        "agent %s at %s:%s registered", self.agent_id, self.options.ip, self.port
                    )
                    for task in recovered:
                        nursery.start_soon(self._resume, task)
                    nursery.start_soon(self._registration_loop)
                    nursery.start_soon(self._watchdog)
                    task_status.started(self.agent_id or "")
            finally:
                with trio.CancelScope(shield=True):
                    with trio.move_on_after(SHUTDOWN_GRACE_PERIOD + 1):
                        await self._kill_all()
                    with trio.move_on_after(UNREGISTER_TIMEOUT):
                        await self._unregister()

    async def _register(self) -> None:
        """(Re-)register until the master answers; the agent id is kept across calls."""
        assert self._client is not None
        while True:
            body: dict[str, Any] = {
                "hostname": self.options.ip,
                "port": self.port,
                "pid": os.getpid(),
                "resources": self.options.resources.to_json(),
                "attributes": self.options.attributes,
                "tasks": [
                    {"framework_id": t.framework_id, "task": t.info, "state": t.state}
                    for t in self.tasks.values()
                ],
                "executors": [
                    {"framework_id": e.framework_id, "executor": e.info}
                    for e in self.executors.values()
                ],
                # What a master that failed over knows of these frameworks at first.
                "frameworks": list(
                    {t.framework_id: t.framework_info for t in self.tasks.values()}.values()
                ),
            }
            if self.agent_id is not None:
                body["agent_id"] = self.agent_id
            try:
                response = await self._client.post(
                    f"{self.options.master}/_local/agents/register", json=body
                )
                if response.status_code == 200:
                    answer = response.json()
                    self.agent_id = str(answer["agent_id"])
                    self.master_id = answer.get("master_id")
                    self.ping_timeout = float(answer.get("ping_timeout", self.ping_timeout))
                    self.max_ping_timeouts = int(
                        answer.get("max_ping_timeouts", self.max_ping_timeouts)
                    )
                    self.last_ping = trio.current_time()
                    self.registrations += 1
                    self.registered.set()
                    return
                log.warning("registration refused: %s %s", response.status_code, response.text)
            except httpx.HTTPError as exc:
                log.info("master not reachable yet: %s", exc)
            await trio.sleep(0.2)

    async def _registration_loop(self) -> None:
        """Re-register when asked; asking again while it runs asks for nothing more (a
        second re-registration would make the master drop what it is sending us)."""
        while True:
            await self._reregister.wait()
            log.warning("re-registering with the master as %s", self.agent_id)
            await self._register()
            self._reregister = trio.Event()

    async def _watchdog(self) -> None:
        """Re-register when the master has stopped pinging: at once if another master
        answers at its address (it failed over), else once the master must have taken
        this agent for lost."""
        while True:
            await trio.sleep(self.ping_timeout)
            silence = trio.current_time() - self.last_ping
            if silence <= self.ping_timeout * 1.5:
                continue
            if silence > self.ping_timeout * (self.max_ping_timeouts + 2):
                log.warning("no ping from the master for %.1fs", silence)
            elif await self._master_changed():
                log.warning("a new master leads at %s", self.options.master)
            else:
                continue
            self.last_ping = trio.current_time()
            self._reregister.set()

    async def _master_changed(self) -> bool:
        """Whether the master's address is served by another master than the one this
        agent registered with (what the Mesos agent's master detector would report)."""
        assert self._client is not None
        try:
            response = await self._client.get(f"{self.options.master}/_local/master")
            return response.status_code == 200 and response.json()["id"] != self.master_id
        except (httpx.HTTPError, ValueError, KeyError):
            return False

    async def _unregister(self) -> None:
        """Tell the master this agent leaves for good (best effort: it may be gone)."""
        if self._client is None or self.agent_id is None or not self.registered.is_set():
            return
        try:
            await self._client.post(
                f"{self.options.master}/_local/agents/unregister",
                json={"agent_id": self.agent_id},
            )
        except httpx.HTTPError as exc:
            log.info("could not unregister from the master: %s", exc)

    async def _kill_all(self) -> None:
        async with trio.open_nursery() as nursery:
            for task in self.tasks.values():
                if task.running is not None:
                    nursery.start_soon(
                        partial(task.running.kill, grace_period=SHUTDOWN_GRACE_PERIOD)
                    )

    # -- checkpoints -----------------------------------------------------------------

    def _task_file(self, task: TaskRun) -> Path:
        return self.meta / "tasks" / task.framework_id / f"{task.id}.json"

    def _checkpoint_agent(self) -> None:
        _write_json(
            self.meta / "agent.json", {"agent_id": self.agent_id, "boot_id": self.options.boot_id}
        )

    def _checkpoint(self, task: TaskRun) -> None:
        if self.tasks.get((task.framework_id, task.id)) is not task:
            return
        _write_json(
            self._task_file(task),
            {
                "framework_id": task.framework_id,
                "framework_info": task.framework_info,
                "info": task.info,
                "run_id": task.run_id,
                "sandbox": str(task.sandbox),
                "state": task.state,
                "killed": task.killed,
                "container_id": task.container_id,
                "containerizer": task.containerizer,
                "group": list(task.group),
                "updates": list(task.updates),
            },
        )

    def _forget(self, task: TaskRun) -> None:
        self.tasks.pop((task.framework_id, task.id), None)
        self._task_file(task).unlink(missing_ok=True)

    def _load_checkpoints(self) -> list[TaskRun]:
        """The tasks of an earlier run of this agent on the same boot of its machine."""
        try:
            agent = json.loads((self.meta / "agent.json").read_text())
        except (OSError, ValueError):
            return []
        if agent.get("boot_id") != self.options.boot_id:
            log.info("checkpoints are from another boot; starting afresh")
            with contextlib.suppress(OSError):
                (self.meta / "agent.json").unlink()
            for path in self.meta.glob("tasks/*/*.json"):
                path.unlink(missing_ok=True)
            return []
        self.agent_id = agent.get("agent_id")
        recovered = []
        for path in sorted(self.meta.glob("tasks/*/*.json")):
            try:
                data = json.loads(path.read_text())
                task = TaskRun(
                    data["framework_id"],
                    data["framework_info"],
                    data["info"],
                    data["run_id"],
                    Path(data["sandbox"]),
                    state=data["state"],
                    killed=data.get("killed", False),
                    updates=deque(data.get("updates", [])),
                    container_id=data.get("container_id"),
                    containerizer=data.get("containerizer"),
                    group=tuple(data.get("group", ())),
                )
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("unreadable checkpoint %s: %s", path, exc)
                continue
            self.tasks[(task.framework_id, task.id)] = task
            if task.group and task.state not in TERMINAL:
                # The executor lives on while a task of it runs: <executor run>/tasks/<task>.
                key = (task.framework_id, task.executor_id)
                executor = self.executors.setdefault(
                    key,
                    ExecutorRun(
                        task.framework_id, task.info["executor"], task.sandbox.parent.parent
                    ),
                )
                executor.live.add(task.id)
            recovered.append(task)
        log.info("recovered agent %s with %d task(s)", self.agent_id, len(recovered))
        return recovered

    async def _resume(self, task: TaskRun) -> None:
        """Carry on with a recovered task: watch it if it still runs, resend updates."""
        if task.updates:
            self._start_sender(task)
        if task.state in TERMINAL:
            if not task.updates:
                self._forget(task)
            return
        running: Running | None = None
        containerizer = self._containerizer_named(task.containerizer)
        if task.container_id is not None and containerizer is not None:
            try:
                running = await containerizer.recover(task.container_id, task.sandbox)
            except Exception as exc:
                log.warning("recovery of %s failed: %s", task.id, exc)
        if running is None:
            self._emit(
                task,
                "TASK_FAILED",
                reason="REASON_EXECUTOR_TERMINATED",
                message="Task could not be recovered after the agent restarted",
                source="SOURCE_AGENT",
            )
            return
        log.info("recovered task %s (container %s)", task.id, task.container_id)
        await self._watch(task, running)

    # -- HTTP ------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        path = request.path
        if path == "/_local/ping":
            agent_id = request.query.get("agent_id", [None])[0]
            if agent_id is not None and agent_id != self.agent_id:
                return Response.text(409, f"This is agent {self.agent_id}")
            self.last_ping = trio.current_time()
            return Response(200)
        if path == "/health":
            return Response(200)
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

    def _executor_runs(self, framework_id: str, executor_id: str) -> Path:
        assert self.agent_id is not None
        return (
            self.options.work_dir
            / "slaves" / self.agent_id
            / "frameworks" / framework_id
            / "executors" / executor_id
            / "runs"
        )  # fmt: skip

    def _run_task(self, body: Mapping[str, Any]) -> Response:
        assert self._nursery is not None
        info = dict(body["task"])
        framework_id = str(body["framework_id"])
        task_id = str(info["task_id"]["value"])
        if (framework_id, task_id) in self.tasks:
            return Response.text(409, f"Task {task_id} is already on this agent")
        run_id = str(uuid.uuid4())
        task = TaskRun(
            framework_id,
            dict(body.get("framework_info", {})),
            info,
            run_id,
            self._executor_runs(framework_id, task_id) / run_id,
        )
        self.tasks[(framework_id, task_id)] = task
        self._checkpoint(task)
        self._nursery.start_soon(self._run, task)
        return Response(202)

    def _run_task_group(self, body: Mapping[str, Any]) -> Response:
        """Hand a task group to its default executor, starting one if the master says so.

        A group meant for a live executor that has just exited (the master has not
        heard of it yet) is dropped, as the Mesos agent drops it.
        """
        assert self._nursery is not None
        framework_id = str(body["framework_id"])
        framework_info = dict(body.get("framework_info", {}))
        executor_info = dict(body["executor"])
        infos = [dict(t) for t in body["tasks"]]
        for info in infos:
            if (framework_id, info["task_id"]["value"]) in self.tasks:
                return Response.text(
                    409, f"Task {info['task_id']['value']} is already on this agent"
                )
        executor_id = str(executor_info["executor_id"]["value"])
        group = tuple(str(info["task_id"]["value"]) for info in infos)
        executor = self.executors.get((framework_id, executor_id))
        if executor is None and not body["launch_executor"]:
            for info in infos:
                task = TaskRun(framework_id, framework_info, info, str(uuid.uuid4()), Path())
                self.tasks[(framework_id, task.id)] = task
                self._emit(
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
            self.executors[(framework_id, executor_id)] = executor
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
            self.tasks[(framework_id, task.id)] = task
            executor.live.add(task.id)
            self._checkpoint(task)
            tasks.append(task)
        self._nursery.start_soon(self._run_group, executor, tasks)
        return Response(202)

    def _kill_task(self, body: Mapping[str, Any]) -> Response:
        task = self.tasks.get((str(body["framework_id"]), str(body["task_id"])))
        if task is None:
            return Response(404)
        grace = body.get("grace_period")
        task.grace_period = DEFAULT_GRACE_PERIOD if grace is None else float(grace)
        task.kill.set()
        return Response(202)

    def _acknowledge(self, body: Mapping[str, Any]) -> Response:
        task = self.tasks.get((str(body["framework_id"]), str(body["task_id"])))
        if task is None or not task.updates or task.updates[0].get("uuid") != body["uuid"]:
            return Response(200)  # duplicate or unexpected: ignored, as Mesos does
        task.updates.popleft()
        self._checkpoint(task)
        task.acked.set()
        return Response(202)

    def _shutdown_executor(self, body: Mapping[str, Any]) -> Response:
        """Shut an executor down: a default executor kills all its tasks (no group kills
        meanwhile); the command executor kills its one task."""
        framework_id, executor_id = str(body["framework_id"]), str(body["executor_id"])
        executor = self.executors.get((framework_id, executor_id))
        command_task = self.tasks.get((framework_id, executor_id))
        if executor is not None:
            executor.shutting_down = True
            doomed = [self.tasks[(framework_id, task_id)] for task_id in executor.live]
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
        command_task = self.tasks.get((framework_id, executor_id))
        if not any(fid == framework_id for fid, _ in [*self.tasks, *self.executors]):
            log.warning(
                "Dropping message from framework %s because framework does not exist",
                framework_id,
            )
        elif (framework_id, executor_id) in self.executors or (
            command_task is not None
            and not command_task.group
            and command_task.state not in TERMINAL
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
        for (fid, _), executor in self.executors.items():
            if fid == framework_id:
                executor.shutting_down = True
        for (fid, _), task in list(self.tasks.items()):
            if fid == framework_id:
                task.grace_period = DEFAULT_GRACE_PERIOD
                task.kill.set()
                if task.state in TERMINAL or task.running is None:
                    task.updates.clear()  # nobody will acknowledge them any more
                    if task.state in TERMINAL:
                        self._forget(task)
        return Response(202)

    # -- running a task --------------------------------------------------------------

    def _emit(
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
        task.state = state
        status: dict[str, Any] = {
            "task_id": {"value": task.id},
            "state": state,
            "source": source,
        }
        if message:
            status["message"] = message
        if reason:
            status["reason"] = reason
        status["executor_id"] = {"value": task.executor_id}
        status["timestamp"] = time.time()
        status["uuid"] = base64.b64encode(uuid.uuid4().bytes).decode()
        status.update(extra or {})
        task.updates.append(status)
        self._checkpoint(task)
        self._start_sender(task)
        if state in TERMINAL:
            self._ended(task, state)

    def _ended(self, task: TaskRun, state: str) -> None:
        """A task of a default executor ended: apply the default executor's policy (a
        task that failed or was killed takes the rest of its group down, each with the
        default 3 s grace period) and let the executor exit once no task is left."""
        assert self._nursery is not None
        executor = self.executors.get((task.framework_id, task.executor_id))
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
                other = self.tasks.get((task.framework_id, task_id))
                if other is None or other.id not in executor.live:
                    continue
                other.killing_group = True
                if not other.kill.is_set():
                    other.grace_period = DEFAULT_GRACE_PERIOD
                    other.kill.set()
        if not executor.live:
            del self.executors[(executor.framework_id, executor.id)]
            self._nursery.start_soon(self._report_exit, executor)

    async def _report_exit(self, executor: ExecutorRun) -> None:
        """Tell the master that an executor exited (status 0, as the default executor
        exits), once and best effort as Mesos does; re-registration reconciles."""
        assert self._client is not None
        log.info("executor '%s' of framework %s exited", executor.id, executor.framework_id)
        try:
            await self._client.post(
                f"{self.options.master}/_local/agents/executor_exited",
                json={
                    "agent_id": self.agent_id,
                    "framework_id": executor.framework_id,
                    "executor_id": executor.id,
                    "status": 0,
                },
            )
        except httpx.HTTPError as exc:
            log.warning("exit of executor %s not reported: %s", executor.id, exc)

    def _start_sender(self, task: TaskRun) -> None:
        assert self._nursery is not None
        if not task.sender_running:
            task.sender_running = True
            self._nursery.start_soon(self._send_updates, task)

    async def _send_updates(self, task: TaskRun) -> None:
        """Deliver the task's updates in order, resending the head until acknowledged."""
        assert self._client is not None
        delay = self.options.status_update_retry
        while task.updates:
            head = task.updates[0]
            task.acked = trio.Event()
            registrations = self.registrations
            try:
                response = await self._client.post(
                    f"{self.options.master}/_local/agents/status",
                    json={
                        "agent_id": self.agent_id,
                        "framework_id": task.framework_id,
                        "status": head,
                    },
                )
                if response.status_code == 404:  # framework gone: nobody will acknowledge
                    task.updates.clear()
                    break
                # The master does not know us (any more), unless a registration under way
                # when the update left has finished since.
                if response.status_code == 409 and registrations == self.registrations:
                    self._reregister.set()
            except httpx.HTTPError as exc:
                log.info("status update for %s not delivered: %s", task.id, exc)
            with trio.move_on_after(delay):
                await task.acked.wait()
            if task.updates and task.updates[0] is head:
                delay = min(delay * 2, STATUS_UPDATE_RETRY_MAX)
            else:
                delay = self.options.status_update_retry
        task.sender_running = False
        if task.state in TERMINAL and not task.updates:
            self._forget(task)
        else:
            self._checkpoint(task)

    def _launch_of(self, task: TaskRun) -> Launch:
        info = task.info
        command = info.get("command", {})
        resources = Resources.from_json(info.get("resources", []))
        env = dict(os.environ)  # executors inherit the agent's environment, as in Mesos
        env.update(
            {
                "MESOS_TASK_ID": task.id,
                "MESOS_FRAMEWORK_ID": task.framework_id,
                "MESOS_EXECUTOR_ID": task.executor_id,
                "MESOS_AGENT_ID": self.agent_id or "",
                "MESOS_SLAVE_ID": self.agent_id or "",
                "MESOS_SANDBOX": str(task.sandbox),
                "MESOS_DIRECTORY": str(task.sandbox),
                "MESOS_AGENT_ENDPOINT": f"{self.options.ip}:{self.port}",
                "HOST": self.options.ip,
            }
        )
        if task.group:  # what the default executor adds for each task it launches
            env["MESOS_CONTAINER_IP"] = self.options.ip
            # The master put the offer's allocation info on every resource of the group.
            env["MESOS_ALLOCATION_ROLE"] = info["resources"][0]["allocation_info"]["role"]
        ports = resources.ports()
        if ports:
            env["PORTS"] = ",".join(str(p) for p in ports)
            env["PORT"] = str(ports[0])
            for i, port in enumerate(ports):
                env[f"PORT{i}"] = str(port)
        for variable in command.get("environment", {}).get("variables", []):
            if variable.get("type", "VALUE") == "VALUE":
                env[variable["name"]] = variable.get("value", "")
        return Launch(
            task_id=task.id,
            command=command.get("value"),
            arguments=tuple(command.get("arguments", [])),
            shell=command.get("shell", True),
            environment=env,
            sandbox=task.sandbox,
            resources=dict(resources.scalars),
            container=info.get("container"),
        )

    def _containerizer_of(self, task: TaskRun) -> tuple[str, Containerizer | None]:
        container = task.info.get("container")
        if container is None:
            return "command", self.command
        kind = str(container.get("type", "MESOS"))
        found = self.containerizers.get(kind)
        if found is None and kind == "MESOS" and "image" not in container.get("mesos", {}):
            return "command", self.command  # a MESOS container without image: host filesystem
        return kind, found

    def _containerizer_named(self, name: str | None) -> Containerizer | None:
        if name == "command":
            return self.command
        return None if name is None else self.containerizers.get(name)

    async def _run(self, task: TaskRun) -> None:
        """Run a command task as Mesos's command executor does."""
        if task.kill.is_set():
            self._emit(
                task,
                "TASK_KILLED",
                reason="REASON_TASK_KILLED_DURING_LAUNCH",
                message="Task killed before delivery to the executor",
                source="SOURCE_AGENT",
            )
            return
        self._emit(task, "TASK_STARTING")
        _link_latest(task.sandbox)
        running = await self._launch(task)
        if isinstance(running, str):
            self._emit(
                task, "TASK_FAILED", reason="REASON_CONTAINER_LAUNCH_FAILED", message=running
            )
            return
        self._emit_running(task, running)
        await self._watch(task, running)

    async def _run_group(self, executor: ExecutorRun, tasks: list[TaskRun]) -> None:
        """Run a task group as Mesos's default executor does: TASK_STARTING for every
        task, launch them all, then TASK_RUNNING for those that started and
        TASK_FAILED for those that did not (which takes the group down)."""
        if any(task.kill.is_set() for task in tasks):
            for task in tasks:
                self._emit(
                    task,
                    "TASK_KILLED",
                    reason="REASON_TASK_KILLED_DURING_LAUNCH",
                    message="A task within the task group was killed before delivery to the "
                    "executor",
                    source="SOURCE_AGENT",
                )
            return
        if not executor.sandbox.exists():
            _link_latest(executor.sandbox)
        for task in tasks:
            self._emit(task, "TASK_STARTING")
        started = [(task, await self._launch(task)) for task in tasks]
        async with trio.open_nursery() as nursery:
            for task, running in started:
                if not isinstance(running, str):
                    self._emit_running(task, running)
                    nursery.start_soon(self._watch, task, running)
            for task, running in started:
                if isinstance(running, str):
                    self._emit(
                        task,
                        "TASK_FAILED",
                        reason="REASON_CONTAINER_LAUNCH_FAILED",
                        message=running,
                    )

    async def _launch(self, task: TaskRun) -> Running | str:
        """Start a task's container: the running task, or why it could not start."""
        name, containerizer = self._containerizer_of(task)
        if containerizer is None:
            kind = task.info.get("container", {}).get("type")
            return f"No containerizer on this agent supports container type {kind}"
        try:
            launch = self._launch_of(task)
            task.sandbox.mkdir(parents=True, exist_ok=True)
            running = await containerizer.launch(launch)
        except Exception as exc:
            log.warning("launch of %s failed: %s", task.id, exc)
            return f"Failed to launch container: {exc}"
        task.container_id = running.container_id
        task.containerizer = name
        return running

    def _emit_running(self, task: TaskRun, running: Running) -> None:
        self._emit(
            task,
            "TASK_RUNNING",
            extra={
                "container_status": {
                    "container_id": {"value": running.container_id},
                    "network_infos": [{"ip_addresses": [{"ip_address": self.options.ip}]}],
                }
            },
        )

    async def _watch(self, task: TaskRun, running: Running) -> None:
        """Wait for a running task to end (killing it when asked); report how it ended."""
        task.running = running
        pid_file = self._record_pid(task, running)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._kill_when_asked, task, running)
                termination = await running.wait()
                nursery.cancel_scope.cancel()
        finally:
            if pid_file is not None:
                pid_file.unlink(missing_ok=True)
        if task.killed:
            state, reason = "TASK_KILLED", None
        elif termination.exit_code == 0:
            state, reason = "TASK_FINISHED", None
        else:
            state = "TASK_FAILED"
            reason = "REASON_CONTAINER_LIMITATION_MEMORY" if termination.oom_killed else None
        self._emit(task, state, message=termination.message, reason=reason)

    async def _kill_when_asked(self, task: TaskRun, running: Running) -> None:
        if not task.killed:
            await task.kill.wait()
            task.killed = True
            self._checkpoint(task)
            if "TASK_KILLING_STATE" in task.capabilities:
                self._emit(task, "TASK_KILLING")
        grace = DEFAULT_GRACE_PERIOD if task.grace_period is None else task.grace_period
        await running.kill(grace_period=grace)

    def _record_pid(self, task: TaskRun, running: Running) -> Path | None:
        """Leave ``meta/pids/<run>`` (pid, sandbox) while the task runs, for tools and tests."""
        pid = getattr(running, "pid", None)
        if pid is None:
            return None
        path = self.meta / "pids" / task.run_id
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


def _write_json(path: Path, value: Any) -> None:
    """Write a checkpoint atomically (a crash leaves the old or the new file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)


# -- process entry point ----------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m marathon_mesos_local.agent")
    parser.add_argument("--master", required=True, help="Master URL, http://127.0.0.1:5050")
    parser.add_argument("--ip", required=True, help="Loopback address to bind, 127.0.0.2")
    parser.add_argument("--port", type=int, default=5051)
    parser.add_argument("--work_dir", required=True)
    parser.add_argument("--resources", default=DEFAULT_RESOURCES)
    parser.add_argument("--attributes", default="")
    parser.add_argument("--status_update_retry", type=float, default=STATUS_UPDATE_RETRY_MIN)
    parser.add_argument("--parent_pid", type=int, default=None)
    parser.add_argument("--boot_id", default=None, help="Set by the host process")
    return parser


def _load_containerizers() -> dict[str, Containerizer]:
    """Containerizers of the installed runtime plugins; the command one is built in."""
    try:
        from marathon_core.plugins import get_plugin_host

        found: dict[str, Containerizer] = get_plugin_host().agent_containerizers()
        return found
    except Exception as exc:  # a broken plugin must not stop plain command tasks
        log.warning("no plugin containerizers: %s", exc)
        return {}


async def _serve(options: AgentOptions) -> None:
    agent = Agent(options, _load_containerizers())
    async with trio.open_nursery() as nursery:

        async def stop_on_signal() -> None:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    return

        async def stop_with_parent() -> None:
            while options.parent_pid is not None:
                if os.getppid() != options.parent_pid:
                    log.warning("parent %s is gone; stopping", options.parent_pid)
                    nursery.cancel_scope.cancel()
                    return
                await trio.sleep(0.5)

        nursery.start_soon(stop_on_signal)
        nursery.start_soon(stop_with_parent)
        await agent.run()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("MESOS_LOCAL_LOG_LEVEL", "INFO"),
        format=f"%(asctime)s %(levelname)s agent {args.ip}: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        options = AgentOptions(
            master=args.master.rstrip("/"),
            ip=args.ip,
            port=args.port,
            work_dir=Path(args.work_dir),
            resources=Resources.parse(args.resources),
            attributes=parse_attributes(args.attributes),
            status_update_retry=args.status_update_retry,
            parent_pid=args.parent_pid,
            boot_id=args.boot_id,
        )
    except ResourceError as exc:
        print(f"agent: error: {exc}", file=sys.stderr)
        return 2
    trio.run(_serve, options)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
