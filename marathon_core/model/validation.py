"""Semantic validation of normalised apps and groups (Marathon's 422 "Object is not valid").

Rules that depend on plugins ask the registries in :class:`ValidationContext`: the
constraint operators, the container runtimes and the health-check protocols. Every
rule runs and every problem is reported at once, as Marathon does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol

import attrs

from marathon_core.contracts.health import HealthCheckProtocol
from marathon_core.contracts.placement import ConstraintOperator, ConstraintValidationError
from marathon_core.contracts.runtimes import ContainerRuntime
from marathon_core.errors import Violation
from marathon_core.model.app import (
    AppDefinition,
    EnvSecret,
    ExternalVolume,
    NetworkMode,
    PersistentVolume,
    SecretVolume,
)
from marathon_core.model.group import AppChanges, Group
from marathon_core.model.ids import (
    RESERVED_LAST_SEGMENTS,
    SEGMENT_PATTERN,
    PathId,
    valid_segment,
)

__all__ = [
    "RUNTIME_DISTRIBUTIONS",
    "ValidationContext",
    "operator_list_message",
    "prefixed",
    "validate_app",
    "validate_group",
    "validate_group_change",
]


@attrs.frozen
class ValidationContext:
    """What the rules need from plugins and flags; built once per server configuration."""

    constraint_operators: Mapping[str, ConstraintOperator] = attrs.field(factory=dict, hash=False)
    container_runtimes: Mapping[str, ContainerRuntime] = attrs.field(factory=dict, hash=False)
    health_check_protocols: Mapping[str, HealthCheckProtocol] = attrs.field(
        factory=dict, hash=False
    )
    mesos_role: str = "*"
    features: frozenset[str] = frozenset()
    local_port_min: int = 10000
    local_port_max: int = 20000
    default_network_name: str | None = None
    mesos_bridge_name: str = "mesos-bridge"


# Marathon lists its built-in operators in this order; others follow alphabetically.
_OPERATOR_ORDER = ("UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "MAX_PER", "UNLIKE", "IS")


def _or_join(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " or " + names[-1]


def operator_list_message(names: Iterable[str]) -> str:
    """``operator must be one of the following UNIQUE, CLUSTER, ... or IS``."""
    present = set(names)
    ordered = [n for n in _OPERATOR_ORDER if n in present]
    ordered += sorted(present.difference(_OPERATOR_ORDER))
    return "operator must be one of the following " + _or_join(ordered)


def prefixed(prefix: str, violations: Iterable[Violation]) -> Iterator[Violation]:
    """Re-root violations of a nested object: ``/`` becomes ``prefix``."""
    for v in violations:
        yield Violation(prefix if v.path == "/" else prefix + v.path, v.message)


_MESOS_HC = frozenset({"MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP"})
_PORT_HC = frozenset({"HTTP", "HTTPS", "TCP"}) | _MESOS_HC
_URI_RE = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_MULTI_NET = (
    "May specify a single host network, single bridge network, or else 1-to-n container networks"
)
_NOT_CMD = "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'."
_SECRETS_OFF = "Feature secrets is not enabled. Enable with --enable_features secrets)"
_DOCKER_ONE_NET = (
    "may only specify a single container network when using the Docker container engine"
)

#: Which distribution of this project provides a container type: named in the 422 of
#: an app whose type no installed plugin provides (names only: nothing is imported).
RUNTIME_DISTRIBUTIONS = {
    "DOCKER": "marathon-runtime-docker",
    "MESOS": "marathon-runtime-mesos",
}


def _fmt(x: float) -> str:
    """Numbers as Marathon prints them in messages (``0.5``, ``10``, ``1.0`` for bounds)."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def validate_app(app: AppDefinition, ctx: ValidationContext) -> list[Violation]:
    """Every semantic problem of a normalised app (empty when valid)."""
    out: list[Violation] = []
    add = out.append
    _check_id(app.id, add)
    # -- what to run
    docker = app.container.docker if app.container is not None else None
    if (app.cmd is not None and app.args) or (app.cmd is None and not app.args and docker is None):
        add(Violation("/", _NOT_CMD))
    # -- constraints
    ops = ctx.constraint_operators
    for i, c in enumerate(app.constraints):
        path = f"/constraints({i})"
        if not c.field:
            add(Violation(path, "missing field for constraint declaration"))
            continue
        op = ops.get(c.operator.upper())
        if op is None:
            add(Violation(path, operator_list_message(ops)))
            continue
        try:
            op.validate(c.field, c.value)
        except ConstraintValidationError as e:
            add(Violation(path, e.message))
    # -- container
    if app.container is not None:
        _check_container(app, ctx, add)
    if app.gpus > 0:
        if "gpu_resources" not in ctx.features:
            add(
                Violation(
                    "/gpus",
                    "Feature gpu_resources is not enabled. Enable with "
                    "--enable_features gpu_resources)",
                )
            )
        if app.container is not None and app.container.type == "DOCKER":
            add(Violation("/", "GPU resources only work with the Mesos containerizer"))
    # -- networks and ports
    _check_networks(app, add)
    _check_ports(app, add)
    # -- health and readiness
    _check_health(app, ctx, add)
    _check_readiness(app, add)
    # -- strategies
    resident = app.is_resident
    us = app.upgrade_strategy
    if resident and us.maximum_over_capacity != 0:
        add(
            Violation(
                "/upgradeStrategy/maximumOverCapacity",
                f"got {_fmt(us.maximum_over_capacity)}, expected 0.0",
            )
        )
    if app.is_single_instance:
        if app.instances > 1:
            add(Violation("/", "Single instance app may only have one instance"))
        if us.minimum_health_capacity != 0:
            add(
                Violation(
                    "/upgradeStrategy/minimumHealthCapacity",
                    f"got {_fmt(us.minimum_health_capacity)}, expected 0.0",
                )
            )
        if us.maximum_over_capacity != 0:
            add(
                Violation(
                    "/upgradeStrategy/maximumOverCapacity",
                    f"got {_fmt(us.maximum_over_capacity)}, expected 0.0",
                )
            )
    un = app.unreachable_strategy
    if un.enabled:
        if resident:
            add(Violation("/", "unreachableStrategy must be disabled for resident tasks"))
        if un.inactive_after_seconds > un.expunge_after_seconds:
            add(
                Violation(
                    "/unreachableStrategy/inactiveAfterSeconds",
                    f"inactiveAfterSeconds ({un.inactive_after_seconds}) must be less or equal "
                    f"to expungeAfterSeconds, which is {un.expunge_after_seconds}",
                )
            )
    # -- fetch
    for i, f in enumerate(app.fetch):
        if _URI_RE.fullmatch(f.uri) is None:
            add(Violation(f"/fetch({i})/uri", "URI has invalid syntax."))
    # -- roles
    valid_roles = [ctx.mesos_role]
    if len(app.id.path) > 1 and app.id.path[0] not in valid_roles:
        valid_roles.append(app.id.path[0])
    if app.role not in valid_roles:
        add(Violation("/role", f"got {app.role}, expected one of: [{', '.join(valid_roles)}]"))
    if app.accepted_resource_roles is not None:
        if not app.accepted_resource_roles:
            add(Violation("/acceptedResourceRoles", "must not be empty"))
        elif any(r not in ("*", app.role) for r in app.accepted_resource_roles):
            add(
                Violation(
                    "/acceptedResourceRoles",
                    f"acceptedResourceRoles can only contain * and {app.role}",
                )
            )
    # -- limits
    rl = app.resource_limits
    if rl is not None:
        for name, limit, requested in (("cpus", rl.cpus, app.cpus), ("mem", rl.mem, app.mem)):
            if isinstance(limit, (int, float)) and limit < requested:
                add(
                    Violation(
                        f"/resourceLimits/{name}",
                        "resource limit must be greater than "
                        f"or equal to requested resource ({_fmt(requested)})",
                    )
                )
    # -- secrets
    secrets_on = "secrets" in ctx.features
    if app.secrets and not secrets_on:
        add(Violation("/secrets", _SECRETS_OFF))
    for key, value in app.env.items():
        if not key:
            add(Violation("/env", "must not be empty"))
        if isinstance(value, EnvSecret):
            if not secrets_on:
                add(Violation(f"/env/{key}", _SECRETS_OFF))
            elif value.secret not in app.secrets:
                add(Violation(f"/env/{key}", "references an undefined secret"))
    return out


