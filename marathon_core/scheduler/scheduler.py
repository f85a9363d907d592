"""The scheduler: turns Mesos events and timers into instance changes and Mesos calls.

This module wires the parts and runs their loops; each concern has its own module:

* :mod:`~marathon_core.scheduler.status` -- status updates, acknowledgements,
  ``lastTaskFailure``;
* :mod:`~marathon_core.scheduler.launcher` -- offers, matching, launches;
* :mod:`~marathon_core.scheduler.demand` -- SUPPRESS and REVIVE;
* :mod:`~marathon_core.scheduler.kills` -- KILLs and their retries;
* :mod:`~marathon_core.scheduler.timers` -- launch timeouts, kill retries, the
  unreachable strategy;
* :mod:`~marathon_core.scheduler.reconcile` -- reconciliation;
* :mod:`~marathon_core.scheduler.scale` -- the scale check;
* :mod:`~marathon_core.scheduler.launch_queue` -- the ``/v2/queue`` view;
* :mod:`~marathon_core.scheduler.outbox` -- how all of them send Mesos calls.

One task consumes the events of the subscription in batches (every UPDATE of a
batch is stored in one write, then acknowledged; the OFFERS of a batch are matched
in one round). Reconciliation runs after every (re)subscription.

Never past ``instances``: the only thing launched is a Scheduled instance, and an
instance is launched once per incarnation (it is Provisioned from the moment its
launch is decided), so the number of tasks in flight is always the number of
instances that exist -- which the deployment executor and the scale check keep
equal to the app's ``instances``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import trio

from marathon_core.config import Config
from marathon_core.contracts.placement import ConstraintOperator, Placed
from marathon_core.contracts.queue import QueueEntry
from marathon_core.contracts.runtimes import ContainerRuntime
from marathon_core.events import EventBus
from marathon_core.mesos import calls
from marathon_core.mesos.events import (
    Disconnected,
    Error,
    Failure,
    MesosEvent,
    Offer,
    Offers,
    Rescind,
    Subscribed,
    TaskStatus,
    Update,
)
from marathon_core.model.app import AppDefinition
from marathon_core.model.events import (
    scheduler_disconnected_event,
    scheduler_registered_event,
    scheduler_reregistered_event,
)
from marathon_core.model.ids import PathId
from marathon_core.model.instance import Instance
from marathon_core.scheduler.backoff import LaunchDelays
from marathon_core.scheduler.demand import OfferDemand
from marathon_core.scheduler.kills import Kills
from marathon_core.scheduler.launch_queue import LaunchQueue
from marathon_core.scheduler.launcher import Launcher, PrepareTask
from marathon_core.scheduler.outbox import Background, MesosCaller, Outbox
from marathon_core.scheduler.reconcile import Reconciler
from marathon_core.scheduler.scale import AppLoader, IsLocked, ScaleCheck, never_locked
from marathon_core.scheduler.status import StatusUpdates
from marathon_core.scheduler.timers import Timers
from marathon_core.scheduler.tracker import InstanceTracker

__all__ = ["Scheduler", "SchedulerOptions", "SchedulerStatistics"]

log = logging.getLogger(__name__)

Json = dict[str, Any]

#: Marathon's ``kill_retry_timeout``: re-send a KILL not confirmed in this time.
KILL_RETRY_SECONDS = 30.0
#: Events handled as one batch at most (one state write per batch).
MAX_BATCH = 5000


@attrs.frozen(kw_only=True)
class SchedulerOptions:
    """Timings and limits (seconds), from Marathon's flags."""

    decline_offer_duration: float = 120.0
    min_revive_offers_interval: float = 5.0
    max_instances_per_offer: int = 5
    task_launch_timeout: float = 300.0
    reconciliation_interval: float = 600.0
    scale_apps_initial_delay: float = 15.0
    scale_apps_interval: float = 300.0
    kill_retry: float = KILL_RETRY_SECONDS
    #: How often timers (launch timeout, unreachable strategy, kill retries) are checked.
    timer_interval: float = 1.0
    env_vars_prefix: str | None = None
    #: The user of tasks whose app names none (``--mesos_user``, see
    #: :func:`~marathon_core.mesos.calls.default_task_user`).
    mesos_user: str | None = None
    roles: tuple[str, ...] = ("*",)

    @classmethod
    def from_config(cls, config: Config, **overrides: Any) -> SchedulerOptions:
        values: dict[str, Any] = {
            "decline_offer_duration": config.decline_offer_duration / 1000,
            "min_revive_offers_interval": config.min_revive_offers_interval / 1000,
            "max_instances_per_offer": config.max_instances_per_offer,
            "task_launch_timeout": config.task_launch_timeout / 1000,
            "reconciliation_interval": config.reconciliation_interval / 1000,
            "scale_apps_initial_delay": config.scale_apps_initial_delay / 1000,
            "scale_apps_interval": config.scale_apps_interval / 1000,
            "env_vars_prefix": config.env_vars_prefix,
            "mesos_user": calls.default_task_user(config),
            "roles": (config.mesos_role,),
        }
        values.update(overrides)
        return cls(**values)


