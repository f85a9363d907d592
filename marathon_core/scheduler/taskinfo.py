"""Building the Mesos ``TaskInfo`` of a launch, with Marathon's environment variables.

Command apps (no ``container``) are built here completely. Container apps are built
by their runtime plugin: the core builds the command part and the resources, then
hands the dict and the offer's host ports to the runtime's ``build_task_info``.
After that the ``marathon_prepare_task`` hook may adjust the TaskInfo.

The app's first Mesos-level health check (COMMAND, MESOS_HTTP, MESOS_HTTPS, MESOS_TCP)
becomes ``TaskInfo.health_check`` (:func:`mesos_health_check`), as Marathon's
``TaskBuilder`` does: the agent runs it and reports ``TaskStatus.healthy``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from marathon_core.model.app import AppDefinition, HealthCheck
from marathon_core.model.ids import PathId

__all__ = [
    "MESOS_HEALTH_PROTOCOLS",
    "build_task_info",
    "hostname_of",
    "mesos_health_check",
    "task_env",
]

Json = dict[str, Any]

# Marathon exports a label as MARATHON_APP_LABEL_<KEY> only if the key is a valid
# variable name and the value is not huge.
_LABEL_KEY = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_MAX_LABEL_VALUE = 512
_PORT_NAME = re.compile(r"[^A-Za-z0-9_]")

#: Health-check protocols the Mesos agent runs (``TaskInfo.health_check``).
MESOS_HEALTH_PROTOCOLS = frozenset({"COMMAND", "MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP"})


def hostname_of(app_id: PathId) -> str:
    """Marathon's ``toHostname``: segments reversed, joined by dots (task name, discovery)."""
    return ".".join(reversed(app_id.path))


def _float(value: float) -> str:
    """Resource values as Marathon prints them (Scala Double: ``1.0``, ``0.5``)."""
    return repr(float(value))


def task_env(
    app: AppDefinition,
    *,
    host: str,
    host_ports: Sequence[int],
    prefix: str | None = None,
) -> dict[str, str]:
    """The variables Marathon gives a task; the app's own ``env`` wins over them."""
    pre = prefix or ""
    env: dict[str, str] = {}
    if host_ports:
        for i, port in enumerate(host_ports):
            env[f"{pre}PORT{i}"] = str(port)
        env[f"{pre}PORT"] = str(host_ports[0])
        env[f"{pre}PORTS"] = ",".join(str(p) for p in host_ports)
        for name, port in zip(app.port_names, host_ports, strict=False):
            if name:
                env[f"{pre}PORT_{_PORT_NAME.sub('_', name).upper()}"] = str(port)
    env[f"{pre}HOST"] = host
    env["MARATHON_APP_ID"] = str(app.id)
    if app.version is not None:
        env["MARATHON_APP_VERSION"] = str(app.version)
    if app.docker_image is not None:
        env["MARATHON_APP_DOCKER_IMAGE"] = app.docker_image
    env["MARATHON_APP_RESOURCE_CPUS"] = _float(app.cpus)
    env["MARATHON_APP_RESOURCE_MEM"] = _float(app.mem)
    env["MARATHON_APP_RESOURCE_DISK"] = _float(app.disk)
    env["MARATHON_APP_RESOURCE_GPUS"] = str(int(app.gpus))
    exported = [
        (key, value)
        for key, value in sorted(app.labels.items())
        if _LABEL_KEY.match(key) and len(value) <= _MAX_LABEL_VALUE
    ]
    env["MARATHON_APP_LABELS"] = " ".join(key.upper() for key, _ in exported)
    for key, value in exported:
        env[f"MARATHON_APP_LABEL_{key.upper()}"] = value
    for name, env_value in app.env.items():
        if isinstance(env_value, str):  # EnvSecret values need a secrets plugin
            env[name] = env_value
    return env


def _command(app: AppDefinition, env: Mapping[str, str], user: str | None) -> Json:
    command: Json
    if app.cmd is not None:
        command = {"shell": True, "value": app.cmd}
    elif app.args:
        command = {"shell": False, "value": app.args[0], "arguments": list(app.args)}
    else:
        command = {"shell": False}  # a container's own entry point
    command["environment"] = {
        "variables": [{"name": k, "value": v, "type": "VALUE"} for k, v in env.items()]
    }
    if app.fetch:
        command["uris"] = [
            {
                "value": f.uri,
                "extract": f.extract,
                "executable": f.executable,
                "cache": f.cache,
                **({"output_file": f.dest_path} if f.dest_path else {}),
            }
            for f in app.fetch
        ]
    if user:
        command["user"] = user
    return command


