"""``/master/state`` (and ``/master/frameworks``, ``/master/slaves``) in the legacy
("slave") vocabulary of real Mesos."""

from __future__ import annotations

from typing import Any

from marathon_mesos_local import MESOS_VERSION
from marathon_mesos_local.master.books import Books
from marathon_mesos_local.master.model import (
    Executor,
    Framework,
    MasterIdentity,
    MasterOptions,
    Task,
)
from marathon_mesos_local.resources import Resources, attributes_to_json

__all__ = ["flags", "master_state"]


def master_state(identity: MasterIdentity, options: MasterOptions, books: Books) -> dict[str, Any]:
    """``/master/state``."""
    host = identity.host
    offered: dict[str, Resources] = {}
    used: dict[str, Resources] = {}
    for framework in books.frameworks.values():
        for offer in framework.offers.values():
            offered[offer.agent_id] = offered.get(offer.agent_id, Resources()) + offer.resources
        for task in framework.tasks.values():
            if not task.freed:
                used[task.agent_id] = used.get(task.agent_id, Resources()) + task.resources
        for executor in framework.executors.values():
            agent_id = executor.agent_id
            used[agent_id] = used.get(agent_id, Resources()) + executor.resources
    slaves = [
        {
            "id": agent.id,
            "hostname": agent.hostname,
            "port": agent.port,
            "attributes": attributes_to_json(agent.attributes),
            "pid": f"slave(1)@{agent.hostname}:{agent.port}",
            "registered_time": agent.registered_time,
            "resources": agent.total.to_state(),
            "used_resources": used.get(agent.id, Resources()).to_state(),
            "offered_resources": offered.get(agent.id, Resources()).to_state(),
            "reserved_resources": {},
            "unreserved_resources": agent.total.to_state(),
            "active": True,
            "deactivated": False,
            "version": MESOS_VERSION,
            "capabilities": ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"],
        }
        for agent in books.agents.values()
    ]
    return {
        "version": MESOS_VERSION,
        "build_date": "",
        "build_time": 0.0,
        "build_user": "",
        "start_time": identity.start_time,
        "elected_time": identity.start_time,
        "id": identity.id,
        "pid": identity.pid,
        "hostname": host,
        "capabilities": ["AGENT_UPDATE", "AGENT_DRAINING"],
        "activated_slaves": len(books.agents),
        "deactivated_slaves": 0,
        "unreachable_slaves": len(books.unreachable_agents),
        "leader": identity.pid,
        "leader_info": identity.info,
        "flags": flags(options, identity.port),
        "slaves": slaves,
        "recovered_slaves": list(books.recovered_agents.values()),
        "frameworks": [_framework_state(books, f) for f in books.frameworks.values()],
        "completed_frameworks": [_framework_state(books, f) for f in books.completed_frameworks],
        "orphan_tasks": [],
        "unregistered_frameworks": [],
    }


def _framework_state(books: Books, framework: Framework) -> dict[str, Any]:
    info = framework.info
    used = Resources()
    for task in framework.tasks.values():
        if not task.freed:
            used = used + task.resources
    for executor in framework.executors.values():
        used = used + executor.resources
    offered = Resources()
    for offer in framework.offers.values():
        offered = offered + offer.resources
    state: dict[str, Any] = {
        "id": framework.id,
        "name": info.get("name", ""),
        "used_resources": used.to_state(),
        "offered_resources": offered.to_state(),
        "capabilities": sorted(framework.capabilities),
        "hostname": info.get("hostname", ""),
        "webui_url": info.get("webui_url", ""),
        "active": framework.connected,
        "connected": framework.connected,
        "recovered": framework.recovered,
        "user": info.get("user", ""),
        "failover_timeout": info.get("failover_timeout", 0.0),
        "checkpoint": info.get("checkpoint", False),
        "registered_time": framework.registered_time,
        "unregistered_time": framework.unregistered_time or 0.0,
        "tasks": [_task_state(books, t) for t in framework.tasks.values()],
        "unreachable_tasks": [_task_state(books, t) for t in framework.unreachable_tasks.values()],
        "completed_tasks": [_task_state(books, t) for t in framework.completed_tasks],
        "offers": [
            {
                "id": o.id,
                "framework_id": o.framework_id,
                "slave_id": o.agent_id,
                "resources": o.resources.to_state(),
                "allocation_info": {"role": o.role},
            }
            for o in framework.offers.values()
        ],
        "executors": [_executor_state(e) for e in framework.executors.values()],
        "labels": info.get("labels", {}).get("labels", []),
    }
    if "MULTI_ROLE" in framework.capabilities:
        state["roles"] = framework.roles
    else:
        state["role"] = framework.roles[0]
    if "principal" in info:
        state["principal"] = info["principal"]
    if framework.reregistered_time is not None:
        state["reregistered_time"] = framework.reregistered_time
    return state


def _task_state(books: Books, task: Task) -> dict[str, Any]:
    info = task.info
    state: dict[str, Any] = {
        "id": task.id,
        "name": info.get("name", ""),
        "framework_id": task.framework_id,
        "executor_id": task.executor_id or "",
        "slave_id": task.agent_id,
        "state": task.state,
        "resources": task.resources.to_state(),
        "role": books.frameworks[task.framework_id].roles[0]
        if task.framework_id in books.frameworks
        else "*",
        "statuses": task.statuses,
    }
    for key in ("labels", "discovery", "container", "health_check"):
        if key in info:
            state[key] = info[key]
    return state


def _executor_state(executor: Executor) -> dict[str, Any]:
    """An executor of a framework in ``/master/state`` (``json(ExecutorInfo)`` plus
    ``slave_id``); a default executor has no command on the master."""
    info = executor.info
    command = info.get("command", {})
    state: dict[str, Any] = {
        "executor_id": executor.id,
        "name": info.get("name", ""),
        "framework_id": executor.framework_id,
        "command": {
            **{k: command[k] for k in ("shell", "value") if k in command},
            "argv": list(command.get("arguments", [])),
            **({"environment": command["environment"]} if "environment" in command else {}),
            "uris": [
                {"value": u["value"], "executable": u.get("executable", False)}
                for u in command.get("uris", [])
            ],
        },
        "resources": executor.resources.to_state(),
    }
    resources = info.get("resources", [])
    if resources:
        state["role"] = resources[0].get("allocation_info", {}).get("role", "*")
    if "labels" in info:
        state["labels"] = info["labels"].get("labels", [])
    if "type" in info:
        state["type"] = info["type"]
    state["slave_id"] = executor.agent_id
    return state


def flags(options: MasterOptions, port: int) -> dict[str, str]:
    """The master's flags as ``/master/state`` and GET_FLAGS show them."""
    return {
        "port": str(port),
        "allocation_interval": f"{options.allocation_interval}secs",
        "agent_ping_timeout": f"{options.agent_ping_timeout}secs",
        "max_agent_ping_timeouts": str(options.max_agent_ping_timeouts),
        "agent_reregister_timeout": f"{options.agent_reregister_timeout}secs",
        **(
            {"offer_timeout": f"{options.offer_timeout}secs"}
            if options.offer_timeout is not None
            else {}
        ),
    }
