"""The core's side of the plugin facade: :class:`CoreContext` implements
:class:`~marathon_core.contracts.services.ServiceContext` over the state store, the one
writer of groups, the deployment registry and the election.

Services see only the contract; the core's own parts (the leadership term, the
standby's cache warmer) use the attributes here directly.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from marathon_core.config import Config
from marathon_core.contracts.auth import Action, HttpRequest, Identity, Resource
from marathon_core.contracts.services import LeaderView
from marathon_core.deploy.manager import DeploymentRegistry, GroupManager
from marathon_core.deploy.revert import revert
from marathon_core.election import LeaderElection
from marathon_core.errors import NotFoundError, StorageError
from marathon_core.events import EventBus
from marathon_core.mesos.detector import master_url_of
from marathon_core.model.app import AppDefinition
from marathon_core.model.deployment import Deployment, GroupChange
from marathon_core.model.group import Group
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import Instance
from marathon_core.model.validation import ValidationContext
from marathon_core.plugins import PluginHost
from marathon_core.state.store import StateStore

if TYPE_CHECKING:
    from marathon_core.mesos.client import MesosClient

__all__ = ["CoreContext"]


@attrs.define
class PluginAccess:
    """Access control answered by the auth plugins' hooks."""

    plugins: PluginHost

    @property
    def enforced(self) -> bool:
        return self.plugins.has_authorizer

    @property
    def authenticates(self) -> bool:
        return self.plugins.has_authenticator

    def authenticate(self, request: HttpRequest) -> Identity:
        return self.plugins.authenticate(request)

    def authorize(self, identity: Identity, action: Action, resource: Resource) -> bool:
        return self.plugins.authorize(identity, action, resource)


@attrs.define
class ElectionLeadership:
    """The election, and the framework id the state store keeps."""

    election: LeaderElection
    state: StateStore

    @property
    def is_leader(self) -> bool:
        return self.election.is_leader

    @property
    def leader_address(self) -> str | None:
        return self.election.leader_id

    def advertise(self, address: str) -> None:
        self.election.participant_id = address

    async def abdicate(self) -> bool:
        return await self.election.abdicate()

    async def framework_id(self) -> str | None:
        try:
            return await self.state.framework_id.get()
        except StorageError:  # informational (``/v2/info``): unknown while state is away
            return None


@attrs.define
class StoredHistory:
    """Versions of apps and root groups, as the state store keeps them."""

    state: StateStore

    async def app_versions(self, app_id: PathId) -> Sequence[Timestamp]:
        return await self.state.apps.versions(app_id)

    async def app_version(self, app_id: PathId, version: Timestamp) -> AppDefinition | None:
        return await self.state.apps.get_version(app_id, version)

    async def root_versions(self) -> Sequence[Timestamp]:
        return await self.state.root_group_versions()

    async def root_at(self, version: Timestamp) -> Group | None:
        return await self.state.root_group(version)


@attrs.define
class CoreContext:
    """The one object behind every service's ``ctx``; see the module docstring."""

    config: Config
    plugins: PluginHost
    #: The Mesos master's URL (from ``--master``, or the embedded cluster's).
    master_url: str
    state: StateStore
    validation: ValidationContext
    election: LeaderElection
    events: EventBus = attrs.field(factory=EventBus)
    #: Unfinished deployments, loaded from state at start; the executor follows it.
    registry: DeploymentRegistry = attrs.field(factory=DeploymentRegistry)
    #: The one writer of apps and groups.
    groups: GroupManager = attrs.field(init=False)
    #: The leader's live view and control while this process leads (set by the term).
    leader: LeaderView | None = None
    #: The term's Mesos client while this process leads (set by the term): the master
    #: it is subscribed to, which redirects and ZooKeeper lookups keep current.
    mesos: MesosClient | None = None
    access: PluginAccess = attrs.field(init=False)
    leadership: ElectionLeadership = attrs.field(init=False)
    history: StoredHistory = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.groups = GroupManager(
            self.state,
            self.registry,
            self.events,
            max_running_deployments=self.config.max_running_deployments,
            service_port_range=(self.config.local_port_min, self.config.local_port_max),
        )
        self.access = PluginAccess(self.plugins)
        self.leadership = ElectionLeadership(self.election, self.state)
        self.history = StoredHistory(self.state)

    def call_extension(self, hook_name: str, **kwargs: Any) -> list[Any]:
        return self.plugins.call_extension(hook_name, **kwargs)

    def mesos_leader_url(self) -> str | None:
        if self.mesos is not None and master_url_of(self.mesos.master_url) is not None:
            url: str | None = self.mesos.master_url
        else:
            url = master_url_of(self.master_url)
        return None if url is None else _without_userinfo(url)

    async def root(self) -> Group:
        return await self.groups.root()

    async def update_root(
        self,
        change: Callable[[Group], Group],
        *,
        force: bool = False,
        restart: Collection[PathId] = (),
        dry_run: bool = False,
    ) -> GroupChange:
        return await self.groups.update_root(change, force=force, restart=restart, dry_run=dry_run)

    def deployments(self) -> Sequence[Deployment]:
        return self.registry.all()

    def deployment(self, deployment_id: str) -> Deployment | None:
        return self.registry.get(deployment_id)

    def conflicting_deployments(self, app_ids: Collection[PathId]) -> Sequence[Deployment]:
        return self.registry.conflicting(app_ids)

    async def cancel_deployment(self, deployment_id: str, *, force: bool) -> GroupChange | None:
        deployment = self.registry.get(deployment_id)
        if deployment is None:
            raise NotFoundError(f"DeploymentPlan {deployment_id} does not exist")
        if force:
            await self.state.complete_deployment(deployment_id)
            self.registry.remove(deployment_id)
            return None
        original = Group.empty_root()
        if deployment.original_version is not None:
            stored = await self.state.root_group(deployment.original_version)
            original = stored if stored is not None else original
        return await self.groups.update_root(
            lambda current: revert(current, original, deployment), force=True
        )

    async def instances_of(self, app_id: PathId) -> Sequence[Instance]:
        if self.leader is not None:
            return self.leader.instances_of(app_id)
        return await self.state.instances.by_app(app_id)

    async def all_instances(self) -> Sequence[Instance]:
        if self.leader is not None:
            return self.leader.all_instances()
        return await self.state.instances.all()


def _without_userinfo(url: str) -> str:
    """``url`` without ``user:password@``: a URL meant for people and tools to browse
    never carries the scheduler's credentials."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
