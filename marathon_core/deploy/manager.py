"""The one writer of the root group, and the registry of unfinished deployments.

Every change to apps and groups goes through :meth:`GroupManager.update_root`, one at
a time (Marathon serialises root-group updates too): apply the change, validate the
new root, stamp versions, assign service ports, plan the deployment, check it
against running deployments (409, or cancel them with ``force``), then store the root
and the deployment in one transaction. Only then is the deployment handed to the
executor through the :class:`DeploymentRegistry`; a crash before that point loses
nothing, because a new leader loads unfinished deployments from state.

A change costs what it changes, not the number of apps: the old and new roots are
compared through the subgroups they share (:func:`~marathon_core.model.group.app_changes`),
and what the rules need from all apps (service ports in use, which apps declare
dependencies) is kept per root in :class:`_RootFacts` and moved along with each change.
The first change after the root is (re)loaded validates and scans the whole tree.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable

import attrs
import trio

from marathon_core.deploy.planner import plan_deployment
from marathon_core.errors import AppLockedError, ForbiddenError, ValidationError, Violation
from marathon_core.events import EventBus
from marathon_core.model.app import AppDefinition, VersionInfo
from marathon_core.model.deployment import Deployment, GroupChange
from marathon_core.model.events import group_change_success
from marathon_core.model.group import AppChanges, Group, app_changes
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.ports import NoFreeServicePortError, assign_service_ports
from marathon_core.model.validation import validate_group, validate_group_change
from marathon_core.state.store import StateStore

__all__ = ["DeploymentRegistry", "GroupManager", "TooManyDeploymentsError"]

log = logging.getLogger(__name__)


class TooManyDeploymentsError(ForbiddenError):
    """403: ``--max_running_deployments`` deployments are running already."""


class DeploymentRegistry:
    """Deployments that are stored and not finished, in start order.

    The API reads it (``/v2/deployments``, conflicts) and the executor follows it:
    added deployments are started, removed ones are cancelled.
    """

    def __init__(self) -> None:
        self._deployments: dict[str, Deployment] = {}
        self._changed = trio.Event()

    def all(self) -> list[Deployment]:
        return list(self._deployments.values())

    def get(self, deployment_id: str) -> Deployment | None:
        return self._deployments.get(deployment_id)

    def for_app(self, app_id: PathId) -> list[Deployment]:
        return [d for d in self._deployments.values() if app_id in d.affected_app_ids()]

    def conflicting(self, app_ids: Collection[PathId]) -> list[Deployment]:
        """Running deployments that touch any of ``app_ids``."""
        wanted = frozenset(app_ids)
        return [d for d in self._deployments.values() if d.affected_app_ids() & wanted]

    def put(self, deployment: Deployment) -> None:
        """Add a deployment or record its progress."""
        self._deployments[deployment.id] = deployment
        self._notify()

    def remove(self, deployment_id: str) -> Deployment | None:
        removed = self._deployments.pop(deployment_id, None)
        if removed is not None:
            self._notify()
        return removed

    async def wait_changed(self) -> None:
        """Return after the next addition, progress or removal."""
        await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()


def _stamp(
    before: AppDefinition | None, after: AppDefinition, now: Timestamp, *, restart: bool
) -> AppDefinition:
    """Marathon's versioning: any change moves ``version`` and ``lastScalingAt``; a config
    change (or a forced restart) also moves ``lastConfigChangeAt``. Unchanged apps keep
    their version."""
    if before is after and not restart:
        return before
    if before is None or before.version_info is None or restart or before.is_upgrade(after):
        return attrs.evolve(after, version=now, version_info=VersionInfo(now, now))
    if before == attrs.evolve(after, version=before.version, version_info=before.version_info):
        return before
    info = VersionInfo(now, before.version_info.last_config_change_at)
    return attrs.evolve(after, version=now, version_info=info)


def _stamp_groups(group: Group, before: dict[PathId, Group], now: Timestamp) -> Group:
    """New or changed groups get version ``now``; the root always does (it changed)."""
    old = before.get(group.id)
    if old is group and not group.id.is_root:
        return group  # the same subtree: nothing in it changed
    groups = tuple(_stamp_groups(g, before, now) for g in group.groups)
    renewed = attrs.evolve(group, groups=groups, version=old.version if old else None)
    if group.id.is_root or old is None or renewed != old:
        renewed = attrs.evolve(renewed, version=now)
    return renewed


@attrs.frozen
class _RootFacts:
    """What the rules need from every app of ``root``, kept up to date per change."""

    #: The root these facts describe (and which passed validation).
    root: Group
    #: Service port -> how many apps use it (0 ports are left out).
    ports: dict[int, int]
    #: Apps that declare dependencies.
    depending: frozenset[PathId]

    @classmethod
    def of(cls, root: Group) -> _RootFacts:
        ports: dict[int, int] = {}
        for app in root.transitive_apps():
            for port in app.service_ports:
                if port:
                    ports[port] = ports.get(port, 0) + 1
        depending = frozenset(a.id for a in root.transitive_apps() if a.dependencies)
        return cls(root, ports, depending)

    def advance(self, root: Group, changes: AppChanges) -> _RootFacts:
        """The facts of ``root``, which ``changes`` made from this one's root."""
        ports = dict(self.ports)
        depending = set(self.depending)
        for old in (*changes.previous.values(), *changes.removed.values()):
            depending.discard(old.id)
            for port in old.service_ports:
                if port:
                    left = ports[port] - 1
                    if left:
                        ports[port] = left
                    else:
                        del ports[port]
        for new in changes.changed.values():
            if new.dependencies:
                depending.add(new.id)
            for port in new.service_ports:
                if port:
                    ports[port] = ports.get(port, 0) + 1
        return _RootFacts(root, ports, frozenset(depending))

    def has_dependencies(self) -> bool:
        """Whether any app or group of the root declares dependencies."""
        return bool(self.depending) or any(g.dependencies for g in self.root.transitive_groups())


