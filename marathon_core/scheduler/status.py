"""Task status updates: instance transitions, acknowledgements, ``lastTaskFailure``.

An app's last failure is stored in the batch's transaction (one more op per app that
failed in it; updates without failures cost nothing) and restored by a new leader
(:meth:`StatusUpdates.restore`).

A batch of updates becomes one tracker change (one state write), and only then are
the updates acknowledged: Mesos resends an unacknowledged update, so a crash before
the write loses nothing. A terminal task of an instance that should run makes the
instance Scheduled again (a new incarnation, after the app's backoff when the end
was the app's fault); an update for a task that is not the current task of a known
instance is killed, unless Mesos reports it gone or unreachable already.

Which Mesos states are terminal or active is decided by one table only,
:meth:`marathon_core.model.instance.Condition.from_mesos`, for known and unknown
tasks alike.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import attrs
import trio

from marathon_core.events import EventBus
from marathon_core.mesos import calls
from marathon_core.mesos.events import TaskStatus
from marathon_core.model.codec import task_failure_to_json
from marathon_core.model.events import status_update_event
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import (
    Condition,
    Goal,
    Instance,
    InstanceId,
    Task,
    parse_task_id,
)
from marathon_core.scheduler.backoff import DELAY_WORTHY, LaunchDelays
from marathon_core.scheduler.kills import Kills
from marathon_core.scheduler.outbox import Outbox
from marathon_core.scheduler.tracker import Changes, InstanceTracker
from marathon_core.scheduler.unreachable import UNREACHABLE, apply_unreachable_strategy
from marathon_core.state.storage import Op

__all__ = ["StatusUpdates", "condition_of"]

log = logging.getLogger(__name__)

Json = dict[str, Any]

#: Task states whose update becomes an app's ``lastTaskFailure``, as in Marathon
#: (TASK_LOST whatever its reason, as Marathon does).
_FAILURE_STATES = frozenset(
    {"TASK_ERROR", "TASK_FAILED", "TASK_LOST", "TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR"}
)


def condition_of(status: TaskStatus) -> Condition:
    """The condition a task is in after ``status`` (TASK_LOST is told apart by its reason)."""
    return Condition.from_mesos(status.state, reason=status.reason, message=status.message)


def _kill_when_unknown(condition: Condition) -> bool:
    """Whether a task we do not know (any more) is to be killed.

    Not when it is gone already, nor when it is unreachable: a KILL would only bring
    another such update, and an unreachable task is killed once its agent is back
    and it reports running again.
    """
    return not condition.is_terminal and condition is not Condition.UNREACHABLE


class StatusUpdates:
    """Applies status updates to the tracker; see the module docstring."""

    def __init__(
        self,
        tracker: InstanceTracker,
        events: EventBus,
        delays: LaunchDelays,
        kills: Kills,
        outbox: Outbox,
    ) -> None:
        self._tracker = tracker
        self._events = events
        self._delays = delays
        self._kills = kills
        self._outbox = outbox
        self._last_failures: dict[PathId, Json] = {}
        #: Updates handled (statistics).
        self.count = 0

    def last_task_failure(self, app_id: PathId) -> Json | None:
        """Marathon's ``lastTaskFailure`` of ``app_id`` (None: no failure is known)."""
        return self._last_failures.get(app_id)

    async def restore(self) -> None:
        """Load the stored last failures, so a new leader shows those of the last one.

        Why stored at all: after a failover, "why did my app die" must still have
        its answer (Marathon stores them too).
        """
        stored = await self._tracker.state.task_failures.all()
        for failure in stored:
            self._last_failures.setdefault(PathId.parse(failure["appId"]), failure)

    async def handle(self, statuses: Sequence[TaskStatus]) -> set[PathId]:
        """Store, publish and acknowledge a batch of updates, in order.

        Returns the apps an Unreachable instance of came back to (they may now have
        one instance too many).
        """
        if not statuses:
            return set()
        self.count += len(statuses)
        now = trio.current_time()
        kills: list[tuple[str, str | None]] = []
        published: list[tuple[TaskStatus, Instance]] = []
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
                try:
                    instance_id: InstanceId | None = parse_task_id(status.task_id).instance_id
                except ValueError:
                    instance_id = None
                current: Instance | None = None
                if instance_id is not None:
                    current = (
                        changed[instance_id]
                        if instance_id in changed
                        else self._tracker.get(instance_id)
                    )
                task = current.task if current is not None else None
                if current is None or task is None or str(task.task_id) != status.task_id:
                    # Not ours (any more): an unknown task or an older incarnation.
                    if _kill_when_unknown(condition_of(status)):
                        kills.append((status.task_id, status.agent_id))
                    continue
                updated = self._transition(current, task, status, now, replacements, finals)
                if status.state in _FAILURE_STATES:  # from the instance as it ran (its host)
                    failures[current.app_id] = task_failure_to_json(
                        current,
                        task_id=status.task_id,
                        state=status.state,
                        agent_id=status.agent_id,
                        message=status.message,
                        at=Timestamp.now(),
                    )
                if updated == current:
                    # A reconciliation answer, mostly: nothing to store (a reconciliation
                    # of 100,000 running tasks would rewrite every record).
                    published.append((status, current))
                    continue
                changed[current.instance_id] = updated
                if updated is not None:
                    published.append((status, updated))
                    if (
                        current.condition in UNREACHABLE
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
                also=plan_failures if failures else None,
            )

        async def plan_failures() -> list[Op]:
            """The apps' last failures, stored in the batch's one transaction."""
            repository = self._tracker.state.task_failures
            return [op for f in failures.values() for op in await repository.plan_put(f)]

        await self._tracker.apply(compute)
        for status, instance in published:
            self._events.publish(
                status_update_event(
                    instance,
                    task_id=status.task_id,
                    state=status.state,
                    agent_id=status.agent_id,
                    message=status.message if status.message is not None else "",
                )
            )
        self._last_failures.update(failures)
        for status in statuses:
            if status.uuid is not None and status.agent_id is not None:
                self._outbox.post(calls.acknowledge(status.agent_id, status.task_id, status.uuid))
        for task_id, agent_id in kills:
            log.info("killing task %s: unknown to the scheduler", task_id)
            self._kills.kill_task(task_id, agent_id, None)
        return returned

    def _transition(
        self,
        instance: Instance,
        task: Task,
        status: TaskStatus,
        now: float,
        replacements: list[Instance],
        finals: list[Instance],
    ) -> Instance | None:
        """The instance after ``status``; None when it is to be expunged (its last
        state then goes to ``finals``, for the events)."""
        condition = condition_of(status)
        stamp = Timestamp.now()
        app = self._tracker.app_of(instance)
        new_task = attrs.evolve(
            task,
            condition=condition,
            mesos_state=status.state,
            started_at=task.started_at
            if task.started_at is not None or condition is not Condition.RUNNING
            else stamp,
            ip_addresses=status.ip_addresses or task.ip_addresses,
            healthy=status.healthy if status.healthy is not None else task.healthy,
        )
        if condition.is_terminal:
            self._kills.ended(str(task.task_id))
            if instance.goal is not Goal.RUNNING or app is None:
                finals.append(attrs.evolve(instance, condition=condition, tasks=(new_task,)))
                return None
            if condition in DELAY_WORTHY:
                self._delays.add(app, now)
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
            return apply_unreachable_strategy(updated, app, stamp, replacements, finals)
        if app is not None:
            if condition in (Condition.STARTING, Condition.RUNNING):
                self._delays.advance(app, now)
            if new_task.healthy:
                self._delays.reset(app.id)
        since = instance.since if instance.condition is condition else stamp
        return attrs.evolve(instance, condition=condition, tasks=(new_task,), since=since)
