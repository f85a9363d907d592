"""Reconciliation: asking Mesos for the state of every task we believe is live.

Updates can be lost (a master failover, an agent that never comes back, a leader
that was down), and Mesos does not resend what it never knew it owed. Explicit
reconciliation of every known task, then implicit (all the master knows), runs after
every (re)subscription and every ``--reconciliation_interval``; the answers arrive as
ordinary status updates.
"""

from __future__ import annotations

import trio

from marathon_core.mesos import calls
from marathon_core.model.instance import Condition
from marathon_core.scheduler.outbox import Outbox
from marathon_core.scheduler.tracker import InstanceTracker

__all__ = ["RECONCILE_BATCH", "Reconciler"]

#: Tasks per explicit RECONCILE call.
RECONCILE_BATCH = 1000


class Reconciler:
    """Sends RECONCILE calls; ``interval`` (seconds) paces the periodic run."""

    def __init__(self, tracker: InstanceTracker, outbox: Outbox, *, interval: float) -> None:
        self._tracker = tracker
        self._outbox = outbox
        self._interval = interval
        #: Full reconciliations started (statistics).
        self.count = 0

    async def run(self) -> None:
        while True:
            await trio.sleep(self._interval)
            await self.reconcile()

    async def reconcile(self) -> None:
        """Explicit reconciliation of every known task, then implicit."""
        self.count += 1
        await self._explicit(self._live_tasks())
        await self._outbox.send(calls.reconcile())

    async def reconcile_agent(self, agent_id: str) -> None:
        """Explicit reconciliation of our tasks on an agent Mesos reports as failed.

        Why: an agent that does not come back after a master failover is removed
        without a single update for its tasks (the new master never knew them), and
        the startup reconciliation went unanswered while the master waited for it;
        asked now, Mesos answers TASK_UNREACHABLE or TASK_LOST and they are replaced.
        """
        await self._explicit([(t, a) for t, a in self._live_tasks() if a == agent_id])

    async def _explicit(self, tasks: list[tuple[str, str | None]]) -> None:
        for start in range(0, len(tasks), RECONCILE_BATCH):
            await self._outbox.send(calls.reconcile(tasks[start : start + RECONCILE_BATCH]))

    def _live_tasks(self) -> list[tuple[str, str | None]]:
        """(task id, agent id) of every task Mesos should know about."""
        return [
            (str(i.task.task_id), i.agent.agent_id if i.agent is not None else None)
            for i in self._tracker.all_instances()
            if i.task is not None
            and not i.task.condition.is_terminal
            and i.condition is not Condition.SCHEDULED
        ]
