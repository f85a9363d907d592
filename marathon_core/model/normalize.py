"""Normalisation of app request bodies (Marathon's ``AppNormalization``), on JSON dicts.

Works on the shape-checked dict, where "absent" is still visible (an omitted
``portDefinitions`` gets a default port, an explicit ``[]`` means no ports). Deprecated
fields are translated into canonical ones and removed, defaults that depend on other
fields are filled in; the result is what the converter structures into an
AppDefinition. Misuse of deprecated fields is reported as violations.
"""

from __future__ import annotations

from typing import Any

from marathon_core.errors import Violation
from marathon_core.model.ids import PathId
from marathon_core.model.validation import ValidationContext

__all__ = ["READ_ONLY_APP_KEYS", "normalize_app"]

#: Keys of the app output that a client may send back and that the server owns.
READ_ONLY_APP_KEYS = (
    "tasks",
    "tasksRunning",
    "tasksStaged",
    "tasksHealthy",
    "tasksUnhealthy",
    "deployments",
    "versionInfo",
    "lastTaskFailure",
    "taskStats",
    "readinessCheckResults",
    "storeUrls",
    "taskRateLimit",
)

_ARCHIVES = (".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz", ".zip")
_HTTP_HC = frozenset({"HTTP", "HTTPS", "MESOS_HTTP", "MESOS_HTTPS"})
_DOCKER_NET = {"HOST": "host", "BRIDGE": "container/bridge", "USER": "container"}