def _check_id(pid: PathId, add: _Add) -> None:
    if pid.is_root:
        add(Violation("/", "must not be root"))
        add(Violation("/id", "Path must contain at least one path element"))
        return
    if not all(valid_segment(s) for s in pid.path):
        add(Violation("/id", f"must fully match regular expression '{SEGMENT_PATTERN}'"))
    if pid.name in RESERVED_LAST_SEGMENTS:
        add(
            Violation(
                "/id",
                "must not end with any of the following reserved keywords: "
                + ", ".join(RESERVED_LAST_SEGMENTS),
            )
        )


class _Add(Protocol):
    def __call__(self, v: Violation, /) -> None: ...


def _check_container(app: AppDefinition, ctx: ValidationContext, add: _Add) -> None:
    c = app.container
    assert c is not None
    runtime = ctx.container_runtimes.get(c.type)
    if runtime is None:
        names = ",".join(sorted(ctx.container_runtimes))
        message = f"is not one of ({names})"
        distribution = RUNTIME_DISTRIBUTIONS.get(c.type)
        if distribution is not None:
            message += f"; container.type {c.type} needs the {distribution} distribution"
        add(Violation("/container/type", message))
    if c.type == "DOCKER":
        if c.docker is None:
            add(Violation("/container/docker", "not defined"))
        elif c.docker.pull_config is not None:
            add(
                Violation(
                    "/container/docker/pullConfig",
                    "pullConfig is not supported with Docker containerizer",
                )
            )
        container_nets = [n for n in app.networks if n.mode is NetworkMode.CONTAINER]
        if len(container_nets) > 1:
            add(Violation("/", _DOCKER_ONE_NET))
    elif c.docker is not None and c.docker.parameters:
        add(Violation("/container/docker/parameters", "must be empty"))
    volume_names: set[str] = set()
    for i, v in enumerate(c.volumes):
        path = f"/container/volumes({i})"
        if isinstance(v, PersistentVolume):
            cp = v.container_path
            if "/" in cp or cp in (".", ".."):
                add(Violation(f"{path}/containerPath", 'value must not contain "/"'))
            p = v.persistent
            if p.max_size is not None and p.max_size <= p.size:
                add(Violation(f"{path}/persistent/maxSize", "Max size must be larger than size"))
            if v.mode != "RW":
                add(Violation(f"{path}/mode", "is not equal to RW"))
        elif isinstance(v, ExternalVolume):
            if "external_volumes" not in ctx.features:
                add(
                    Violation(
                        path,
                        "Feature external_volumes is not enabled. Enable with "
                        "--enable_features external_volumes)",
                    )
                )
            if v.external.name is not None:
                if v.external.name in volume_names:
                    add(Violation(f"{path}/external/name", "Volume name must be unique"))
                volume_names.add(v.external.name)
        elif isinstance(v, SecretVolume) and "secrets" not in ctx.features:
            add(Violation(path, _SECRETS_OFF))
    if runtime is not None:
        for problem in runtime.validate(app):
            add(problem)


