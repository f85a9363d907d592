"""The scheduler: turns Mesos events and timers into instance changes and Mesos calls.

One task consumes the events of the subscription in batches (every UPDATE of a
batch is stored in one write, then acknowledged); offers are matched against the
launch queue (Scheduled instances whose app is not in backoff) and the resulting
launches are stored as Provisioned *before* ACCEPT is sent. Timers handle task
launch timeouts, the unreachable strategy, kill retries and backoff expiry;
reconciliation runs after every (re)subscription and every
``--reconciliation_interval``; the scale check every ``--scale_apps_interval``.

Never past ``instances``: the only thing launched is a Scheduled instance, and an
instance is launched once per incarnation (it is Provisioned from the moment its
launch is decided), so the number of tasks in flight is always the number of
instances that exist -- which the deployment executor and the scale check keep
equal to the app's ``instances``.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import attrs
import trio

from marathon_core.config import Config
from marathon_core.contracts.placement import ConstraintOperator, OfferView, Placed
from marathon_core.contracts.queue import QueueEntry
from marathon_core.contracts.runtimes import ContainerRuntime
from marathon_core.events import EventBus
from marathon_core.mesos import calls
from marathon_core.mesos.client import DISCONNECTED, CallError
from marathon_core.model.app import AppDefinition
from marathon_core.model.events import make_event
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import (
    AgentInfo,
    Condition,
    Goal,
    Instance,
    InstanceId,
    Task,
    TaskId,
    kill_order,
    parse_task_id,
)
from marathon_core.scheduler.backoff import DELAY_WORTHY, LaunchDelays
from marathon_core.scheduler.offers import Match, OfferPool, Rejection, match
from marathon_core.scheduler.queue import OfferStats
from marathon_core.scheduler.taskinfo import build_task_info
from marathon_core.scheduler.tracker import Changes, InstanceTracker

__all__ = ["MesosCaller", "Scheduler", "SchedulerOptions", "SchedulerStatistics"]

log = logging.getLogger(__name__)

Json = dict[str, Any]

#: Marathon's ``kill_retry_timeout``: re-send a KILL not confirmed in this time.
KILL_RETRY_SECONDS = 30.0
#: Tasks per explicit RECONCILE call.
RECONCILE_BATCH = 1000
#: Events handled as one batch at most (one state write per batch).
MAX_BATCH = 5000
#: Concurrent ACKNOWLEDGE/KILL/ACCEPT calls.
MAX_CALLS_IN_FLIGHT = 32

_STARTING = frozenset({Condition.PROVISIONED, Condition.STAGING, Condition.STARTING})
_UNREACHABLE = frozenset({Condition.UNREACHABLE, Condition.UNREACHABLE_INACTIVE})

#: Task states whose update becomes an app's ``lastTaskFailure``, as in Marathon.
_FAILURE_STATES = frozenset(
    {"TASK_ERROR", "TASK_FAILED", "TASK_LOST", "TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR"}
)


class MesosCaller(Protocol):
    """What the scheduler needs from the Mesos client."""

    async def call(self, call: Json) -> None: ...


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


def _task_failure(status: Mapping[str, Any], instance: Instance) -> Json:
    """Marathon's ``lastTaskFailure`` for a failure update of ``instance``."""
    agent = instance.agent
    return {
        "appId": str(instance.app_id),
        "host": agent.host if agent is not None else "",
        "message": status.get("message", ""),
        "state": status["state"],
        "taskId": status["task_id"]["value"],
        "timestamp": str(Timestamp.now()),
        "version": str(instance.run_spec_version) if instance.run_spec_version else None,
        "slaveId": status.get("agent_id", {}).get("value", ""),
    }


def _is_terminal_state(state: str) -> bool:
    return state in (
        "TASK_FINISHED",
        "TASK_FAILED",
        "TASK_KILLED",
        "TASK_ERROR",
        "TASK_LOST",
        "TASK_DROPPED",
        "TASK_GONE",
        "TASK_GONE_BY_OPERATOR",
        "TASK_UNKNOWN",
    )


def agent_view(agent: AgentInfo) -> OfferView:
    """The placement view of an instance's agent (as the offer it was launched from)."""
    return OfferView(
        hostname=agent.host,
        agent_id=agent.agent_id or "",
        attributes=agent.attributes,
        region=agent.region,
        zone=agent.zone,
    )


