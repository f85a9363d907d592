"""Which containerizer runs a task, and what it is given to run it.

A task without a container, or with a MESOS container without image (the host
filesystem), runs in the agent's own command containerizer; any other container type
goes to the containerizer a runtime plugin registers for it
(``marathon_agent_containerizers``). The agent process asks the plugin host for
those: it is a process of its own, so it cannot be handed the objects of the process
that starts it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from marathon_core.contracts.containerizers import Containerizer, Launch
from marathon_core.plugins import get_plugin_host
from marathon_mesos_local.agent.model import TaskRun
from marathon_mesos_local.resources import Resources

__all__ = ["Containerizers", "launch_of", "plugin_containerizers"]

log = logging.getLogger(__name__)


class Containerizers:
    """The agent's command containerizer and the plugins' ones, by container type."""

    def __init__(self, command: Containerizer, plugins: Mapping[str, Containerizer]) -> None:
        self.command = command
        self.plugins = dict(plugins)

    def of(self, task: TaskRun) -> tuple[str, Containerizer | None]:
        """The name and the containerizer of a task (None: no containerizer for it)."""
        container = task.info.get("container")
        if container is None:
            return "command", self.command
        kind = str(container.get("type", "MESOS"))
        found = self.plugins.get(kind)
        if found is None and kind == "MESOS" and "image" not in container.get("mesos", {}):
            return "command", self.command  # a MESOS container without image: host filesystem
        return kind, found

    def named(self, name: str | None) -> Containerizer | None:
        """The containerizer a checkpointed task ran in."""
        if name == "command":
            return self.command
        return None if name is None else self.plugins.get(name)


def launch_of(task: TaskRun, *, agent_id: str | None, ip: str, port: int) -> Launch:
    """What a containerizer gets to start a task: its command, environment, sandbox."""
    info = task.info
    command = info.get("command", {})
    resources = Resources.from_json(info.get("resources", []))
    env = dict(os.environ)  # executors inherit the agent's environment, as in Mesos
    env.update(
        {
            "MESOS_TASK_ID": task.id,
            "MESOS_FRAMEWORK_ID": task.framework_id,
            "MESOS_EXECUTOR_ID": task.executor_id,
            "MESOS_AGENT_ID": agent_id or "",
            "MESOS_SLAVE_ID": agent_id or "",
            "MESOS_SANDBOX": str(task.sandbox),
            "MESOS_DIRECTORY": str(task.sandbox),
            "MESOS_AGENT_ENDPOINT": f"{ip}:{port}",
            "HOST": ip,
        }
    )
    if task.group:  # what the default executor adds for each task it launches
        env["MESOS_CONTAINER_IP"] = ip
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
        # As a Mesos agent with --switch_user: the command's user, else the framework's.
        user=command.get("user") or task.framework_info.get("user") or None,
    )


def plugin_containerizers() -> dict[str, Containerizer]:
    """Containerizers of the installed runtime plugins; the command one is built in.

    Loaded by the plugin host, all or nothing as in a marathon process: a plugin that
    fails to load, or two claiming one container type, leave the agent with plain
    command tasks only (a broken plugin must not stop those).
    """
    try:
        found: dict[str, Containerizer] = get_plugin_host().agent_containerizers()
    except Exception as exc:
        log.warning("no plugin containerizers: %s", exc)
        return {}
    return found
