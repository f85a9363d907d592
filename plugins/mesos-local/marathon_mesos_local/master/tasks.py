"""Tasks once launched: the scheduler's task calls and the agents' reports.

Scheduler calls: KILL, ACKNOWLEDGE, RECONCILE (implicit and explicit), SHUTDOWN (of an
executor) and MESSAGE, each passed on to the task's agent or answered by the master.
Agents' reports: status updates, forwarded to connected frameworks (the agent
retries until they are acknowledged), and exited executors, whose resources the
master recovers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from marathon_mesos_local.http import Request, Response
from marathon_mesos_local.master.books import Books
from marathon_mesos_local.master.model import Agent, Framework, Task, master_status, update_event
from marathon_mesos_local.messages import TERMINAL_STATES, id_value, mesos_id

__all__ = ["Tasks"]

log = logging.getLogger(__name__)


class Tasks:
    """What happens to launched tasks, asked by their frameworks or told by their agents."""

    def __init__(self, books: Books) -> None:
        self.books = books

    # -- scheduler calls ---------------------------------------------------------------

    def kill(self, framework: Framework, call: Mapping[str, Any]) -> None:
        """KILL: the agent kills the task; a task the master does not know is reconciled."""
        kill = call["kill"]
        task_id = kill["task_id"]["value"]
        task = framework.tasks.get(task_id)
        if task is None:
            self._reconcile_explicit(framework, [kill])
            return
        agent_id = id_value(kill.get("agent_id"))
        if agent_id is not None and agent_id != task.agent_id:
            return
        agent = self.books.agents.get(task.agent_id)
        if agent is None:
            return
        policy = kill.get("kill_policy") or task.info.get("kill_policy") or {}
        grace = (policy.get("grace_period") or {}).get("nanoseconds")
        agent.send(
            "kill_task",
            {
                "framework_id": framework.id,
                "task_id": task_id,
                "grace_period": None if grace is None else grace / 1e9,
            },
        )

    def acknowledge(self, framework: Framework, call: Mapping[str, Any]) -> None:
        """ACKNOWLEDGE: the agent drops the update; an acknowledged terminal task is done."""
        ack = call["acknowledge"]
        task_id = ack["task_id"]["value"]
        agent = self.books.agents.get(ack["agent_id"]["value"])
        if agent is not None:
            agent.send(
                "acknowledge",
                {"framework_id": framework.id, "task_id": task_id, "uuid": ack["uuid"]},
            )
        task = framework.tasks.get(task_id)
        if (
            task is not None
            and task.status_update_uuid == ack["uuid"]
            and task.status_update_state in TERMINAL_STATES
        ):
            self.books.remove_task(framework, task)

    def reconcile(self, framework: Framework, call: Mapping[str, Any]) -> None:
        """RECONCILE: the latest state of the given tasks, or of all the framework's."""
        tasks = call["reconcile"].get("tasks", [])
        if tasks:
            self._reconcile_explicit(framework, tasks)
            return
        for task in framework.tasks.values():
            framework.send(update_event(self._reconcile_status(task)), answer=True)

    def _reconcile_status(self, task: Task) -> dict[str, Any]:
        state = task.status_update_state or task.state
        status = master_status(
            task.id,
            state,
            reason="REASON_RECONCILIATION",
            message="Reconciliation: Latest task state",
            agent_id=task.agent_id,
            executor_id=task.executor_id,
        )
        latest = task.latest_status or {}
        for key in ("healthy", "container_status"):
            if key in latest:
                status[key] = latest[key]
        return status

    def _reconcile_explicit(self, framework: Framework, tasks: Iterable[Mapping[str, Any]]) -> None:
        for item in tasks:
            task_id = item["task_id"]["value"]
            agent_id = id_value(item.get("agent_id"))
            task = framework.tasks.get(task_id)
            if task is not None:
                framework.send(update_event(self._reconcile_status(task)), answer=True)
                continue
            if agent_id in self.books.recovered_agents or (
                agent_id is None and self.books.recovered_agents
            ):
                # The task may be on an agent that has not re-registered since the master
                # failed over: no answer until it has or is marked unreachable.
                log.info(
                    "Dropping reconciliation of task %s for framework %s because %s not yet "
                    "re-registered with the master",
                    task_id,
                    framework.id,
                    f"agent {agent_id} has" if agent_id else "some agents have",
                )
                continue
            pa = framework.partition_aware
            unreachable = framework.unreachable_tasks.get(task_id)
            unreachable_time = None
            if unreachable is not None:
                agent_id = unreachable.agent_id
                unreachable_time = unreachable.unreachable_time
            elif agent_id is not None and agent_id in self.books.unreachable_agents:
                unreachable_time = self.books.unreachable_agents[agent_id].unreachable_time
            if unreachable_time is not None:
                status = master_status(
                    task_id,
                    "TASK_UNREACHABLE" if pa else "TASK_LOST",
                    reason="REASON_RECONCILIATION",
                    message="Reconciliation: Task is unreachable",
                    agent_id=agent_id,
                )
                status["unreachable_time"] = {"nanoseconds": int(unreachable_time * 1e9)}
                framework.send(update_event(status), answer=True)
                continue
            if agent_id is not None and agent_id in self.books.agents:
                state = "TASK_GONE" if pa else "TASK_LOST"
                message = "Reconciliation: Task is unknown to the agent"
            else:
                state = "TASK_UNKNOWN" if pa else "TASK_LOST"
                message = "Reconciliation: Task is unknown"
            framework.send(
                update_event(
                    master_status(
                        task_id,
                        state,
                        reason="REASON_RECONCILIATION",
                        message=message,
                        agent_id=agent_id,
                    )
                ),
                answer=True,
            )

    def shutdown(self, framework: Framework, call: Mapping[str, Any]) -> None:
        """Ask the agent to shut an executor down; it knows whether it runs one."""
        shutdown = call["shutdown"]
        executor_id = shutdown["executor_id"]["value"]
        agent = self.books.agents.get(shutdown["agent_id"]["value"])
        if agent is None:
            log.warning(
                "Unable to shutdown executor '%s' of framework %s of unknown agent %s",
                executor_id,
                framework.id,
                shutdown["agent_id"]["value"],
            )
            return
        agent.send("shutdown_executor", {"framework_id": framework.id, "executor_id": executor_id})

    def message(self, framework: Framework, call: Mapping[str, Any]) -> None:
        """Pass opaque bytes on to an executor through its agent (best effort, as in
        Mesos: a message for an agent that is not registered is dropped with a log
        line, and the agent drops one for an executor it does not run)."""
        message = call["message"]
        agent_id = message["agent_id"]["value"]
        agent = self.books.agents.get(agent_id)
        if agent is None:
            log.warning(
                "Cannot send framework message for framework %s to agent %s because agent "
                "is not registered",
                framework.id,
                agent_id,
            )
            return
        log.info("Processing MESSAGE call from framework %s to agent %s", framework.id, agent_id)
        agent.send(
            "framework_message",
            {
                "framework_id": framework.id,
                "executor_id": message["executor_id"]["value"],
                "data": message["data"],
            },
        )

    # -- agents' reports ---------------------------------------------------------------

    def agent_status(self, request: Request) -> Response:
        """A status update from an agent; forwarded to the framework if it is connected."""
        try:
            body = request.json()
            agent_id = str(body["agent_id"])
            framework_id = body["framework_id"]
            status = dict(body["status"])
        except (ValueError, KeyError, TypeError) as exc:
            return Response.text(400, f"Bad status update: {exc}")
        agent = self.books.agents.get(agent_id)
        if agent is None:
            # Mesos drops updates of agents it does not consider registered; the
            # agent learns it must re-register.
            return Response.text(409, f"Agent {agent_id} is not registered")
        return self.status_update(agent, framework_id, status)

    def agent_executor_exited(self, request: Request) -> Response:
        try:
            body = request.json()
            agent_id = str(body["agent_id"])
            framework_id = str(body["framework_id"])
            executor_id = str(body["executor_id"])
            status = int(body["status"])
        except (ValueError, KeyError, TypeError) as exc:
            return Response.text(400, f"Bad exited executor message: {exc}")
        agent = self.books.agents.get(agent_id)
        if agent is None:
            log.warning(
                "Ignoring exited executor '%s' of framework %s on unknown agent %s",
                executor_id,
                framework_id,
                agent_id,
            )
        else:
            self.executor_exited(agent, framework_id, executor_id, status)
        return Response(202)

    def executor_exited(
        self, agent: Agent, framework_id: str, executor_id: str, status: int
    ) -> None:
        """An executor ended on its agent: its resources are recovered and its framework
        gets ``FAILURE`` with the executor id and wait status, as in Mesos."""
        executor = agent.executors.get((framework_id, executor_id))
        if executor is None:
            log.warning(
                "Ignoring unknown exited executor '%s' of framework %s on agent %s",
                executor_id,
                framework_id,
                agent.id,
            )
            return
        log.info(
            "Executor '%s' of framework %s on agent %s exited with status %d",
            executor_id,
            framework_id,
            agent.id,
            status,
        )
        self.books.remove_executor(executor)
        framework = self.books.frameworks.get(framework_id)
        if framework is None or not framework.connected:
            log.warning(
                "Not forwarding exited executor message for executor '%s' of framework %s "
                "because the framework is %s",
                executor_id,
                framework_id,
                "unknown" if framework is None else "disconnected",
            )
            return
        framework.send(
            {
                "type": "FAILURE",
                "failure": {
                    "agent_id": mesos_id(agent.id),
                    "executor_id": mesos_id(executor_id),
                    "status": status,
                },
            }
        )

    def status_update(self, agent: Agent, framework_id: str, status: dict[str, Any]) -> Response:
        """Apply an agent's status update and forward it (404: the framework is gone)."""
        task_id = status["task_id"]["value"]
        framework = self.books.frameworks.get(framework_id)
        if framework is None:
            return Response.text(404, f"Framework {framework_id} is unknown")
        task = framework.tasks.get(task_id)
        status["agent_id"] = mesos_id(agent.id)
        if task is not None:
            if task.latest_status is None or task.latest_status.get("uuid") != status.get("uuid"):
                task.statuses.append(
                    {"state": status["state"], "timestamp": status.get("timestamp", time.time())}
                )
            task.state = status["state"]
            task.latest_status = status
            if task.state in TERMINAL_STATES:
                self.books.free(task)
        if framework.stream is None:
            return Response(202)  # the agent retries until acknowledged
        framework.send(update_event(status))
        if task is not None:
            task.status_update_state = status["state"]
            task.status_update_uuid = status.get("uuid")
        return Response(202)
