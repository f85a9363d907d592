"""What happens with time alone: launch timeouts, kill retries, the unreachable strategy.

No Mesos event says "this task never started" or "that KILL was lost", and an
Unreachable instance changes condition only because time passes; one periodic check
covers all three, from the tracker's view.
"""

from __future__ import annotations

import logging

import trio

from marathon_core.model.ids import Timestamp
from marathon_core.model.instance import Condition, Goal, Instance, InstanceId
from marathon_core.scheduler.kills import Kills
from marathon_core.scheduler.tracker import Changes, InstanceTracker
from marathon_core.scheduler.unreachable import UNREACHABLE, apply_unreachable_strategy

__all__ = ["Timers"]

log = logging.getLogger(__name__)

#: Launched, not yet running: the launch timeout applies.
_STARTING = frozenset({Condition.PROVISIONED, Condition.STAGING, Condition.STARTING})


class Timers:
    """The periodic check (seconds: ``task_launch_timeout``, ``kill_retry``, ``interval``)."""

    def __init__(
        self,
        tracker: InstanceTracker,
        kills: Kills,
        *,
        task_launch_timeout: float,
        kill_retry: float,
        interval: float,
    ) -> None:
        self._tracker = tracker
        self._kills = kills
        self._task_launch_timeout = task_launch_timeout
        self._kill_retry = kill_retry
        self._interval = interval

    async def run(self) -> None:
        while True:
            await trio.sleep(self._interval)
            await self.check()

    async def check(self) -> None:
        """Launch timeouts, kill retries, then the unreachable strategy.

        It runs every second over every instance: the running ones, nearly all of
        them, cost a few comparisons (no task id is formatted for them), and the
        unreachable strategy is applied only when some instance is unreachable.
        """
        now = trio.current_time()
        stamp = Timestamp.now()
        timeout_ms = self._task_launch_timeout * 1000
        to_kill: list[Instance] = []
        unreachable = False
        for instance in self._tracker.all_instances():
            condition = instance.condition
            if condition in UNREACHABLE:
                unreachable = True
            leaving = instance.goal is not Goal.RUNNING
            if not leaving and condition not in _STARTING:
                continue
            task = instance.task
            if task is None or instance.since is None:
                continue
            last_kill = self._kills.last_sent(str(task.task_id))
            if leaving and not task.condition.is_terminal:
                if last_kill is None or now - last_kill >= self._kill_retry:
                    to_kill.append(instance)
            elif (
                condition in _STARTING
                and stamp.millis - instance.since.millis >= timeout_ms
                and last_kill is None
            ):
                log.warning("task %s did not start in time; killing it", task.task_id)
                to_kill.append(instance)
        if to_kill:
            await self._kills.kill_instances(to_kill)
        if not unreachable:
            return

        def compute() -> Changes:
            put: list[Instance] = []
            expunge: list[InstanceId] = []
            replacements: list[Instance] = []
            finals: list[Instance] = []
            for instance in self._tracker.all_instances():
                if instance.condition not in UNREACHABLE:
                    continue
                updated = apply_unreachable_strategy(
                    instance, self._tracker.app_of(instance), stamp, replacements, finals
                )
                if updated is None:
                    expunge.append(instance.instance_id)
                elif updated != instance:
                    put.append(updated)
            return Changes(
                put=tuple(put) + tuple(replacements), expunge=tuple(expunge), final=tuple(finals)
            )

        await self._tracker.apply(compute)
