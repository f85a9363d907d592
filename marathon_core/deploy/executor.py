"""Runs deployments: each step's actions in parallel, each action towards a goal.

Actions are goal-based and idempotent, so a deployment resumed by a new leader
simply re-runs its current step: *scale* schedules or decommissions instances until
``instances`` of them run; *stop* decommissions all and waits until they are gone;
*restart* replaces instances of the old configuration honouring the app's
``upgradeStrategy`` (Marathon's arithmetic, see :func:`rolling_targets`). Progress is
stored with every step, and events follow Marathon: ``deployment_info`` when a step
starts, ``deployment_step_success`` when it ends, ``deployment_success`` at the end
(their JSON comes from :mod:`marathon_core.model.events`).

Every action also leaves a probe of its progress (:class:`ActionProgress`: old and
new instances, and what it waits for), so that a deployment that cannot advance can
say why (:mod:`marathon_core.deploy.status`). The probe runs when someone asks, not
after every instance change: listing the instances of an app of 10,000 after each
of them changes would make a launch quadratic.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import Protocol

import attrs
import trio

from marathon_core.deploy.manager import DeploymentRegistry
from marathon_core.events import EventBus
from marathon_core.model.app import AppDefinition
from marathon_core.model.deployment import ActionKind, Deployment, DeploymentAction
from marathon_core.model.events import (
    app_terminated_event,
    deployment_failed,
    deployment_info,
    deployment_plan,
    deployment_step_success,
    deployment_success,
)
from marathon_core.model.group import Group, transitive_dependencies
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import (
    Condition,
    Goal,
    Instance,
    InstanceCounts,
    InstanceId,
    kill_order,
)
from marathon_core.state.store import StateStore

__all__ = [
    "ActionProgress",
    "DeploymentExecutor",
    "HealthGate",
    "InstanceControl",
    "ProgressProbe",
    "ReadinessGate",
    "RollingTargets",
    "rolling_targets",
]

log = logging.getLogger(__name__)


class Progress(enum.Enum):
    """What one evaluation of an action found."""

    DONE = "done"
    ACTED = "acted"
    WAIT = "wait"


class HealthGate(Protocol):
    """What the executor needs from the health monitor (``marathon_core.leader.health``)."""

    def has_checks(self, app: AppDefinition) -> bool: ...

    def is_healthy(self, instance: Instance) -> bool: ...


class ReadinessGate(Protocol):
    """What the executor needs from the readiness monitor (``marathon_core.leader.readiness``)."""

    def has_checks(self, app: AppDefinition) -> bool: ...

    def is_ready(self, app: AppDefinition, instance: Instance) -> bool: ...

    def release(self, app_id: PathId) -> None: ...


class Waiting(enum.Enum):
    """What an action that cannot finish yet waits for."""

    LAUNCH = "launch"
    HEALTH = "health"
    READINESS = "readiness"
    KILL = "kill"
    #: A stop waits until the apps that depend on it (stopped in the same step) are gone.
    DEPENDENTS = "dependents"


@attrs.frozen
class ActionProgress:
    """What the last evaluation of an action found (``waiting`` None: it just acted)."""

    action: ActionKind
    #: Instances the action ends with (``instances``; 0 when stopping).
    target: int
    #: Instances of the previous configuration still present.
    old: int
    #: Active instances of the current configuration (started or starting).
    new: int
    #: New instances that are Running, healthy and ready.
    ready: int
    waiting: Waiting | None = None
    #: The instances it waits for (to launch, be healthy, be ready or be gone).
    waiting_on: tuple[InstanceId, ...] = ()
    #: The action reached its goal (the step may still wait for other apps).
    finished: bool = False
    #: For :attr:`Waiting.DEPENDENTS`: the dependent apps still to be stopped first.
    dependents: tuple[PathId, ...] = ()


#: What an action reached, computed when asked (by ``GET /v2/deployments/{id}``).
ProgressProbe = Callable[[], ActionProgress]


def _fixed(found: ActionProgress) -> ProgressProbe:
    return lambda: found


#: Seconds between two looks at the health of instances a deployment waits for.
HEALTH_POLL = 0.5


class InstanceControl(Protocol):
    """What the executor needs from the scheduler's instance tracker."""

    async def schedule(self, app: AppDefinition, count: int) -> list[Instance]: ...

    async def decommission(self, instance_ids: Iterable[InstanceId]) -> None: ...

    def instances_of(self, app_id: PathId) -> list[Instance]: ...

    def counts_of(self, app_id: PathId) -> InstanceCounts:
        """``InstanceCounts.of(instances_of(app_id))``, kept up to date without a scan."""
        ...

    async def wait_changed(self) -> None: ...


