"""Simulated agents: in the master's process, no OS process, tasks that only pretend.

A simulated agent registers like a real one (resources, attributes, an address of
``127.1.x.y`` that nothing listens on) and takes the same messages, but a task goes
TASK_STARTING and TASK_RUNNING on a short timer and runs until it is killed
(TASK_KILLING if the framework wants it, then TASK_KILLED); a task with a
``health_check`` passes it, reported healthy a step after TASK_RUNNING. The tasks of a task group
do so together, under a default executor: killing one kills the rest of its group, and
the executor exits (its resources go back to the master) when its last task has ended.
Status updates keep the real agent's discipline: one stream per task, a uuid on each
update, only the head in flight, resent with doubling backoff until acknowledged.

All simulated agents of a master share one timer heap and one trio task, so thousands
of agents and tens of thousands of tasks cost a few hundred bytes each and no
scheduling overhead while nothing happens. They are never pinged and never lost.
"""

from __future__ import annotations

import base64
import heapq
import ipaddress
import itertools
import math
import time
import uuid
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

import attrs
import trio

from marathon_mesos_local.master.model import Agent
from marathon_mesos_local.master.server import Master
from marathon_mesos_local.messages import TERMINAL_STATES
from marathon_mesos_local.resources import Resources

__all__ = ["SimulatedAgent", "SimulatedAgents"]

#: First address of simulated agents (never bound).
FIRST_SIMULATED_IP = "127.1.0.1"


@attrs.define(eq=False, slots=True)
class _Task:
    framework_id: str
    task_id: str
    killing_state: bool
    #: The task's own id for a command task; its default executor's for a group task.
    executor_id: str
    #: Ids of the tasks of its group (empty for a command task).
    group: tuple[str, ...] = ()
    state: str = "TASK_STAGING"
    killed: bool = False
    killing_group: bool = False
    updates: deque[dict[str, Any]] = attrs.field(factory=deque)
    #: Bumped whenever the head changes, so stale retry timers do nothing.
    generation: int = 0
    retry: float = 0.0


@attrs.define(eq=False, slots=True)
class _Executor:
    framework_id: str
    executor_id: str
    #: Ids of its tasks that have not ended yet.
    live: set[str] = attrs.field(factory=set)
    shutting_down: bool = False