def _never_locked(app_id: PathId) -> bool:
    return False


class Scheduler:
    """Launches, watches, kills and reconciles the tasks of all instances."""

    def __init__(
        self,
        *,
        tracker: InstanceTracker,
        mesos: MesosCaller,
        events: EventBus,
        operators: Mapping[str, ConstraintOperator],
        options: SchedulerOptions = SchedulerOptions(),
        runtimes: Mapping[str, ContainerRuntime] | None = None,
        prepare_task: Callable[[AppDefinition, Instance, Json], None] | None = None,
        load_apps: Callable[[], Awaitable[Sequence[AppDefinition]]] | None = None,
        is_locked: Callable[[PathId], bool] = _never_locked,
        rng: random.Random | None = None,
    ) -> None:
        self.tracker = tracker
        self.mesos = mesos
        self.events = events
        self.operators = operators
        self.options = options
        self.runtimes = runtimes or {}
        self.prepare_task = prepare_task
        self.load_apps = load_apps
        #: Asked by the scale check: True while a deployment owns the app.
        self.is_locked = is_locked
        self.rng = rng or random.Random()
        self.delays = LaunchDelays()
        self._stats: dict[PathId, OfferStats] = {}
        self._kills: dict[str, float] = {}  # task id -> when the last KILL was sent
        self._call_limiter = trio.CapacityLimiter(MAX_CALLS_IN_FLIGHT)
        self._nursery: trio.Nursery | None = None
        self._demand_changed = trio.Event()
        self._revive_wanted = True
        self._suppressed = False
        self._connected = False
        self._last_revive = -float("inf")
        self._subscriptions = 0
        self._rotation = itertools.count()
        self._last_failures: dict[PathId, Json] = {}
        self._counts = dict.fromkeys(
            (
                "offers_received",
                "offers_declined",
                "tasks_launched",
                "updates",
                "kills",
                "revives",
                "suppresses",
                "reconciliations",
            ),
            0,
        )
        tracker.on_scheduled = self._work_arrived
        tracker.on_decommissioned = self.kill_instances

    # -- running -----------------------------------------------------------------------

    async def run(
        self,
        events: trio.MemoryReceiveChannel[Json],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Consume Mesos events and run the timers until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._timers_loop)
            nursery.start_soon(self._offer_demand_loop)
            nursery.start_soon(self._reconciliation_loop)
            nursery.start_soon(self._scale_check_loop)
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

    async def handle_events(self, batch: Sequence[Json]) -> None:
        """Handle a batch of events in order; UPDATEs and OFFERS are grouped."""
        statuses: list[Json] = []
        offers: list[Json] = []
        for event in batch:
            kind = event.get("type")
            if kind == "UPDATE":
                statuses.append(event["update"]["status"])
            elif kind == "OFFERS":
                offers.extend(event["offers"].get("offers", ()))
            elif kind == "RESCIND":
                rescinded = event["rescind"]["offer_id"]["value"]
                offers = [o for o in offers if o["id"]["value"] != rescinded]
            elif kind == "SUBSCRIBED":
                offers.clear()  # offers of an earlier subscription are void
                await self._handle_statuses(statuses)
                statuses = []
                self._subscribed(event["subscribed"])
            elif kind == DISCONNECTED:
                offers.clear()
                self._connected = False
                self.events.publish(make_event("scheduler_disconnected_event"))
            elif kind == "FAILURE":
                failure = event.get("failure", {})
                log.info("Mesos reports a failure: %s", failure)
                if "executor_id" not in failure and "agent_id" in failure:
                    self._spawn(self.reconcile_agent, failure["agent_id"]["value"])
            elif kind == "ERROR":  # the client raises on these; kept for direct callers
                log.error("Mesos error: %s", event.get("error"))
        if statuses:
            await self._handle_statuses(statuses)
        if offers:
            await self._handle_offers(offers)

    def _spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        assert self._nursery is not None, "the scheduler is not running"
        self._nursery.start_soon(fn, *args)

    async def _send(self, call: Json) -> bool:
        async with self._call_limiter:
            try:
                await self.mesos.call(call)
            except CallError as exc:
                log.warning("Mesos call failed: %s", exc)
                return False
            return True

    def _subscribed(self, subscribed: Mapping[str, Any]) -> None:
        self._subscriptions += 1
        framework_id = subscribed.get("framework_id", {}).get("value")
        if self._subscriptions == 1:
            self.events.publish(
                make_event(
                    "scheduler_registered_event",
                    frameworkId=framework_id,
                    master=str(subscribed.get("master_info", {}).get("hostname", "")),
                )
            )
        else:
            self.events.publish(
                make_event(
                    "scheduler_reregistered_event",
                    master=str(subscribed.get("master_info", {}).get("hostname", "")),
                )
            )
        # A new subscription is neither suppressed nor filtered: decide afresh.
        self._connected = True
        self._suppressed = False
        self._revive_wanted = False
        self._demand_changed.set()
        self._spawn(self.reconcile)

    # -- status updates ----------------------------------------------------------------

    async def _handle_statuses(self, statuses: Sequence[Json]) -> None:
        if not statuses:
            return
        self._counts["updates"] += len(statuses)
        now = trio.current_time()
        kills: list[tuple[str, str | None]] = []
        published: list[tuple[Json, Instance]] = []
        returned: set[PathId] = set()
        failures: dict[PathId, Json] = {}

        def compute() -> Changes:
            kills.clear()
            published.clear()
            returned.clear()
            failures.clear()
            changed: dict[InstanceId, Instance | None] = {}
            replacements: list[Instance] = []
            finals: list[Instance] = []
            for status in statuses:
                task_id = status["task_id"]["value"]
                state = status["state"]
                agent_id = status.get("agent_id", {}).get("value")
                try:
                    instance_id = parse_task_id(task_id).instance_id
                except ValueError:
                    instance_id = None
                current: Instance | None = None
                if instance_id is not None:
                    current = (
                        changed[instance_id]
                        if instance_id in changed
                        else self.tracker.get(instance_id)
                    )
                task = current.task if current is not None else None
                if current is None or task is None or str(task.task_id) != task_id:
                    # Not ours (any more): an unknown task or an older incarnation.
                    if not _is_terminal_state(state) and state != "TASK_UNREACHABLE":
                        kills.append((task_id, agent_id))
                    continue
                updated = self._transition(current, task, status, now, replacements, finals)
                if state in _FAILURE_STATES:  # from the instance as it ran (its host)
                    failures[current.app_id] = _task_failure(status, current)
                changed[current.instance_id] = updated
                if updated is not None:
                    published.append((status, updated))
                    if (
                        current.condition in _UNREACHABLE
                        and updated.condition.is_active
                        and updated.condition is not Condition.UNREACHABLE
                    ):
                        returned.add(updated.app_id)
                else:
                    published.append((status, current))
            return Changes(
                put=tuple(i for i in changed.values() if i is not None) + tuple(replacements),
                expunge=tuple(k for k, v in changed.items() if v is None),
                final=tuple(finals),
            )

        await self.tracker.apply(compute)
        for status, instance in published:
            self.events.publish(self._status_event(status, instance))
        self._last_failures.update(failures)
        for status in statuses:
            if "uuid" in status and "agent_id" in status:
                self._spawn(
                    self._send,
                    calls.acknowledge(
                        status["agent_id"]["value"], status["task_id"]["value"], status["uuid"]
                    ),
                )
        for task_id, agent_id in kills:
            log.info("killing task %s: unknown to the scheduler", task_id)
            self._kill_task(task_id, agent_id, None)
        for app_id in returned:
            self._spawn(self.trim_surplus, app_id)

    def _transition(
        self,
        instance: Instance,
        task: Task,
        status: Mapping[str, Any],
        now: float,
        replacements: list[Instance],
        finals: list[Instance],
    ) -> Instance | None:
        """The instance after ``status``; None when it is to be expunged (its last
        state then goes to ``finals``, for the events)."""
        state = status["state"]
        condition = Condition.from_mesos(
            state, reason=status.get("reason"), message=status.get("message")
        )
        stamp = Timestamp.now()
        app = self.tracker.app_of(instance)
        ips = tuple(
            ip["ip_address"]
            for info in status.get("container_status", {}).get("network_infos", ())
            for ip in info.get("ip_addresses", ())
            if "ip_address" in ip
        )
        new_task = attrs.evolve(
            task,
            condition=condition,
            mesos_state=state,
            started_at=task.started_at
            if task.started_at is not None or condition is not Condition.RUNNING
            else stamp,
            ip_addresses=ips or task.ip_addresses,
            healthy=status.get("healthy", task.healthy),
        )
        if condition.is_terminal:
            self._kills.pop(str(task.task_id), None)
            if instance.goal is not Goal.RUNNING or app is None:
                finals.append(attrs.evolve(instance, condition=condition, tasks=(new_task,)))
                return None
            if condition in DELAY_WORTHY:
                self.delays.add(app, now)
            # Relaunch as a new incarnation of the same instance.
            return attrs.evolve(
                instance,
                condition=Condition.SCHEDULED,
                agent=None,
                tasks=(new_task,),
                since=stamp,
            )
        if condition is Condition.UNREACHABLE:
            if instance.condition is Condition.UNREACHABLE_INACTIVE:
                return attrs.evolve(instance, tasks=(new_task,))
            updated = attrs.evolve(
                instance, condition=Condition.UNREACHABLE, tasks=(new_task,), since=stamp
            )
            return self._maybe_inactive(updated, app, stamp, replacements, finals)
        if app is not None:
            if condition in (Condition.STARTING, Condition.RUNNING):
                self.delays.advance(app, now)
            if new_task.healthy:
                self.delays.reset(app.id)
        since = instance.since if instance.condition is condition else stamp
        return attrs.evolve(instance, condition=condition, tasks=(new_task,), since=since)

    def _maybe_inactive(
        self,
        instance: Instance,
        app: AppDefinition | None,
        now: Timestamp,
        replacements: list[Instance],
        finals: list[Instance],
    ) -> Instance | None:
        """Apply the unreachable strategy to an Unreachable instance (None = expunge)."""
        if app is None or not app.unreachable_strategy.enabled or instance.since is None:
            return instance
        strategy = app.unreachable_strategy
        elapsed = (now.millis - instance.since.millis) / 1000
        if (
            instance.condition is Condition.UNREACHABLE
            and elapsed >= strategy.inactive_after_seconds
        ):
            instance = attrs.evolve(instance, condition=Condition.UNREACHABLE_INACTIVE)
            if instance.goal is Goal.RUNNING:
                replacements.append(
                    Instance(
                        instance_id=InstanceId.new(app.id),
                        condition=Condition.SCHEDULED,
                        run_spec_version=instance.run_spec_version,
                        role=instance.role,
                        since=now,
                    )
                )
        if elapsed >= strategy.expunge_after_seconds and (
            instance.condition is Condition.UNREACHABLE_INACTIVE
            or instance.goal is not Goal.RUNNING
        ):
            finals.append(instance)
            return None
        return instance

    def last_task_failure(self, app_id: PathId) -> Json | None:
        """Marathon's ``lastTaskFailure`` of ``app_id``, seen in this leadership term.

        Kept in memory only: Marathon also stores it in ZooKeeper, so a new leader
        shows the last failure from before the failover; this one does not.
        """
        return self._last_failures.get(app_id)

    def _status_event(self, status: Mapping[str, Any], instance: Instance) -> Json:
        task = instance.task
        agent = instance.agent
        return make_event(
            "status_update_event",
            slaveId=status.get("agent_id", {}).get("value"),
            taskId=status["task_id"]["value"],
            taskStatus=status["state"],
            message=status.get("message", ""),
            appId=str(instance.app_id),
            host=agent.host if agent is not None else "",
            ipAddresses=[
                {"ipAddress": ip, "protocol": "IPv4"}
                for ip in (task.ip_addresses if task is not None else ())
            ],
            ports=list(task.host_ports) if task is not None else [],
            version=str(instance.run_spec_version) if instance.run_spec_version else None,
        )

    # -- offers and launches -----------------------------------------------------------

    def _launchable(self, app: AppDefinition) -> str | None:
        """Why ``app`` cannot be launched at all, or None."""
        if app.container is None:
            return None
        runtime = self.runtimes.get(app.container.type)
        if runtime is None:
            return f"no installed plugin provides container type {app.container.type}"
        return None

    def _waiting(self, now: float) -> dict[PathId, list[tuple[Instance, AppDefinition]]]:
        """Scheduled instances that may launch now, per app, oldest first."""
        out: dict[PathId, list[tuple[Instance, AppDefinition]]] = {}
        for instance in self.tracker.scheduled():
            app = self.tracker.app_of(instance)
            if app is None:
                continue
            if self.delays.launch_allowed_at(app, now) > now:
                continue
            reason = self._launchable(app)
            if reason is not None:
                self._stats_of(app.id).not_launchable = reason
                continue
            out.setdefault(app.id, []).append((instance, app))
        return out

    def _stats_of(self, app_id: PathId) -> OfferStats:
        stats = self._stats.get(app_id)
        if stats is None:
            stats = self._stats[app_id] = OfferStats()
        return stats

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
                self.tracker.instances_of(app.id),
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

    async def _handle_offers(self, offers: Sequence[Json]) -> None:
        self._counts["offers_received"] += len(offers)
        now = trio.current_time()
        stamp = Timestamp.now()
        waiting = self._waiting(now)
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
                while queue and pool.launched < self.options.max_instances_per_offer:
                    instance, app = queue[0]
                    if app_id not in placed:
                        placed[app_id] = self.placed(app)
                    result = match(app, pool, placed[app_id], self.operators, self.rng)
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
                    current = self.tracker.get(provisioned.instance_id)
                    if (
                        current is not None
                        and current.condition is Condition.SCHEDULED
                        and current.goal is Goal.RUNNING
                    ):
                        put.append(provisioned)
                        accepted.add(provisioned.instance_id)
            return Changes(put=tuple(put))

        if planned:
            await self.tracker.apply(compute)
        unused: list[str] = []
        # While instances still wait, the rest of a used offer must come back at once
        # (Mesos would otherwise refuse it for its default 5 s).
        more = any(waiting.values())
        leftover_refuse = 0.0 if more else self.options.decline_offer_duration
        for pool in pools:
            task_infos = [
                info
                for inst, info in planned.get(pool.offer_id, ())
                if inst.instance_id in accepted
            ]
            if task_infos:
                self._counts["tasks_launched"] += len(task_infos)
                self._spawn(
                    self._send,
                    calls.accept([pool.offer_id], task_infos, refuse_seconds=leftover_refuse),
                )
            else:
                unused.append(pool.offer_id)
        if unused:
            self._counts["offers_declined"] += len(unused)
            self._spawn(
                self._send,
                calls.decline(unused, refuse_seconds=self.options.decline_offer_duration),
            )
        if not self.tracker.scheduled():
            self._demand_changed.set()

    def _provision(
        self,
        instance: Instance,
        app: AppDefinition,
        pool: OfferPool,
        result: Match,
        stamp: Timestamp,
    ) -> tuple[Instance, Json]:
        previous = instance.task
        task_id = (
            previous.task_id.next_incarnation()
            if previous is not None
            else TaskId.for_instance(instance.instance_id)
        )
        view = pool.view
        agent = AgentInfo(
            host=pool.hostname,
            agent_id=pool.agent_id,
            region=view.region,
            zone=view.zone,
            attributes=dict(view.attributes),
        )
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
            env_prefix=self.options.env_vars_prefix,
        )
        if app.container is not None:
            self.runtimes[app.container.type].build_task_info(app=app, task_info=info)
        if self.prepare_task is not None:
            self.prepare_task(app, provisioned, info)
        return provisioned, info

    # -- suppress / revive -------------------------------------------------------------

    def _work_arrived(self) -> None:
        self._revive_wanted = True
        self._demand_changed.set()

    async def _offer_demand_loop(self) -> None:
        """SUPPRESS when nothing waits; REVIVE (rate-limited) when work arrives or a delay ends."""
        while True:
            # A fresh event before looking, so a change while we act is not lost.
            self._demand_changed = trio.Event()
            now = trio.current_time()
            scheduled = self.tracker.scheduled() if self._connected else []
            next_wake = float("inf")
            delayed_until = [
                self.delays.launch_allowed_at(app, now)
                for app in (self.tracker.app_of(i) for i in scheduled)
                if app is not None
            ]
            for until in delayed_until:
                if until > now:
                    next_wake = min(next_wake, until)
            if scheduled:
                if self._suppressed or self._revive_wanted:
                    wait = self._last_revive + self.options.min_revive_offers_interval - now
                    if wait > 0:
                        next_wake = min(next_wake, now + wait)
                    elif await self._send(calls.revive(self.options.roles)):
                        self._counts["revives"] += 1
                        self._last_revive = trio.current_time()
                        self._suppressed = False
                        self._revive_wanted = False
            elif (
                self._connected
                and not self._suppressed
                and await self._send(calls.suppress(self.options.roles))
            ):
                self._counts["suppresses"] += 1
                self._suppressed = True
            with trio.move_on_at(next_wake):
                await self._demand_changed.wait()
            if trio.current_time() >= next_wake and any(u > now for u in delayed_until):
                self._revive_wanted = True  # a delay ended: offers may have been declined

    # -- kills -------------------------------------------------------------------------

    def _kill_task(self, task_id: str, agent_id: str | None, grace: float | None) -> None:
        self._kills[task_id] = trio.current_time()
        self._counts["kills"] += 1
        self._spawn(self._send, calls.kill(task_id, agent_id=agent_id, grace_period_seconds=grace))

    async def kill_instances(self, instances: Sequence[Instance]) -> None:
        """KILL the current task of each instance, with its app's kill grace period."""
        for instance in instances:
            task = instance.task
            if task is None or task.condition.is_terminal:
                continue
            app = self.tracker.app_of(instance)
            grace = None
            if app is not None and app.task_kill_grace_period_seconds is not None:
                grace = float(app.task_kill_grace_period_seconds)
            agent_id = instance.agent.agent_id if instance.agent is not None else None
            self._kill_task(str(task.task_id), agent_id, grace)
        await trio.lowlevel.checkpoint()

    async def trim_surplus(self, app_id: PathId) -> None:
        """Kill instances beyond ``instances`` (an unreachable one came back while its
        replacement runs); only when no deployment owns the app."""
        if self.is_locked(app_id):
            return
        app = self.tracker.latest_app(app_id)
        if app is None:
            return
        counted = [
            i
            for i in self.tracker.instances_of(app_id)
            if i.goal is Goal.RUNNING and i.condition is not Condition.UNREACHABLE_INACTIVE
        ]
        surplus = len(counted) - app.instances
        if surplus > 0:
            victims = kill_order(counted, app.kill_selection)[:surplus]
            log.info("app %s has %d instance(s) too many; killing %s", app_id, surplus, victims)
            await self.tracker.decommission(i.instance_id for i in victims)

    # -- timers ------------------------------------------------------------------------

    async def _timers_loop(self) -> None:
        while True:
            await trio.sleep(self.options.timer_interval)
            await self.check_timers()

    async def check_timers(self) -> None:
        """Launch timeouts, the unreachable strategy and kill retries."""
        now = trio.current_time()
        stamp = Timestamp.now()
        timeout_ms = self.options.task_launch_timeout * 1000
        to_kill: list[Instance] = []
        for instance in self.tracker.all_instances():
            task = instance.task
            if task is None or instance.since is None:
                continue
            if instance.goal is not Goal.RUNNING and not task.condition.is_terminal:
                last = self._kills.get(str(task.task_id))
                if last is None or now - last >= self.options.kill_retry:
                    to_kill.append(instance)
            elif (
                instance.condition in _STARTING
                and stamp.millis - instance.since.millis >= timeout_ms
                and str(task.task_id) not in self._kills
            ):
                log.warning("task %s did not start in time; killing it", task.task_id)
                to_kill.append(instance)
        if to_kill:
            await self.kill_instances(to_kill)

        def compute() -> Changes:
            put: list[Instance] = []
            expunge: list[InstanceId] = []
            replacements: list[Instance] = []
            finals: list[Instance] = []
            for instance in self.tracker.all_instances():
                if instance.condition not in _UNREACHABLE:
                    continue
                updated = self._maybe_inactive(
                    instance, self.tracker.app_of(instance), stamp, replacements, finals
                )
                if updated is None:
                    expunge.append(instance.instance_id)
                elif updated != instance:
                    put.append(updated)
            return Changes(
                put=tuple(put) + tuple(replacements), expunge=tuple(expunge), final=tuple(finals)
            )

        await self.tracker.apply(compute)

    # -- reconciliation ----------------------------------------------------------------

    def _live_tasks(self) -> list[tuple[str, str | None]]:
        """(task id, agent id) of every task Mesos should know about."""
        return [
            (str(i.task.task_id), i.agent.agent_id if i.agent is not None else None)
            for i in self.tracker.all_instances()
            if i.task is not None
            and not i.task.condition.is_terminal
            and i.condition is not Condition.SCHEDULED
        ]

    async def reconcile(self) -> None:
        """Explicit reconciliation of every known task, then implicit."""
        self._counts["reconciliations"] += 1
        known = self._live_tasks()
        for start in range(0, len(known), RECONCILE_BATCH):
            await self._send(calls.reconcile(known[start : start + RECONCILE_BATCH]))
        await self._send(calls.reconcile())

    async def reconcile_agent(self, agent_id: str) -> None:
        """Explicit reconciliation of our tasks on an agent Mesos reports as failed.

        Why: an agent that does not come back after a master failover is removed
        without a single update for its tasks (the new master never knew them), and
        the startup reconciliation went unanswered while the master waited for it;
        asked now, Mesos answers TASK_UNREACHABLE or TASK_LOST and they are replaced.
        """
        known = [(task, agent) for task, agent in self._live_tasks() if agent == agent_id]
        for start in range(0, len(known), RECONCILE_BATCH):
            await self._send(calls.reconcile(known[start : start + RECONCILE_BATCH]))

    async def _reconciliation_loop(self) -> None:
        while True:
            await trio.sleep(self.options.reconciliation_interval)
            await self.reconcile()

    # -- the scale check ---------------------------------------------------------------

    async def _scale_check_loop(self) -> None:
        if self.load_apps is None:
            return
        await trio.sleep(self.options.scale_apps_initial_delay)
        while True:
            await self.scale_check()
            await trio.sleep(self.options.scale_apps_interval)

    async def scale_check(self, apps: Iterable[AppDefinition] | None = None) -> None:
        """Schedule missing and decommission surplus instances of apps no deployment owns.

        Instances of apps that no longer exist are decommissioned too.
        """
        if apps is None:
            if self.load_apps is None:
                return
            apps = await self.load_apps()
        current = {a.id: a for a in apps}
        for app_id in set(self.tracker.app_ids()) - set(current):
            if not self.is_locked(app_id):
                await self.tracker.decommission(
                    i.instance_id for i in self.tracker.instances_of(app_id)
                )
        for app in current.values():
            if self.is_locked(app.id):
                continue
            self.tracker.remember_app(app)
            counted = [
                i
                for i in self.tracker.instances_of(app.id)
                if i.goal is Goal.RUNNING and i.condition is not Condition.UNREACHABLE_INACTIVE
            ]
            if len(counted) < app.instances:
                log.info("scale check: app %s needs %d more", app.id, app.instances - len(counted))
                await self.tracker.schedule(app, app.instances - len(counted))
            elif len(counted) > app.instances:
                victims = kill_order(counted, app.kill_selection)[: len(counted) - app.instances]
                await self.tracker.decommission(i.instance_id for i in victims)

    # -- /v2/queue -----------------------------------------------------------------------

    def queue(self) -> list[QueueEntry]:
        """Every app with instances waiting for launch."""
        app_ids = dict.fromkeys(i.app_id for i in self.tracker.scheduled())
        return [e for e in (self.queue_entry(a) for a in app_ids) if e is not None]

    def queue_entry(self, app_id: PathId) -> QueueEntry | None:
        """The launch-queue view of one app, or None when nothing of it waits."""
        waiting = [i for i in self.tracker.scheduled() if i.app_id == app_id]
        if not waiting:
            return None
        app = self.tracker.app_of(waiting[0]) or self.tracker.latest_app(app_id)
        now = trio.current_time()
        delay = self.delays.get(app, now) if app is not None else None
        stats = self._stats.get(app_id) or OfferStats()
        if app is not None and stats.not_launchable is None:
            stats.not_launchable = self._launchable(app)
        return QueueEntry(
            app_id=app_id,
            count=len(waiting),
            role=waiting[0].role,
            delay_time_left=max(0.0, delay.until - now) if delay is not None else 0.0,
            delay_overdue=delay is None or now >= delay.until,
            since=min((i.since for i in waiting if i.since is not None), default=None),
            processed_offers=stats.processed,
            unused_offers=stats.unused,
            last_unused_offer_at=stats.last_unused_at,
            last_used_offer_at=stats.last_used_at,
            reject_summary=stats.summary(),
            last_reasons=stats.last_details,
            near_misses=stats.near_misses(),
            not_launchable=stats.not_launchable,
        )

    def reset_delay(self, app_id: PathId) -> bool:
        """``DELETE /v2/queue/{id}/delay``: launch again at once. False if nothing waits."""
        if not any(i.app_id == app_id for i in self.tracker.scheduled()):
            return False
        self.delays.reset(app_id)
        self._work_arrived()
        return True

    def statistics(self) -> SchedulerStatistics:
        return SchedulerStatistics(**self._counts)
