"""The master's books: every framework and agent it knows, cross-indexed.

A task is in its framework's and its agent's tables and holds part of the agent's
``allocated`` resources until it is freed; an executor likewise. The parts of the
master read these tables freely, but add and remove tasks and executors only
through :class:`Books`, which keeps the indexes and the allocations consistent and
asks for an allocation when resources come free.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from marathon_mesos_local.master.model import (
    MAX_COMPLETED,
    Agent,
    AllocationTrigger,
    Executor,
    Framework,
    Task,
)
from marathon_mesos_local.master.registry import AgentInfo, Registry, UnreachableAgent
from marathon_mesos_local.resources import Resources

__all__ = ["Books"]


class Books:
    """Frameworks, agents, and who holds what on which agent."""

    def __init__(self, registry: Registry, trigger: AllocationTrigger) -> None:
        self.frameworks: dict[str, Framework] = {}
        self.completed_frameworks: deque[Framework] = deque(maxlen=MAX_COMPLETED)
        self.removed_framework_ids: set[str] = set()
        self.agents: dict[str, Agent] = {}
        #: Agents of the registry that have not re-registered since this master started.
        self.recovered_agents: dict[str, AgentInfo] = dict(registry.admitted)
        #: Agents marked unreachable, until they re-register.
        self.unreachable_agents: dict[str, UnreachableAgent] = dict(registry.unreachable)
        self.trigger = trigger

    def add_task(
        self, framework: Framework, agent: Agent, task_info: Mapping[str, Any], resources: Resources
    ) -> None:
        task = Task(dict(task_info), framework.id, agent.id, resources)
        task.statuses.append({"state": "TASK_STAGING", "timestamp": time.time()})
        framework.tasks[task.id] = task
        agent.tasks[(framework.id, task.id)] = task
        agent.allocated = agent.allocated + resources

    def add_executor(
        self, framework: Framework, agent: Agent, info: dict[str, Any], resources: Resources
    ) -> None:
        executor = Executor(info, framework.id, agent.id, resources)
        agent.executors[(framework.id, executor.id)] = executor
        framework.executors[(agent.id, executor.id)] = executor
        agent.allocated = agent.allocated + resources

    def remove_executor(self, executor: Executor) -> None:
        """Forget an executor and recover its resources."""
        framework = self.frameworks.get(executor.framework_id)
        if framework is not None:
            framework.executors.pop((executor.agent_id, executor.id), None)
        agent = self.agents.get(executor.agent_id)
        key = (executor.framework_id, executor.id)
        if agent is not None and agent.executors.get(key) is executor:
            del agent.executors[key]
            agent.allocated = (agent.allocated - executor.resources).pruned()
            self.trigger.request(agent.id)

    def free(self, task: Task) -> None:
        """Give a task's resources back to its agent (once)."""
        if task.freed:
            return
        task.freed = True
        agent = self.agents.get(task.agent_id)
        if agent is not None:
            agent.allocated = (agent.allocated - task.resources).pruned()
        self.trigger.request(task.agent_id)

    def remove_task(self, framework: Framework, task: Task) -> None:
        """Free a task and move it to its framework's completed tasks."""
        self.free(task)
        framework.tasks.pop(task.id, None)
        framework.completed_tasks.append(task)
        agent = self.agents.get(task.agent_id)
        if agent is not None:
            agent.tasks.pop((framework.id, task.id), None)
