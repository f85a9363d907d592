"""The Mesos v1 ``ContainerInfo`` of a DOCKER app, as Marathon's task builder makes it.

- ``docker.network`` follows the app's ``networks``: ``container/bridge`` is BRIDGE,
  ``container`` is USER (plus a ``network_infos`` entry naming the network), and host
  networking leaves the field unset (the proto's default is HOST), as Marathon does.
- ``docker.port_mappings``: every ``portMappings`` entry with a ``hostPort`` gets the
  next host port the core took from the offer, in order; a ``containerPort`` of 0
  becomes that host port; a ``udp,tcp`` mapping is one Mesos mapping per protocol.
  Entries without ``hostPort`` (container networks) map nothing on the host.
- ``volumes``: the host volumes. Persistent volumes travel in the resources (the
  reservation), not here; external volumes are refused at validation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from marathon_core.model.app import (
    AppDefinition,
    DockerContainer,
    HostVolume,
    NetworkMode,
    PortMapping,
)

__all__ = ["container_info", "docker_port_mappings"]

Json = dict[str, Any]

_DOCKER_NETWORK = {NetworkMode.BRIDGE: "BRIDGE", NetworkMode.CONTAINER: "USER"}


def _labels(labels: Mapping[str, str]) -> Json:
    return {"labels": [{"key": k, "value": v} for k, v in labels.items()]}


def docker_port_mappings(mappings: Sequence[PortMapping], host_ports: Sequence[int]) -> list[Json]:
    """``DockerInfo.PortMapping`` entries: mappings with a ``hostPort`` zipped with the
    assigned ports (as many as there are such mappings: the core's contract)."""
    bound = [m for m in mappings if m.host_port is not None]
    if len(bound) != len(host_ports):
        raise ValueError(
            f"{len(host_ports)} host ports assigned for {len(bound)} port mappings with hostPort"
        )
    out: list[Json] = []
    for mapping, host_port in zip(bound, host_ports, strict=True):
        container_port = mapping.container_port or host_port
        for protocol in mapping.protocol.split(","):
            out.append(
                {"host_port": host_port, "container_port": container_port, "protocol": protocol}
            )
    return out


def _docker_info(app: AppDefinition, docker: DockerContainer, host_ports: Sequence[int]) -> Json:
    info: Json = {
        "image": docker.image,
        "privileged": docker.privileged,
        "force_pull_image": docker.force_pull_image,
    }
    network = _DOCKER_NETWORK.get(app.networks[0].mode) if app.networks else None
    if network is not None:
        info["network"] = network
        mappings = docker_port_mappings(app.port_mappings, host_ports)
        if mappings:
            info["port_mappings"] = mappings
    if docker.parameters:
        info["parameters"] = [{"key": p.key, "value": p.value} for p in docker.parameters]
    return info


def container_info(app: AppDefinition, host_ports: Sequence[int]) -> Json:
    """The ``ContainerInfo`` (Mesos v1 JSON) of a launch of the DOCKER ``app``."""
    container = app.container
    assert container is not None and container.docker is not None, "validated DOCKER app"
    info: Json = {"type": "DOCKER", "docker": _docker_info(app, container.docker, host_ports)}
    volumes = [
        {"container_path": v.container_path, "host_path": v.host_path, "mode": v.mode}
        for v in container.volumes
        if isinstance(v, HostVolume)
    ]
    if volumes:
        info["volumes"] = volumes
    network_infos = []
    for network in app.networks:
        if network.mode is NetworkMode.CONTAINER:
            entry: Json = {"name": network.name, "ip_addresses": [{}]}
            if network.labels:
                entry["labels"] = _labels(network.labels)
            network_infos.append(entry)
    if network_infos:
        info["network_infos"] = network_infos
    return info
