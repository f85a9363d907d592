"""Health of tasks: the leader probes tasks, keeps their health, kills the sick.

The protocols come from plugins (``marathon_health_check_protocols``,
:mod:`marathon_core.contracts.health`). A protocol that the scheduler runs itself
(Marathon's HTTP, HTTPS, TCP) has a ``checker`` whose async ``probe`` the leader
calls; protocols without one (COMMAND, MESOS_*) run on the agent: the app's first
such check is the task's ``TaskInfo.health_check``
(:func:`marathon_core.scheduler.taskinfo.mesos_health_check`), and its results come
back as ``TaskStatus.healthy``. The core never imports a plugin: it drives whatever
the hook returned.

Both kinds end up the same here: one :class:`~marathon_core.model.health.Health` per
check (``healthCheckResults``), ``failed_health_check_event`` and
``health_status_changed_event``, and the instance health deployments wait for. An
agent-run check's health follows the task's ``healthy`` as the leader sees it change
(Mesos's TaskStatus carries no failure count: ``consecutiveFailures`` counts the
unhealthy reports the leader saw after a healthy one). The agent's executor kills
a task that fails its agent-run check (Mesos's rule); the leader never does.

:class:`HealthMonitor` is leader-scoped (started by :func:`marathon_core.leader.term.lead`,
cancelled with the term). For every Running task of an app version with Marathon-side
checks it probes ``host:port`` every ``intervalSeconds`` under ``timeoutSeconds``,
applies Marathon's rules (:func:`apply_result`): failures are ignored before the
first success while the grace period lasts, and a task that already failed
``maxConsecutiveFailures`` times in a row (0: never) is killed at its next failure;
its instance keeps goal Running, so the scheduler launches a replacement.

Kills for failing leader-run checks are rate limited (:mod:`.health_kills`): a kill
that finds no token is deferred, published as ``unhealthy_instance_kill_deferred_event``
and made later if the task still fails, or called off if it passed a check meanwhile.

Health is kept in memory only, as in Marathon: a new leader starts afresh, and
probes the tasks at once. A probe's timeout runs from when it is sent, never while
it waits for one of the ``--max_concurrent_marathon_health_checks`` slots, so a new leader probing
thousands of tasks at once does not count its own backlog as failures (which would
kill tasks that were healthy); and the next probe of a task is due an interval after
this one was sent, so that first round's queue spreads the probes out for good. An
agent-run check's health is read back from the stored task (``healthy``), so it
survives a failover. Readers
(the REST API) use :meth:`HealthMonitor.results` and :meth:`HealthMonitor.counts`,
and may cache what they derive under :meth:`HealthMonitor.generation`, which changes
with any health change of the app.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import trio

from marathon_core.config import Config
from marathon_core.contracts.health import (
    HealthChecker,
    HealthCheckProtocol,
    KillStatistics,
    Outcome,
    ProbeResult,
)
from marathon_core.events import EventBus
from marathon_core.leader.health_kills import KillRate, KillRateLimiter
from marathon_core.model.app import AppDefinition, HealthCheck
from marathon_core.model.codec import health_to_json
from marathon_core.model.events import (
    failed_health_check_event,
    health_status_changed_event,
    unhealthy_instance_kill_deferred_event,
    unhealthy_instance_kill_event,
)
from marathon_core.model.health import Health
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import Condition, Instance, InstanceId, Task, TaskId

__all__ = [
    "HealthMonitor",
    "Verdict",
    "apply_result",
    "probe_target",
]

log = logging.getLogger(__name__)

#: Probes running at once, over all apps: ``--max_concurrent_marathon_health_checks``'s
#: default, for a monitor built without the flags (tests, benchmarks).
MAX_CONCURRENT_PROBES = Config().max_concurrent_marathon_health_checks
#: Longest pause between two looks at the instances (new tasks are found at once anyway).
MAX_IDLE = 1.0
#: ``lastFailureCause`` of an agent-run check that reported the task unhealthy.
AGENT_UNHEALTHY = "Mesos health check failed (TaskStatus.healthy false)"


@attrs.frozen
class Verdict:
    """The health after one result, and what to do about it."""

    health: Health
    #: The result was applied (not ignored): publish ``failed_health_check_event`` if failed.
    failed: bool = False
    #: Kill the task: it had failed ``maxConsecutiveFailures`` times before this failure.
    kill: bool = False


def apply_result(
    health: Health,
    result: ProbeResult,
    *,
    check: HealthCheck,
    now: Timestamp,
    started_at: Timestamp | None,
    running: bool = True,
) -> Verdict:
    """Marathon's rules for one probe result (``HealthCheckActor``).

    - a healthy result sets ``firstSuccess`` (once) and ``lastSuccess`` and clears the
      failure count; an ignored one changes nothing;
    - a failure is ignored while the task is not Running, and before the first success
      while the grace period since the task started lasts;
    - otherwise it counts, and if the count *before* it had reached
      ``maxConsecutiveFailures`` (> 0) the task is to be killed.
    """
    if result.outcome is Outcome.IGNORED:
        return Verdict(health)
    if result.outcome is Outcome.HEALTHY:
        return Verdict(
            attrs.evolve(
                health,
                first_success=health.first_success or now,
                last_success=now,
                consecutive_failures=0,
            )
        )
    if not running:
        return Verdict(health)
    if health.first_success is None and (
        started_at is None or started_at.millis + check.grace_period_seconds * 1000 > now.millis
    ):
        return Verdict(health)
    limit = check.max_consecutive_failures
    kill = limit > 0 and health.consecutive_failures >= limit
    updated = attrs.evolve(
        health,
        last_failure=now,
        last_failure_cause=result.cause,
        consecutive_failures=health.consecutive_failures + 1,
    )
    return Verdict(updated, failed=True, kill=kill)


def probe_target(check: HealthCheck, instance: Instance) -> tuple[str, int] | None:
    """``host, port`` to probe for ``check`` on ``instance``'s task (None: nothing to probe).

    ``port`` wins; otherwise ``portIndex`` picks one of the task's host ports.
    """
    task = instance.task
    if instance.agent is None or task is None:
        return None
    port = check.port
    if port is None:
        index = check.port_index if check.port_index is not None else 0
        if index >= len(task.host_ports):
            return None
        port = task.host_ports[index]
    return instance.agent.host, port


@attrs.define
class _Target:
    """One (task, check) being probed."""

    app: AppDefinition
    instance: Instance
    index: int
    checker: HealthChecker
    due: float
    busy: bool = False


#: A check whose health is kept, with its index in the app's ``healthChecks``.
_Check = tuple[int, HealthCheck]


@attrs.define
class _DeferredKill:
    """A task whose kill waits for a token; made only if it still fails by then."""

    app_id: PathId
    instance_id: InstanceId
    cause: str
    #: ``trio.current_time()`` when a token may be there.
    retry_at: float


#: Kills the current tasks of instances (the scheduler's ``kill_instances``).
KillInstances = Callable[[Sequence[Instance]], Awaitable[None]]


class HealthMonitor:
    """Probes the leader's Running tasks and keeps their health; see the module docstring."""

    def __init__(
        self,
        tracker: Any,
        events: EventBus,
        protocols: Mapping[str, HealthCheckProtocol],
        kill: KillInstances,
        *,
        max_concurrent: int = MAX_CONCURRENT_PROBES,
        kill_rate: KillRate | None = None,
        clock: Callable[[], Timestamp] = Timestamp.now,
    ) -> None:
        #: The instance tracker (``follow``, ``app_ids``, ``instances_of``, ``app_of``,
        #: ``generation``, ``get``, ``wait_changed``).
        self.tracker = tracker
        self.events = events
        self.kill = kill
        self.clock = clock
        self._checkers = {
            name: checker
            for name, protocol in protocols.items()
            if (checker := protocol.checker) is not None
        }
        #: Protocols the agent runs (no checker): their health comes from TaskStatus.
        self._agent_run = {name for name, protocol in protocols.items() if protocol.checker is None}
        self._limit = trio.Semaphore(max_concurrent)
        self._kill_rate = KillRateLimiter(kill_rate or KillRate())
        self._deferred: dict[TaskId, _DeferredKill] = {}
        self._kill_counts = {"killed": 0, "deferred": 0, "spared": 0}
        #: Per task: the last ``Task.healthy`` applied to its agent-run check.
        self._agent_seen: dict[TaskId, bool] = {}
        #: Per task: one Health per kept check of its app version.
        self._health: dict[TaskId, tuple[Health, ...]] = {}
        #: Per app: the task of each instance whose health is kept.
        self._tasks_of_app: dict[PathId, dict[InstanceId, TaskId]] = {}
        #: Per app: (task, slot) -> what to probe.
        self._targets: dict[PathId, dict[tuple[TaskId, int], _Target]] = {}
        #: Targets by due time (stale entries are skipped when they come up).
        self._due: list[tuple[float, int, _Target]] = []
        self._generations: dict[PathId, int] = {}
        self._counter = itertools.count(1)
        self._killed: set[TaskId] = set()
        self._wake = trio.Event()
        #: When the probing loop looks at the due probes next (unless woken).
        self._next_look = 0.0

    # -- reading ------------------------------------------------------------------

    def checks_of(self, app: AppDefinition) -> list[tuple[int, HealthCheck]]:
        """The app's checks whose health is kept, with their index in ``healthChecks``:
        those the scheduler runs, and the first the agent runs (the one its tasks get)."""
        kept: list[tuple[int, HealthCheck]] = []
        agent_check = False
        for i, hc in enumerate(app.health_checks):
            if hc.protocol in self._checkers:
                kept.append((i, hc))
            elif hc.protocol in self._agent_run and not agent_check:
                kept.append((i, hc))
                agent_check = True
        return kept

    def has_checks(self, app: AppDefinition) -> bool:
        return any(
            hc.protocol in self._checkers or hc.protocol in self._agent_run
            for hc in app.health_checks
        )

    def kill_statistics(self) -> KillStatistics:
        """Kills for failing health checks in this term, for the metrics."""
        return KillStatistics(pending=len(self._deferred), **self._kill_counts)

    def generation(self, app_id: PathId) -> int:
        """Changes whenever the health of any task of ``app_id`` changes (0: none known)."""
        return self._generations.get(app_id, 0)

    def health_of(self, instance: Instance) -> tuple[Health, ...] | None:
        """The health of ``instance``'s current task, one per Marathon-side check, or None.

        The same tuple object is returned until that task's health changes.
        """
        task = instance.task
        return self._health.get(task.task_id) if task is not None else None

    def results(self, instance: Instance) -> list[dict[str, Any]] | None:
        """``healthCheckResults`` of ``instance``'s task (None: its app has no such checks)."""
        health = self.health_of(instance)
        return [health_to_json(h) for h in health] if health is not None else None

    def is_healthy(self, instance: Instance) -> bool:
        """Running with every Marathon-side check alive."""
        health = self.health_of(instance)
        return (
            instance.condition is Condition.RUNNING
            and health is not None
            and all(h.alive for h in health)
        )

    def counts(self, instances: Sequence[Instance]) -> tuple[int, int]:
        """``tasksHealthy`` and ``tasksUnhealthy`` of these instances.

        Healthy: Running with all checks alive. Unhealthy: a check that has a result
        and is not alive. Tasks without results yet count as neither.
        """
        healthy = unhealthy = 0
        for instance in instances:
            health = self.health_of(instance)
            if not health or instance.condition is not Condition.RUNNING:
                continue
            if all(h.alive for h in health):
                healthy += 1
            elif any(h.has_result and not h.alive for h in health):
                unhealthy += 1
        return healthy, unhealthy

    # -- running ------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Probe until cancelled (the end of the leadership term)."""
        with self.tracker.follow() as feed:
            # A new term starts afresh: every app once, then only what changes.
            everything: dict[PathId, None] = dict.fromkeys(self.tracker.app_ids())
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._follow_tracker)
                task_status.started()
                while True:
                    self._wake = trio.Event()
                    changed = feed.take()
                    changed.update(everything)
                    everything = {}
                    self.refresh(changed)
                    now = trio.current_time()
                    while self._due and self._due[0][0] <= now:
                        due, _, target = heapq.heappop(self._due)
                        if due == target.due and not target.busy and self._is_live(target):
                            target.busy = True
                            nursery.start_soon(self._probe, target)
                    next_due = now + MAX_IDLE
                    if self._due:
                        next_due = min(next_due, self._due[0][0])
                    if self._deferred:
                        next_due = min(next_due, self._make_deferred_kills(nursery, now))
                    self._next_look = next_due
                    with trio.move_on_at(next_due):
                        await self._wake.wait()

    async def _follow_tracker(self) -> None:
        while True:
            await self.tracker.wait_changed()
            self._wake.set()

    def refresh(self, changed: Mapping[PathId, set[InstanceId] | None]) -> None:
        """Follow the tracker: probe new Running tasks, forget tasks that stopped running.

        ``changed``: per app, the instances that changed, or None for all of them (as
        an :class:`~marathon_core.scheduler.tracker.InstanceFeed` gives them). Each
        tracker change costs what changed: at 10,000 instances an app sees thousands of
        changes while it launches, and most apps have no checks the scheduler runs.
        """
        for app_id, instance_ids in changed.items():
            if self.tracker.generation(app_id) == 0:  # no instances left
                self._forget_app(app_id)
                continue
            if instance_ids is None:
                known = self._tasks_of_app.get(app_id, {})
                instance_ids = {i.instance_id for i in self.tracker.instances_of(app_id)}
                instance_ids.update(known)
            self._sync(app_id, instance_ids)

    def _sync(self, app_id: PathId, instance_ids: Iterable[InstanceId]) -> None:
        now = trio.current_time()
        targets = self._targets.setdefault(app_id, {})
        tasks = self._tasks_of_app.setdefault(app_id, {})
        changed = False
        for instance_id in instance_ids:
            instance = self.tracker.get(instance_id)
            task, checks = self._to_probe(instance)
            previous = tasks.get(instance_id)
            if previous is not None and (task is None or task.task_id != previous):
                self._drop_task(app_id, instance_id)
                changed = True
            if instance is None or task is None:
                continue
            tasks[instance_id] = task.task_id
            if task.task_id in self._killed:
                # Killed for failing its checks, but still Running until Mesos reports:
                # keep its health (and the kill) without probing it, so that a later
                # change of the app neither resets its results nor kills it again.
                continue
            if task.task_id not in self._health:
                self._health[task.task_id] = tuple(Health(instance_id) for _ in checks)
                changed = True
            for slot, (_, hc) in enumerate(checks):
                if hc.protocol not in self._checkers:
                    changed = self._observe_agent(instance, task, slot, hc) or changed
                    continue
                target = targets.get((task.task_id, slot))
                if target is None:
                    checker = self._checkers[hc.protocol]
                    app = self.tracker.app_of(instance)
                    target = _Target(app, instance, slot, checker, due=now)
                    targets[(task.task_id, slot)] = target
                    heapq.heappush(self._due, (now, next(self._counter), target))
                else:
                    target.instance = instance
        if not tasks:
            del self._tasks_of_app[app_id]
        if not targets:
            del self._targets[app_id]
        if changed:
            self._bump(app_id)

    def _to_probe(self, instance: Instance | None) -> tuple[Task | None, list[_Check]]:
        """The Running task of ``instance`` whose health is kept, with its app's checks."""
        task = instance.task if instance is not None else None
        if instance is None or task is None or instance.condition is not Condition.RUNNING:
            return None, []
        if task.task_id in self._killed:
            return task, []
        app = self.tracker.app_of(instance)
        checks = self.checks_of(app) if app is not None else []
        return (task, checks) if checks else (None, [])

    def _is_live(self, target: _Target) -> bool:
        """Still to be probed: its task runs and has not been killed."""
        task = target.instance.task
        targets = self._targets.get(target.app.id, {})
        return task is not None and targets.get((task.task_id, target.index)) is target

    def _forget_app(self, app_id: PathId) -> None:
        for instance_id in list(self._tasks_of_app.get(app_id, ())):
            self._drop_task(app_id, instance_id)
        self._targets.pop(app_id, None)
        self._tasks_of_app.pop(app_id, None)
        self._generations.pop(app_id, None)

    def _drop_task(self, app_id: PathId, instance_id: InstanceId) -> None:
        task_id = self._tasks_of_app[app_id].pop(instance_id)
        targets = self._targets.get(app_id, {})
        for slot in range(len(self._health.pop(task_id, ()))):
            targets.pop((task_id, slot), None)
        self._killed.discard(task_id)
        self._agent_seen.pop(task_id, None)
        self._deferred.pop(task_id, None)

    def _observe_agent(self, instance: Instance, task: Task, slot: int, check: HealthCheck) -> bool:
        """Apply a change of the task's ``healthy`` (its agent-run check) to its health."""
        healthy = task.healthy
        if healthy is None or self._agent_seen.get(task.task_id) is healthy:
            return False
        self._agent_seen[task.task_id] = healthy
        healths = self._health[task.task_id]
        before = healths[slot]
        now = self.clock()
        if healthy:
            after = attrs.evolve(
                before,
                first_success=before.first_success or now,
                last_success=now,
                consecutive_failures=0,
            )
        else:
            after = attrs.evolve(
                before,
                last_failure=now,
                last_failure_cause=AGENT_UNHEALTHY,
                consecutive_failures=before.consecutive_failures + 1,
            )
        updated = list(healths)
        updated[slot] = after
        self._health[task.task_id] = tuple(updated)
        app = self.tracker.app_of(instance)
        if app is not None:
            if not healthy:
                self.events.publish(failed_health_check_event(app.id, instance.instance_id, check))
            if after.alive != before.alive:
                self.events.publish(
                    health_status_changed_event(
                        app, instance.instance_id, task.task_id, alive=after.alive
                    )
                )
        return True

    def _bump(self, app_id: PathId) -> None:
        self._generations[app_id] = next(self._counter)

    async def _probe(self, target: _Target) -> None:
        sent = trio.current_time()
        app = target.app
        _, check = self.checks_of(app)[target.index]
        try:
            address = probe_target(check, target.instance)
            if address is None:
                log.info(
                    "health check %d of %s: task %s has no port to check",
                    target.index,
                    app.id,
                    target.instance.instance_id,
                )
                result = ProbeResult.ignored()
            else:
                host, port = address
                timeout = float(check.timeout_seconds)
                result = ProbeResult.unhealthy(f"timed out after {check.timeout_seconds} s")
                # The timeout runs from the send: waiting for a slot is the leader's
                # backlog (a new leader probing every task), not the task's failure.
                async with self._limit:
                    sent = trio.current_time()
                    with trio.move_on_after(timeout):
                        try:
                            result = await target.checker.probe(
                                check, host=host, port=port, timeout=timeout
                            )
                        except Exception as exc:  # a plugin's bug must not end the term
                            log.exception("health check %s of %s failed", check.protocol, app.id)
                            result = ProbeResult.unhealthy(f"{type(exc).__name__}: {exc}")
            await self._apply(target, check, result)
        finally:
            target.busy = False
            # Due an interval after it was sent: probes that queued for a slot (a new
            # leader's first round) spread out instead of all coming due together again.
            target.due = sent + check.interval_seconds
            heapq.heappush(self._due, (target.due, next(self._counter), target))
            if target.due < self._next_look:  # else the loop looks in time anyway
                self._wake.set()

    async def _apply(self, target: _Target, check: HealthCheck, result: ProbeResult) -> None:
        instance = target.instance
        task = instance.task
        assert task is not None
        healths = self._health.get(task.task_id)
        targets = self._targets.get(target.app.id, {})
        if healths is None or targets.get((task.task_id, target.index)) is not target:
            return  # the task stopped running while it was probed
        current = self.tracker.get(instance.instance_id)
        running = (
            current is not None
            and current.task is not None
            and current.task.task_id == task.task_id
            and current.condition is Condition.RUNNING
        )
        before = healths[target.index]
        verdict = apply_result(
            before,
            result,
            check=check,
            now=self.clock(),
            started_at=task.started_at,
            running=running,
        )
        if verdict.health != before:
            updated = list(healths)
            updated[target.index] = verdict.health
            self._health[task.task_id] = tuple(updated)
            self._bump(target.app.id)
        app = target.app
        if verdict.failed:
            self.events.publish(failed_health_check_event(app.id, instance.instance_id, check))
        if verdict.health.alive != before.alive:
            self.events.publish(
                health_status_changed_event(
                    app, instance.instance_id, task.task_id, alive=verdict.health.alive
                )
            )
        deferred = self._deferred.get(task.task_id)
        if deferred is not None and result.outcome is Outcome.HEALTHY:
            del self._deferred[task.task_id]
            self._kill_counts["spared"] += 1
            log.info(
                "deferred kill of task %s of %s called off: it passed a health check",
                task.task_id,
                app.id,
            )
        elif deferred is not None and verdict.failed:
            deferred.cause = result.cause or deferred.cause
        elif verdict.kill and running and current is not None:
            cause = result.cause or "health check failed"
            wait = self._kill_rate.take(app.id, app.instances)
            if wait > 0:
                self._defer_kill(app, current, task.task_id, cause, wait)
                return
            log.info(
                "killing task %s of %s: %d consecutive failed health checks (%s)",
                task.task_id,
                app.id,
                before.consecutive_failures + 1,
                result.cause,
            )
            await self._kill_now(app, current, task.task_id, cause)

    def _defer_kill(
        self, app: AppDefinition, instance: Instance, task_id: TaskId, cause: str, wait: float
    ) -> None:
        """No kill token: keep checking the task, kill it later if it still fails."""
        self._deferred[task_id] = _DeferredKill(
            app.id, instance.instance_id, cause, trio.current_time() + wait
        )
        self._kill_counts["deferred"] += 1
        log.warning(
            "kill of task %s of %s deferred by %.1f s: health-check kill rate used up (%s)",
            task_id,
            app.id,
            wait,
            cause,
        )
        self.events.publish(
            unhealthy_instance_kill_deferred_event(
                app, instance, task_id, reason=cause, retry_in_seconds=wait
            )
        )
        self._wake.set()

    def _make_deferred_kills(self, nursery: trio.Nursery, now: float) -> float:
        """Kill the deferred tasks whose time has come, oldest first, while tokens last;
        when to look again."""
        next_look = now + MAX_IDLE
        for task_id, deferred in list(self._deferred.items()):
            if deferred.retry_at > now:
                next_look = min(next_look, deferred.retry_at)
                continue
            instance = self.tracker.get(deferred.instance_id)
            app = self.tracker.app_of(instance) if instance is not None else None
            task = instance.task if instance is not None else None
            if (
                app is None
                or instance is None
                or task is None
                or task.task_id != task_id
                or instance.condition is not Condition.RUNNING
            ):
                del self._deferred[task_id]  # ended on its own meanwhile
                continue
            wait = self._kill_rate.take(app.id, app.instances)
            if wait > 0:
                deferred.retry_at = now + wait
                next_look = min(next_look, deferred.retry_at)
                continue
            del self._deferred[task_id]
            log.info(
                "killing task %s of %s after its deferral (%s)", task_id, app.id, deferred.cause
            )
            nursery.start_soon(self._kill_now, app, instance, task_id, deferred.cause)
        return next_look

    async def _kill_now(
        self, app: AppDefinition, instance: Instance, task_id: TaskId, cause: str
    ) -> None:
        self._killed.add(task_id)
        targets = self._targets.get(app.id, {})
        for slot in range(len(self._health.get(task_id, ()))):
            targets.pop((task_id, slot), None)
        self._kill_counts["killed"] += 1
        self.events.publish(unhealthy_instance_kill_event(app, instance, task_id, reason=cause))
        await self.kill([instance])
