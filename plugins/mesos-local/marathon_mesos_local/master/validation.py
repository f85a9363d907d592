"""What Mesos finds wrong with a task, a task group or an executor of an ACCEPT.

The checks of ``src/master/validation.cpp`` (``validation::task::validate``,
``task::group::validate``, ``executor::internal::validate``, ``validateID``) in their
order, with their messages; each returns the first problem, or None and the
resources the launch takes. A task's ``health_check`` is checked as
``src/common/validation.cpp``'s ``validateHealthCheck`` does it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from marathon_mesos_local.master.model import MIN_CPUS, MIN_MEM, Agent, Framework
from marathon_mesos_local.messages import id_value
from marathon_mesos_local.resources import ResourceError, Resources

__all__ = [
    "executor_problem",
    "group_problem",
    "health_check_problem",
    "launch_problem",
    "task_problem",
]

#: Characters Mesos's ``validateID`` refuses in task and executor ids.
_BAD_ID = re.compile(r"[/\\\x00-\x1f\x7f]")
#: Longest id Mesos accepts (``NAME_MAX``).
MAX_ID_LENGTH = 255


def _id_problem(value: str) -> str | None:
    """Mesos's ``common::validation::validateID`` (task and executor ids)."""
    if not value:
        return "ID must not be empty"
    if len(value) > MAX_ID_LENGTH:
        return f"ID must not be greater than {MAX_ID_LENGTH} characters"
    if value in (".", ".."):
        return f"'{value}' is disallowed"
    if _BAD_ID.search(value):
        return f"'{value}' contains invalid characters"
    return None


#: ``HealthCheck.Type`` by number (JSON may carry an enum either way).
_HEALTH_CHECK_TYPES = {0: "UNKNOWN", 1: "COMMAND", 2: "HTTP", 3: "TCP"}
#: The durations a health check may not have negative, in Mesos's order.
_HEALTH_CHECK_DURATIONS = (
    "delay_seconds",
    "grace_period_seconds",
    "interval_seconds",
    "timeout_seconds",
)


def _environment_problem(environment: Mapping[str, Any]) -> str | None:
    """Mesos's ``validateEnvironment``, without the checks of a secret's own fields."""
    for variable in environment.get("variables", []):
        name = variable.get("name", "")
        kind = variable.get("type", "VALUE")
        if kind in ("SECRET", 2):
            if "secret" not in variable:
                return f"Environment variable '{name}' of type 'SECRET' must have a secret set"
            if "value" in variable:
                return f"Environment variable '{name}' of type 'SECRET' must not have a value set"
        elif kind in ("UNKNOWN", 0):
            return "Environment variable of type 'UNKNOWN' is not allowed"
        else:
            if "value" not in variable:
                return f"Environment variable '{name}' of type 'VALUE' must have a value set"
            if "secret" in variable:
                return f"Environment variable '{name}' of type 'VALUE' must not have a secret set"
    return None


def health_check_problem(check: Mapping[str, Any]) -> str | None:
    """What Mesos's ``validateHealthCheck`` finds wrong with a ``HealthCheck``.

    Why the master checks it at all: an agent given a check it cannot run would
    run the task unchecked, and the framework would believe it healthy.
    """
    if "type" not in check:
        return "HealthCheck must specify 'type'"
    kind = _HEALTH_CHECK_TYPES.get(check["type"], check["type"])
    if kind == "COMMAND":
        if "command" not in check:
            return "Expecting 'command' to be set for COMMAND health check"
        command = check["command"]
        if "value" not in command:
            what = "'shell command'" if command.get("shell", True) else "'executable path'"
            return f"Command health check must contain {what}"
        problem = _environment_problem(command.get("environment", {}))
        if problem is not None:
            return f"Health check's `CommandInfo` is invalid: {problem}"
    elif kind == "HTTP":
        if "http" not in check:
            return "Expecting 'http' to be set for HTTP health check"
        http = check["http"]
        scheme = http.get("scheme")
        if scheme is not None and scheme not in ("http", "https"):
            return f"Unsupported HTTP health check scheme: '{scheme}'"
        path = http.get("path")
        if path is not None and not path.startswith("/"):
            return f"The path '{path}' of HTTP health check must start with '/'"
    elif kind == "TCP":
        if "tcp" not in check:
            return "Expecting 'tcp' to be set for TCP health check"
    else:
        return f"'{kind}' is not a valid health check type"
    for field in _HEALTH_CHECK_DURATIONS:
        if field in check and check[field] < 0:
            return f"Expecting '{field}' to be non-negative"
    return None


