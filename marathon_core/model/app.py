"""The app definition and its parts, in canonical (normalised) form.

These are frozen values: a change to an app is a new AppDefinition (``attrs.evolve``).
Deprecated request fields (``ports``, ``uris``, ``ipAddress``, ``docker.network``...)
have no attribute here; the codec translates them on the way in. Defaults are
Marathon's, so an app built in code behaves like one POSTed with those fields omitted.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

from marathon_core.model.ids import PathId, Timestamp

__all__ = [
    "AppDefinition",
    "Command",
    "Constraint",
    "Container",
    "DockerContainer",
    "DockerParameter",
    "EnvSecret",
    "EnvValue",
    "ExecutorResources",
    "ExternalVolume",
    "ExternalVolumeInfo",
    "FetchUri",
    "HealthCheck",
    "HostVolume",
    "KillSelection",
    "Network",
    "NetworkMode",
    "PersistentVolume",
    "PersistentVolumeInfo",
    "PortDefinition",
    "PortMapping",
    "ReadinessCheck",
    "Residency",
    "ResourceLimits",
    "Secret",
    "SecretVolume",
    "UnreachableStrategy",
    "UpgradeStrategy",
    "VersionInfo",
    "Volume",
]


def _map() -> Any:
    # Mappings are compared but never hashed (a dict is not hashable).
    return attrs.field(factory=dict, hash=False)


class NetworkMode(enum.Enum):
    HOST = "host"
    BRIDGE = "container/bridge"
    CONTAINER = "container"


class KillSelection(enum.Enum):
    YOUNGEST_FIRST = "YOUNGEST_FIRST"
    OLDEST_FIRST = "OLDEST_FIRST"


@attrs.frozen
class Constraint:
    """``[field, OPERATOR]`` or ``[field, OPERATOR, value]``; operator kept as given."""

    field: str
    operator: str
    value: str | None = None


@attrs.frozen
class PortDefinition:
    """A host-networking port; ``port`` 0 means "assign a service port"."""

    port: int = 0
    protocol: str = "tcp"
    name: str | None = None
    labels: Mapping[str, str] = _map()


@attrs.frozen
class PortMapping:
    """A container-networking port; ``host_port`` None means no host port at all."""

    container_port: int = 0
    host_port: int | None = None
    service_port: int = 0
    protocol: str = "tcp"
    name: str | None = None
    labels: Mapping[str, str] = _map()
    network_names: tuple[str, ...] = ()


@attrs.frozen
class Network:
    mode: NetworkMode = NetworkMode.CONTAINER
    name: str | None = None
    labels: Mapping[str, str] = _map()


@attrs.frozen
class DockerParameter:
    key: str
    value: str


@attrs.frozen
class DockerContainer:
    image: str
    force_pull_image: bool = False
    privileged: bool = False
    parameters: tuple[DockerParameter, ...] = ()
    pull_config: Mapping[str, Any] | None = attrs.field(default=None, hash=False)


@attrs.frozen
class HostVolume:
    container_path: str
    host_path: str
    mode: str = "RW"


@attrs.frozen
class PersistentVolumeInfo:
    size: int
    type: str = "root"
    max_size: int | None = None
    profile_name: str | None = None
    constraints: tuple[tuple[str, ...], ...] = ()


@attrs.frozen
class PersistentVolume:
    """A local persistent volume; its presence makes the app *resident*."""

    container_path: str
    persistent: PersistentVolumeInfo
    mode: str = "RW"


@attrs.frozen
class ExternalVolumeInfo:
    name: str | None = None
    provider: str | None = None
    size: int | None = None
    options: Mapping[str, str] = _map()
    shared: bool = False


@attrs.frozen
class ExternalVolume:
    container_path: str
    external: ExternalVolumeInfo
    mode: str = "RW"


@attrs.frozen
class SecretVolume:
    container_path: str
    secret: str


Volume = HostVolume | PersistentVolume | ExternalVolume | SecretVolume


@attrs.frozen
class Container:
    """``type`` is a string, not an enum: runtimes are plugins and register their types."""

    type: str = "DOCKER"
    docker: DockerContainer | None = None
    port_mappings: tuple[PortMapping, ...] = ()
    volumes: tuple[Volume, ...] = ()


@attrs.frozen
class Command:
    value: str


@attrs.frozen
class HealthCheck:
    """One app health check; ``port`` wins over ``port_index`` when both are set."""

    protocol: str = "HTTP"
    path: str | None = None
    port_index: int | None = None
    port: int | None = None
    command: Command | None = None
    grace_period_seconds: int = 300
    interval_seconds: int = 60
    timeout_seconds: int = 20
    max_consecutive_failures: int = 3
    delay_seconds: int = 15
    ignore_http1xx: bool = False
    ip_protocol: str = "IPv4"


@attrs.frozen
class ReadinessCheck:
    name: str = "readinessCheck"
    protocol: str = "HTTP"
    path: str = "/"
    port_name: str = "http-api"
    interval_seconds: int = 30
    timeout_seconds: int = 10
    http_status_codes_for_ready: tuple[int, ...] = (200,)
    preserve_last_response: bool = False


@attrs.frozen
class UpgradeStrategy:
    minimum_health_capacity: float = 1.0
    maximum_over_capacity: float = 1.0


@attrs.frozen
class UnreachableStrategy:
    """Either enabled with two timers (seconds), or ``disabled`` (wait forever)."""

    enabled: bool = True
    inactive_after_seconds: int = 0
    expunge_after_seconds: int = 0

    @classmethod
    def disabled(cls) -> UnreachableStrategy:
        return cls(False, 0, 0)


@attrs.frozen
class FetchUri:
    uri: str
    extract: bool = True
    executable: bool = False
    cache: bool = False
    dest_path: str | None = None


@attrs.frozen
class VersionInfo:
    """When the app last changed at all, and when its configuration last changed."""

    last_scaling_at: Timestamp
    last_config_change_at: Timestamp


@attrs.frozen
class ExecutorResources:
    cpus: float = 0.1
    mem: float = 32.0
    disk: float = 10.0


@attrs.frozen
class ResourceLimits:
    """``None`` = not limited beyond the request; ``"unlimited"`` is kept as a string."""

    cpus: float | str | None = None
    mem: float | str | None = None


@attrs.frozen
class Residency:
    relaunch_escalation_timeout_seconds: int = 3600
    task_lost_behavior: str = "WAIT_FOREVER"


@attrs.frozen
class Secret:
    source: str


@attrs.frozen
class EnvSecret:
    """An env value that refers to a declared secret: ``{"secret": name}``."""

    secret: str


EnvValue = str | EnvSecret

DEFAULT_NETWORKS: tuple[Network, ...] = (Network(NetworkMode.HOST),)


@attrs.frozen
class AppDefinition:
    """A run spec: what to run, how many, where, and how to upgrade it."""

    id: PathId
    cmd: str | None = None
    args: tuple[str, ...] = ()
    user: str | None = None
    env: Mapping[str, EnvValue] = _map()
    instances: int = 1
    cpus: float = 1.0
    mem: float = 128.0
    disk: float = 0.0
    gpus: int = 0
    executor: str = ""
    executor_resources: ExecutorResources | None = None
    constraints: tuple[Constraint, ...] = ()
    fetch: tuple[FetchUri, ...] = ()
    port_definitions: tuple[PortDefinition, ...] = ()
    require_ports: bool = False
    backoff_seconds: int = 1
    backoff_factor: float = 1.15
    max_launch_delay_seconds: int = 300
    container: Container | None = None
    health_checks: tuple[HealthCheck, ...] = ()
    readiness_checks: tuple[ReadinessCheck, ...] = ()
    kill_selection: KillSelection = KillSelection.YOUNGEST_FIRST
    dependencies: tuple[PathId, ...] = ()
    upgrade_strategy: UpgradeStrategy = UpgradeStrategy()
    labels: Mapping[str, str] = _map()
    accepted_resource_roles: tuple[str, ...] | None = None
    secrets: Mapping[str, Secret] = _map()
    networks: tuple[Network, ...] = DEFAULT_NETWORKS
    unreachable_strategy: UnreachableStrategy = UnreachableStrategy()
    task_kill_grace_period_seconds: int | None = None
    residency: Residency | None = None
    role: str = "*"
    tty: bool | None = None
    resource_limits: ResourceLimits | None = None
    check: Mapping[str, Any] | None = attrs.field(default=None, hash=False)
    version: Timestamp | None = None
    version_info: VersionInfo | None = None

    # -- derived facts other layers ask about ------------------------------------------

    @property
    def is_host_networking(self) -> bool:
        return any(n.mode is NetworkMode.HOST for n in self.networks)

    @property
    def is_resident(self) -> bool:
        """True when the app has local persistent volumes (it keeps reservations)."""
        c = self.container
        return c is not None and any(isinstance(v, PersistentVolume) for v in c.volumes)

    @property
    def is_single_instance(self) -> bool:
        return self.labels.get("MARATHON_SINGLE_INSTANCE_APP", "").lower() == "true"

    @property
    def port_mappings(self) -> tuple[PortMapping, ...]:
        return self.container.port_mappings if self.container is not None else ()

    @property
    def port_names(self) -> tuple[str | None, ...]:
        """Names of the app's ports in index order (portDefinitions or portMappings)."""
        if self.is_host_networking:
            return tuple(p.name for p in self.port_definitions)
        return tuple(p.name for p in self.port_mappings)

    @property
    def service_ports(self) -> tuple[int, ...]:
        if self.is_host_networking:
            return tuple(p.port for p in self.port_definitions)
        return tuple(p.service_port for p in self.port_mappings)

    @property
    def port_count(self) -> int:
        if self.is_host_networking:
            return len(self.port_definitions)
        return len(self.port_mappings)

    @property
    def docker_image(self) -> str | None:
        c = self.container
        return c.docker.image if c is not None and c.docker is not None else None

    def is_only_scale_change(self, other: AppDefinition) -> bool:
        """True when ``other`` differs from this app in ``instances`` (and versions) only."""
        a = attrs.evolve(self, instances=0, version=None, version_info=None)
        return a == attrs.evolve(other, instances=0, version=None, version_info=None)

    def is_upgrade(self, other: AppDefinition) -> bool:
        """True when going from this app to ``other`` needs a restart (config change)."""
        return self.id == other.id and not self.is_only_scale_change(other)