def _check_networks(app: AppDefinition, add: _Add) -> None:
    nets = app.networks
    modes = [n.mode for n in nets]
    host = modes.count(NetworkMode.HOST)
    bridge = modes.count(NetworkMode.BRIDGE)
    if (host and len(nets) > 1) or (bridge and len(nets) > 1):
        add(Violation("/networks", _MULTI_NET))
    seen: set[str] = set()
    for i, n in enumerate(nets):
        if n.mode is NetworkMode.HOST and (n.name is not None or n.labels):
            add(Violation(f"/networks({i})", "host networks may not have names or labels"))
        elif n.mode is NetworkMode.BRIDGE and n.name is not None:
            add(Violation(f"/networks({i})/name", "must be empty"))
        elif n.mode is NetworkMode.CONTAINER:
            if n.name is None:
                add(
                    Violation(
                        "/networks",
                        "Network name must be specified when container network is selected.",
                    )
                )
            elif n.name in seen:
                add(Violation("/networks", "Duplicate networks are not allowed"))
            else:
                seen.add(n.name)


def _check_ports(app: AppDefinition, add: _Add) -> None:
    host = app.is_host_networking
    if host and app.port_mappings:
        add(Violation("/", "portMappings are not allowed with host-networking"))
    if not host and app.port_definitions:
        add(Violation("/", "portDefinitions are only allowed with host-networking"))
    names = [p.name for p in app.port_definitions if p.name is not None]
    if len(names) != len(set(names)):
        add(Violation("/portDefinitions", "Port names must be unique."))
    ports = [p.port for p in app.port_definitions if p.port != 0]
    if len(ports) != len(set(ports)):
        add(Violation("/portDefinitions", "Ports must be unique."))
    names = [p.name for p in app.port_mappings if p.name is not None]
    if len(names) != len(set(names)):
        add(Violation("/container/portMappings", "Port names must be unique."))
    container_nets = {n.name for n in app.networks if n.mode is NetworkMode.CONTAINER}
    for i, m in enumerate(app.port_mappings):
        for j, name in enumerate(m.network_names):
            if name not in container_nets:
                add(
                    Violation(
                        f"/container/portMappings({i})/networkNames({j})",
                        "is not one of the container networks of the app",
                    )
                )
        if m.host_port is not None and len(container_nets) > 1 and len(m.network_names) != 1:
            add(
                Violation(
                    f"/container/portMappings({i})/networkNames",
                    "must name exactly one network when hostPort is set and there "
                    "is more than one container network",
                )
            )