@attrs.frozen
class RollingTargets:
    """``minHealthy`` and ``maxCapacity`` of a rolling restart of ``n`` instances."""

    min_healthy: int
    max_capacity: int


def rolling_targets(app: AppDefinition, healthy_now: int) -> RollingTargets:
    """Marathon's bounds: ``ceil(n·minimumHealthCapacity)`` healthy at all times and at most
    ``floor(n·(1+maximumOverCapacity))`` instances; when both are equal and already met,
    one extra instance is allowed so the restart can make progress."""
    n = app.instances
    strategy = app.upgrade_strategy
    min_healthy = math.ceil(n * strategy.minimum_health_capacity)
    max_capacity = math.floor(n * (1 + strategy.maximum_over_capacity))
    if min_healthy == max_capacity <= healthy_now:
        max_capacity += 1
    return RollingTargets(min_healthy, max_capacity)


def _active(instances: Iterable[Instance]) -> list[Instance]:
    """Instances the app still counts on: goal Running and not finished."""
    return [i for i in instances if i.goal is Goal.RUNNING and not i.condition.is_terminal]


def _present(instances: Iterable[Instance]) -> list[Instance]:
    """Instances that still occupy resources (a decommissioned one until it is gone)."""
    return [i for i in instances if not i.condition.is_terminal]


def _ready(instance: Instance) -> bool:
    return instance.condition is Condition.RUNNING


def _is_current(instance: Instance, app: AppDefinition) -> bool:
    """Launched with the app's current configuration (scale-only changes don't count)."""
    version = instance.run_spec_version
    config = app.version_info.last_config_change_at if app.version_info else app.version
    return version is not None and config is not None and version >= config


def _stop_dependents_first(
    original: Group, stopping: Collection[PathId]
) -> dict[PathId, list[PathId]]:
    """Per app stopped in a step, the apps of that step that depend on it (directly or
    not): they are stopped first, so nothing loses a dependency while it runs --
    reverse dependency order, where Marathon stops all at once."""
    if len(stopping) < 2:
        return {}
    edges = original.dependency_edges()
    out: dict[PathId, list[PathId]] = {}
    for app_id in stopping:
        for dep in transitive_dependencies(app_id, edges) & set(stopping):
            out.setdefault(dep, []).append(app_id)
    return out


