"""Offers in, launches out: matching waiting instances to offers, write state, then ACCEPT.

The launch queue is the tracker's Scheduled instances whose app is not in backoff.
Each round places them into the offers of a batch (apps take turns, up to
``max_instances_per_offer`` per offer), stores every placed instance as Provisioned
in one write, and only then sends ACCEPT -- so a crash in between leaves a stored
launch for reconciliation to resolve, never an untracked task. An instance is
launched only while it is still Scheduled with goal Running when the write happens,
which is what keeps the tasks in flight at most the instances that exist. Unused
offers are declined; the outcome of every match is kept for ``/v2/queue``.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import trio

from marathon_core.contracts.placement import ConstraintOperator, OfferView, Placed
from marathon_core.contracts.runtimes import ContainerRuntime
from marathon_core.mesos import calls
from marathon_core.mesos.events import Offer
from marathon_core.model.app import AppDefinition
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import (
    AgentInfo,
    Condition,
    Goal,
    Instance,
    InstanceId,
    Task,
    TaskId,
)
from marathon_core.model.validation import RUNTIME_DISTRIBUTIONS
from marathon_core.scheduler.backoff import LaunchDelays
from marathon_core.scheduler.offer_stats import OfferStats
from marathon_core.scheduler.offers import Match, OfferPool, Rejection, match
from marathon_core.scheduler.outbox import Outbox
from marathon_core.scheduler.taskinfo import build_task_info
from marathon_core.scheduler.tracker import Changes, InstanceTracker

__all__ = ["Launcher", "PrepareTask", "agent_view"]

Json = dict[str, Any]

#: No instance's ``run_spec_version``: the start of an app's first run of one version.
_NO_RUN = object()

#: The ``marathon_prepare_task`` hook: adjusts a TaskInfo before it is sent.
PrepareTask = Callable[[AppDefinition, Instance, Json], None]


def agent_view(agent: AgentInfo) -> OfferView:
    """The placement view of an instance's agent (as the offer it was launched from)."""
    return OfferView(
        hostname=agent.host,
        agent_id=agent.agent_id or "",
        attributes=agent.attributes,
        region=agent.region,
        zone=agent.zone,
    )


