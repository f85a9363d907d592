"""ACCEPT: the offers a framework uses and the operations it applies to them.

The offers are checked first (all valid, one agent, one role), then the operations
apply in order, each to what the ones before it left over: LAUNCH starts each valid
task, LAUNCH_GROUP a whole task group or none of it. What is left is declined with
the call's filters. Other operations are refused (see :meth:`Launcher._refuse_operation`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from marathon_mesos_local.master.books import Books
from marathon_mesos_local.master.model import (
    Agent,
    AllocationTrigger,
    Framework,
    Offer,
    master_status,
    update_event,
)
from marathon_mesos_local.master.offers import Allocator
from marathon_mesos_local.master.validation import group_problem, launch_problem
from marathon_mesos_local.messages import id_value, mesos_id
from marathon_mesos_local.resources import Resources

__all__ = ["Launcher"]

log = logging.getLogger(__name__)

#: Offer operations this master applies; the others are refused (see ``_refuse_operation``).
SUPPORTED_OPERATIONS = frozenset({"LAUNCH", "LAUNCH_GROUP"})


class Launcher:
    """Applies ACCEPT calls: launches tasks and task groups on the offered agent."""

    def __init__(self, books: Books, allocator: Allocator, trigger: AllocationTrigger) -> None:
        self.books = books
        self.allocator = allocator
        self.trigger = trigger

    def accept(self, framework: Framework, call: Mapping[str, Any]) -> None:
        accept = call["accept"]
        refuse = self.allocator.refuse_seconds(accept.get("filters"))
        offer_ids = [o["value"] for o in accept.get("offer_ids", [])]
        operations = list(accept.get("operations", []))

        offers: list[Offer] = []
        error = None if offer_ids else "No offers specified"
        seen: set[str] = set()
        for offer_id in offer_ids:
            offer = framework.offers.get(offer_id)
            if offer_id in seen:
                error = error or f"Offer {offer_id} appears more than once in offer_ids"
            elif offer is None:
                error = error or f"Offer {offer_id} is no longer valid"
            else:
                offers.append(offer)
            seen.add(offer_id)
        if offers and len({o.agent_id for o in offers}) > 1:
            error = error or "Aggregated offers must belong to one single agent"
        if offers and len({o.role for o in offers}) > 1:
            error = error or "Aggregated offers must be allocated to the same role"
        for operation in operations:
            if operation.get("type") not in SUPPORTED_OPERATIONS:
                self._refuse_operation(framework, operation, offers[0].agent_id if offers else None)
        if error is not None:
            for offer in offers:
                self.allocator.discard(framework, offer)
            state = "TASK_DROPPED" if framework.partition_aware else "TASK_LOST"
            for operation in operations:
                for task_info in launched_tasks(operation):
                    framework.send(
                        update_event(
                            master_status(
                                task_info["task_id"]["value"],
                                state,
                                reason="REASON_INVALID_OFFERS",
                                message=f"Task launched with invalid offers: {error}",
                                agent_id=task_info["agent_id"]["value"],
                            )
                        )
                    )
            return

        agent = self.books.agents[offers[0].agent_id]
        role = offers[0].role
        available = Resources()
        for offer in offers:
            framework.offers.pop(offer.id, None)
            available = available + offer.resources
        # Offered resources become the tasks'; whatever is left goes back below.
        agent.allocated = agent.allocated - available
        # Operations apply in order, each to what the ones before it left over.
        for operation in operations:
            if operation.get("type") == "LAUNCH":
                available = self._launch(framework, agent, operation, available)
            elif operation.get("type") == "LAUNCH_GROUP":
                available = self._launch_group(framework, agent, role, operation, available)
        self.allocator.add_filter(framework, role, agent.id, available, refuse)
        self.trigger.request(agent.id)

    def _launch(
        self, framework: Framework, agent: Agent, operation: Mapping[str, Any], available: Resources
    ) -> Resources:
        """Start each valid task of a LAUNCH (TASK_ERROR for the others); return what is left."""
        tasks = operation.get("launch", {}).get("task_infos", [])
        if "id" in operation:
            self._task_errors(
                framework,
                tasks,
                "REASON_TASK_INVALID",
                "The `id` field cannot be set on LAUNCH operations",
            )
            return available
        for task_info in tasks:
            problem, resources = launch_problem(framework, agent, task_info, available)
            if problem is not None:
                self._task_errors(framework, [task_info], "REASON_TASK_INVALID", problem)
                continue
            available = (available - resources).pruned()
            self.books.add_task(framework, agent, task_info, resources)
            agent.send(
                "run_task",
                {"framework_id": framework.id, "framework_info": framework.info, "task": task_info},
            )
        return available

    def _launch_group(
        self,
        framework: Framework,
        agent: Agent,
        role: str,
        operation: Mapping[str, Any],
        available: Resources,
    ) -> Resources:
        """Start a task group atomically (all its tasks, or none: each gets TASK_ERROR).

        As in Mesos, the offer's allocation info is injected into every resource, and
        each task without an executor gets the group's, so that the executor shows in
        the task's state. The executor's resources are taken only when this launch
        starts it; a group for a live executor of the same id joins it.
        """
        group = operation.get("launch_group")
        if group is None or not group["task_group"].get("tasks"):
            # Mesos would start the executor and hold its resources while its agent
            # ignores the empty group; here nothing happens at all.
            log.warning("framework %s: LAUNCH_GROUP without tasks ignored", framework.id)
            return available
        executor = {**group["executor"]}
        executor["resources"] = with_allocation(executor.get("resources", []), role)
        tasks = []
        for task_info in group["task_group"].get("tasks", []):
            task = {**task_info, "resources": with_allocation(task_info.get("resources", []), role)}
            own = task.get("executor")
            task["executor"] = (
                executor
                if own is None
                else {**own, "resources": with_allocation(own.get("resources", []), role)}
            )
            tasks.append(task)
        if "id" in operation:
            self._task_errors(
                framework,
                tasks,
                "REASON_TASK_GROUP_INVALID",
                "The `id` field cannot be set on LAUNCH_GROUP operations",
            )
            return available
        problem, needed = group_problem(framework, agent, executor, tasks, available)
        if problem is not None:
            self._task_errors(framework, tasks, "REASON_TASK_GROUP_INVALID", problem)
            return available
        launch_executor = (framework.id, executor["executor_id"]["value"]) not in agent.executors
        if launch_executor:
            self.books.add_executor(
                framework, agent, executor, Resources.from_json(executor["resources"])
            )
        for task in tasks:
            self.books.add_task(framework, agent, task, Resources.from_json(task["resources"]))
        agent.send(
            "run_task_group",
            {
                "framework_id": framework.id,
                "framework_info": framework.info,
                "executor": executor,
                "tasks": tasks,
                "launch_executor": launch_executor,
            },
        )
        return (available - needed).pruned()

    def _task_errors(
        self, framework: Framework, tasks: Iterable[Mapping[str, Any]], reason: str, message: str
    ) -> None:
        for task_info in tasks:
            framework.send(
                update_event(
                    master_status(
                        task_info["task_id"]["value"],
                        "TASK_ERROR",
                        reason=reason,
                        message=message,
                        agent_id=task_info["agent_id"]["value"],
                    )
                )
            )

    def _refuse_operation(
        self, framework: Framework, operation: Mapping[str, Any], agent_id: str | None
    ) -> None:
        """An offer operation this master does not apply (RESERVE, CREATE, ...).

        As with any operation Mesos cannot apply: the operation's resources stay in
        the offer (and are declined with the rest); an operation with an ``id`` gets
        an ``OPERATION_ERROR`` update (master-generated, no uuid, nothing to
        acknowledge); one without an id only gets a log line.
        """
        kind = operation.get("type", "UNKNOWN")
        message = f"Operation {kind} is not supported by mesos-local"
        log.warning("framework %s: %s", framework.id, message)
        operation_id = id_value(operation.get("id"))
        if operation_id is None:
            return
        status: dict[str, Any] = {
            "operation_id": mesos_id(operation_id),
            "state": "OPERATION_ERROR",
            "message": message,
        }
        if agent_id is not None:
            status["agent_id"] = mesos_id(agent_id)
        framework.send(
            {"type": "UPDATE_OPERATION_STATUS", "update_operation_status": {"status": status}}
        )


def launched_tasks(operation: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The TaskInfos of a LAUNCH or LAUNCH_GROUP operation (none for the others)."""
    if operation.get("type") == "LAUNCH":
        return list(operation.get("launch", {}).get("task_infos", []))
    if operation.get("type") == "LAUNCH_GROUP":
        return list(operation.get("launch_group", {}).get("task_group", {}).get("tasks", []))
    return []


def with_allocation(resources: Iterable[Mapping[str, Any]], role: str) -> list[dict[str, Any]]:
    """Resources with the offer's ``allocation_info`` where the framework left it out."""
    return [{"allocation_info": {"role": role}, **r} for r in resources]