class DeploymentExecutor:
    """Follows the registry: starts new deployments, cancels removed ones."""

    def __init__(
        self,
        state: StateStore,
        registry: DeploymentRegistry,
        events: EventBus,
        instances: InstanceControl,
        *,
        root_at: Callable[[Timestamp | None], Awaitable[Group]],
        health: HealthGate | None = None,
        readiness: ReadinessGate | None = None,
    ) -> None:
        self._root_at = root_at
        #: With it, an instance of an app with scheduler-run health checks is ready only
        #: once Running and healthy (Marathon's health-gated deployments).
        self._health = health
        #: With it, new instances of an app with readiness checks must also be ready.
        self._readiness_gate = readiness
        #: Per deployment id: a probe of each app's progress in its current step.
        self._probes: dict[str, dict[PathId, ProgressProbe]] = {}
        self._state = state
        self._registry = registry
        self._events = events
        self._instances = instances

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        running: dict[str, trio.CancelScope] = {}
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                for deployment in self._registry.all():
                    if deployment.id not in running:
                        running[deployment.id] = trio.CancelScope()
                        nursery.start_soon(self._guarded, deployment, running)
                for deployment_id, scope in list(running.items()):
                    if self._registry.get(deployment_id) is None:
                        scope.cancel()
                await self._registry.wait_changed()

    async def _guarded(self, deployment: Deployment, running: dict[str, trio.CancelScope]) -> None:
        with running[deployment.id]:
            try:
                await self.execute(deployment)
            except Exception as exc:
                log.exception("deployment %s failed", deployment.id)
                self._events.publish(deployment_failed(deployment, str(exc)))
            finally:
                self._probes.pop(deployment.id, None)
                # Readiness results stay until the deployment is gone: a client that
                # sees the deployment sees which new instances were ready.
                if self._readiness_gate is not None:
                    for app_id in deployment.affected_app_ids():
                        self._readiness_gate.release(app_id)
        running.pop(deployment.id, None)

    def progress(self, deployment_id: str) -> dict[PathId, ActionProgress]:
        """What each app of the deployment's current step has reached, looked at now
        (empty for a deployment not running here)."""
        probes = self._probes.get(deployment_id, {})
        return {app_id: probe() for app_id, probe in probes.items()}

    async def execute(self, deployment: Deployment) -> None:
        """Run ``deployment`` from its current step to the end, then forget it."""
        original = await self._root_at(deployment.original_version)
        target = await self._root_at(deployment.target_version)
        plan = deployment_plan(deployment, original, target)
        first = max(deployment.current_step, 1)
        for number in range(first, deployment.total_steps + 1):
            deployment = attrs.evolve(deployment, current_step=number)
            await self._state.deployments.put(deployment)
            self._registry.put(deployment)
            self._events.publish(deployment_info(plan, number))
            self._probes[deployment.id] = {}
            actions = deployment.steps[number - 1].actions
            gone = {a.app_id: trio.Event() for a in actions if a.action is ActionKind.STOP}
            first_stopped = _stop_dependents_first(original, gone)
            async with trio.open_nursery() as nursery:
                for action in actions:
                    before = [(d, gone[d]) for d in first_stopped.get(action.app_id, ())]
                    nursery.start_soon(
                        self._perform,
                        deployment.id,
                        action,
                        target,
                        before,
                        gone.get(action.app_id),
                    )
            self._events.publish(deployment_step_success(plan, number))
        await self._state.complete_deployment(deployment.id)
        self._registry.remove(deployment.id)
        self._events.publish(deployment_success(plan))

    async def _perform(
        self,
        deployment_id: str,
        action: DeploymentAction,
        target: Group,
        before: list[tuple[PathId, trio.Event]],
        done: trio.Event | None,
    ) -> None:
        """Carry out one action; a stop first waits for the ``before`` stops (its
        dependents), then sets ``done``."""
        app = target.find_app(action.app_id)
        probes = self._probes.setdefault(deployment_id, {})

        def record(probe: ProgressProbe) -> None:
            probes[action.app_id] = probe

        if action.action is ActionKind.STOP:
            for dependent, stopped in before:
                if not stopped.is_set():
                    present = self._instances.counts_of(action.app_id).present
                    waiting = Waiting.DEPENDENTS
                    record(
                        _fixed(
                            ActionProgress(
                                ActionKind.STOP, 0, present, 0, 0, waiting, dependents=(dependent,)
                            )
                        )
                    )
                    await stopped.wait()
            await self.stop(action.app_id, record=record)
            if done is not None:
                done.set()
        elif app is not None and action.action is ActionKind.SCALE:
            await self.scale(app, record=record)
        elif app is not None and action.action is ActionKind.RESTART:
            await self.restart(app, record=record)
        target_count = 0 if app is None or action.action is ActionKind.STOP else app.instances
        counts = self._instances.counts_of(action.app_id)
        finished = ActionProgress(
            action.action,
            target_count,
            0,
            counts.active,
            counts.active_running,
            finished=True,
        )
        record(_fixed(finished))

    def _gated(self, app: AppDefinition) -> bool:
        """Whether readiness of its instances changes without any instance change."""
        health, readiness = self._health, self._readiness_gate
        return (health is not None and health.has_checks(app)) or (
            readiness is not None and readiness.has_checks(app)
        )

    def _healthy(self, app: AppDefinition) -> Callable[[Instance], bool]:
        """Running, and healthy too when the app has health checks the scheduler runs."""
        health = self._health
        if health is None or not health.has_checks(app):
            return _ready
        return lambda i: _ready(i) and health.is_healthy(i)

    def _checked_ready(self, app: AppDefinition) -> Callable[[Instance], bool]:
        """Passed the app's readiness checks (always, for apps without any)."""
        gate = self._readiness_gate
        if gate is None or not gate.has_checks(app):
            return _ready
        return lambda i: gate.is_ready(app, i)

    def _readiness(self, app: AppDefinition) -> Callable[[Instance], bool]:
        """Running, healthy (with health checks) and ready (with readiness checks)."""
        healthy, checked = self._healthy(app), self._checked_ready(app)
        # Readiness first: asking it starts the checks, which run while health settles.
        return lambda i: checked(i) and healthy(i)

    def _waiting(
        self, app: AppDefinition, new: Iterable[Instance], *, skip_readiness: frozenset[InstanceId]
    ) -> tuple[Waiting | None, tuple[InstanceId, ...]]:
        """What the first of ``new`` that is not ready yet waits for, with all such."""
        healthy, checked = self._healthy(app), self._checked_ready(app)
        launching, unhealthy, unready = [], [], []
        for i in new:
            if not _ready(i):
                launching.append(i.instance_id)
            elif not healthy(i):
                unhealthy.append(i.instance_id)
            elif i.instance_id not in skip_readiness and not checked(i):
                unready.append(i.instance_id)
        for waiting, ids in (
            (Waiting.LAUNCH, launching),
            (Waiting.HEALTH, unhealthy),
            (Waiting.READINESS, unready),
        ):
            if ids:
                return waiting, tuple(ids)
        return None, ()

    async def _until(self, step: Callable[[], Awaitable[Progress]], *, poll: bool = False) -> None:
        """Repeat ``step`` until DONE: at once after it ACTED (its own change may be all
        there is to see), after the next instance change when it must WAIT (or after
        :data:`HEALTH_POLL` seconds with ``poll``: health changes are no instance changes)."""
        while (progress := await step()) is not Progress.DONE:
            if progress is Progress.WAIT:
                if poll:
                    with trio.move_on_after(HEALTH_POLL):
                        await self._instances.wait_changed()
                else:
                    await self._instances.wait_changed()

    async def scale(
        self, app: AppDefinition, *, record: Callable[[ProgressProbe], None] = lambda p: None
    ) -> None:
        """Schedule or decommission until exactly ``instances`` instances run and the
        surplus is gone.

        It looks after every instance change, so it reads the tracker's counts and
        lists the instances only to pick a surplus, or for their health once all run.
        Readiness checks gate only the instances this deployment starts, as in Marathon:
        those Running when it began are not asked. Instances of the deployment's version
        (``app.version``) are its own even when already Running: a previous leader
        started them before it died, and they were never found ready under this one.
        """
        gated = self._gated(app)
        ready = self._readiness(app)
        healthy = self._healthy(app)
        initial = frozenset(
            i.instance_id
            for i in _active(self._instances.instances_of(app.id))
            if _ready(i) and i.run_spec_version != app.version
        )

        def is_ready(i: Instance) -> bool:
            return healthy(i) if initial and i.instance_id in initial else ready(i)

        def progress() -> ActionProgress:
            instances = self._instances.instances_of(app.id)
            active = _active(instances)
            waiting, on = self._waiting(app, active, skip_readiness=initial)
            if waiting is None and len(_present(instances)) > len(active):
                waiting = Waiting.KILL
                on = tuple(i.instance_id for i in _present(instances) if i.goal is not Goal.RUNNING)
            ready_count = sum(1 for i in active if is_ready(i))
            return ActionProgress(
                ActionKind.SCALE, app.instances, 0, len(active), ready_count, waiting, on
            )

        async def step() -> Progress:
            counts = self._instances.counts_of(app.id)
            missing = app.instances - counts.active
            if missing > 0:
                await self._instances.schedule(app, missing)
                return Progress.ACTED
            if missing < 0:
                active = _active(self._instances.instances_of(app.id))
                surplus = kill_order(active, app.kill_selection)[:-missing]
                await self._instances.decommission(i.instance_id for i in surplus)
                return Progress.ACTED
            leaving = counts.present > counts.active  # killed, not yet gone
            done = not leaving and counts.active_running == counts.active
            if done and gated:
                done = all(is_ready(i) for i in _active(self._instances.instances_of(app.id)))
            return Progress.DONE if done else Progress.WAIT

        record(progress)
        await self._until(step, poll=gated)

    async def stop(
        self, app_id: PathId, *, record: Callable[[ProgressProbe], None] = lambda p: None
    ) -> None:
        """Decommission every instance and wait until none is left."""

        def progress() -> ActionProgress:
            present = _present(self._instances.instances_of(app_id))
            on = tuple(i.instance_id for i in present)
            return ActionProgress(ActionKind.STOP, 0, len(present), 0, 0, Waiting.KILL, on)

        async def step() -> Progress:
            instances = self._instances.instances_of(app_id)
            alive = [i for i in instances if i.goal is Goal.RUNNING]
            if alive:
                await self._instances.decommission(i.instance_id for i in alive)
                return Progress.ACTED
            return Progress.WAIT if _present(instances) else Progress.DONE

        record(progress)
        await self._until(step)
        self._events.publish(app_terminated_event(app_id))

    async def restart(
        self, app: AppDefinition, *, record: Callable[[ProgressProbe], None] = lambda p: None
    ) -> None:
        """Replace old-configuration instances within the app's upgrade strategy."""
        ready = self._readiness(app)
        initial = _active(self._instances.instances_of(app.id))
        # The old instances count as healthy now when Running, as in Marathon: when the
        # new version adds scheduler-run checks they have no health at all, and gating
        # them would leave no room to start a replacement (with minimumHealthCapacity 1
        # and maximumOverCapacity 0). The new instances stay health-gated.
        targets = rolling_targets(app, sum(1 for i in initial if _ready(i)))

        def look() -> tuple[list[Instance], list[Instance], list[Instance]]:
            """The new active instances, the old active ones, and the old still present."""
            instances = self._instances.instances_of(app.id)
            new = [i for i in _active(instances) if _is_current(i, app)]
            old_active = [i for i in _active(instances) if not _is_current(i, app)]
            old_present = [i for i in _present(instances) if not _is_current(i, app)]
            return new, old_active, old_present

        def progress() -> ActionProgress:
            new, _, old_present = look()
            waiting, on = self._waiting(app, new, skip_readiness=frozenset())
            if waiting is None and old_present:
                waiting, on = Waiting.KILL, tuple(i.instance_id for i in old_present)
            new_ready = sum(1 for i in new if ready(i))
            return ActionProgress(
                ActionKind.RESTART,
                app.instances,
                len(old_present),
                len(new),
                new_ready,
                waiting,
                on,
            )

        async def step() -> Progress:
            new, old_active, old_present = look()
            new_ready = sum(1 for i in new if ready(i))
            allowed_old = max(0, min(len(old_active), targets.min_healthy - new_ready))
            if len(old_active) > allowed_old:
                doomed = kill_order(old_active, app.kill_selection)[: len(old_active) - allowed_old]
                await self._instances.decommission(i.instance_id for i in doomed)
                return Progress.ACTED
            to_start = min(
                app.instances - len(new), targets.max_capacity - len(old_present) - len(new)
            )
            if to_start > 0:
                await self._instances.schedule(app, to_start)
                return Progress.ACTED
            if len(new) > app.instances:  # leftovers of a forced deployment
                surplus = kill_order(new, app.kill_selection)[: len(new) - app.instances]
                await self._instances.decommission(i.instance_id for i in surplus)
                return Progress.ACTED
            finished = new_ready >= app.instances and not old_present
            return Progress.DONE if finished else Progress.WAIT

        record(progress)
        await self._until(step, poll=self._gated(app))