@attrs.frozen
class SchedulerStatistics:
    offers_received: int
    offers_declined: int
    tasks_launched: int
    updates: int
    kills: int
    revives: int
    suppresses: int
    reconciliations: int


class Scheduler:
    """Launches, watches, kills and reconciles the tasks of all instances.

    :param is_locked: True while a deployment owns the app; the scale check and the
        trim after a return leave such apps alone.
    """

    def __init__(
        self,
        *,
        tracker: InstanceTracker,
        mesos: MesosCaller,
        events: EventBus,
        operators: Mapping[str, ConstraintOperator],
        options: SchedulerOptions = SchedulerOptions(),
        runtimes: Mapping[str, ContainerRuntime] | None = None,
        prepare_task: PrepareTask | None = None,
        load_apps: AppLoader | None = None,
        is_locked: IsLocked = never_locked,
        rng: random.Random | None = None,
    ) -> None:
        self.tracker = tracker
        self._events = events
        self._subscriptions = 0
        self._background = Background()
        outbox = Outbox(mesos, self._background)
        delays = LaunchDelays()
        self._kills = Kills(tracker, outbox)
        self._demand = OfferDemand(
            tracker,
            delays,
            outbox,
            roles=options.roles,
            min_revive_interval=options.min_revive_offers_interval,
        )
        self._launcher = Launcher(
            tracker,
            delays,
            outbox,
            operators=operators,
            runtimes=runtimes or {},
            prepare_task=prepare_task,
            rng=rng or random.Random(),
            max_instances_per_offer=options.max_instances_per_offer,
            decline_offer_duration=options.decline_offer_duration,
            env_vars_prefix=options.env_vars_prefix,
            default_user=options.mesos_user,
            on_queue_empty=self._demand.changed,
        )
        self._status = StatusUpdates(tracker, events, delays, self._kills, outbox)
        self._timers = Timers(
            tracker,
            self._kills,
            task_launch_timeout=options.task_launch_timeout,
            kill_retry=options.kill_retry,
            interval=options.timer_interval,
        )
        self._reconciler = Reconciler(tracker, outbox, interval=options.reconciliation_interval)
        self._scale = ScaleCheck(
            tracker,
            is_locked=is_locked,
            load_apps=load_apps,
            initial_delay=options.scale_apps_initial_delay,
            interval=options.scale_apps_interval,
        )
        self._queue = LaunchQueue(
            tracker,
            delays,
            offer_stats=self._launcher.offer_stats,
            launchable=self._launcher.launchable,
            work_arrived=self._demand.work_arrived,
        )
        tracker.on_scheduled = self._demand.work_arrived
        tracker.on_decommissioned = self._kills.kill_instances

    # -- running -----------------------------------------------------------------------

    async def run(
        self,
        events: trio.MemoryReceiveChannel[MesosEvent],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Consume Mesos events and run the timers until cancelled."""
        async with trio.open_nursery() as nursery:
            self._background.attach(nursery)
            nursery.start_soon(self._timers.run)
            nursery.start_soon(self._demand.run)
            nursery.start_soon(self._reconciler.run)
            nursery.start_soon(self._scale.run)
            task_status.started()
            async for event in events:
                batch = [event]
                while len(batch) < MAX_BATCH:
                    try:
                        batch.append(events.receive_nowait())
                    except trio.WouldBlock:
                        break
                await self.handle_events(batch)
            nursery.cancel_scope.cancel()

    async def handle_events(self, batch: Sequence[MesosEvent]) -> None:
        """Handle a batch of events in order; UPDATEs and OFFERS are grouped."""
        statuses: list[TaskStatus] = []
        offers: list[Offer] = []
        for event in batch:
            if isinstance(event, Update):
                statuses.append(event.status)
            elif isinstance(event, Offers):
                offers.extend(event.offers)
            elif isinstance(event, Rescind):
                offers = [o for o in offers if o.id != event.offer_id]
            elif isinstance(event, Subscribed):
                offers.clear()  # offers of an earlier subscription are void
                await self._handle_statuses(statuses)
                statuses = []
                self._subscribed(event)
            elif isinstance(event, Disconnected):
                offers.clear()
                self._demand.disconnected()
                self._events.publish(scheduler_disconnected_event())
            elif isinstance(event, Failure):
                log.info("Mesos reports a failure: %s", event)
                if event.executor_id is None and event.agent_id is not None:
                    self._background.start_soon(self.reconcile_agent, event.agent_id)
            elif isinstance(event, Error):  # the client raises on these; kept for direct callers
                log.error("Mesos error: %s", event.message)
        if statuses:
            await self._handle_statuses(statuses)
        if offers:
            await self._launcher.handle_offers(offers)

    async def _handle_statuses(self, statuses: Sequence[TaskStatus]) -> None:
        for app_id in await self._status.handle(statuses):
            self._background.start_soon(self.trim_surplus, app_id)

    def _subscribed(self, subscribed: Subscribed) -> None:
        self._subscriptions += 1
        master = subscribed.master_hostname
        if self._subscriptions == 1:
            self._events.publish(scheduler_registered_event(subscribed.framework_id, master))
        else:
            self._events.publish(scheduler_reregistered_event(master))
        self._demand.subscribed()
        self._background.start_soon(self.reconcile)

    # -- what the leader's other components call ---------------------------------------

    def last_task_failure(self, app_id: PathId) -> Json | None:
        """Marathon's ``lastTaskFailure`` of ``app_id``, stored across leaders."""
        return self._status.last_task_failure(app_id)

    async def restore_task_failures(self) -> None:
        """Load the last task failures the previous leaders stored."""
        await self._status.restore()

    def placed(self, app: AppDefinition) -> dict[str, Placed]:
        """Per constraint field, where the app's current-config instances are."""
        return self._launcher.placed(app)

    async def kill_instances(self, instances: Sequence[Instance]) -> None:
        """KILL the current task of each instance, with its app's kill grace period."""
        await self._kills.kill_instances(instances)

    async def trim_surplus(self, app_id: PathId) -> None:
        """Kill instances beyond ``instances``, unless a deployment owns the app."""
        await self._scale.trim_surplus(app_id)

    async def check_timers(self) -> None:
        """Launch timeouts, the unreachable strategy and kill retries."""
        await self._timers.check()

    async def reconcile(self) -> None:
        """Explicit reconciliation of every known task, then implicit."""
        await self._reconciler.reconcile()

    async def reconcile_agent(self, agent_id: str) -> None:
        """Explicit reconciliation of our tasks on an agent Mesos reports as failed."""
        await self._reconciler.reconcile_agent(agent_id)

    async def scale_check(self, apps: Iterable[AppDefinition] | None = None) -> None:
        """Schedule missing and decommission surplus instances of apps no deployment owns."""
        await self._scale.check(apps)

    def queue(self) -> list[QueueEntry]:
        """Every app with instances waiting for launch."""
        return self._queue.entries()

    def queue_entry(self, app_id: PathId) -> QueueEntry | None:
        """The launch-queue view of one app, or None when nothing of it waits."""
        return self._queue.entry(app_id)

    def reset_delay(self, app_id: PathId) -> bool:
        """``DELETE /v2/queue/{id}/delay``: launch again at once. False if nothing waits."""
        return self._queue.reset_delay(app_id)

    def statistics(self) -> SchedulerStatistics:
        return SchedulerStatistics(
            offers_received=self._launcher.offers_received,
            offers_declined=self._launcher.offers_declined,
            tasks_launched=self._launcher.tasks_launched,
            updates=self._status.count,
            kills=self._kills.count,
            revives=self._demand.revives,
            suppresses=self._demand.suppresses,
            reconciliations=self._reconciler.count,
        )
