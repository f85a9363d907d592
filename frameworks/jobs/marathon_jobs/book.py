"""The jobs and their runs, kept in memory by the leader and written through to storage.

Every change is one storage commit (fenced by the election) made *before* memory
changes, so what the leader knows is always what a successor will read:

* ``jobs/<name>``: the definition, its counts, the number of its next schedule slot
  (``cursor``) and, for a dependent job, the parents that succeeded since it last ran.
* ``runs/<id>``: one run of a job that is due or under way: created in the same commit
  that moves the job's cursor past its slot, updated with the task id *before* the task
  is launched, deleted in the commit that counts its outcome.

A slot is therefore handled exactly once: it became a run, or was counted as missed
(``missedCount``, with a log line) when no leader could start it within ``epsilon``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import attrs
import trio

from marathon_core.framework import Create, Delete, Op, Put, Storage, key
from marathon_jobs.model import Job, JobStats, iso, job_from_json

__all__ = ["Book", "JobRecord", "Run", "task_id_of"]

log = logging.getLogger(__name__)

#: Missed slots of one job counted one by one before the rest are counted at once.
MISSED_ONE_BY_ONE = 1000
FRAMEWORK_ID_KEY = "framework-id"


def _pairs(value: Iterable[Sequence[str]]) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), str(v)) for k, v in value)


@attrs.frozen
class Run:
    """One run of a job, from its slot until its outcome is counted."""

    id: str
    job: str
    #: When it was due (epoch seconds): its schedule slot, or when it was asked for.
    due: float
    #: Not launched by then, it is missed; None: no deadline (a retry, a run asked for).
    deadline: float | None
    attempt: int = 0
    #: ``waiting`` (for an offer), ``launching`` (task id stored, ACCEPT sent or about to
    #: be), ``running`` (Mesos said so), ``killing`` (a kill was asked for).
    state: str = "waiting"
    task_id: str | None = None
    agent_id: str | None = None
    cause: str = "schedule"
    #: The agent's hostname, fault domain and attributes (``tasks.agent_fields``), stored
    #: with the launch: constraints on any field count the run where it is, also for a
    #: successor that has no offer from that agent yet.
    agent_fields: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_pairs)

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Run:
        return cls(**data)


def task_id_of(run: Run) -> str:
    """Chronos's task id shape, ``ct:<due ms>:<attempt>:<job>:``."""
    return f"ct:{round(run.due * 1000)}:{run.attempt}:{quote(run.job, safe=' #._-')}:"


@attrs.frozen
class JobRecord:
    job: Job
    stats: JobStats = attrs.field(factory=JobStats)
    cursor: int = 0
    satisfied: frozenset[str] = frozenset()

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "job": self.job.to_json(),
                "stats": self.stats.to_json(),
                "cursor": self.cursor,
                "satisfied": sorted(self.satisfied),
            }
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> JobRecord:
        raw = json.loads(data)
        return cls(
            job=job_from_json(raw["job"]),
            stats=JobStats.from_json(raw["stats"]),
            cursor=int(raw["cursor"]),
            satisfied=frozenset(raw["satisfied"]),
        )


def _job_key(name: str) -> str:
    return key("jobs", name)


def _run_key(run_id: str) -> str:
    return key("runs", run_id)


