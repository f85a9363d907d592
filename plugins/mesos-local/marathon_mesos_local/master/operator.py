"""The operator API, ``POST /api/v1`` (``mesos.v1.master.Call`` / ``Response``), in part.

Served: GET_HEALTH, GET_VERSION, GET_FLAGS, GET_MASTER, GET_STATE, GET_AGENTS,
GET_FRAMEWORKS, GET_TASKS, GET_EXECUTORS (the executors of task groups: command
executors are the agents' business, as in Mesos) and TEARDOWN. Every other call of
``master.proto`` is answered ``501`` with a plain-text reason; names that are not
calls at all are ``400``, as their JSON cannot be converted to a Call. The request
checks follow the scheduler endpoint's, except that ``Accept`` is checked on every
call (``406``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from marathon_mesos_local import MESOS_VERSION
from marathon_mesos_local.http import JSON, PROTOBUF, Request, Response, accepts, check_post
from marathon_mesos_local.master.books import Books
from marathon_mesos_local.master.frameworks import Subscriptions
from marathon_mesos_local.master.model import Framework, MasterIdentity, MasterOptions, Task
from marathon_mesos_local.master.offers import offer_json
from marathon_mesos_local.master.state import flags
from marathon_mesos_local.messages import mesos_id
from marathon_mesos_local.resources import Resources

__all__ = ["CALL_TYPES", "OperatorApi", "task_json"]

#: Every ``mesos.v1.master.Call.Type``.
CALL_TYPES = frozenset(
    {
     "UNKNOWN", "GET_HEALTH", "GET_FLAGS", "GET_VERSION", "GET_METRICS", "GET_LOGGING_LEVEL",
     "SET_LOGGING_LEVEL", "LIST_FILES", "READ_FILE", "GET_STATE", "GET_AGENTS", "GET_FRAMEWORKS",
     "GET_EXECUTORS", "GET_OPERATIONS", "GET_TASKS", "GET_ROLES", "GET_WEIGHTS",
     "UPDATE_WEIGHTS", "GET_MASTER", "SUBSCRIBE", "RESERVE_RESOURCES", "UNRESERVE_RESOURCES",
     "CREATE_VOLUMES", "DESTROY_VOLUMES", "GROW_VOLUME", "SHRINK_VOLUME",
     "GET_MAINTENANCE_STATUS", "GET_MAINTENANCE_SCHEDULE", "UPDATE_MAINTENANCE_SCHEDULE",
     "START_MAINTENANCE", "STOP_MAINTENANCE", "DRAIN_AGENT", "DEACTIVATE_AGENT",
     "REACTIVATE_AGENT", "GET_QUOTA", "UPDATE_QUOTA", "SET_QUOTA", "REMOVE_QUOTA", "TEARDOWN",
     "MARK_AGENT_GONE",
    }
)  # fmt: skip
#: Capabilities agents report (``AgentInfo.Capability``).
AGENT_CAPABILITIES = ("MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT")


def _time(seconds: float) -> dict[str, int]:
    return {"nanoseconds": int(seconds * 1e9)}


class OperatorApi:
    """Serves ``POST /api/v1`` from the master's books."""

    def __init__(
        self,
        books: Books,
        identity: MasterIdentity,
        options: MasterOptions,
        subscriptions: Subscriptions,
    ) -> None:
        self.books = books
        self.identity = identity
        self.options = options
        self.subscriptions = subscriptions
        self._builders: dict[str, Callable[[], dict[str, Any]]] = {
            "GET_HEALTH": self.get_health,
            "GET_VERSION": self.get_version,
            "GET_FLAGS": self.get_flags,
            "GET_MASTER": self.get_master,
            "GET_STATE": self.get_state,
            "GET_AGENTS": self.get_agents,
            "GET_FRAMEWORKS": self.get_frameworks,
            "GET_TASKS": self.get_tasks,
            "GET_EXECUTORS": self.get_executors,
        }

    def handle(self, request: Request) -> Response:
        if (refused := check_post(request)) is not None:
            return refused
        content_type = request.headers["content-type"]
        if content_type != JSON:
            return Response.text(415, f"Expecting 'Content-Type' of {JSON} or {PROTOBUF}")
        try:
            call = json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            return Response.text(400, f"Failed to parse body into JSON: {exc}")
        if not isinstance(call, dict):
            return Response.text(400, "Failed to convert JSON into Call protobuf: not an object")
        kind = call.get("type")
        if kind is None:
            return Response.text(
                400, "Failed to validate master::Call: Expecting 'type' to be present"
            )
        if kind not in CALL_TYPES:
            return Response.text(
                400, f"Failed to convert JSON into Call protobuf: unknown enum value '{kind}'"
            )
        if not accepts(request.headers.get("accept"), JSON):
            return Response.text(406, f"Expecting 'Accept' to allow '{PROTOBUF}' or '{JSON}'")
        if kind == "TEARDOWN":
            framework_id = (call.get("teardown") or {}).get("framework_id", {}).get("value")
            if framework_id is None:
                return Response.text(
                    400, "Failed to validate master::Call: Expecting 'teardown' to be present"
                )
            framework = self.books.frameworks.get(framework_id)
            if framework is None:
                return Response.text(400, f"No framework found with specified ID '{framework_id}'")
            self.subscriptions.remove(framework)
            return Response(200)
        builder = self._builders.get(kind)
        if builder is None:
            return Response.text(501, f"{kind} is not supported by mesos-local")
        field = kind.lower()
        return Response.json({"type": kind, field: builder()})

    def get_health(self) -> dict[str, Any]:
        return {"healthy": True}

    def get_version(self) -> dict[str, Any]:
        return {
            "version_info": {
                "version": MESOS_VERSION,
                "build_date": "",
                "build_time": 0.0,
                "build_user": "",
            }
        }

    def get_flags(self) -> dict[str, Any]:
        current = flags(self.options, self.identity.port)
        return {"flags": [{"name": k, "value": str(v)} for k, v in sorted(current.items())]}

    def get_master(self) -> dict[str, Any]:
        return {
            "master_info": self.identity.info,
            "start_time": self.identity.start_time,
            "elected_time": self.identity.start_time,
        }

    def get_agents(self) -> dict[str, Any]:
        offered: dict[str, Resources] = {}
        for framework in self.books.frameworks.values():
            for offer in framework.offers.values():
                offered[offer.agent_id] = offered.get(offer.agent_id, Resources()) + offer.resources
        agents = []
        for agent in self.books.agents.values():
            entry: dict[str, Any] = {
                "agent_info": agent.info,
                "active": True,
                "deactivated": False,
                "version": MESOS_VERSION,
                "pid": f"slave(1)@{agent.hostname}:{agent.port}",
                "registered_time": _time(agent.registered_time),
                "total_resources": agent.total.to_json(),
                "allocated_resources": agent.allocated.to_json(),
                "offered_resources": offered.get(agent.id, Resources()).to_json(),
                "capabilities": [{"type": c} for c in AGENT_CAPABILITIES],
            }
            if agent.reregistered_time is not None:
                entry["reregistered_time"] = _time(agent.reregistered_time)
            agents.append(entry)
        return {"agents": agents, "recovered_agents": list(self.books.recovered_agents.values())}

    def _framework(self, framework: Framework) -> dict[str, Any]:
        used = Resources()
        for task in framework.tasks.values():
            if not task.freed:
                used = used + task.resources
        for executor in framework.executors.values():
            used = used + executor.resources
        offered = Resources()
        offers = []
        for offer in framework.offers.values():
            offered = offered + offer.resources
            agent = self.books.agents.get(offer.agent_id)
            if agent is not None:
                offers.append(offer_json(framework, agent, offer))
        entry: dict[str, Any] = {
            "framework_info": {**framework.info, "id": mesos_id(framework.id)},
            "active": framework.connected,
            "connected": framework.connected,
            "recovered": framework.recovered,
            "registered_time": _time(framework.registered_time),
            "offers": offers,
            "inverse_offers": [],
            "allocated_resources": used.to_json(),
            "offered_resources": offered.to_json(),
        }
        if framework.reregistered_time is not None:
            entry["reregistered_time"] = _time(framework.reregistered_time)
        if framework.unregistered_time is not None:
            entry["unregistered_time"] = _time(framework.unregistered_time)
        return entry

    def get_frameworks(self) -> dict[str, Any]:
        return {
            "frameworks": [self._framework(f) for f in self.books.frameworks.values()],
            "completed_frameworks": [self._framework(f) for f in self.books.completed_frameworks],
        }

    def get_tasks(self) -> dict[str, Any]:
        tasks: list[dict[str, Any]] = []
        unreachable: list[dict[str, Any]] = []
        completed: list[dict[str, Any]] = []
        books = self.books
        for framework in list(books.frameworks.values()) + list(books.completed_frameworks):
            tasks.extend(task_json(t) for t in framework.tasks.values())
            unreachable.extend(task_json(t) for t in framework.unreachable_tasks.values())
            completed.extend(task_json(t) for t in framework.completed_tasks)
        return {"tasks": tasks, "unreachable_tasks": unreachable, "completed_tasks": completed}

    def get_executors(self) -> dict[str, Any]:
        frameworks = list(self.books.frameworks.values()) + list(self.books.completed_frameworks)
        return {
            "executors": [
                {"executor_info": executor.info, "agent_id": {"value": executor.agent_id}}
                for framework in frameworks
                for executor in framework.executors.values()
            ]
        }

    def get_state(self) -> dict[str, Any]:
        return {
            "get_tasks": self.get_tasks(),
            "get_executors": self.get_executors(),
            "get_frameworks": self.get_frameworks(),
            "get_agents": self.get_agents(),
        }


def task_json(task: Task) -> dict[str, Any]:
    """A ``mesos.v1.Task``."""
    info = task.info
    statuses = [
        {
            "task_id": {"value": task.id},
            "state": s["state"],
            "timestamp": s["timestamp"],
            "agent_id": {"value": task.agent_id},
        }
        for s in task.statuses
    ]
    entry: dict[str, Any] = {
        "name": info.get("name", ""),
        "task_id": {"value": task.id},
        "framework_id": {"value": task.framework_id},
        "agent_id": {"value": task.agent_id},
        "state": task.state,
        "resources": task.resources.to_json(),
        "statuses": statuses,
    }
    if task.executor_id is not None:  # a task-group task; command tasks have none
        entry["executor_id"] = {"value": task.executor_id}
    if task.status_update_state is not None:
        entry["status_update_state"] = task.status_update_state
    if task.status_update_uuid is not None:
        entry["status_update_uuid"] = task.status_update_uuid
    for key in ("labels", "discovery", "container", "health_check", "kill_policy"):
        if key in info:
            entry[key] = info[key]
    return entry