def _number(value: float | None) -> str:
    """A double as Mesos's ``stringify`` prints it (``None`` when absent)."""
    return "None" if value is None else f"{value:g}"


def _megabytes(value: float) -> str:
    """Megabytes as stout's ``Bytes`` prints them: the largest unit that loses nothing."""
    amount = int(value * 1024 * 1024)
    if amount == 0:
        return "0B"
    for unit in ("B", "KB", "MB", "GB"):
        if amount % 1024 != 0:
            return f"{amount}{unit}"
        amount //= 1024
    return f"{amount}TB"


def _overlapping(parts: Iterable[Resources]) -> bool:
    """Whether two of ``parts`` claim the same port (range) or set item."""
    ranges: dict[str, list[tuple[int, int]]] = {}
    items: dict[str, set[str]] = {}
    for part in parts:
        for name, claimed in part.ranges.items():
            earlier = ranges.setdefault(name, [])
            if any(b <= e2 and b2 <= e for b, e in claimed for b2, e2 in earlier):
                return True
            earlier.extend(claimed)
        for name, members in part.sets.items():
            seen = items.setdefault(name, set())
            if seen & members:
                return True
            seen |= members
    return False


def task_problem(
    framework: Framework,
    agent: Agent,
    task_info: Mapping[str, Any],
    earlier: Iterable[str] = (),
) -> tuple[str | None, Resources]:
    """What Mesos's ``validateTask`` finds wrong with a task, and its resources.

    ``earlier`` holds the ids of the tasks before it in the same task group.
    """
    task_id = task_info["task_id"]["value"]
    agent_id = task_info["agent_id"]["value"]
    grace = task_info.get("kill_policy", {}).get("grace_period", {}).get("nanoseconds", 0)
    if (problem := _id_problem(task_id)) is not None:
        return problem, Resources()
    if task_id in framework.tasks or task_id in earlier:
        return f"Task has duplicate ID: {task_id}", Resources()
    if task_id in framework.unreachable_tasks:
        return f"Task reuses the ID of an unreachable task: {task_id}", Resources()
    if agent_id != agent.id:
        return (
            f"Task uses invalid agent {agent_id} while agent {agent.id} is expected",
            Resources(),
        )
    if grace < 0:
        return "Task's 'kill_policy.grace_period' must be non-negative", Resources()
    if "health_check" in task_info:
        problem = health_check_problem(task_info["health_check"])
        if problem is not None:
            return f"Task uses invalid health check: {problem}", Resources()
    if not task_info.get("resources"):
        return "Task uses no resources", Resources()
    try:
        resources = Resources.from_json(task_info["resources"])
    except (ResourceError, KeyError, TypeError, ValueError) as exc:
        return f"Task uses invalid resources: {exc}", Resources()
    if resources.is_empty():
        return "Task uses no resources", Resources()
    return None, resources


def launch_problem(
    framework: Framework, agent: Agent, task_info: Mapping[str, Any], available: Resources
) -> tuple[str | None, Resources]:
    """What is wrong with a task of a LAUNCH (``validation::task::validate``)."""
    problem, resources = task_problem(framework, agent, task_info)
    if problem is not None:
        return problem, resources
    if ("command" in task_info) == ("executor" in task_info):
        return (
            "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present",
            Resources(),
        )
    if "executor" in task_info:
        return "Custom executors are not supported by mesos-local", Resources()
    if not available.contains(resources):
        return (
            f"Total resources {resources} required by task and its executor is more "
            f"than available {available}",
            Resources(),
        )
    return None, resources