class Launcher:
    """Matches offers to waiting instances and launches them; see the module docstring.

    ``on_queue_empty`` is called after a round that left nothing waiting (offers can
    be suppressed).
    """

    def __init__(
        self,
        tracker: InstanceTracker,
        delays: LaunchDelays,
        outbox: Outbox,
        *,
        operators: Mapping[str, ConstraintOperator],
        runtimes: Mapping[str, ContainerRuntime],
        prepare_task: PrepareTask | None,
        rng: random.Random,
        max_instances_per_offer: int,
        decline_offer_duration: float,
        env_vars_prefix: str | None,
        default_user: str | None,
        on_queue_empty: Callable[[], None],
    ) -> None:
        self._tracker = tracker
        self._delays = delays
        self._outbox = outbox
        self._operators = operators
        self._runtimes = runtimes
        self._prepare_task = prepare_task
        self._rng = rng
        self._max_instances_per_offer = max_instances_per_offer
        self._decline_offer_duration = decline_offer_duration
        self._env_vars_prefix = env_vars_prefix
        self._default_user = default_user
        self._on_queue_empty = on_queue_empty
        self._stats: dict[PathId, OfferStats] = {}
        self._rotation = itertools.count()
        #: The agent of each agent id as last launched on, shared by its instances.
        self._agents: dict[str, AgentInfo] = {}
        #: Statistics.
        self.offers_received = 0
        self.offers_declined = 0
        self.tasks_launched = 0

    def launchable(self, app: AppDefinition) -> str | None:
        """Why ``app`` cannot be launched at all, or None."""
        if app.container is None:
            return None
        kind = app.container.type
        if self._runtimes.get(kind) is None:
            needed = RUNTIME_DISTRIBUTIONS.get(kind)
            hint = f" (install {needed})" if needed is not None else ""
            return f"no installed plugin provides container type {kind}{hint}"
        return None

    def offer_stats(self, app_id: PathId) -> OfferStats | None:
        """How the offers matched against ``app_id`` went (None before the first)."""
        return self._stats.get(app_id)

    def placed(self, app: AppDefinition) -> dict[str, Placed]:
        """Per constraint field, where the app's current-config instances are."""
        fields = {c.field for c in app.constraints}
        if not fields:
            return {}
        floor = (
            app.version_info.last_config_change_at if app.version_info is not None else app.version
        )
        views = [
            agent_view(i.agent)
            for i in sorted(
                self._tracker.instances_of(app.id),
                key=lambda i: i.since.millis if i.since is not None else 0,
            )
            if i.agent is not None
            and i.condition is not Condition.SCHEDULED
            and not i.condition.is_terminal
            and not i.condition.is_lost
            and (floor is None or i.run_spec_version is None or i.run_spec_version >= floor)
        ]
        return {
            field: Placed.of((v.attribute(field) for v in views), instances=app.instances)
            for field in fields
        }

    async def handle_offers(self, offers: Sequence[Offer]) -> None:
        """One round: match, store the launches, then ACCEPT or DECLINE every offer."""
        self.offers_received += len(offers)
        now = trio.current_time()
        stamp = Timestamp.now()
        limit = len(offers) * self._max_instances_per_offer
        waiting = self._waiting(now, limit=limit)
        # A queue cut at the limit: more of its app wait than this round looked at.
        cut = any(len(queue) >= limit for queue in waiting.values())
        placed: dict[PathId, dict[str, Placed]] = {}
        planned: dict[str, list[tuple[Instance, Json]]] = {}
        pools = [OfferPool(o) for o in offers]
        for pool in pools:
            apps = [a for a in waiting if waiting[a]]
            if not apps:
                break
            start = next(self._rotation) % len(apps)
            for app_id in apps[start:] + apps[:start]:
                queue = waiting[app_id]
                while queue and pool.launched < self._max_instances_per_offer:
                    instance, app = queue[0]
                    if app_id not in placed:
                        placed[app_id] = self.placed(app)
                    result = match(app, pool, placed[app_id], self._operators, self._rng)
                    stats = self._stats_of(app_id)
                    if isinstance(result, Rejection):
                        stats.rejected(
                            result.reasons, result.details, dict(result.shortfalls), pool.hostname
                        )
                        break
                    stats.used()
                    queue.pop(0)
                    pool.take(result)
                    placed[app_id] = {
                        field: p.add(pool.view.attribute(field))
                        for field, p in placed[app_id].items()
                    }
                    provisioned, task_info = self._provision(instance, app, pool, result, stamp)
                    planned.setdefault(pool.offer_id, []).append((provisioned, task_info))
        # Write state, then act: the launches are stored before ACCEPT goes out.
        accepted: set[InstanceId] = set()

        def compute() -> Changes:
            accepted.clear()
            put: list[Instance] = []
            for launches in planned.values():
                for provisioned, _ in launches:
                    current = self._tracker.get(provisioned.instance_id)
                    if (
                        current is not None
                        and current.condition is Condition.SCHEDULED
                        and current.goal is Goal.RUNNING
                    ):
                        put.append(provisioned)
                        accepted.add(provisioned.instance_id)
            return Changes(put=tuple(put))

        if planned:
            await self._tracker.apply(compute)
        unused: list[str] = []
        # While instances still wait, the rest of a used offer must come back at once
        # (Mesos would otherwise refuse it for its default 5 s).
        more = cut or any(waiting.values())
        leftover_refuse = 0.0 if more else self._decline_offer_duration
        for pool in pools:
            task_infos = [
                info
                for inst, info in planned.get(pool.offer_id, ())
                if inst.instance_id in accepted
            ]
            if task_infos:
                self.tasks_launched += len(task_infos)
                self._outbox.post(
                    calls.accept([pool.offer_id], task_infos, refuse_seconds=leftover_refuse)
                )
            else:
                unused.append(pool.offer_id)
        if unused:
            self.offers_declined += len(unused)
            self._outbox.post(calls.decline(unused, refuse_seconds=self._decline_offer_duration))
        if not self._tracker.scheduled_count():
            self._on_queue_empty()

    def _waiting(
        self, now: float, *, limit: int
    ) -> dict[PathId, list[tuple[Instance, AppDefinition]]]:
        """Scheduled instances that may launch now, per app, oldest first: at most
        ``limit`` of each (what one round's offers can take)."""
        out: dict[PathId, list[tuple[Instance, AppDefinition]]] = {}
        for app_id, scheduled in self._tracker.scheduled_by_app().items():
            queue: list[tuple[Instance, AppDefinition]] = []
            # Thousands may wait, mostly in runs of one app version (scheduled together):
            # decide once per run, not once per instance (versions compared by identity).
            version: object = _NO_RUN
            app: AppDefinition | None = None
            for instance in scheduled.values():
                if len(queue) >= limit:
                    break
                if instance.run_spec_version is not version:
                    version, app = instance.run_spec_version, self._tracker.app_of(instance)
                    if app is not None and not self._may_launch(app, now):
                        app = None
                if app is not None:
                    queue.append((instance, app))
            if queue:
                out[app_id] = queue
        return out

    def _may_launch(self, app: AppDefinition, now: float) -> bool:
        """Its launch delay is over, and it can be launched at all (noted if not)."""
        if self._delays.launch_allowed_at(app, now) > now:
            return False
        reason = self.launchable(app)
        if reason is not None:
            self._stats_of(app.id).not_launchable = reason
            return False
        return True

    def _stats_of(self, app_id: PathId) -> OfferStats:
        stats = self._stats.get(app_id)
        if stats is None:
            stats = self._stats[app_id] = OfferStats()
        return stats

    def _agent_of(self, pool: OfferPool) -> AgentInfo:
        """The agent of ``pool``'s offer, one object per agent while it stays the same.

        Why: 100,000 instances on 200 agents would otherwise hold 100,000 equal copies
        (an object, its attributes and host name each: ~20 MB).
        """
        view = pool.view
        agent = AgentInfo(
            host=pool.hostname,
            agent_id=pool.agent_id,
            region=view.region,
            zone=view.zone,
            attributes=dict(view.attributes),
        )
        known = self._agents.get(pool.agent_id)
        if known is not None and known == agent:
            return known
        self._agents[pool.agent_id] = agent
        return agent

    def _provision(
        self,
        instance: Instance,
        app: AppDefinition,
        pool: OfferPool,
        result: Match,
        stamp: Timestamp,
    ) -> tuple[Instance, Json]:
        """The instance as launched into ``pool`` (Provisioned) and its TaskInfo."""
        previous = instance.task
        task_id = (
            previous.task_id.next_incarnation()
            if previous is not None
            else TaskId.for_instance(instance.instance_id)
        )
        agent = self._agent_of(pool)
        task = Task(
            task_id=task_id,
            condition=Condition.PROVISIONED,
            staged_at=stamp,
            host_ports=result.host_ports,
            run_spec_version=app.version,
        )
        provisioned = attrs.evolve(
            instance, condition=Condition.PROVISIONED, agent=agent, tasks=(task,), since=stamp
        )
        info = build_task_info(
            app,
            task_id=str(task_id),
            agent_id=pool.agent_id,
            host=pool.hostname,
            resources=result.resources,
            host_ports=result.host_ports,
            env_prefix=self._env_vars_prefix,
            default_user=self._default_user,
        )
        if app.container is not None:
            self._runtimes[app.container.type].build_task_info(
                app=app, task_info=info, host_ports=result.host_ports
            )
        if self._prepare_task is not None:
            self._prepare_task(app, provisioned, info)
        return provisioned, info
