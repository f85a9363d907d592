"""The book's decisions: every slot becomes a run or a missed count, once."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

from marathon_core.framework import MemoryStorage
from marathon_jobs.book import Book, JobRecord, Run
from marathon_jobs.model import parse_job

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC).timestamp()


def job(name: str, **fields: object) -> JobRecord:
    data = {"name": name, "command": "true", "schedule": "R/2026-03-01T12:00:00Z/PT10S",
            "epsilon": "PT5S", **fields}  # fmt: skip
    dependent = "parents" in data
    if dependent:
        del data["schedule"]
    parsed = parse_job(data, dependent=dependent, now=datetime.fromtimestamp(T0, UTC))
    return JobRecord(parsed)


async def book_with(*records: JobRecord) -> Book:
    book = Book(MemoryStorage(), list)
    await book.change(lambda b: ({r.job.name: r for r in records}, []))
    return book


async def test_each_slot_becomes_one_run_stored_with_the_cursor() -> None:
    book = await book_with(job("a"))
    await book.change(partial(Book.due, now=T0 + 21))
    assert [r.due - T0 for r in book.runs.values()] == [20]
    assert book.jobs["a"].stats.missed_count == 2  # 21 and 11 s late, epsilon 5 s
    await book.change(partial(Book.due, now=T0 + 24))  # again: nothing new
    assert len(book.runs) == 1
    reread = Book(book.storage, list)
    await reread.load()
    assert reread.runs == book.runs and reread.jobs["a"].cursor == 3


async def test_a_run_not_launched_within_epsilon_is_missed() -> None:
    book = await book_with(job("a"))
    await book.change(partial(Book.due, now=T0 + 1))
    await book.change(partial(Book.expired, now=T0 + 4))
    assert len(book.runs) == 1
    await book.change(partial(Book.expired, now=T0 + 6))
    assert book.runs == {}
    assert book.jobs["a"].stats.missed_count == 1


async def test_a_long_outage_counts_every_missed_slot_without_walking_them_all() -> None:
    book = await book_with(job("a"))
    await book.change(partial(Book.due, now=T0 + 10 * 100_000 + 1))
    assert book.jobs["a"].stats.missed_count == 100_000
    assert [r.due - T0 for r in book.runs.values()] == [1_000_000]


async def test_disabled_jobs_skip_their_slots() -> None:
    book = await book_with(job("a", disabled=True))
    await book.change(partial(Book.due, now=T0 + 1))
    assert book.runs == {} and book.jobs["a"].cursor == 1
    assert book.jobs["a"].stats.missed_count == 0


async def test_failures_retry_then_count_an_error() -> None:
    book = await book_with(job("a", retries=1))
    run = Run("a@1", "a", T0, None, state="running", task_id="t")
    await book.store_runs([run])
    await book.change(lambda b: b.failed(run, T0 + 1, retry=True, why="TASK_FAILED"))
    (again,) = book.runs.values()
    assert again.attempt == 1 and again.state == "waiting" and again.task_id is None
    await book.change(lambda b: b.failed(again, T0 + 2, retry=True, why="TASK_FAILED"))
    assert book.runs == {}
    stats = book.jobs["a"].stats
    assert (stats.error_count, stats.errors_since_last_success) == (1, 1)
    assert stats.last_error.startswith("2026-03-01T12:00:02")


async def test_dependents_run_after_all_parents_succeeded() -> None:
    book = await book_with(job("a"), job("b"), job("c", parents=["a", "b"]))
    for parent in ("a", "b", "a"):
        run = Run(f"{parent}@1", parent, T0, None, state="running", task_id=parent)
        await book.store_runs([run])
        await book.change(lambda b, run=run: b.succeeded(run, T0 + 1))
        children = [r for r in book.runs.values() if r.job == "c"]
        if parent == "a" and not children:
            assert book.jobs["c"].satisfied == {"a"}
    assert [r.cause for r in book.runs.values()] == ["dependency"]
    assert book.jobs["c"].satisfied == {"a"}  # the second success of a counts for next time
    assert book.jobs["a"].stats.success_count == 2