class GroupManager:
    """Applies changes to the root group and creates their deployments."""

    def __init__(
        self,
        state: StateStore,
        registry: DeploymentRegistry,
        events: EventBus,
        *,
        max_running_deployments: int = 100,
        service_port_range: tuple[int, int] = (10000, 20000),
    ) -> None:
        self._state = state
        self._registry = registry
        self._events = events
        self._max_running = max_running_deployments
        self._port_range = service_port_range
        self._lock = trio.Lock()
        self._root: Group | None = None
        #: Facts of the current root once a change has validated it (see the module doc).
        self._facts: _RootFacts | None = None

    async def root(self) -> Group:
        """The current root group (empty before the first change).

        Kept in memory: this manager is the only writer, and loading the root means
        decoding every app.
        """
        if self._root is None:
            self._root = await self._state.root_group() or Group.empty_root()
        return self._root

    async def root_at(self, version: Timestamp | None) -> Group:
        """The root group at ``version`` (the empty root for None); the current one from
        memory, older ones from state."""
        current = await self.root()
        if version is None:
            return Group.empty_root()
        if current.version == version:
            return current
        return await self._state.root_group(version) or Group.empty_root()

    def forget_root(self) -> None:
        """Reload the root from state on next use (another process may have written it)."""
        self._root = None

    async def update_root(
        self,
        change: Callable[[Group], Group],
        *,
        force: bool = False,
        restart: Iterable[PathId] = (),
        dry_run: bool = False,
    ) -> GroupChange:
        """Apply ``change`` to the root group and deploy the result.

        :param change: builds the new root from the current one; may raise UserError.
        :param force: cancel running deployments that touch the same apps instead of
            answering 409.
        :param restart: apps to restart even when their config is unchanged.
        :param dry_run: plan only; nothing is stored or started.
        """
        async with self._lock:
            current = await self.root()
            # Versions name stored roots and app versions: two changes within one
            # millisecond must not share one (the second would overwrite the first).
            now = Timestamp.now()
            if current.version is not None and now <= current.version:
                now = Timestamp(current.version.millis + 1)
            restarted = frozenset(restart)
            proposed = change(current)
            if self._facts is not None and self._facts.root is current:
                target, facts = self._prepare(current, proposed, now, restarted)
            else:  # the first change after a load checks the whole tree: off the event loop
                target, facts = await trio.to_thread.run_sync(
                    self._prepare, current, proposed, now, restarted
                )
            changes = app_changes(current, target)
            deployment = plan_deployment(
                current,
                target,
                version=now,
                restart=restarted,
                changes=changes,
                has_dependencies=facts.has_dependencies(),
            )
            if dry_run:
                return GroupChange(target, deployment)
            cancelled = await self._make_room(deployment, force=force)
            await self._state.store_root_and_deployment(
                target,
                deployment,
                apps_changed=list(changes.changed.values()),
                apps_deleted=list(changes.removed),
            )
            self._root = target
            self._facts = facts
            self._registry.put(deployment)
        for gone in cancelled:
            log.info("deployment %s cancelled by %s (force)", gone.id, deployment.id)
        self._events.publish(group_change_success(target.id, now))
        return GroupChange(target, deployment)

    def _prepare(
        self, current: Group, target: Group, now: Timestamp, restart: frozenset[PathId]
    ) -> tuple[Group, _RootFacts]:
        """Validate ``target``, stamp versions and assign service ports.

        Returns the stamped root and its facts.
        """
        changes = app_changes(current, target)
        facts = self._facts
        if facts is not None and facts.root is current:
            facts = facts.advance(target, changes)
            violations = validate_group_change(
                target, changes, has_dependencies=facts.has_dependencies()
            )
        else:
            facts = _RootFacts.of(target)
            violations = validate_group(target)
        if violations:
            raise ValidationError(violations)
        used = set(facts.ports)
        stamped = _stamp_groups(target, {g.id: g for g in current.transitive_groups()}, now)
        # Only changed and restarted apps can get a new version (others keep theirs).
        restamp = dict(changes.changed)
        for app_id in sorted(restart - restamp.keys()):
            app = target.find_app(app_id)
            if app is not None:
                restamp[app_id] = app
        for app in restamp.values():
            before = changes.previous.get(app.id)
            if before is None and app.id not in changes.changed:
                before = app  # restarted, unchanged
            new = _stamp(before, app, now, restart=app.id in restart)
            if new is not before:
                try:
                    new = assign_service_ports(new, used, port_range=self._port_range)
                except NoFreeServicePortError as exc:
                    raise ValidationError([Violation("/", str(exc))]) from None
                used.update(p for p in new.service_ports if p)
            if new is not app:
                stamped = stamped.update_app(new)
        return stamped, facts.advance(stamped, app_changes(target, stamped))

    async def _make_room(self, deployment: Deployment, *, force: bool) -> list[Deployment]:
        """Answer 409 for conflicting deployments (cancel them with ``force``) and 403 at
        the running-deployments limit; returns the cancelled deployments.

        The limit counts the deployments that stay, and is checked before anything is
        cancelled: a refused forced update must leave the running deployments alone.
        """
        conflicts = self._registry.conflicting(deployment.affected_app_ids())
        if conflicts and not force:
            raise AppLockedError(d.id for d in conflicts)
        if len(self._registry.all()) - len(conflicts) >= self._max_running:
            raise TooManyDeploymentsError(
                f"Max number ({self._max_running}) of running deployments is achieved. "
                "Wait for existing deployments to complete or cancel one of them."
            )
        for old in conflicts:
            await self._state.complete_deployment(old.id)
            self._registry.remove(old.id)
        return conflicts
