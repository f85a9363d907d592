"""Which containerizer runs a task, and what it is given to run it.

A task without a container, or with a MESOS container without image (the host
filesystem), runs in the agent's own command containerizer; any other container type
goes to the containerizer a runtime plugin registers for it
(``marathon_agent_containerizers``), if the agent's ``--containerizers`` enables it
(``mesos``, ``docker``: the container type in lower case, as Mesos names them). The
agent process asks the plugin host for those: it is a process of its own, so it
cannot be handed the objects of the process that starts it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Mapping

from marathon_core.contracts.containerizers import AgentSettings, Containerizer, Launch
from marathon_core.plugins import get_plugin_host
from marathon_mesos_local.agent.model import TaskRun
from marathon_mesos_local.resources import Resources

__all__ = [
    "KNOWN_CONTAINERIZERS",
    "Containerizers",
    "launch_of",
    "parse_containerizers",
    "plugin_containerizers",
]

log = logging.getLogger(__name__)

#: The names Mesos's ``--containerizers`` takes.
KNOWN_CONTAINERIZERS = frozenset({"mesos", "docker"})


def parse_containerizers(text: str) -> frozenset[str]:
    """Mesos's ``--containerizers`` value (``mesos,docker``); ValueError for others."""
    names = frozenset(name.strip() for name in text.split(",") if name.strip())
    unknown = sorted(names - KNOWN_CONTAINERIZERS)
    if unknown or not names:
        raise ValueError(
            f"--containerizers {text!r}: unknown or unsupported containerizer "
            f"{', '.join(unknown) or '(none given)'}; known: "
            f"{', '.join(sorted(KNOWN_CONTAINERIZERS))}"
        )
    return names


class Containerizers:
    """The agent's command containerizer and the enabled plugins' ones, by container type."""

    def __init__(
        self,
        command: Containerizer,
        plugins: Mapping[str, Containerizer],
        enabled: Collection[str] | None = None,
    ) -> None:
        """``enabled``: names from ``--containerizers`` (None: every plugin's)."""
        self.command = command
        self.plugins = {
            kind: found
            for kind, found in plugins.items()
            if enabled is None or kind.lower() in enabled
        }
        #: Installed but not enabled: their tasks fail with a message saying so.
        self.disabled = sorted(set(plugins) - set(self.plugins))
        self.enabled = sorted(enabled) if enabled is not None else None

    def unsupported(self, kind: str) -> str:
        """Why a task of container type ``kind`` cannot run here."""
        if kind in self.disabled:
            flag = ",".join(self.enabled or [])
            return (
                f"Container type {kind} is not enabled on this agent (--containerizers="
                f"{flag}); start the agent with --containerizers={flag},{kind.lower()}"
            )
        return f"No containerizer on this agent supports container type {kind}"

    async def remove_orphans(self, known: Collection[str]) -> None:
        """Let every enabled containerizer remove what no known task owns."""
        for kind, containerizer in [("command", self.command), *self.plugins.items()]:
            try:
                await containerizer.remove_orphans(known)
            except Exception as exc:
                log.warning("orphans of the %s containerizer not removed: %s", kind, exc)

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
    container = info.get("container")
    # Executors inherit the agent's environment, as in Mesos; a Docker container gets
    # only the task's (the agent's PATH and the like mean nothing in its image).
    docker = container is not None and container.get("type") == "DOCKER"
    env = {} if docker else dict(os.environ)
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
        container=container,
        # As a Mesos agent with --switch_user: the command's user, else the framework's.
        user=command.get("user") or task.framework_info.get("user") or None,
    )


def plugin_containerizers(settings: AgentSettings) -> dict[str, Containerizer]:
    """Containerizers of the installed runtime plugins; the command one is built in.

    Loaded by the plugin host, all or nothing as in a marathon process: a plugin that
    fails to load, or two claiming one container type, leave the agent with plain
    command tasks only (a broken plugin must not stop those).
    """
    try:
        found: dict[str, Containerizer] = get_plugin_host().agent_containerizers(settings)
    except Exception as exc:
        log.warning("no plugin containerizers: %s", exc)
        return {}
    return found
