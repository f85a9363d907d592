"""The scheduler's decisions on Mesos events, with a stand-in for the Mesos client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from marathon_core.framework import (
    MemoryStorage,
    Offer,
    Offers,
    Resource,
    TaskStatus,
    Update,
)
from marathon_core.plugins import get_plugin_host
from marathon_jobs.book import Book, JobRecord, Run
from marathon_jobs.model import parse_job
from marathon_jobs.scheduler import JobScheduler, SchedulerSettings
from marathon_jobs.tasks import Placement

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC).timestamp()


class Client:
    """Records calls, and what storage held for the runs when each call went out."""

    connected = True

    def __init__(self, book: Book) -> None:
        self.book = book
        self.calls: list[dict[str, Any]] = []
        self.stored_at_call: list[set[str]] = []

    async def call(self, call: dict[str, Any]) -> None:
        stored = await self.book.storage.get_children("runs")
        self.stored_at_call.append({e.value.decode() for e in stored.values()})
        self.calls.append(call)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["type"] == kind]


@pytest.fixture
async def scheduler() -> AsyncIterator[JobScheduler]:
    book = Book(MemoryStorage(), list)
    job = parse_job(
        {"name": "a", "command": "true", "retries": 1, "schedule": "R/2026-03-01T12:00:00Z/PT1M",
         "constraints": [["hostname", "UNIQUE"]]},
        dependent=False, now=datetime.fromtimestamp(T0, UTC),
    )  # fmt: skip
    await book.change(lambda b: ({"a": JobRecord(job)}, []))
    host = get_plugin_host()
    placement = Placement(host.constraint_operators(), host.container_runtimes())
    jobs = JobScheduler(
        book, SchedulerSettings(master="http://m:5050"), placement,
        find_master=lambda: None, clock=lambda: T0 + 1,
    )  # fmt: skip
    jobs.client = Client(book)  # type: ignore[assignment]
    jobs._reconciled = True
    async with trio.open_nursery() as nursery:
        jobs._nursery = nursery
        yield jobs
        nursery.cancel_scope.cancel()


def update(task_id: str, state: str) -> Update:
    return Update(TaskStatus(task_id, state, agent_id="S1", uuid="dXVpZA=="))


def offer(offer_id: str, agent: str = "S1", host: str = "h1") -> Offer:
    resources = tuple(
        Resource(name, "SCALAR", scalar=value, echoed={"role": "*"})
        for name, value in (("cpus", 1.0), ("mem", 1024.0), ("disk", 1024.0))
    )
    return Offer(offer_id, agent, host, resources=resources)


async def test_runs_are_stored_with_their_task_id_before_the_accept(
    scheduler: JobScheduler,
) -> None:
    await scheduler.book.store_runs([Run("a@1", "a", T0, T0 + 60), Run("a@2", "a", T0, T0 + 60)])
    await scheduler._handle_batch([Offers((offer("o1"), offer("o2", "S2", "h2")))])
    client: Any = scheduler.client
    accepts = client.of("ACCEPT")
    assert len(accepts) == 2  # hostname:UNIQUE: one run per host
    for call in accepts:
        (info,) = call["accept"]["operations"][0]["launch"]["task_infos"]
        stored = client.stored_at_call[client.calls.index(call)]
        assert any(info["task_id"]["value"] in run for run in stored)
    assert {r.state for r in scheduler.book.runs.values()} == {"launching"}


async def test_a_task_mesos_never_launched_waits_for_an_offer_again(
    scheduler: JobScheduler,
) -> None:
    run = Run("a@1", "a", T0, T0 + 60, state="launching", task_id="t1", agent_id="S1")
    await scheduler.book.store_runs([run])
    await scheduler._handle_batch([update("t1", "TASK_UNKNOWN")])
    (again,) = scheduler.book.runs.values()
    assert (again.state, again.task_id, again.attempt) == ("waiting", None, 0)


async def test_a_task_lost_after_it_ran_is_an_error_never_run_again(
    scheduler: JobScheduler,
) -> None:
    run = Run("a@1", "a", T0, T0 + 60, state="launching", task_id="t1", agent_id="S1")
    await scheduler.book.store_runs([run])
    await scheduler._handle_batch([update("t1", "TASK_RUNNING"), update("t1", "TASK_LOST")])
    assert scheduler.book.runs == {}
    assert scheduler.book.jobs["a"].stats.error_count == 1


async def test_a_failure_retries_then_success_is_counted_once(scheduler: JobScheduler) -> None:
    run = Run("a@1", "a", T0, T0 + 60, state="running", task_id="t1", agent_id="S1")
    await scheduler.book.store_runs([run])
    await scheduler._handle_batch([update("t1", "TASK_FAILED")])
    (retry,) = scheduler.book.runs.values()
    assert (retry.attempt, retry.state, retry.deadline) == (1, "waiting", None)
    retry_running = Run(retry.id, "a", T0, None, attempt=1, state="launching", task_id="t2")
    await scheduler.book.store_runs([retry_running])
    batch = [update("t2", "TASK_STARTING"), update("t2", "TASK_RUNNING"),
             update("t2", "TASK_FINISHED"), update("t2", "TASK_FINISHED")]  # fmt: skip
    await scheduler._handle_batch(batch)
    await trio.testing.wait_all_tasks_blocked()
    stats = scheduler.book.jobs["a"].stats
    assert (stats.success_count, stats.error_count) == (1, 0)
    client: Any = scheduler.client
    assert len(client.of("ACKNOWLEDGE")) == 5


async def test_a_task_of_no_run_is_killed(scheduler: JobScheduler) -> None:
    await scheduler._handle_batch([update("ct:1:0:gone:", "TASK_RUNNING")])
    client: Any = scheduler.client
    assert [c["kill"]["task_id"]["value"] for c in client.of("KILL")] == ["ct:1:0:gone:"]


async def test_attribute_constraints_count_the_job_s_runs_on_every_agent(
    scheduler: JobScheduler,
) -> None:
    """``rack:MAX_PER:1``: a run on another agent of rack r1 keeps the job off rack r1,
    from the run's stored agent fields (no offer from that agent this term)."""
    job = parse_job(
        {"name": "r", "command": "true", "schedule": "R/2026-03-01T12:00:00Z/PT1M",
         "constraints": [["rack", "MAX_PER", "1"]]},
        dependent=False, now=datetime.fromtimestamp(T0, UTC),
    )  # fmt: skip
    await scheduler.book.change(lambda b: ({"r": JobRecord(job)}, []))
    running = Run("r@0", "r", T0 - 60, None, state="running", task_id="t0", agent_id="S2",
                  agent_fields=(("hostname", "h2"), ("rack", "r1")))  # fmt: skip
    await scheduler.book.store_runs([running, Run("r@1", "r", T0, T0 + 60)])
    same_rack = attrs.evolve(offer("o1", "S1", "h1"), attributes={"rack": "r1"})
    await scheduler._handle_batch([Offers((same_rack,))])
    client: Any = scheduler.client
    assert client.of("ACCEPT") == [] and len(client.of("DECLINE")) == 1
    other_rack = attrs.evolve(offer("o2", "S3", "h3"), attributes={"rack": "r2"})
    await scheduler._handle_batch([Offers((other_rack,))])
    assert len(client.of("ACCEPT")) == 1
    launched = scheduler.book.runs["r@1"]
    assert launched.agent_id == "S3"
    assert dict(launched.agent_fields) == {"hostname": "h3", "rack": "r2"}
    stored = await scheduler.book.storage.get_children("runs")
    assert launched in [Run.from_json(json.loads(e.value)) for e in stored.values()]
