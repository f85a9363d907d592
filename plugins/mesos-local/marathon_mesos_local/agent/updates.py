"""The status update streams of the agent's tasks (the status update manager).

Each task has one stream: updates are queued in order and checkpointed, only the head
is in flight, and it is resent with doubling backoff (from ``status_update_retry`` to
10 min) until the scheduler acknowledges it through the master. A terminal task is
forgotten once its last update is acknowledged.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Mapping
from typing import Any

import trio

from marathon_mesos_local.agent.master_link import MasterLink
from marathon_mesos_local.agent.model import STATUS_UPDATE_RETRY_MAX, TaskRun
from marathon_mesos_local.agent.store import TaskStore
from marathon_mesos_local.background import Background
from marathon_mesos_local.messages import TERMINAL_STATES

__all__ = ["StatusUpdates"]


class StatusUpdates:
    """Queues, checkpoints and delivers the tasks' status updates."""

    def __init__(self, store: TaskStore, link: MasterLink, retry: float) -> None:
        self.store = store
        self.link = link
        self.retry = retry
        self._background = Background()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Deliver updates until cancelled."""
        await self._background.run(task_status=task_status)

    def queue(
        self,
        task: TaskRun,
        state: str,
        *,
        message: str | None = None,
        reason: str | None = None,
        source: str = "SOURCE_EXECUTOR",
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue a reliable status update for the task's stream."""
        task.state = state
        status: dict[str, Any] = {
            "task_id": {"value": task.id},
            "state": state,
            "source": source,
        }
        if message:
            status["message"] = message
        if reason:
            status["reason"] = reason
        status["executor_id"] = {"value": task.executor_id}
        status["timestamp"] = time.time()
        status["uuid"] = base64.b64encode(uuid.uuid4().bytes).decode()
        status.update(extra or {})
        task.updates.append(status)
        self.store.save(task)
        self.deliver(task)

    def acknowledge(self, task: TaskRun, update_uuid: str) -> bool:
        """The scheduler acknowledged an update: False unless it is the head's (a
        duplicate or an unexpected one, ignored as Mesos does)."""
        if not task.updates or task.updates[0].get("uuid") != update_uuid:
            return False
        task.updates.popleft()
        self.store.save(task)
        task.acked.set()
        return True

    def deliver(self, task: TaskRun) -> None:
        """Send the task's pending updates, unless that is under way already."""
        if not task.sender_running:
            task.sender_running = True
            self._background.start_soon(self._send, task)

    async def _send(self, task: TaskRun) -> None:
        """Deliver the task's updates in order, resending the head until acknowledged."""
        delay = self.retry
        while task.updates:
            head = task.updates[0]
            task.acked = trio.Event()
            code = await self.link.send_status(task.framework_id, head)
            if code == 404:  # framework gone: nobody will acknowledge
                task.updates.clear()
                break
            with trio.move_on_after(delay):
                await task.acked.wait()
            if task.updates and task.updates[0] is head:
                delay = min(delay * 2, STATUS_UPDATE_RETRY_MAX)
            else:
                delay = self.retry
        task.sender_running = False
        if task.state in TERMINAL_STATES and not task.updates:
            self.store.forget(task)
        else:
            self.store.save(task)