class Book:
    """The leader's jobs and runs; every change goes through :meth:`change`."""

    def __init__(self, storage: Storage, fence: Callable[[], list[Op]]) -> None:
        self.storage = storage
        self._fence = fence
        self.jobs: dict[str, JobRecord] = {}
        self.runs: dict[str, Run] = {}
        #: Task id -> run id, for the runs that have a task.
        self._by_task: dict[str, str] = {}
        self._lock = trio.Lock()
        #: Set whenever runs are added, so the launcher looks at offers again.
        self.runs_added = trio.Event()

    async def load(self) -> None:
        jobs = await self.storage.get_children("jobs") if await self._exists("jobs") else {}
        runs = await self.storage.get_children("runs") if await self._exists("runs") else {}
        self.jobs = {}
        for entry in jobs.values():
            record = JobRecord.from_bytes(entry.value)
            self.jobs[record.job.name] = record
        self.runs, self._by_task = {}, {}
        for entry in runs.values():
            self._keep(Run.from_json(json.loads(entry.value)))
        log.info("loaded %d jobs and %d runs under way", len(self.jobs), len(self.runs))

    async def _exists(self, prefix: str) -> bool:
        return prefix in await self.storage.children("")

    async def framework_id(self) -> str | None:
        entry = await self.storage.get(FRAMEWORK_ID_KEY)
        return entry.value.decode() if entry is not None else None

    async def store_framework_id(self, framework_id: str) -> None:
        entry = await self.storage.get(FRAMEWORK_ID_KEY)
        op: Op = (
            Create(FRAMEWORK_ID_KEY, framework_id.encode())
            if entry is None
            else Put(FRAMEWORK_ID_KEY, framework_id.encode(), entry.version)
        )
        await self.storage.commit([*self._fence(), op])

    async def confirm_leading(self) -> None:
        """Raise :class:`FencedWriteError` unless this process still leads, asked of the
        store itself (a fenced commit of nothing else): a leader that slept through its
        session must not subscribe, or it would take the framework from its successor."""
        fence = self._fence()
        if fence:
            await self.storage.commit(fence)

    def by_task(self, task_id: str) -> Run | None:
        run_id = self._by_task.get(task_id)
        return self.runs.get(run_id) if run_id is not None else None

    def children_of(self, name: str) -> list[JobRecord]:
        return [r for r in self.jobs.values() if r.job.parents and name in r.job.parents]

    # -- the one way to change anything ----------------------------------------------

    async def change(
        self,
        decide: Callable[[Book], tuple[Mapping[str, JobRecord | None], Iterable[Run | str]]],
    ) -> None:
        """Store what ``decide`` returns, then keep it: ``(jobs by name, None to delete;
        runs to put, or ids of runs to delete)``. ``decide`` reads the book under the lock."""
        async with self._lock:
            jobs, runs = decide(self)
            runs = list(runs)
            ops: list[Op] = list(self._fence())
            for name, record in jobs.items():
                if record is None:
                    if name in self.jobs:
                        ops.append(Delete(_job_key(name)))
                elif name in self.jobs:
                    ops.append(Put(_job_key(name), record.to_bytes()))
                else:
                    ops.append(Create(_job_key(name), record.to_bytes()))
            for item in runs:
                if isinstance(item, str):
                    if item in self.runs:
                        ops.append(Delete(_run_key(item)))
                elif item.id in self.runs:
                    ops.append(Put(_run_key(item.id), json.dumps(item.to_json()).encode()))
                else:
                    ops.append(Create(_run_key(item.id), json.dumps(item.to_json()).encode()))
            if len(ops) > len(self._fence()):
                await self.storage.commit(ops)
            added = False
            for name, record in jobs.items():
                if record is None:
                    self.jobs.pop(name, None)
                else:
                    self.jobs[name] = record
            for item in runs:
                if isinstance(item, str):
                    self._forget(item)
                else:
                    added |= item.state == "waiting"
                    self._keep(item)
            if added:
                self.runs_added.set()
                self.runs_added = trio.Event()

    async def store_runs(self, runs: Sequence[Run | str]) -> None:
        """Put runs (or delete those given by id), nothing else."""
        await self.change(lambda book: ({}, runs))

    def _keep(self, run: Run) -> None:
        self._forget(run.id)
        self.runs[run.id] = run
        if run.task_id is not None:
            self._by_task[run.task_id] = run.id

    def _forget(self, run_id: str) -> None:
        old = self.runs.pop(run_id, None)
        if old is not None and old.task_id is not None:
            self._by_task.pop(old.task_id, None)

    # -- decisions (pure: they read the book and return what to store) -----------------

    def due(self, now: float) -> tuple[dict[str, JobRecord], list[Run]]:
        """Runs for the slots that came due, and counts of the ones missed."""
        jobs: dict[str, JobRecord] = {}
        runs: list[Run] = []
        moment = datetime.fromtimestamp(now, UTC)
        for record in self.jobs.values():
            schedule = record.job.parsed_schedule()
            if schedule is None:
                continue
            epsilon = record.job.epsilon_seconds
            cursor, stats = record.cursor, record.stats
            missed, jumped = 0, False
            while (slot := schedule.slot(cursor)) is not None and slot <= moment:
                at = slot.timestamp()
                if missed == MISSED_ONE_BY_ONE and not jumped:  # the rest at once
                    jumped = True
                    skip_to = schedule.first_index_after(datetime.fromtimestamp(now - epsilon, UTC))
                    if schedule.repeats is not None:
                        skip_to = min(skip_to, schedule.repeats)
                    missed += max(0, skip_to - cursor)
                    cursor = max(cursor, skip_to)
                    continue
                if record.job.disabled:
                    log.info(
                        "job %s: slot %s skipped, the job is disabled", record.job.name, iso(slot)
                    )
                elif now - at <= epsilon:
                    run_id = f"{record.job.name}@{round(at * 1000)}"
                    runs.append(Run(run_id, record.job.name, at, at + epsilon))
                else:
                    missed += 1
                    if missed <= 10:
                        log.warning(
                            "job %s: slot %s missed (%.1f s late, epsilon %s)",
                            record.job.name, iso(slot), now - at, record.job.epsilon,
                        )  # fmt: skip
                cursor += 1
            if cursor != record.cursor:
                if missed:
                    log.warning("job %s: %d slots missed", record.job.name, missed)
                    stats = attrs.evolve(
                        stats, missed_count=stats.missed_count + missed, last_missed=iso(moment)
                    )
                jobs[record.job.name] = attrs.evolve(record, cursor=cursor, stats=stats)
        return jobs, runs

    def expired(self, now: float) -> tuple[dict[str, JobRecord], list[str]]:
        """Runs still waiting past their deadline: counted as missed."""
        jobs: dict[str, JobRecord] = {}
        gone: list[str] = []
        for run in self.runs.values():
            if run.state != "waiting" or run.deadline is None or now <= run.deadline:
                continue
            record = jobs.get(run.job) or self.jobs.get(run.job)
            gone.append(run.id)
            if record is None:
                continue
            log.warning(
                "job %s: run due %s missed: no offer fit within epsilon %s",
                run.job, iso(datetime.fromtimestamp(run.due, UTC)), record.job.epsilon,
            )  # fmt: skip
            stats = record.stats
            jobs[run.job] = attrs.evolve(
                record,
                stats=attrs.evolve(
                    stats,
                    missed_count=stats.missed_count + 1,
                    last_missed=iso(datetime.fromtimestamp(now, UTC)),
                ),
            )
        return jobs, gone

    def deleted(self, name: str) -> tuple[dict[str, JobRecord | None], list[Run | str]]:
        """Delete a job and its runs; its dependents keep running, rewired as Chronos does.

        A deleted dependent job's parents take its place among its children's parents. A
        deleted scheduled job's children that had no other parent take over its schedule
        (and where it stands), as Chronos turns them into scheduled jobs; a child with
        other parents only loses the edge (Chronos would drop those parents too).
        """
        record = self.jobs.get(name)
        if record is None:
            return {}, []
        changes: dict[str, JobRecord | None] = {name: None}
        for child in self.children_of(name):
            assert child.job.parents is not None
            rest = tuple(p for p in child.job.parents if p != name)
            satisfied = child.satisfied - {name}
            if record.job.parents is not None:
                parents = tuple(dict.fromkeys((*rest, *record.job.parents)))
                job = attrs.evolve(child.job, parents=parents)
                changes[job.name] = attrs.evolve(child, job=job, satisfied=satisfied)
                log.info("job %s: now runs after %s (%s deleted)", job.name, parents, name)
            elif rest:
                job = attrs.evolve(child.job, parents=rest)
                changes[job.name] = attrs.evolve(child, job=job, satisfied=satisfied)
                log.info("job %s: now runs after %s (%s deleted)", job.name, rest, name)
            else:
                job = attrs.evolve(
                    child.job, parents=None, schedule=record.job.schedule,
                    schedule_time_zone=record.job.schedule_time_zone,
                )  # fmt: skip
                changes[job.name] = attrs.evolve(
                    child, job=job, cursor=record.cursor, satisfied=frozenset()
                )
                log.info("job %s: takes over the schedule of %s (deleted)", job.name, name)
        return changes, [r.id for r in self.runs.values() if r.job == name]

    def succeeded(self, run: Run, now: float) -> tuple[dict[str, JobRecord], list[Run | str]]:
        """Count a success; start the dependents whose parents have all succeeded."""
        jobs: dict[str, JobRecord] = {}
        runs: list[Run | str] = [run.id]
        record = self.jobs.get(run.job)
        if record is None:
            return jobs, runs
        stamp = iso(datetime.fromtimestamp(now, UTC))
        stats = attrs.evolve(
            record.stats,
            success_count=record.stats.success_count + 1,
            errors_since_last_success=0,
            last_success=stamp,
        )
        jobs[run.job] = attrs.evolve(record, stats=stats)
        for child in self.children_of(run.job):
            assert child.job.parents is not None
            satisfied = child.satisfied | {run.job}
            if satisfied >= set(child.job.parents):
                satisfied = frozenset()
                if child.job.disabled:
                    log.info(
                        "job %s: not started after its parents, it is disabled", child.job.name
                    )
                else:
                    runs.append(
                        Run(
                            f"{child.job.name}@{round(now * 1000)}",
                            child.job.name,
                            now,
                            now + child.job.epsilon_seconds,
                            cause="dependency",
                        )
                    )
            jobs[child.job.name] = attrs.evolve(
                jobs.get(child.job.name, child), satisfied=satisfied
            )
        return jobs, runs

    def failed(
        self, run: Run, now: float, *, retry: bool, why: str
    ) -> tuple[dict[str, JobRecord], list[Run | str]]:
        """A failed attempt: try again while ``retries`` allow, else count an error."""
        record = self.jobs.get(run.job)
        if record is None:
            return {}, [run.id]
        if retry and run.attempt < record.job.retries:
            log.info("job %s: attempt %d failed (%s); retrying", run.job, run.attempt, why)
            again = attrs.evolve(
                run, attempt=run.attempt + 1, state="waiting", task_id=None, agent_id=None,
                agent_fields=(), deadline=None,
            )  # fmt: skip
            return {}, [again]
        log.warning("job %s: run due %s failed (%s)", run.job, iso(_utc(run.due)), why)
        stats = attrs.evolve(
            record.stats,
            error_count=record.stats.error_count + 1,
            errors_since_last_success=record.stats.errors_since_last_success + 1,
            last_error=iso(_utc(now)),
        )
        return {run.job: attrs.evolve(record, stats=stats)}, [run.id]


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC) if math.isfinite(seconds) else datetime.max