def _check_health(app: AppDefinition, ctx: ValidationContext, add: _Add) -> None:
    protocols = ctx.health_check_protocols
    port_count = app.port_count
    mesos = 0
    docker = app.container is not None and app.container.type == "DOCKER"
    for i, hc in enumerate(app.health_checks):
        path = f"/healthChecks({i})"
        plugin = protocols.get(hc.protocol)
        if plugin is None:
            add(Violation(f"{path}/protocol", f"is not one of ({','.join(sorted(protocols))})"))
        if hc.protocol in _MESOS_HC:
            mesos += 1
        if (
            hc.protocol in _PORT_HC
            and hc.port is None
            and (hc.port_index is None or hc.port_index >= port_count)
        ):
            add(
                Violation(
                    path,
                    "Health check port indices must address an element of the "
                    "ports array or container port mappings.",
                )
            )
        if hc.protocol == "COMMAND" and hc.command is None:
            add(Violation(f"{path}/command", "not defined"))
        if hc.ip_protocol == "IPv6" and not (docker and hc.protocol in _MESOS_HC):
            add(
                Violation(
                    path,
                    "IPv6 can only be used for container type DOCKER and Mesos "
                    "http/https/tcp health checks",
                )
            )
        if plugin is not None:
            for v in plugin.validate(hc, path=path, app=app):
                add(v)
    if mesos > 1:
        add(Violation("/", "AppDefinition can contain at most one Mesos health check"))


def _check_readiness(app: AppDefinition, add: _Add) -> None:
    checks = app.readiness_checks
    if len(checks) > 1:
        add(Violation("/readinessChecks", f"got {len(checks)}, expected 1 or less"))
    names = set(app.port_names)
    for i, rc in enumerate(checks):
        path = f"/readinessChecks({i})"
        if rc.port_name not in names:
            add(
                Violation(
                    f"{path}/portName", f"No port definition reference for portName {rc.port_name}"
                )
            )
        if rc.timeout_seconds >= rc.interval_seconds:
            add(
                Violation(
                    f"{path}/timeoutSeconds",
                    f"got {rc.timeout_seconds}, expected less than {rc.interval_seconds}",
                )
            )
        codes = rc.http_status_codes_for_ready
        if len(codes) != len(set(codes)):
            add(Violation(f"{path}/httpStatusCodesForReady", "must be unique"))


_SAME_ID = "Groups and Applications may not have the same identifier."
_CYCLE = "Dependency graph has cyclic dependencies."


def validate_group(group: Group) -> list[Violation]:
    """Root-level rules of a group tree: no cycles, no app and group sharing an id."""
    out: list[Violation] = []
    group_ids = {g.id for g in group.transitive_groups()}
    if any(a.id in group_ids for a in group.transitive_apps()):
        out.append(Violation("/", _SAME_ID))
    if group.has_cycle():
        out.append(Violation("/", _CYCLE))
    return out


def validate_group_change(
    after: Group, changes: AppChanges, *, has_dependencies: bool
) -> list[Violation]:
    """:func:`validate_group` of ``after``, given that the tree it was changed from
    passed it and that ``changes`` (:func:`~marathon_core.model.group.app_changes`)
    says what changed; costs the change and the groups instead of every app.

    Why it is enough: a new shared id needs a changed app or a new group; a cycle
    needs dependencies, so only a tree that has some (``has_dependencies``: any app or
    group of ``after`` declares one) is searched whole.
    """
    out: list[Violation] = []
    group_ids = {g.id for g in after.transitive_groups()}
    if any(app_id in group_ids for app_id in changes.changed) or any(
        after.find_app(group_id) is not None for group_id in changes.new_groups
    ):
        out.append(Violation("/", _SAME_ID))
    if has_dependencies and after.has_cycle():
        out.append(Violation("/", _CYCLE))
    return out
