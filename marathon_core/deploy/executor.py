"""Runs deployments: each step's actions in parallel, each action towards a goal.

Actions are goal-based and idempotent, so a deployment resumed by a new leader
simply re-runs its current step: *scale* schedules or decommissions instances until
``instances`` of them run; *stop* decommissions all and waits until they are gone;
*restart* replaces instances of the old configuration honouring the app's
``upgradeStrategy`` (Marathon's arithmetic, see :func:`rolling_targets`). Progress is
stored with every step, and events follow Marathon: ``deployment_info`` when a step
starts, ``deployment_step_success`` when it ends, ``deployment_success`` at the end
(their JSON comes from :mod:`marathon_core.model.events`).
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
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
from marathon_core.model.group import Group
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
    "DeploymentExecutor",
    "HealthGate",
    "InstanceControl",
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
    ) -> None:
        self._root_at = root_at
        #: With it, an instance of an app with scheduler-run health checks is ready only
        #: once Running and healthy (Marathon's health-gated deployments).
        self._health = health
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
        running.pop(deployment.id, None)

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
            async with trio.open_nursery() as nursery:
                for action in deployment.steps[number - 1].actions:
                    nursery.start_soon(self._perform, action, target)
            self._events.publish(deployment_step_success(plan, number))
        await self._state.complete_deployment(deployment.id)
        self._registry.remove(deployment.id)
        self._events.publish(deployment_success(plan))

    async def _perform(self, action: DeploymentAction, target: Group) -> None:
        app = target.find_app(action.app_id)
        if action.action is ActionKind.STOP:
            await self.stop(action.app_id)
        elif app is None or action.action is ActionKind.START:
            return
        elif action.action is ActionKind.SCALE:
            await self.scale(app)
        else:
            await self.restart(app)

    def _gated(self, app: AppDefinition) -> bool:
        return self._health is not None and self._health.has_checks(app)

    def _readiness(self, app: AppDefinition) -> Callable[[Instance], bool]:
        """Running, and healthy too when the app has health checks the scheduler runs."""
        health = self._health
        if health is None or not health.has_checks(app):
            return _ready
        return lambda i: _ready(i) and health.is_healthy(i)

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

    async def scale(self, app: AppDefinition) -> None:
        """Schedule or decommission until exactly ``instances`` instances run and the
        surplus is gone.

        It looks after every instance change, so it reads the tracker's counts and
        lists the instances only to pick a surplus, or for their health once all run.
        """
        gated = self._gated(app)
        ready = self._readiness(app)

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
                done = all(ready(i) for i in _active(self._instances.instances_of(app.id)))
            return Progress.DONE if done else Progress.WAIT

        await self._until(step, poll=gated)

    async def stop(self, app_id: PathId) -> None:
        """Decommission every instance and wait until none is left."""

        async def step() -> Progress:
            instances = self._instances.instances_of(app_id)
            alive = [i for i in instances if i.goal is Goal.RUNNING]
            if alive:
                await self._instances.decommission(i.instance_id for i in alive)
                return Progress.ACTED
            return Progress.WAIT if _present(instances) else Progress.DONE

        await self._until(step)
        self._events.publish(app_terminated_event(app_id))

    async def restart(self, app: AppDefinition) -> None:
        """Replace old-configuration instances within the app's upgrade strategy."""
        ready = self._readiness(app)
        initial = _active(self._instances.instances_of(app.id))
        # The old instances count as healthy now when Running, as in Marathon: when the
        # new version adds scheduler-run checks they have no health at all, and gating
        # them would leave no room to start a replacement (with minimumHealthCapacity 1
        # and maximumOverCapacity 0). The new instances stay health-gated.
        targets = rolling_targets(app, sum(1 for i in initial if _ready(i)))

        async def step() -> Progress:
            instances = self._instances.instances_of(app.id)
            new = [i for i in _active(instances) if _is_current(i, app)]
            old_active = [i for i in _active(instances) if not _is_current(i, app)]
            old_present = [i for i in _present(instances) if not _is_current(i, app)]
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

        await self._until(step, poll=self._gated(app))
