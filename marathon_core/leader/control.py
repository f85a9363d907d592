"""The leader's live view and control surface, as services see it
(:class:`~marathon_core.contracts.services.LeaderView`).

One place decides how instances are killed, decommissioned and scaled down from the
API, so the REST plugin (and any other frontend) never reaches into the scheduler or
the instance tracker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from marathon_core.contracts.queue import QueueEntry
from marathon_core.deploy.executor import DeploymentExecutor
from marathon_core.deploy.manager import DeploymentRegistry, GroupManager
from marathon_core.deploy.status import deployment_status
from marathon_core.errors import AppLockedError, NotFoundError
from marathon_core.leader.health import HealthMonitor
from marathon_core.leader.readiness import ReadinessMonitor, ReadinessResult
from marathon_core.model.deployment import GroupChange
from marathon_core.model.group import Group
from marathon_core.model.health import Health
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import Instance, InstanceId
from marathon_core.scheduler.scheduler import Scheduler
from marathon_core.scheduler.tracker import InstanceTracker

__all__ = ["LeaderControl", "kill_and_scale"]


@attrs.frozen
class LeaderControl:
    """What services may see and do while this process leads."""

    tracker: InstanceTracker
    scheduler: Scheduler
    health: HealthMonitor
    groups: GroupManager
    registry: DeploymentRegistry
    readiness: ReadinessMonitor
    executor: DeploymentExecutor

    def instances_of(self, app_id: PathId) -> Sequence[Instance]:
        return self.tracker.instances_of(app_id)

    def all_instances(self) -> Sequence[Instance]:
        return self.tracker.all_instances()

    def instances_generation(self, app_id: PathId) -> int:
        return self.tracker.generation(app_id)

    def queue(self) -> Sequence[QueueEntry]:
        return self.scheduler.queue()

    def queue_entry(self, app_id: PathId) -> QueueEntry | None:
        return self.scheduler.queue_entry(app_id)

    def reset_delay(self, app_id: PathId) -> bool:
        return self.scheduler.reset_delay(app_id)

    def last_task_failure(self, app_id: PathId) -> dict[str, Any] | None:
        return self.scheduler.last_task_failure(app_id)

    def readiness_results(self, app_id: PathId) -> list[dict[str, Any]]:
        return self.readiness.results_json(app_id)

    async def deployment_status(self, deployment_id: str) -> dict[str, dict[str, Any]] | None:
        deployment = self.registry.get(deployment_id)
        if deployment is None:
            return None
        target = await self.groups.root_at(deployment.target_version)
        progress = self.executor.progress(deployment_id)
        return deployment_status(deployment, progress, _Sources(self), target, now=Timestamp.now())

    async def kill(self, instances: Sequence[Instance], *, wipe: bool = False) -> None:
        if wipe:
            await self.tracker.decommission(i.instance_id for i in instances)
        else:
            await self.scheduler.kill_instances(instances)

    async def kill_and_scale(
        self, instances: Mapping[PathId, Sequence[Instance]], *, force: bool = False
    ) -> GroupChange:
        return await kill_and_scale(
            self.tracker, self.groups, self.registry, instances, force=force
        )


@attrs.frozen
class _Sources:
    """What the deployment status reads, from the leader's components."""

    control: LeaderControl

    def get(self, instance_id: InstanceId) -> Instance | None:
        return self.control.tracker.get(instance_id)

    def queue_entry(self, app_id: PathId) -> QueueEntry | None:
        return self.control.scheduler.queue_entry(app_id)

    def last_task_failure(self, app_id: PathId) -> dict[str, Any] | None:
        return self.control.scheduler.last_task_failure(app_id)

    def health_of(self, instance: Instance) -> tuple[Health, ...] | None:
        return self.control.health.health_of(instance)

    def readiness_results(self, app_id: PathId) -> list[ReadinessResult]:
        return self.control.readiness.results(app_id)


async def kill_and_scale(
    tracker: InstanceTracker,
    groups: GroupManager,
    registry: DeploymentRegistry,
    instances: Mapping[PathId, Sequence[Instance]],
    *,
    force: bool,
) -> GroupChange:
    """Decommission exactly ``instances`` and lower each app's ``instances`` by as many,
    in one deployment; nothing happens if an app is locked (without ``force``) or gone."""
    locks = registry.conflicting(list(instances))
    if locks and not force:
        raise AppLockedError(d.id for d in locks)
    root = await groups.root()
    for app_id in instances:  # before anything is decommissioned: all or nothing
        if root.find_app(app_id) is None:
            raise NotFoundError(f"App '{app_id}' does not exist")
    await tracker.decommission(i.instance_id for chosen in instances.values() for i in chosen)

    def scale_down(root: Group) -> Group:
        for app_id, chosen in instances.items():
            app = root.find_app(app_id)
            if app is None:
                raise NotFoundError(f"App '{app_id}' does not exist")
            root = root.update_app(attrs.evolve(app, instances=max(0, app.instances - len(chosen))))
        return root

    return await groups.update_root(scale_down, force=True)