def normalize_app(
    d: dict[str, Any], ctx: ValidationContext, *, base: PathId
) -> tuple[dict[str, Any], list[Violation]]:
    """Canonical form of a shape-checked app dict (mutated in place and returned)."""
    errs: list[Violation] = []
    # 1. ids
    app_id = PathId.parse(d["id"], base=base)
    d["id"] = app_id
    deps = d.get("dependencies")
    if deps:
        d["dependencies"] = [PathId.parse(x, base=base) for x in deps]
    for key in READ_ONLY_APP_KEYS:
        d.pop(key, None)
    d.pop("version", None)
    # drop explicit nulls: absent and null mean the same on input
    for key in [k for k, v in d.items() if v is None]:
        del d[key]

    container = d.get("container")
    docker = container.get("docker") if container is not None else None
    ip_address = d.pop("ipAddress", None)
    ports = d.pop("ports", None)
    uris = d.pop("uris", None)
    has_pd = "portDefinitions" in d
    has_networks = "networks" in d
    docker_net = docker.pop("network", None) if docker is not None else None

    # 2. deprecated-field combinations
    if ports is not None and has_pd and [p.get("port", 0) for p in d["portDefinitions"]] != ports:
        errs.append(Violation("/", "cannot specify both ports and port definitions"))
    if ports is not None and len(set(p for p in ports if p)) != len([p for p in ports if p]):
        errs.append(Violation("/", "ports must be unique"))
    if uris is not None and "fetch" in d:
        errs.append(Violation("/uris", "may not be set in conjunction with fetch"))
    if ip_address is not None and has_networks:
        errs.append(Violation("/", "must not specify both networks and ipAddress"))
    if ip_address is not None and (ports or d.get("portDefinitions")):
        errs.append(Violation("/", "cannot specify both an IP address and port"))
    if docker_net is not None and has_networks:
        errs.append(Violation("/", "must not specify both container.docker.network and networks"))
    credential = docker.pop("credential", None) if docker is not None else None
    if credential is not None:
        # Marathon stopped passing credentials this way; it refuses them, not drops them.
        errs.append(Violation("/container/docker/credential", "must be empty"))
    if docker_net == "NONE":
        errs.append(Violation("/container/docker/network", "NONE networking is not supported"))
    docker_mappings = docker.pop("portMappings", None) if docker is not None else None
    if docker_mappings is not None and container is not None and "portMappings" in container:
        errs.append(
            Violation(
                "/container",
                "cannot specify both container.portMappings and container.docker.portMappings",
            )
        )
    if errs:
        return d, errs

    # 3. deprecated -> canonical
    if uris is not None:
        d["fetch"] = [
            {"uri": u, "extract": u.endswith(_ARCHIVES), "executable": False, "cache": False}
            for u in uris
        ]
    if ports is not None and not has_pd:
        d["portDefinitions"] = [{"port": p, "protocol": "tcp"} for p in ports]
        has_pd = True
    if container is not None and docker_mappings is not None:
        container["portMappings"] = docker_mappings
    if not has_networks:
        if docker_net is not None and docker_net != "NONE":
            net: dict[str, Any] = {"mode": _DOCKER_NET[docker_net]}
            if docker_net == "USER" and ip_address is not None:
                if ip_address.get("networkName"):
                    net["name"] = ip_address["networkName"]
                if ip_address.get("labels"):
                    net["labels"] = ip_address["labels"]
            d["networks"] = [net]
        elif ip_address is not None:
            name = ip_address.get("networkName")
            if name is not None and name == ctx.mesos_bridge_name:
                d["networks"] = [{"mode": "container/bridge"}]
            else:
                net = {"mode": "container"}
                if name:
                    net["name"] = name
                if ip_address.get("labels"):
                    net["labels"] = ip_address["labels"]
                d["networks"] = [net]
        else:
            d["networks"] = [{"mode": "host"}]
    if ip_address is not None:
        discovery = (ip_address.get("discovery") or {}).get("ports")
        if discovery and not (container is not None and "portMappings" in container):
            if container is None:
                container = d["container"] = {"type": "MESOS"}
            container["portMappings"] = [
                {
                    "containerPort": p["number"],
                    "name": p["name"],
                    "protocol": p.get("protocol", "tcp"),
                    **({"labels": p["labels"]} if p.get("labels") else {}),
                }
                for p in discovery
            ]

    # 4. networks: default mode and names
    networks = d["networks"]
    for n in networks:
        mode = n.setdefault("mode", "container")
        if mode == "container" and "name" not in n and ctx.default_network_name is not None:
            n["name"] = ctx.default_network_name
    host = any(n["mode"] == "host" for n in networks)
    bridge = any(n["mode"] == "container/bridge" for n in networks)

    # 5. ports
    if host:
        if container is not None:
            container.pop("portMappings", None)
        if not has_pd:
            d["portDefinitions"] = [{"port": 0, "protocol": "tcp", "name": "default"}]
        port_count = len(d["portDefinitions"])
    else:
        pds = d.pop("portDefinitions", None)
        d["requirePorts"] = False
        if container is None:
            container = d["container"] = {"type": "MESOS"}
        if "portMappings" not in container:
            if pds:
                container["portMappings"] = [
                    {
                        "containerPort": 0,
                        "servicePort": p.get("port", 0),
                        "protocol": p.get("protocol", "tcp"),
                        **({"name": p["name"]} if "name" in p else {}),
                        **({"labels": p["labels"]} if "labels" in p else {}),
                    }
                    for p in pds
                ]
            else:
                container["portMappings"] = [{"containerPort": 0, "name": "default"}]
        mappings = container["portMappings"]
        if bridge:
            for m in mappings:
                if m.get("hostPort") is None:
                    m["hostPort"] = 0
        port_count = len(mappings)
    if container is not None and "type" not in container:
        container["type"] = "DOCKER"

    # 6. health checks
    for hc in d.get("healthChecks", ()):
        protocol = hc.setdefault("protocol", "HTTP")
        if protocol != "COMMAND":
            if port_count and hc.get("port") is None and hc.get("portIndex") is None:
                hc["portIndex"] = 0
            if protocol in _HTTP_HC and hc.get("path") is None:
                hc["path"] = "/"

    # 7. role, strategies
    if "role" not in d:
        d["role"] = ctx.mesos_role
    resident = container is not None and any(
        v.get("persistent") is not None for v in container.get("volumes", ())
    )
    if "upgradeStrategy" not in d:
        labels = d.get("labels") or {}
        if str(labels.get("MARATHON_SINGLE_INSTANCE_APP", "")).lower() == "true":
            d["upgradeStrategy"] = {"minimumHealthCapacity": 0, "maximumOverCapacity": 0}
        elif resident:
            d["upgradeStrategy"] = {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0}
    if "unreachableStrategy" not in d:
        if resident:
            d["unreachableStrategy"] = "disabled"
    elif isinstance(d["unreachableStrategy"], dict):
        u = d["unreachableStrategy"]
        u.setdefault("inactiveAfterSeconds", 0)
        u.setdefault("expungeAfterSeconds", 0)
    return d, errs
