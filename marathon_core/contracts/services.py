"""What a plugin's service gets from the core: the :class:`ServiceContext` facade.

A service (hook ``marathon_services``) runs in the core's root nursery on every
process, leading or standing by. It reads the cluster through the facade and changes
it only through it: one writer for apps and groups, one control surface for kills
and scaling, one event stream. The facade hides how the core keeps state, so the
scheduler, the state store and the deployment executor can change without breaking
a plugin.

Reads come in two strengths. :meth:`ServiceContext.root`, :meth:`~ServiceContext.deployments`
and :meth:`~ServiceContext.instances_of` work everywhere (a standby reads stored
state). :attr:`ServiceContext.leader` is the leader's live view and control, None
while this process does not lead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, Protocol

from marathon_core.config import Config
from marathon_core.contracts.auth import Action, HttpRequest, Identity, Resource
from marathon_core.contracts.events import EventStream
from marathon_core.contracts.health import KillStatistics
from marathon_core.contracts.queue import QueueEntry
from marathon_core.model.app import AppDefinition
from marathon_core.model.deployment import Deployment, GroupChange
from marathon_core.model.group import Group
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import Instance
from marathon_core.model.validation import ValidationContext

__all__ = [
    "AccessControl",
    "History",
    "LeaderView",
    "Leadership",
    "MasterService",
    "Service",
    "ServiceContext",
    "TaskHealth",
]

#: A plugin service: ``async def service(ctx: ServiceContext, *, task_status)``; it
#: calls ``task_status.started()`` once ready and runs until cancelled.
Service = Callable[..., Awaitable[None]]
#: What ``marathon_mesos_master`` returns: ``async def master(*, task_status)`` that
#: reports the master's URL through ``task_status.started(url)``.
MasterService = Callable[..., Awaitable[None]]


class AccessControl(Protocol):
    """Authentication and authorization, answered by the auth plugins (allow-all without)."""

    @property
    def enforced(self) -> bool:
        """Whether any plugin authorizes requests (else every request is allowed)."""
        ...

    @property
    def authenticates(self) -> bool:
        """Whether any plugin authenticates callers (else everyone is anonymous)."""
        ...

    def authenticate(self, request: HttpRequest) -> Identity:
        """The caller of ``request``; ``authenticated=False`` means reject it (401)."""
        ...

    def authorize(self, identity: Identity, action: Action, resource: Resource) -> bool: ...


class Leadership(Protocol):
    """Who leads, and this process's part in the election."""

    @property
    def is_leader(self) -> bool: ...

    @property
    def leader_address(self) -> str | None:
        """The leader's API ``host:port``; None while nobody leads."""
        ...

    def advertise(self, address: str) -> None:
        """Announce ``address`` as this process's API ``host:port`` to the other contenders.

        For the API frontend, once it is bound (``--http_port 0`` picks a port). Takes
        effect for the election that starts after the services are ready.
        """
        ...

    async def abdicate(self) -> bool:
        """Give up leadership; False if not leading. Returns once the term has ended."""
        ...

    async def framework_id(self) -> str | None:
        """The Mesos framework id this Marathon registered with; None before the first
        registration, or while the state store cannot be reached."""
        ...


class History(Protocol):
    """Stored versions of apps and of the root group."""

    async def app_versions(self, app_id: PathId) -> Sequence[Timestamp]: ...

    async def app_version(self, app_id: PathId, version: Timestamp) -> AppDefinition | None: ...

    async def root_versions(self) -> Sequence[Timestamp]: ...

    async def root_at(self, version: Timestamp) -> Group | None:
        """The root group as it was at ``version``; None if that version is not kept."""
        ...


class TaskHealth(Protocol):
    """The health of tasks under Marathon-run checks, as the leader keeps it in memory."""

    def generation(self, app_id: PathId) -> int:
        """Changes whenever the health of any task of ``app_id`` changes: a cache key."""
        ...

    def health_of(self, instance: Instance) -> object | None:
        """A token that stays the same object until the task's health changes; None when
        its app has no Marathon-run checks."""
        ...

    def results(self, instance: Instance) -> list[dict[str, Any]] | None:
        """``healthCheckResults`` of the task (None: its app has no such checks)."""
        ...

    def counts(self, instances: Sequence[Instance]) -> tuple[int, int]:
        """``tasksHealthy`` and ``tasksUnhealthy`` of these instances."""
        ...

    def kill_statistics(self) -> KillStatistics:
        """Kills for failing health checks in this term (killed, deferred, pending)."""
        ...