def group_problem(
    framework: Framework,
    agent: Agent,
    executor: Mapping[str, Any],
    tasks: list[dict[str, Any]],
    available: Resources,
) -> tuple[str | None, Resources]:
    """What Mesos's ``validation::task::group::validate`` finds wrong with a task
    group, checked in its order; else the resources the launch takes."""
    earlier: list[str] = []
    task_resources: list[Resources] = []
    for task in tasks:
        task_id = task["task_id"]["value"]
        problem, resources = task_problem(framework, agent, task, earlier)
        if problem is None and (task.get("container") or {}).get("type") == "DOCKER":
            problem = "Docker ContainerInfo is not supported on the task"
        if problem is not None:
            return f"Task '{task_id}' is invalid: {problem}", Resources()
        earlier.append(task_id)
        task_resources.append(resources)
    problem, executor_resources = executor_problem(framework, agent, executor)
    if problem is not None:
        return problem, Resources()
    executor_id = executor["executor_id"]["value"]
    for task in tasks:
        if task["executor"] != executor:
            return (
                f"The `ExecutorInfo` of task '{task['task_id']['value']}' is different "
                f"from executor '{executor_id}'",
                Resources(),
            )
    cpus = executor_resources.scalars.get("cpus")
    if cpus is None or cpus < MIN_CPUS:
        return (
            f"Executor '{executor_id}' uses less CPUs ({_number(cpus)}) than the minimum "
            f"required ({_number(MIN_CPUS)})",
            Resources(),
        )
    mem = executor_resources.scalars.get("mem")
    if mem is None or mem < MIN_MEM:
        return (
            f"Executor '{executor_id}' uses less memory "
            f"({'None' if mem is None else _megabytes(mem)}) than the minimum required "
            f"({_megabytes(MIN_MEM)})",
            Resources(),
        )
    if "disk" not in executor_resources.scalars:
        return f"Executor '{executor_id}' uses no disk", Resources()
    if _overlapping([*task_resources, executor_resources]):
        listed = "[ " + ", ".join(str(r) for r in task_resources) + " ]"
        return (
            "There are overlapping resources in the task group's task resources "
            f"{listed} and/or executor resources {executor_resources}",
            Resources(),
        )
    total = Resources()
    for resources in task_resources:
        total = total + resources
    if (framework.id, executor_id) not in agent.executors:
        total = total + executor_resources
    if not available.contains(total):
        return (
            f"Total resources {total} required by task group and its executor are more "
            f"than available {available}",
            Resources(),
        )
    if executor.get("type") == "CUSTOM":
        return "Custom executors are not supported by mesos-local", Resources()
    return None, total


def executor_problem(
    framework: Framework, agent: Agent, executor: Mapping[str, Any]
) -> tuple[str | None, Resources]:
    """What Mesos's ``executor::internal::validate`` and the task-group checks of
    the executor find wrong with it, and its resources."""
    kind = executor.get("type")
    container = executor.get("container") or {}
    executor_id = executor["executor_id"]["value"]
    framework_id = id_value(executor.get("framework_id"))
    grace = executor.get("shutdown_grace_period", {}).get("nanoseconds", 0)
    problem = None
    if kind == "DEFAULT" and "command" in executor:
        problem = "'ExecutorInfo.command' must not be set for 'DEFAULT' executor"
    elif kind == "DEFAULT" and container and container.get("type") != "MESOS":
        problem = "'ExecutorInfo.container.type' must be 'MESOS' for 'DEFAULT' executor"
    elif kind == "DEFAULT" and "image" in (container.get("mesos") or {}):
        problem = "'ExecutorInfo.container.mesos.image' must not be set for 'DEFAULT' executor"
    elif kind == "CUSTOM" and "command" not in executor:
        problem = "'ExecutorInfo.command' must be set for 'CUSTOM' executor"
    elif (id_problem := _id_problem(executor_id)) is not None:
        problem = id_problem
    elif grace < 0:
        problem = "ExecutorInfo's 'shutdown_grace_period' must be non-negative"
    elif framework_id is None:
        problem = "'ExecutorInfo.framework_id' must be set"
    elif framework_id != framework.id:
        problem = (
            f"ExecutorInfo has an invalid FrameworkID (Actual: {framework_id} vs "
            f"Expected: {framework.id})"
        )
    if problem is not None:
        return problem, Resources()
    try:
        resources = Resources.from_json(executor.get("resources", []))
    except (ResourceError, KeyError, TypeError, ValueError) as exc:
        return f"Executor uses invalid resources: {exc}", Resources()
    existing = agent.executors.get((framework.id, executor_id))
    if existing is not None and existing.info != executor:
        rule = "-" * 60
        problem = (
            "ExecutorInfo is not compatible with existing ExecutorInfo with same "
            f"ExecutorID.\n{rule}\nExisting ExecutorInfo:\n{json.dumps(existing.info)}\n"
            f"{rule}\nExecutorInfo:\n{json.dumps(executor)}\n{rule}\n"
        )
    elif kind is None:
        problem = "'ExecutorInfo.type' must be set"
    elif kind == "UNKNOWN":
        problem = "Unknown executor type"
    elif container.get("type") == "DOCKER":
        problem = "Docker ContainerInfo is not supported on the executor"
    return problem, resources
