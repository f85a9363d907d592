"""Matching what a re-registering agent runs with what the master knows of it."""

from __future__ import annotations

import logging
import time
from typing import Any

from marathon_mesos_local.master.books import Books
from marathon_mesos_local.master.model import (
    Agent,
    AllocationTrigger,
    Framework,
    Task,
    master_status,
    update_event,
)
from marathon_mesos_local.messages import TERMINAL_STATES, id_value
from marathon_mesos_local.resources import ResourceError, Resources

__all__ = ["reconcile_agent"]

log = logging.getLogger(__name__)


def reconcile_agent(
    books: Books,
    trigger: AllocationTrigger,
    agent: Agent,
    frameworks: list[dict[str, Any]],
    reported: list[tuple[str, dict[str, Any], str]],
    executors: list[tuple[str, dict[str, Any]]],
    *,
    recovered: bool,
) -> None:
    """Match the frameworks, tasks and executors a re-registering agent runs with
    what the master knows.

    Frameworks this master has not seen (it failed over) are recovered from the
    agent's ``FrameworkInfo``: known but disconnected until they re-subscribe. Tasks
    that come back from an unreachable or unknown agent are reported again in their
    current state with ``REASON_AGENT_REREGISTERED`` (a LOST task can thus be seen
    RUNNING again, as in Mesos ≥ 1.5); those of an agent ``recovered`` from the
    registry are taken back silently, as Mesos does (frameworks reconcile). Tasks of
    frameworks removed meanwhile are shut down; tasks the master expected but the
    agent no longer has are gone. Executors are what the agent reports: the others
    are forgotten, as in Mesos's ``reconcileKnownSlave``.
    """
    for info in frameworks:
        framework_id = id_value(info.get("id"))
        if (
            framework_id is not None
            and framework_id not in books.frameworks
            and framework_id not in books.removed_framework_ids
        ):
            log.info("recovering framework %s from re-registered agent %s",
                     framework_id, agent.id)  # fmt: skip
            books.frameworks[framework_id] = Framework(
                framework_id, info, time.time(), recovered=True
            )
    seen: set[tuple[str, str]] = set()
    shutdown: set[str] = set()
    for framework_id, info, state in reported:
        task_id = str(info["task_id"]["value"])
        framework = books.frameworks.get(framework_id)
        if framework is None:
            if framework_id in books.removed_framework_ids:
                shutdown.add(framework_id)
            else:
                log.warning("agent %s runs task %s of unknown framework %s; left alone",
                            agent.id, task_id, framework_id)  # fmt: skip
            continue
        seen.add((framework_id, task_id))
        task = framework.tasks.get(task_id)
        notify = task is None and not recovered  # back from unreachable, or news
        if task is None:
            task = framework.unreachable_tasks.pop(task_id, None)
        if task is None:
            try:
                resources = Resources.from_json(info.get("resources", []))
            except (ResourceError, KeyError, TypeError, ValueError):
                resources = Resources()
            task = Task(info, framework_id, agent.id, resources)
        task.agent_id = agent.id
        task.unreachable_time = None
        task.state = state
        framework.tasks[task_id] = task
        agent.tasks[(framework_id, task_id)] = task
        if state in TERMINAL_STATES:
            task.freed = True
        else:
            task.freed = False
            agent.allocated = agent.allocated + task.resources
        if notify:
            framework.send(
                update_event(
                    master_status(
                        task_id,
                        state,
                        reason="REASON_AGENT_REREGISTERED",
                        message="Agent re-registered",
                        agent_id=agent.id,
                        executor_id=task.executor_id,
                    )
                )
            )
            task.status_update_state = state
    for framework_id, info in executors:
        framework = books.frameworks.get(framework_id)
        if framework is None:
            if framework_id in books.removed_framework_ids:
                shutdown.add(framework_id)
            continue
        try:
            resources = Resources.from_json(info.get("resources", []))
        except (ResourceError, KeyError, TypeError, ValueError):
            resources = Resources()
        books.add_executor(framework, agent, info, resources)
    for framework in books.frameworks.values():
        for (agent_id, executor_id), executor in list(framework.executors.items()):
            if (
                agent_id == agent.id
                and agent.executors.get((framework.id, executor_id)) is not executor
            ):
                del framework.executors[(agent_id, executor_id)]
    # Tasks the master placed on this agent that the agent does not run (any more).
    expected: list[tuple[Framework, Task]] = []
    for framework in books.frameworks.values():
        for task in list(framework.tasks.values()) + list(framework.unreachable_tasks.values()):
            if task.agent_id == agent.id and (framework.id, task.id) not in seen:
                expected.append((framework, task))
    for framework, task in expected:
        framework.unreachable_tasks.pop(task.id, None)
        framework.tasks[task.id] = task
        if task.state in TERMINAL_STATES:
            books.remove_task(framework, task)
            continue
        state = "TASK_GONE" if framework.partition_aware else "TASK_LOST"
        task.state = state
        framework.send(
            update_event(
                master_status(
                    task.id,
                    state,
                    reason="REASON_AGENT_REREGISTERED",
                    message="Task is unknown to the re-registered agent",
                    agent_id=agent.id,
                )
            )
        )
        books.remove_task(framework, task)
    for framework_id in shutdown:
        agent.send("shutdown_framework", {"framework_id": framework_id})
    trigger.request(agent.id)
