"""The leader's work: subscribe to Mesos, start due runs on offers, count outcomes.

Runs only while this process leads (inside the election's ``lead``); losing
leadership cancels it, and the next leader starts it again from storage:

1. subscribe with the stored framework id (Mesos keeps our tasks for
   ``--failover_timeout``), then reconcile every run that has a task id: a task still
   running is adopted, a finished one counted, one Mesos never launched is started
   again within ``epsilon`` or counted as missed (and every minute the runs' tasks are
   asked about again, so an answer the master dropped does not leave a run hanging);
2. every tick: runs for the slots that came due (stored first), missed counts for
   those too late, and waiting runs past their deadline counted as missed;
3. offers: waiting runs, oldest first, each stored as ``launching`` with its task id
   before the ACCEPT that launches it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import attrs
import trio

from marathon_core.contracts.placement import OfferView
from marathon_core.framework import (
    CallError,
    Disconnected,
    MesosClient,
    MesosEvent,
    Offer,
    Offers,
    Rescind,
    Subscribed,
    TaskStatus,
    Update,
    calls,
)
from marathon_jobs.book import Book, Run, task_id_of
from marathon_jobs.tasks import (
    Placement,
    Resources,
    agent_fields,
    agent_view,
    fits,
    placed_of,
    stored_view,
    task_info,
)

__all__ = ["JobScheduler", "SchedulerSettings"]

log = logging.getLogger(__name__)

TERMINAL = {
    "TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED",
    "TASK_GONE", "TASK_GONE_BY_OPERATOR", "TASK_UNKNOWN", "TASK_UNREACHABLE",
}  # fmt: skip
STARTED = {"TASK_STAGING", "TASK_STARTING", "TASK_RUNNING"}
#: Seconds between two explicit reconciliations of the runs' tasks.
RECONCILE_EVERY = 60.0
#: Events handled together at most (see :meth:`JobScheduler._handle_batch`).
MAX_BATCH = 500
#: Mesos does not know whether the task ran: never start the run again (at most once).
OUTCOME_UNKNOWN = {"TASK_LOST", "TASK_UNREACHABLE", "TASK_GONE", "TASK_GONE_BY_OPERATOR"}
#: Answers for a task the master never launched (reconciliation, or a launch refused).
NEVER_LAUNCHED = {"TASK_UNKNOWN", "TASK_DROPPED", "TASK_ERROR"}


@attrs.frozen
class SchedulerSettings:
    master: str
    framework_name: str = "chronos"
    user: str = "root"
    role: str = "*"
    hostname: str = "localhost"
    failover_timeout: float = 604800.0
    webui_url: str | None = None
    tick: float = 0.25
    heartbeat_interval: float = 15.0


class JobScheduler:
    """One leadership term's Mesos framework over the :class:`Book`."""

    def __init__(
        self,
        book: Book,
        settings: SchedulerSettings,
        placement: Placement,
        *,
        find_master: Callable[[], Any],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.book = book
        self.settings = settings
        self.placement = placement
        self.clock = clock

        async def find_leading_master() -> str:
            await book.confirm_leading()
            master: str = await find_master()
            return master

        send, self._events = trio.open_memory_channel[MesosEvent](1000)
        self.client = MesosClient(
            settings.master,
            find_master=find_leading_master,
            framework_info=self._framework_info,
            load_framework_id=book.framework_id,
            store_framework_id=book.store_framework_id,
            events=send,
            heartbeat_interval=settings.heartbeat_interval,
        )
        self._offers: dict[str, Offer] = {}
        #: What offers told of each agent (for runs stored without their agent's fields).
        self._agents: dict[str, tuple[tuple[str, str], ...]] = {}
        self._suppressed = False
        #: Runs launched (ACCEPT sent) in this term; the rest of ``launching`` wait for
        #: reconciliation before anything else happens to them.
        self._reconciled = False
        #: When the tasks of the runs under way were last asked about (trio clock).
        self._asked_at = -math.inf
        self.subscribed = trio.Event()
        self._nursery: trio.Nursery

    def _framework_info(self, framework_id: str | None) -> dict[str, Any]:
        info: dict[str, Any] = {
            "user": self.settings.user,
            "name": self.settings.framework_name,
            "roles": [self.settings.role],
            "failover_timeout": self.settings.failover_timeout,
            "checkpoint": True,
            "hostname": self.settings.hostname,
            "capabilities": [{"type": "MULTI_ROLE"}, {"type": "PARTITION_AWARE"}],
        }
        if self.settings.webui_url:
            info["webui_url"] = self.settings.webui_url
        if framework_id is not None:
            info["id"] = {"value": framework_id}
        return info

    async def run(self) -> None:
        """Until cancelled (leadership lost)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self.client.run)
            nursery.start_soon(self._ticks)
            while True:
                batch = [await self._events.receive()]
                while len(batch) < MAX_BATCH:
                    try:
                        batch.append(self._events.receive_nowait())
                    except trio.WouldBlock:
                        break
                await self._handle_batch(batch)

    async def _handle_batch(self, batch: list[MesosEvent]) -> None:
        """Events in order; tasks that started are stored together, in one commit.

        Why: a thousand runs due at once bring thousands of STARTING/RUNNING updates, and
        one commit each (synchronous on SQLite, a round trip on ZooKeeper) held them up.
        """
        started: dict[str, Run] = {}
        acks: list[TaskStatus] = []
        for event in batch:
            if isinstance(event, Update) and event.status.state in STARTED:
                status = event.status
                run = self.book.by_task(status.task_id)
                if run is not None:
                    run = started.get(run.id, run)
                    if run.state == "launching" or (run.agent_id is None and status.agent_id):
                        started[run.id] = attrs.evolve(
                            run, state="running", agent_id=status.agent_id or run.agent_id
                        )
                    acks.append(status)
                    continue
            await self._store_started(started, acks)
            await self._handle(event)
        await self._store_started(started, acks)

    async def _store_started(self, started: dict[str, Run], acks: list[TaskStatus]) -> None:
        if started:
            await self.book.store_runs(list(started.values()))
            started.clear()
        for status in acks:
            self._acknowledge(status)
        acks.clear()

    def _acknowledge(self, status: TaskStatus) -> None:
        """After what the update says is stored: Mesos resends an update not acknowledged."""
        if status.uuid is not None and status.agent_id is not None:
            call = calls.acknowledge(status.agent_id, status.task_id, status.uuid)
            self._nursery.start_soon(self._call, call)

    # -- time --------------------------------------------------------------------------

    async def _ticks(self) -> None:
        while True:
            now = self.clock()
            if self.client.connected and trio.current_time() - self._asked_at > RECONCILE_EVERY:
                await self._ask_about_runs()
            await self.book.change(partial(Book.due, now=now))
            await self.book.change(partial(Book.expired, now=now))
            if self.client.connected and self._reconciled:
                waiting = any(r.state == "waiting" for r in self.book.runs.values())
                if waiting and self._suppressed:
                    await self._call(calls.revive([self.settings.role]))
                    self._suppressed = False
                if waiting and self._offers:
                    await self._use_offers()
            with trio.move_on_after(self.settings.tick):
                await self.book.runs_added.wait()

    # -- events ------------------------------------------------------------------------

    async def _handle(self, event: MesosEvent) -> None:
        if isinstance(event, Subscribed):
            self._offers.clear()
            await self._reconcile()
            self.subscribed.set()
        elif isinstance(event, Offers):
            for offer in event.offers:
                self._offers[offer.id] = offer
            if self._reconciled:
                await self._use_offers()
        elif isinstance(event, Rescind):
            self._offers.pop(event.offer_id, None)
        elif isinstance(event, Update):
            await self._status(event.status)
        elif isinstance(event, Disconnected):
            self._offers.clear()
            self._reconciled = False

    async def _ask_about_runs(self) -> None:
        """Explicit reconciliation of every run's task: an answer the master dropped (an
        agent not yet back after a master failover) or a lost update is asked for again,
        so no run stays ``launching`` or ``running`` for ever."""
        self._asked_at = trio.current_time()
        known = [(r.task_id, r.agent_id) for r in self.book.runs.values() if r.task_id is not None]
        if known:
            log.info("reconciling %d job tasks", len(known))
            await self._call(calls.reconcile(known))

    async def _reconcile(self) -> None:
        """Ask for every task we may have; runs still ``launching`` wait for the answer."""
        await self._ask_about_runs()
        await self._call(calls.reconcile())  # implicit: tasks of deleted jobs show up too
        self._reconciled = True
        self._suppressed = False
        await self._call(calls.revive([self.settings.role]))

    async def _status(self, status: TaskStatus) -> None:
        """An update of a task that is not (or no longer) a run's, or a terminal one."""
        await self._outcome(status)
        self._acknowledge(status)

    async def _outcome(self, status: TaskStatus) -> None:
        run = self.book.by_task(status.task_id)
        state = status.state
        if run is None:
            if state not in TERMINAL and status.task_id.startswith("ct:"):
                log.warning("killing task %s of no run (its job was deleted)", status.task_id)
                await self._call(calls.kill(status.task_id, agent_id=status.agent_id))
            return
        now = self.clock()
        why = f"{state}" + (f": {status.message}" if status.message else "")
        if state == "TASK_FINISHED":
            await self.book.change(lambda book: book.succeeded(run, now))
        elif state in NEVER_LAUNCHED and run.state == "launching":
            # Never ran: start it again, within the run's deadline.
            log.info("job %s: task %s was not launched (%s)", run.job, run.task_id, why)
            again = attrs.evolve(run, state="waiting", task_id=None, agent_id=None, agent_fields=())
            await self.book.store_runs([again])
        elif state in OUTCOME_UNKNOWN or run.state == "killing":
            await self.book.change(lambda book: book.failed(run, now, retry=False, why=why))
        elif state in TERMINAL:
            await self.book.change(lambda book: book.failed(run, now, retry=True, why=why))

    # -- offers ------------------------------------------------------------------------

    async def _use_offers(self) -> None:
        offers, self._offers = list(self._offers.values()), {}
        for offer in offers:
            self._agents[offer.agent_id] = agent_fields(agent_view(offer))
        waiting = sorted(
            (r for r in self.book.runs.values() if r.state == "waiting"), key=lambda r: r.due
        )
        # Per job, the agents its runs occupy (earliest first) and its runs under way:
        # what its constraints count, as Marathon counts an app's instances.
        placed: dict[str, list[OfferView]] = {}
        under_way: dict[str, int] = {}
        for run in sorted(self.book.runs.values(), key=lambda r: r.due):
            under_way[run.job] = under_way.get(run.job, 0) + 1
            view = self._agent_of(run)
            if view is not None:
                placed.setdefault(run.job, []).append(view)
        for offer in offers:
            free = Resources.of(offer, self.settings.role)
            here = agent_view(offer)
            chosen: list[Run] = []
            for run in list(waiting):
                record = self.book.jobs.get(run.job)
                if record is None:
                    waiting.remove(run)
                    continue
                spots = placed_of(record.job, placed.get(run.job, []), under_way[run.job])
                if not fits(record.job, offer, self.placement, spots) or not free.take(record.job):
                    continue
                waiting.remove(run)
                launching = attrs.evolve(
                    run,
                    state="launching",
                    agent_id=offer.agent_id,
                    agent_fields=self._agents[offer.agent_id],
                )
                launching = attrs.evolve(launching, task_id=task_id_of(launching))
                chosen.append(launching)
                placed.setdefault(run.job, []).append(here)
            if not chosen:
                await self._call(calls.decline([offer.id], refuse_seconds=5.0))
                continue
            infos = []
            for launching in chosen:
                job = self.book.jobs[launching.job].job
                infos.append(task_info(launching, job, offer, self.placement))
            # Stored before launched: a successor finds these runs and asks Mesos about them.
            await self.book.store_runs(chosen)
            log.info("launching %d job tasks on %s", len(chosen), offer.hostname)
            if not await self._call(calls.accept([offer.id], infos)):
                # Launched or not: Mesos tells, and NEVER_LAUNCHED sends them back to waiting.
                tasks = [(r.task_id, r.agent_id) for r in chosen if r.task_id is not None]
                await self._call(calls.reconcile(tasks))
        if not waiting and not self._suppressed:
            await self._call(calls.suppress([self.settings.role]))
            self._suppressed = True

    def _agent_of(self, run: Run) -> OfferView | None:
        """The agent a run occupies, from what the run stored or, for a run stored without
        it, from this term's offers; None while unknown (or not placed)."""
        if run.agent_id is None:
            return None
        fields = run.agent_fields or self._agents.get(run.agent_id)
        return stored_view(run.agent_id, fields) if fields else None

    async def _call(self, call: dict[str, Any]) -> bool:
        try:
            await self.client.call(call)
        except CallError as exc:
            log.warning("Mesos call failed: %s", exc)
            return False
        return True

    async def kill_job_tasks(self, name: str) -> int:
        """Kill the job's tasks (their runs count as errors, not retried) and drop the
        runs still waiting; how many tasks were asked to die."""
        killing = [r for r in self.book.runs.values() if r.job == name and r.task_id]
        waiting = [r.id for r in self.book.runs.values() if r.job == name and not r.task_id]
        marked = [attrs.evolve(r, state="killing") for r in killing]
        await self.book.store_runs([*marked, *waiting])
        if waiting:
            log.info("job %s: %d waiting runs dropped by a kill", name, len(waiting))
        for run in killing:
            assert run.task_id is not None
            await self._call(calls.kill(run.task_id, agent_id=run.agent_id))
        return len(killing)
