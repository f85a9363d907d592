"""Everything that runs only while this process leads: Mesos, the scheduler, health checks.

:func:`lead` opens one nursery for the leadership-scoped work -- the Mesos
subscription, the scheduler's event consumer and timers -- and reports a
:class:`LeaderState` as soon as the tracker is loaded: scheduling works without a
Mesos connection (instances wait in the queue), so a master that is down delays
launches, not the leader's API. ``LeaderState.mesos.wait_subscribed()`` waits for it.
Losing leadership means cancelling ``lead``: the subscription closes, every loop
stops, and nothing else needs to notice (design: "one service tree").

Resource handling: the Mesos HTTP client is opened and closed inside ``lead``.
Error handling: a framework-level refusal from Mesos (``SubscriptionError``)
propagates and ends leadership, as Marathon exits in that case.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import attrs
import trio

from marathon_core.context import CoreContext
from marathon_core.deploy.executor import DeploymentExecutor
from marathon_core.errors import FencedWriteError, StorageUnavailableError
from marathon_core.heap import settle_heap
from marathon_core.leader.control import LeaderControl
from marathon_core.leader.health import HealthMonitor
from marathon_core.leader.health_kills import KillRate
from marathon_core.leader.readiness import ReadinessMonitor
from marathon_core.mesos import calls
from marathon_core.mesos.authentication import mesos_credentials
from marathon_core.mesos.client import MesosClient
from marathon_core.mesos.detector import detect_master
from marathon_core.mesos.events import MesosEvent
from marathon_core.model.app import AppDefinition
from marathon_core.model.instance import Instance
from marathon_core.scheduler.scheduler import Scheduler, SchedulerOptions
from marathon_core.scheduler.tracker import InstanceTracker

__all__ = ["LeaderState", "lead", "leadership_term"]

log = logging.getLogger(__name__)

#: Mesos events buffered between the subscription and the scheduler.
EVENT_BUFFER = 10_000
#: Seconds a leader whose state store failed waits before it contends again.
STEP_DOWN_PAUSE = 1.0


@attrs.frozen
class LeaderState:
    """What the leader's other components use: the tracker (deployments), the scheduler
    (``/v2/queue``, delays) and the Mesos client (statistics)."""

    tracker: InstanceTracker
    scheduler: Scheduler
    mesos: MesosClient
    #: Health of tasks under Marathon-side checks.
    health: HealthMonitor
    #: Readiness of new tasks of deploying apps.
    readiness: ReadinessMonitor


async def lead(
    ctx: CoreContext,
    *,
    options: SchedulerOptions | None = None,
    task_status: trio.TaskStatus[LeaderState] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the leader's work until cancelled; ready once the instances are loaded."""
    config = ctx.config
    tracker = await InstanceTracker.load(ctx.state, ctx.events)
    stored_id = await ctx.state.framework_id.get()
    if stored_id is None and tracker.all_instances():
        # Marathon refuses to start here (exit 108): registering anew would orphan them.
        log.error(
            "no framework id is stored but %d instances are: they will be lost to a new "
            "framework registration",
            len(tracker.all_instances()),
        )
    send, receive = trio.open_memory_channel[MesosEvent](EVENT_BUFFER)

    async def load_apps() -> Sequence[AppDefinition]:
        return list((await ctx.groups.root()).transitive_apps())  # kept in memory

    def prepare_task(app: AppDefinition, instance: Instance, task_info: dict[str, Any]) -> None:
        ctx.plugins.prepare_task(app, instance, task_info)

    client = MesosClient(
        ctx.master_url,
        # Every subscription starts from --master again (zk://: the current leader).
        find_master=lambda: detect_master(ctx.master_url),
        framework_info=lambda fid: calls.framework_info(config, framework_id=fid),
        load_framework_id=ctx.state.framework_id.get,
        store_framework_id=ctx.state.framework_id.set,
        events=send,
        heartbeat_interval=config.mesos_heartbeat_interval / 1000,
        heartbeat_failure_threshold=config.mesos_heartbeat_failure_threshold,
        credentials=mesos_credentials(config),
    )
    scheduler = Scheduler(
        tracker=tracker,
        mesos=client,
        events=ctx.events,
        operators=ctx.validation.constraint_operators,
        options=options or SchedulerOptions.from_config(config),
        runtimes=ctx.validation.container_runtimes,
        prepare_task=prepare_task,
        load_apps=load_apps,
        # The scale check leaves apps alone while a deployment owns them.
        is_locked=lambda app_id: bool(ctx.registry.for_app(app_id)),
    )
    health = HealthMonitor(
        tracker,
        ctx.events,
        ctx.validation.health_check_protocols,
        kill=scheduler.kill_instances,
        max_concurrent=config.max_concurrent_marathon_health_checks,
        kill_rate=KillRate(
            per_app_fraction=config.health_kill_fraction_per_app,
            total=config.health_kill_tokens,
            interval=config.health_kill_token_refresh_interval / 1000,
        ),
    )
    await scheduler.restore_task_failures()
    readiness = ReadinessMonitor(tracker)
    async with trio.open_nursery() as nursery:
        await nursery.start(scheduler.run, receive)
        nursery.start_soon(client.run)
        await nursery.start(health.run)
        await nursery.start(readiness.run)
        log.info("leading: %d instance(s) loaded", len(tracker.all_instances()))
        task_status.started(
            LeaderState(
                tracker=tracker,
                scheduler=scheduler,
                mesos=client,
                health=health,
                readiness=readiness,
            )
        )


async def leadership_term(ctx: CoreContext) -> None:
    """One term as leader: state as the last leader left it, the scheduler (published as
    ``ctx.leader``) and the deployment executor, all cancelled together when it ends.

    A state store that fails during the term (ZooKeeper unreachable, a fenced write)
    ends the term, not the process: the election then steps down and contends again.
    """
    try:
        await _lead_term(ctx)
    except* (StorageUnavailableError, FencedWriteError) as failed:
        log.warning("leadership ends: the state store failed: %s", failed.exceptions[0])
    await trio.sleep(STEP_DOWN_PAUSE)  # returning abdicates; do not contend in a tight loop


async def _lead_term(ctx: CoreContext) -> None:
    await ctx.state.storage.sync()  # the last leader's final writes, before reading anything
    ctx.groups.forget_root()
    stored = {d.id: d for d in await ctx.state.deployments.all()}
    for deployment in ctx.registry.all():
        if deployment.id not in stored:
            ctx.registry.remove(deployment.id)
    for deployment in stored.values():
        ctx.registry.put(deployment)
    try:
        async with trio.open_nursery() as nursery:
            leader: LeaderState = await nursery.start(lead, ctx)
            ctx.mesos = leader.mesos
            settle_heap()
            executor = DeploymentExecutor(
                ctx.state,
                ctx.registry,
                ctx.events,
                leader.tracker,
                root_at=ctx.groups.root_at,
                health=leader.health,
                readiness=leader.readiness,
            )
            await nursery.start(executor.run)
            ctx.leader = LeaderControl(
                tracker=leader.tracker,
                scheduler=leader.scheduler,
                health=leader.health,
                groups=ctx.groups,
                registry=ctx.registry,
                readiness=leader.readiness,
                executor=executor,
            )
    finally:
        ctx.leader = None
        ctx.mesos = None
