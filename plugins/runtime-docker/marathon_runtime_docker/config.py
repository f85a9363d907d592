"""A task's Mesos ``ContainerInfo`` (v1 JSON) as a Docker Engine container config.

What Mesos's Docker containerizer turns into ``docker run`` flags
(``Docker::RunOptions::create``), here as the body of ``POST /containers/create``:

- resources: ``CpuShares`` = 1024 x cpus (at least 2), a CFS quota of cpus x 100 ms
  per 100 ms period (at least 1 ms), ``Memory`` = mem (at least 32 MB) and
  ``MemorySwap`` the same, so the task cannot swap past its limit;
- the sandbox bind-mounted at ``/mnt/mesos/sandbox`` (``MESOS_SANDBOX`` inside);
  volumes with an absolute or sandbox-relative container path, a host path that is
  absolute or relative to the sandbox, or a named Docker volume, ``RW`` / ``RO``;
- network ``HOST`` / ``BRIDGE`` / ``NONE``, or ``USER`` with the network named by
  ``network_infos[0].name``; port mappings (bridge and user networks only) as
  ``PortBindings`` of host ports the task holds;
- a shell command runs as ``/bin/sh -c <value>`` (the image's entrypoint replaced);
  otherwise value and arguments are the ``Cmd`` under the image's entrypoint;
- ``parameters`` (``docker run`` flags without dashes) map to the Engine's fields
  in :data:`PARAMETERS`; any other key fails the launch, naming it: Mesos passes
  them to the ``docker`` CLI, which we do not run.

``CommandInfo.user`` is not applied, as in Mesos: a Docker task runs as its image's
``USER`` unless the ``user`` parameter says otherwise.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["MAPPED_SANDBOX", "PARAMETERS", "container_config", "memory_limit"]

#: Where the sandbox appears inside the container (Mesos's ``--sandbox_directory``).
MAPPED_SANDBOX = "/mnt/mesos/sandbox"
CPU_SHARES_PER_CPU = 1024
MIN_CPU_SHARES = 2
CPU_CFS_PERIOD_US = 100_000
MIN_CPU_CFS_QUOTA_US = 1_000
MIN_MEMORY = 32 * 1024 * 1024

_NETWORKS = {"HOST": "host", "BRIDGE": "bridge", "NONE": "none"}
_SIZE = re.compile(r"^\s*(\d+)\s*([bkmg]?)b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def memory_limit(resources: Mapping[str, float]) -> int | None:
    """Bytes of memory a task gets (Mesos's minimum applies), None without ``mem``."""
    mem = resources.get("mem")
    if mem is None:
        return None
    return max(int(mem * 1024 * 1024), MIN_MEMORY)


def _size(value: str) -> int:
    match = _SIZE.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a size (e.g. 64m)")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def _flag(value: str) -> bool:
    if value.lower() in ("", "true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise ValueError(f"{value!r} is not true or false")


def _append(section: str, key: str, convert: Callable[[str], Any] = str) -> Callable[..., None]:
    def apply(config: dict[str, Any], value: str) -> None:
        target = config if section == "" else config["HostConfig"]
        target.setdefault(key, []).append(convert(value))

    return apply


def _set(section: str, key: str, convert: Callable[[str], Any] = str) -> Callable[..., None]:
    def apply(config: dict[str, Any], value: str) -> None:
        target = config if section == "" else config["HostConfig"]
        target[key] = convert(value)

    return apply


def _pair(section: str, key: str, separator: str = "=") -> Callable[..., None]:
    def apply(config: dict[str, Any], value: str) -> None:
        target = config if section == "" else config["HostConfig"]
        name, _, item = value.partition(separator)
        target.setdefault(key, {})[name] = item

    return apply


def _env(config: dict[str, Any], value: str) -> None:
    config.setdefault("Env", []).append(value)


def _ulimit(config: dict[str, Any], value: str) -> None:
    name, _, limits = value.partition("=")
    soft, _, hard = limits.partition(":")
    entry = {"Name": name, "Soft": int(soft), "Hard": int(hard or soft)}
    config["HostConfig"].setdefault("Ulimits", []).append(entry)


def _device(config: dict[str, Any], value: str) -> None:
    parts = value.split(":")
    host = parts[0]
    inside = parts[1] if len(parts) > 1 else host
    permissions = parts[2] if len(parts) > 2 else "rwm"
    config["HostConfig"].setdefault("Devices", []).append(
        {"PathOnHost": host, "PathInContainer": inside, "CgroupPermissions": permissions}
    )


#: ``docker run`` flags (``parameters`` keys, long names without dashes) this
#: containerizer maps to Engine API fields.
PARAMETERS: Mapping[str, Callable[[dict[str, Any], str], None]] = {
    "add-host": _append("HostConfig", "ExtraHosts"),
    "cap-add": _append("HostConfig", "CapAdd"),
    "cap-drop": _append("HostConfig", "CapDrop"),
    "cpuset-cpus": _set("HostConfig", "CpusetCpus"),
    "device": _device,
    "dns": _append("HostConfig", "Dns"),
    "dns-option": _append("HostConfig", "DnsOptions"),
    "dns-search": _append("HostConfig", "DnsSearch"),
    "entrypoint": lambda config, value: config.__setitem__("Entrypoint", [value]),
    "env": _env,
    "group-add": _append("HostConfig", "GroupAdd"),
    "hostname": _set("", "Hostname"),
    "init": _set("HostConfig", "Init", _flag),
    "ipc": _set("HostConfig", "IpcMode"),
    "label": _pair("", "Labels"),
    "memory-reservation": _set("HostConfig", "MemoryReservation", _size),
    "memory-swappiness": _set("HostConfig", "MemorySwappiness", int),
    "pid": _set("HostConfig", "PidMode"),
    "pids-limit": _set("HostConfig", "PidsLimit", int),
    "read-only": _set("HostConfig", "ReadonlyRootfs", _flag),
    "security-opt": _append("HostConfig", "SecurityOpt"),
    "shm-size": _set("HostConfig", "ShmSize", _size),
    "stop-signal": _set("", "StopSignal"),
    "sysctl": _pair("HostConfig", "Sysctls"),
    "tmpfs": _pair("HostConfig", "Tmpfs", ":"),
    "ulimit": _ulimit,
    "user": _set("", "User"),
    "uts": _set("HostConfig", "UTSMode"),
    "volume": _append("HostConfig", "Binds"),
    "workdir": _set("", "WorkingDir"),
}
_ALIASES = {"e": "env", "h": "hostname", "l": "label", "u": "user", "v": "volume", "w": "workdir",
            "dns-opt": "dns-option"}  # fmt: skip


def _volume(volume: Mapping[str, Any], sandbox: Path) -> str | None:
    """A ``Binds`` entry for a ContainerInfo volume, as Mesos builds its ``-v``."""
    container_path = str(volume.get("container_path", ""))
    inside = (
        container_path
        if posixpath.isabs(container_path)
        else posixpath.join(MAPPED_SANDBOX, container_path)
    )
    mode = {"RW": "rw", "RO": "ro"}.get(str(volume.get("mode", "RW")))
    if mode is None:
        raise ValueError(f"Unsupported volume mode {volume.get('mode')!r}")
    if "host_path" in volume:
        host_path = str(volume["host_path"])
        if not posixpath.isabs(host_path):
            if not posixpath.isabs(container_path):
                raise ValueError(
                    f"Both host_path '{host_path}' and container_path '{container_path}' "
                    "of a volume are relative"
                )
            host_path = str(sandbox / host_path)
        return f"{host_path}:{inside}:{mode}"
    source = volume.get("source")
    if source is not None:
        if source.get("type") != "DOCKER_VOLUME":
            return None  # Mesos's Docker containerizer ignores other sources too
        return f"{source['docker_volume']['name']}:{inside}:{mode}"
    raise ValueError("Host path or volume source is required")


def _network(container: Mapping[str, Any], docker: Mapping[str, Any]) -> str:
    network = str(docker.get("network", "HOST"))
    if network == "USER":
        infos = container.get("network_infos", [])
        if len(infos) != 1 or not infos[0].get("name"):
            raise ValueError("A USER network needs exactly one network info with a name")
        return str(infos[0]["name"])
    if network not in _NETWORKS:
        raise ValueError(f"Unsupported Network mode: {network}")
    return _NETWORKS[network]


def _port_bindings(
    docker: Mapping[str, Any], network: str, ports: set[int]
) -> dict[str, list[dict[str, str]]]:
    mappings = docker.get("port_mappings", [])
    if mappings and network in ("host", "none"):
        raise ValueError("Port mappings are only supported for bridge and user-defined networks")
    bindings: dict[str, list[dict[str, str]]] = {}
    for mapping in mappings:
        host_port = int(mapping["host_port"])
        if host_port not in ports:
            raise ValueError(f"Port [{host_port}] not included in resources")
        for protocol in str(mapping.get("protocol", "tcp")).lower().split(","):
            key = f"{int(mapping['container_port'])}/{protocol}"
            bindings.setdefault(key, []).append({"HostPort": str(host_port)})
    return bindings


def container_config(
    *,
    container: Mapping[str, Any],
    name: str,
    command: str | None,
    arguments: list[str],
    shell: bool,
    environment: Mapping[str, str],
    resources: Mapping[str, float],
    ports: set[int],
    sandbox: Path,
    labels: Mapping[str, str],
) -> dict[str, Any]:
    """The ``POST /containers/create`` body; ValueError for what cannot be run."""
    docker = container.get("docker") or {}
    image = docker.get("image")
    if not image:
        raise ValueError("DockerInfo has no image")
    host: dict[str, Any] = {"Privileged": bool(docker.get("privileged", False))}
    cpus = resources.get("cpus")
    if cpus is not None:
        host["CpuShares"] = max(int(CPU_SHARES_PER_CPU * cpus), MIN_CPU_SHARES)
        host["CpuPeriod"] = CPU_CFS_PERIOD_US
        host["CpuQuota"] = max(int(CPU_CFS_PERIOD_US * cpus), MIN_CPU_CFS_QUOTA_US)
    memory = memory_limit(resources)
    if memory is not None:
        host["Memory"] = memory
        host["MemorySwap"] = memory
    binds = [b for b in (_volume(v, sandbox) for v in container.get("volumes", [])) if b]
    host["Binds"] = [*binds, f"{sandbox}:{MAPPED_SANDBOX}"]
    network = _network(container, docker)
    host["NetworkMode"] = network
    bindings = _port_bindings(docker, network, ports)
    config: dict[str, Any] = {
        "Image": image,
        "Env": [
            f"{key}={value}"
            for key, value in {
                **environment,
                "MESOS_SANDBOX": MAPPED_SANDBOX,
                "MESOS_CONTAINER_NAME": name,
            }.items()
        ],
        "Labels": dict(labels),
        "HostConfig": host,
    }
    if bindings:
        host["PortBindings"] = bindings
        config["ExposedPorts"] = {key: {} for key in bindings}
    if container.get("hostname"):
        if network == "host":
            raise ValueError("Unable to set hostname with host network mode")
        config["Hostname"] = container["hostname"]
    if shell:
        if command is None:
            raise ValueError("Shell specified but no command value provided")
        config["Entrypoint"] = ["/bin/sh"]
        config["Cmd"] = ["-c", command]
    elif command is not None or arguments:
        config["Cmd"] = [*([command] if command is not None else []), *arguments]
    for parameter in docker.get("parameters", []):
        key = str(parameter.get("key", "")).lstrip("-")
        key = _ALIASES.get(key, key)
        apply = PARAMETERS.get(key)
        if apply is None:
            raise ValueError(
                f"Docker parameter '{parameter.get('key')}' is not supported by this Docker "
                f"containerizer (supported: {', '.join(sorted(PARAMETERS))})"
            )
        try:
            apply(config, str(parameter.get("value", "")))
        except (ValueError, IndexError) as exc:
            raise ValueError(f"Docker parameter '{key}': {exc}") from None
    config["Labels"].update(labels)  # a `label` parameter cannot take the agent's own
    return config
