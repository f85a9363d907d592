"""A real :class:`~marathon_core.contracts.services.ServiceContext` over in-memory state,
for the tests of services (API frontends) that do not need a Mesos master.

The context is the core's own (the one writer of groups, the deployment registry,
the event bus); only the state is in memory and no leadership term runs. A test that
needs the leader's live view attaches a :class:`ManualLeader` and sets instances by
hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from marathon_core.config import parse_config
from marathon_core.context import CoreContext
from marathon_core.contracts.queue import QueueEntry
from marathon_core.deploy.status import deployment_status
from marathon_core.election import LeaderElection, SoloElection
from marathon_core.leader.control import kill_and_scale
from marathon_core.leader.health import HealthMonitor
from marathon_core.leader.readiness import ReadinessResult
from marathon_core.model.deployment import GroupChange
from marathon_core.model.health import Health
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import Instance, InstanceId
from marathon_core.plugins import get_plugin_host
from marathon_core.scheduler.tracker import Changes, InstanceTracker
from marathon_core.service import validation_context
from marathon_core.state.memory import MemoryStorage
from marathon_core.state.store import StateStore

__all__ = ["CoreContext", "ManualLeader", "StandbyElection", "memory_context"]


class StandbyElection(SoloElection):
    """An election this process lost to ``leader`` (``host:port``): it is a standby,
    forwarding API requests there, without a ZooKeeper."""

    def __init__(self, leader: str) -> None:
        super().__init__("standby")
        self._set(leader_id=leader, is_leader=False)


async def memory_context(
    args: Sequence[str],
    *,
    plugins: Mapping[str, object],
    election: LeaderElection | None = None,
) -> CoreContext:
    """A context for ``args`` (``marathon`` flags) with only ``plugins`` registered.

    ``election`` defaults to a solo election that has not run yet: nobody leads until
    a test runs it (``await nursery.start(ctx.election.run, term)``).
    """
    host = get_plugin_host(load_entrypoints=False, extra=dict(plugins))
    config = parse_config(list(args), addoption_hook=host.addoption, environ={})
    return CoreContext(
        config=config,
        plugins=host,
        master_url="http://127.0.0.1:5050",
        state=await StateStore.open(MemoryStorage()),
        validation=validation_context(config, host),
        election=election or SoloElection(f"{config.hostname}:{config.http_port}"),
    )


class _NoSources:
    """A leader that knows of no queue, failure, health or readiness."""

    def get(self, instance_id: InstanceId) -> Instance | None:
        return None

    def queue_entry(self, app_id: PathId) -> QueueEntry | None:
        return None

    def last_task_failure(self, app_id: PathId) -> dict[str, Any] | None:
        return None

    def health_of(self, instance: Instance) -> tuple[Health, ...] | None:
        return None

    def readiness_results(self, app_id: PathId) -> list[ReadinessResult]:
        return []


@attrs.define
class ManualLeader:
    """The leader's live view with instances a test sets (no scheduler, no Mesos).

    The instance tracker, the health monitor and the one writer are the core's own;
    the queue is empty, and a kill without ``wipe`` is only recorded in
    :attr:`killed`, since no scheduler would carry it out.
    """

    ctx: CoreContext
    tracker: InstanceTracker
    health: HealthMonitor
    #: The instances a kill without ``wipe`` was asked for, in order.
    killed: list[Instance] = attrs.field(factory=list)

    @classmethod
    def attach(cls, ctx: CoreContext) -> ManualLeader:
        """A fresh live view with no instances, published as ``ctx.leader`` (as a new
        term would publish its own)."""
        return cls._publish(ctx, InstanceTracker(ctx.state, ctx.events))

    @classmethod
    async def load(cls, ctx: CoreContext) -> ManualLeader:
        """A live view of the stored instances, published as ``ctx.leader``."""
        return cls._publish(ctx, await InstanceTracker.load(ctx.state, ctx.events))

    @classmethod
    def _publish(cls, ctx: CoreContext, tracker: InstanceTracker) -> ManualLeader:
        async def refuse(instances: Sequence[Instance]) -> None:
            raise AssertionError("no health checks run here")

        leader = cls(ctx, tracker, HealthMonitor(tracker, ctx.events, {}, kill=refuse))
        ctx.leader = leader
        return leader

    async def put(self, *instances: Instance) -> None:
        await self.tracker.apply(lambda: Changes(put=instances))

    async def expunge(self, *instance_ids: InstanceId) -> None:
        await self.tracker.apply(lambda: Changes(expunge=instance_ids))

    def instances_of(self, app_id: PathId) -> Sequence[Instance]:
        return self.tracker.instances_of(app_id)

    def all_instances(self) -> Sequence[Instance]:
        return self.tracker.all_instances()

    def instances_generation(self, app_id: PathId) -> int:
        return self.tracker.generation(app_id)

    def queue(self) -> Sequence[QueueEntry]:
        return ()

    def queue_entry(self, app_id: PathId) -> QueueEntry | None:
        return None

    def reset_delay(self, app_id: PathId) -> bool:
        return False

    def last_task_failure(self, app_id: PathId) -> dict[str, Any] | None:
        return None

    def readiness_results(self, app_id: PathId) -> list[dict[str, Any]]:
        return []

    async def deployment_status(self, deployment_id: str) -> dict[str, dict[str, Any]] | None:
        """Without an executor nothing has progressed: every app is starting or pending."""
        deployment = self.ctx.registry.get(deployment_id)
        if deployment is None:
            return None
        target = await self.ctx.groups.root_at(deployment.target_version)
        return deployment_status(deployment, {}, _NoSources(), target, now=Timestamp.now())

    async def kill(self, instances: Sequence[Instance], *, wipe: bool = False) -> None:
        if wipe:
            await self.tracker.decommission(i.instance_id for i in instances)
        else:
            self.killed.extend(instances)

    async def kill_and_scale(
        self, instances: Mapping[PathId, Sequence[Instance]], *, force: bool = False
    ) -> GroupChange:
        ctx = self.ctx
        return await kill_and_scale(self.tracker, ctx.groups, ctx.registry, instances, force=force)
