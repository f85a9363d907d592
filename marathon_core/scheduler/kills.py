"""KILLs: sending them with the app's grace period, and remembering when each went out.

Mesos confirms a kill only with a terminal status update, which may never come (a
lost call, an agent away). The time of the last KILL per task lets the timers send
it again after ``kill_retry`` and keeps the launch timeout from killing twice; a
terminal update forgets it.
"""

from __future__ import annotations

from collections.abc import Sequence

import trio

from marathon_core.mesos import calls
from marathon_core.model.instance import Instance
from marathon_core.scheduler.outbox import Outbox
from marathon_core.scheduler.tracker import InstanceTracker

__all__ = ["Kills"]


class Kills:
    """Sends KILLs and keeps, per task, when the last one was sent."""

    def __init__(self, tracker: InstanceTracker, outbox: Outbox) -> None:
        self._tracker = tracker
        self._outbox = outbox
        self._sent: dict[str, float] = {}  # task id -> trio time of the last KILL
        #: KILLs sent (statistics).
        self.count = 0

    def kill_task(self, task_id: str, agent_id: str | None, grace: float | None) -> None:
        """KILL one task; ``grace`` (seconds) overrides its kill policy when given."""
        self._sent[task_id] = trio.current_time()
        self.count += 1
        self._outbox.post(calls.kill(task_id, agent_id=agent_id, grace_period_seconds=grace))

    async def kill_instances(self, instances: Sequence[Instance]) -> None:
        """KILL the current task of each instance, with its app's kill grace period."""
        for instance in instances:
            task = instance.task
            if task is None or task.condition.is_terminal:
                continue
            app = self._tracker.app_of(instance)
            grace = None
            if app is not None and app.task_kill_grace_period_seconds is not None:
                grace = float(app.task_kill_grace_period_seconds)
            agent_id = instance.agent.agent_id if instance.agent is not None else None
            self.kill_task(str(task.task_id), agent_id, grace)
        await trio.lowlevel.checkpoint()

    def last_sent(self, task_id: str) -> float | None:
        """When the last KILL of ``task_id`` was sent (trio time), None if none is pending."""
        return self._sent.get(task_id)

    def ended(self, task_id: str) -> None:
        """The task reached a terminal state: its kill needs no retry."""
        self._sent.pop(task_id, None)