class SimulatedAgent:
    """One simulated agent; the master calls :meth:`handle` instead of HTTP."""

    def __init__(self, group: SimulatedAgents, ip: str) -> None:
        self.group = group
        self.ip = ip
        self.agent: Agent | None = None
        self.tasks: dict[tuple[str, str], _Task] = {}
        self.executors: dict[tuple[str, str], _Executor] = {}

    def handle(self, action: str, body: dict[str, Any]) -> None:
        framework_id = str(body.get("framework_id"))
        if action == "run_task":
            self._start(body, [body["task"]], executor=None)
        elif action == "run_task_group":
            executor_id = str(body["executor"]["executor_id"]["value"])
            executor = self.executors.setdefault(
                (framework_id, executor_id), _Executor(framework_id, executor_id)
            )
            self._start(body, body["tasks"], executor=executor)
        elif action == "kill_task":
            found = self.tasks.get((framework_id, str(body["task_id"])))
            if found is not None:
                self._kill(found)
        elif action == "shutdown_executor":
            executor_id = str(body["executor_id"])
            doomed = self.executors.get((framework_id, executor_id))
            if doomed is not None:
                doomed.shutting_down = True
                for task_id in list(doomed.live):
                    self._kill(self.tasks[(framework_id, task_id)])
            elif (task := self.tasks.get((framework_id, executor_id))) and not task.group:
                self._kill(task)
        elif action == "acknowledge":
            found = self.tasks.get((framework_id, str(body["task_id"])))
            if found is not None and found.updates and found.updates[0]["uuid"] == body["uuid"]:
                found.updates.popleft()
                found.generation += 1
                found.retry = self.group.retry
                if found.updates:
                    self.group.later(0.0, partial(self._send, found, found.generation))
                elif found.state in TERMINAL_STATES:
                    del self.tasks[(found.framework_id, found.task_id)]
        elif action == "shutdown_framework":
            for key in [k for k in self.tasks if k[0] == framework_id]:
                del self.tasks[key]
            for key in [k for k in self.executors if k[0] == framework_id]:
                del self.executors[key]
        # "framework_message": the built-in executors ignore framework messages.

    def _start(
        self, body: dict[str, Any], infos: list[dict[str, Any]], *, executor: _Executor | None
    ) -> None:
        """Tasks (of one group, if ``executor``) that start together on the timer."""
        capabilities = {
            c.get("type") for c in body.get("framework_info", {}).get("capabilities", [])
        }
        framework_id = str(body["framework_id"])
        task_ids = [str(info["task_id"]["value"]) for info in infos]
        group = tuple(task_ids) if executor else ()
        for task_id, info in zip(task_ids, infos, strict=True):
            task = _Task(
                framework_id,
                task_id,
                "TASK_KILLING_STATE" in capabilities,
                executor.executor_id if executor else task_id,
                group,
            )
            self.tasks[(framework_id, task_id)] = task
            if executor is not None:
                executor.live.add(task_id)
            step = self.group.step
            self.group.later(step, partial(self._advance, task, "TASK_STARTING"))
            self.group.later(2 * step, partial(self._advance, task, "TASK_RUNNING"))
            if info.get("health_check"):
                self.group.later(3 * step, partial(self._advance, task, "TASK_RUNNING", True))

    def _kill(self, task: _Task) -> None:
        if not task.killed and task.state not in TERMINAL_STATES:
            task.killed = True
            if task.killing_state and task.state != "TASK_STAGING":
                self._emit(task, "TASK_KILLING")
            self.group.later(self.group.step, partial(self._emit, task, "TASK_KILLED"))

    def _ended(self, task: _Task) -> None:
        """A group task ended (killed, here): the rest of its group is killed, and the
        executor exits when none is left (see ``agent.Agent._ended``)."""
        executor = self.executors.get((task.framework_id, task.executor_id))
        if executor is None or task.task_id not in executor.live:
            return
        executor.live.discard(task.task_id)
        if not executor.shutting_down and not task.killing_group:
            for task_id in executor.live & set(task.group):
                other = self.tasks[(task.framework_id, task_id)]
                other.killing_group = True
                self._kill(other)
        if not executor.live and self.agent is not None:
            del self.executors[(executor.framework_id, executor.executor_id)]
            self.group.master.tasks.executor_exited(
                self.agent, executor.framework_id, executor.executor_id, 0
            )

    def _advance(self, task: _Task, state: str, healthy: bool | None = None) -> None:
        if task.killed:
            if task.state == "TASK_STAGING" and state == "TASK_STARTING":
                self._emit(task, "TASK_KILLED", reason="REASON_TASK_KILLED_DURING_LAUNCH")
            return
        if self.tasks.get((task.framework_id, task.task_id)) is task:
            if healthy is None:
                self._emit(task, state)
            else:
                reason = "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"
                self._emit(task, state, reason=reason, healthy=healthy)

    def _emit(
        self, task: _Task, state: str, *, reason: str | None = None, healthy: bool | None = None
    ) -> None:
        if task.state in TERMINAL_STATES:
            return
        task.state = state
        status: dict[str, Any] = {
            "task_id": {"value": task.task_id},
            "state": state,
            "source": "SOURCE_EXECUTOR",
            "executor_id": {"value": task.executor_id},
            "timestamp": time.time(),
            "uuid": base64.b64encode(uuid.uuid4().bytes).decode(),
        }
        if reason:
            status["reason"] = reason
        if healthy is not None:
            status["healthy"] = healthy
        if state == "TASK_RUNNING":
            status["container_status"] = {
                "network_infos": [{"ip_addresses": [{"ip_address": self.ip}]}]
            }
        task.updates.append(status)
        if len(task.updates) == 1:
            task.retry = self.group.retry
            self._send(task, task.generation)
        if state in TERMINAL_STATES and task.group:
            self._ended(task)

    def _send(self, task: _Task, generation: int) -> None:
        """Deliver the head update; resend it later unless it is acknowledged first."""
        if generation != task.generation or not task.updates or self.agent is None:
            return
        response = self.group.master.tasks.status_update(
            self.agent, task.framework_id, dict(task.updates[0])
        )
        if response.status == 404:  # the framework is gone: nobody will acknowledge
            self.tasks.pop((task.framework_id, task.task_id), None)
            return
        delay, task.retry = task.retry, min(task.retry * 2, 600.0)
        self.group.later(delay, lambda: self._send(task, generation))


class SimulatedAgents:
    """The simulated agents of one master: :meth:`run` registers them and drives them."""

    def __init__(
        self,
        master: Master,
        count: int,
        *,
        resources: Resources,
        attributes: list[dict[str, Any]] | None = None,
        step: float = 0.05,
        retry: float = 10.0,
    ) -> None:
        self.master = master
        self.count = count
        self.resources = resources
        self.attributes = list(attributes or [])
        self.step = step
        self.retry = retry
        self.agents: list[SimulatedAgent] = []
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._wakeup = trio.Event()

    def later(self, delay: float, action: Callable[[], None]) -> None:
        due = trio.current_time() + delay
        if not self._heap or due < self._heap[0][0]:
            self._wakeup.set()
        heapq.heappush(self._heap, (due, next(self._seq), action))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        first = ipaddress.IPv4Address(FIRST_SIMULATED_IP)
        for index in range(self.count):
            sim = SimulatedAgent(self, str(first + index))
            sim.agent = self.master.membership.add_agent(
                sim.ip, 5051, self.resources, self.attributes, simulated=sim
            )
            self.agents.append(sim)
        task_status.started()
        while True:
            now = trio.current_time()
            while self._heap and self._heap[0][0] <= now:
                _, _, action = heapq.heappop(self._heap)
                action()
            timeout = self._heap[0][0] - now if self._heap else math.inf
            with trio.move_on_after(timeout):
                await self._wakeup.wait()
            self._wakeup = trio.Event()
