"""Keeping each app at ``instances`` when no deployment is doing it.

Deployments change instance counts; between them the scale check (after
``--scale_apps_initial_delay``, then every ``--scale_apps_interval``) schedules what
is missing and decommissions what is too many, and instances of deleted apps go.
An Unreachable instance that comes back after its replacement runs is trimmed at
once. Apps a deployment owns (``is_locked``) are always left to it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence

import trio

from marathon_core.model.app import AppDefinition
from marathon_core.model.ids import PathId
from marathon_core.model.instance import Condition, Goal, Instance, kill_order
from marathon_core.scheduler.tracker import InstanceTracker

__all__ = ["AppLoader", "IsLocked", "ScaleCheck", "never_locked"]

log = logging.getLogger(__name__)

#: True while a deployment owns the app.
IsLocked = Callable[[PathId], bool]
#: Every app as currently stored.
AppLoader = Callable[[], Awaitable[Sequence[AppDefinition]]]


def never_locked(app_id: PathId) -> bool:
    """For a scheduler without deployments (tests, tools)."""
    return False


class ScaleCheck:
    """The scale check and the trim after a return; see the module docstring."""

    def __init__(
        self,
        tracker: InstanceTracker,
        *,
        is_locked: IsLocked,
        load_apps: AppLoader | None,
        initial_delay: float,
        interval: float,
    ) -> None:
        self._tracker = tracker
        self._is_locked = is_locked
        self._load_apps = load_apps
        self._initial_delay = initial_delay
        self._interval = interval

    async def run(self) -> None:
        if self._load_apps is None:
            return
        await trio.sleep(self._initial_delay)
        while True:
            await self.check()
            await trio.sleep(self._interval)

    async def check(self, apps: Iterable[AppDefinition] | None = None) -> None:
        """Schedule missing and decommission surplus instances of apps no deployment owns.

        Instances of apps that no longer exist are decommissioned too.
        """
        if apps is None:
            if self._load_apps is None:
                return
            apps = await self._load_apps()
        current = {a.id: a for a in apps}
        for app_id in set(self._tracker.app_ids()) - set(current):
            if not self._is_locked(app_id):
                await self._tracker.decommission(
                    i.instance_id for i in self._tracker.instances_of(app_id)
                )
        for app in current.values():
            if self._is_locked(app.id):
                continue
            self._tracker.remember_app(app)
            counted = self._counted(app.id)
            if len(counted) < app.instances:
                log.info("scale check: app %s needs %d more", app.id, app.instances - len(counted))
                await self._tracker.schedule(app, app.instances - len(counted))
            elif len(counted) > app.instances:
                victims = kill_order(counted, app.kill_selection)[: len(counted) - app.instances]
                await self._tracker.decommission(i.instance_id for i in victims)

    async def trim_surplus(self, app_id: PathId) -> None:
        """Kill instances beyond ``instances`` (an unreachable one came back while its
        replacement runs); only when no deployment owns the app."""
        if self._is_locked(app_id):
            return
        app = self._tracker.latest_app(app_id)
        if app is None:
            return
        counted = self._counted(app_id)
        surplus = len(counted) - app.instances
        if surplus > 0:
            victims = kill_order(counted, app.kill_selection)[:surplus]
            log.info("app %s has %d instance(s) too many; killing %s", app_id, surplus, victims)
            await self._tracker.decommission(i.instance_id for i in victims)

    def _counted(self, app_id: PathId) -> list[Instance]:
        """The instances that count towards ``instances``: meant to run, not written off."""
        return [
            i
            for i in self._tracker.instances_of(app_id)
            if i.goal is Goal.RUNNING and i.condition is not Condition.UNREACHABLE_INACTIVE
        ]