def _mesos_check_port(
    app: AppDefinition, check: HealthCheck, host_ports: Sequence[int]
) -> int | None:
    """Marathon's ``MesosHealthCheckWithPorts.effectivePort``: ``port``, else the
    container port of the indexed port mapping, else its host port (the agent checks
    from inside the task's network, as Mesos's checker does)."""
    if check.port is not None:
        return check.port
    index = check.port_index if check.port_index is not None else 0
    if app.is_host_networking:
        return host_ports[index] if index < len(host_ports) else None
    mappings = app.port_mappings
    if index >= len(mappings):
        return None
    mapping = mappings[index]
    if mapping.container_port:
        return mapping.container_port
    if mapping.host_port is None:
        return None
    bound = [m for m in mappings if m.host_port is not None]
    position = bound.index(mapping)
    return host_ports[position] if position < len(host_ports) else None


def mesos_health_check(app: AppDefinition, host_ports: Sequence[int]) -> Json | None:
    """``TaskInfo.health_check`` (v1 JSON) of the app's first Mesos-level check, or None.

    None too when an HTTP or TCP check has no port to check on this launch (Marathon's
    ``toMesos`` gives no check then).
    """
    check = next((hc for hc in app.health_checks if hc.protocol in MESOS_HEALTH_PROTOCOLS), None)
    if check is None:
        return None
    info: Json = {
        "delay_seconds": float(check.delay_seconds),
        "interval_seconds": float(check.interval_seconds),
        "timeout_seconds": float(check.timeout_seconds),
        "consecutive_failures": check.max_consecutive_failures,
        "grace_period_seconds": float(check.grace_period_seconds),
    }
    if check.protocol == "COMMAND":
        if check.command is None:
            return None
        info["type"] = "COMMAND"
        info["command"] = {"shell": True, "value": check.command.value}
        return info
    port = _mesos_check_port(app, check, host_ports)
    if port is None:
        return None
    if check.protocol == "MESOS_TCP":
        info["type"] = "TCP"
        info["tcp"] = {"port": port, "protocol": check.ip_protocol}
        return info
    http: Json = {
        "scheme": "https" if check.protocol == "MESOS_HTTPS" else "http",
        "port": port,
        "protocol": check.ip_protocol,
    }
    if check.path is not None:
        http["path"] = check.path
    info["type"] = "HTTP"
    info["http"] = http
    return info


def build_task_info(
    app: AppDefinition,
    *,
    task_id: str,
    agent_id: str,
    host: str,
    resources: Sequence[Mapping[str, Any]],
    host_ports: Sequence[int],
    env_prefix: str | None = None,
    default_user: str | None = None,
) -> Json:
    """The TaskInfo (Mesos v1 JSON) of one launch of ``app`` without its container part.

    The task runs as the app's ``user``, else as ``default_user`` (``--mesos_user``);
    with neither, CommandInfo has no user and Mesos runs it as the framework's user.
    """
    env = task_env(app, host=host, host_ports=host_ports, prefix=env_prefix)
    info: Json = {
        "name": hostname_of(app.id),
        "task_id": {"value": task_id},
        "agent_id": {"value": agent_id},
        "resources": [dict(r) for r in resources],
        "command": _command(app, env, app.user or default_user),
    }
    if app.labels:
        info["labels"] = {"labels": [{"key": k, "value": v} for k, v in app.labels.items()]}
    if app.task_kill_grace_period_seconds is not None:
        nanos = app.task_kill_grace_period_seconds * 1_000_000_000
        info["kill_policy"] = {"grace_period": {"nanoseconds": nanos}}
    health_check = mesos_health_check(app, host_ports)
    if health_check is not None:
        info["health_check"] = health_check
    if host_ports:
        names = list(app.port_names) + [None] * len(host_ports)
        protocols = (
            [p.protocol for p in app.port_definitions]
            if app.is_host_networking
            else [m.protocol for m in app.port_mappings if m.host_port is not None]
        )
        protocols += ["tcp"] * len(host_ports)
        ports = []
        for i, port in enumerate(host_ports):
            entry: Json = {"number": port, "protocol": protocols[i].split(",")[0]}
            if names[i]:
                entry["name"] = names[i]
            ports.append(entry)
        info["discovery"] = {
            "visibility": "FRAMEWORK",
            "name": hostname_of(app.id),
            "ports": {"ports": ports},
        }
    return info