class LeaderView(Protocol):
    """The leader's live view of instances and its control surface over them."""

    @property
    def health(self) -> TaskHealth: ...

    def instances_of(self, app_id: PathId) -> Sequence[Instance]: ...

    def all_instances(self) -> Sequence[Instance]: ...

    def instances_generation(self, app_id: PathId) -> int:
        """Changes whenever an instance of ``app_id`` changes: a cache key."""
        ...

    def queue(self) -> Sequence[QueueEntry]:
        """Every app with instances waiting to launch."""
        ...

    def queue_entry(self, app_id: PathId) -> QueueEntry | None: ...

    def reset_delay(self, app_id: PathId) -> bool:
        """End the app's launch backoff now; False if it had none."""
        ...

    def last_task_failure(self, app_id: PathId) -> dict[str, Any] | None:
        """``lastTaskFailure`` of the app (Marathon's JSON), or None."""
        ...

    def readiness_results(self, app_id: PathId) -> list[dict[str, Any]]:
        """``readinessCheckResults`` of the app's running deployment action (Marathon's JSON)."""
        ...

    async def deployment_status(self, deployment_id: str) -> dict[str, dict[str, Any]] | None:
        """Per app of a running deployment: its state, progress, and why it waits
        (see :mod:`marathon_core.deploy.status`); None for an unknown deployment."""
        ...

    async def kill(self, instances: Sequence[Instance], *, wipe: bool = False) -> None:
        """Kill the tasks of ``instances``: the scheduler replaces them, unless ``wipe``
        decommissions the instances for good (the app then runs fewer than ``instances``
        until the next deployment or scale check)."""
        ...

    async def kill_and_scale(
        self, instances: Mapping[PathId, Sequence[Instance]], *, force: bool = False
    ) -> GroupChange:
        """Decommission exactly these instances and lower each app's ``instances`` by as
        many, in one deployment (Marathon's ``killAndScale``).

        Raises :class:`~marathon_core.errors.AppLockedError` while a deployment owns one
        of the apps, unless ``force``; :class:`~marathon_core.errors.NotFoundError` if an
        app is gone.
        """
        ...


class ServiceContext(Protocol):
    """Everything a service may use; see the module docstring."""

    @property
    def config(self) -> Config: ...

    @property
    def validation(self) -> ValidationContext:
        """The plugin registries and flags that API validation asks."""
        ...

    @property
    def events(self) -> EventStream: ...

    @property
    def access(self) -> AccessControl: ...

    @property
    def leadership(self) -> Leadership: ...

    @property
    def history(self) -> History: ...

    @property
    def leader(self) -> LeaderView | None:
        """The leader's live view and control; None while this process does not lead."""
        ...

    def mesos_leader_url(self) -> str | None:
        """The ``http(s)://`` URL of the Mesos master the leader's scheduler is subscribed
        to (the embedded master's for ``--master local``): where Mesos's UI, its
        ``/master/state`` and so the agents' sandboxes are found (Marathon's
        ``mesos_leader_ui_url``), without any ``user:password@``. Off the leader,
        ``--master`` when it is an address; None while only a ``zk://`` URL is known."""
        ...

    def call_extension(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """The results of a hook a plugin added (``marathon_addhooks``), e.g. the REST
        frontend asking other plugins for routes."""
        ...

    async def root(self) -> Group:
        """The current root group (the leader's, or the stored one on a standby)."""
        ...

    async def update_root(
        self,
        change: Callable[[Group], Group],
        *,
        force: bool = False,
        restart: Collection[PathId] = (),
        dry_run: bool = False,
    ) -> GroupChange:
        """Apply ``change`` to the root group through the one writer and start its deployment.

        ``change`` gets the current root and returns the new one (or raises a
        :class:`~marathon_core.errors.UserError`). The new root and its deployment are
        stored atomically before this returns. Conflicting deployments are a 409
        unless ``force`` cancels them; apps in ``restart`` restart even if unchanged;
        ``dry_run`` only plans: nothing is stored or started.
        """
        ...

    def deployments(self) -> Sequence[Deployment]:
        """Unfinished deployments, in start order."""
        ...

    def deployment(self, deployment_id: str) -> Deployment | None: ...

    def conflicting_deployments(self, app_ids: Collection[PathId]) -> Sequence[Deployment]:
        """Unfinished deployments that touch any of ``app_ids``."""
        ...

    async def cancel_deployment(self, deployment_id: str, *, force: bool) -> GroupChange | None:
        """Stop a deployment: ``force`` just forgets it (None); otherwise a new deployment
        rolls its apps back to where they were, and is returned.

        Raises :class:`~marathon_core.errors.NotFoundError` for an unknown id.
        """
        ...

    async def instances_of(self, app_id: PathId) -> Sequence[Instance]:
        """An app's instances: the leader's live view, or the stored ones on a standby."""
        ...

    async def all_instances(self) -> Sequence[Instance]: ...
