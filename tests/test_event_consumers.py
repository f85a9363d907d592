"""Consumers run by ``EventBus.follow``: one that raises or falls behind never ends the
nursery it runs in (in the server: the process, or a leadership term); it is restarted
or resynced, and says so in the log and in the bus's statistics."""

from __future__ import annotations

import logging
from functools import partial

import pytest
import trio
import trio.testing

from marathon_core.contracts.events import ConsumerStatistics
from marathon_core.events import BusSubscription, EventBus
from marathon_core.model.events import make_event


async def wait_until(condition: object) -> None:
    with trio.fail_after(60):
        while not condition():  # type: ignore[operator]
            await trio.sleep(0.01)


async def test_a_consumer_that_raises_is_restarted_and_the_term_goes_on(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    bus = EventBus(clock=trio.current_time)
    seen: list[int] = []

    async def consume(subscription: BusSubscription) -> None:
        async for event in subscription:
            seen.append(event.payload["n"])
            if event.event_type == "boom":
                raise ValueError(f"bug on event {event.payload['n']}")

    term_still_running = False
    with caplog.at_level(logging.ERROR, logger="marathon_core.events"):
        async with trio.open_nursery() as term:  # stands in for a leadership term
            await term.start(bus.follow, "flaky", consume)
            for n, kind in enumerate(["ok", "boom", "ok", "boom", "ok"]):
                bus.publish(make_event(kind, n=n))
                await trio.sleep(1)  # longer than the restart pauses (0.1 s, then 0.2 s)
            await trio.sleep(1)
            term_still_running = True
            term.cancel_scope.cancel()
    assert term_still_running
    # Each restart was over before the next event came, so none was missed.
    assert seen == [0, 1, 2, 3, 4]
    assert bus.statistics().consumers == {"flaky": ConsumerStatistics(resyncs=0, restarts=2)}
    failures = [r for r in caplog.records if "event consumer flaky failed" in r.getMessage()]
    assert len(failures) == 2 and failures[0].exc_info is not None
    assert "restart 2" in failures[1].getMessage()


async def test_a_consumer_that_keeps_failing_backs_off(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = EventBus(clock=trio.current_time)

    async def consume(subscription: BusSubscription) -> None:
        raise RuntimeError("broken from the start")

    with trio.move_on_after(10):
        await bus.follow("broken", consume)
    # Pauses 0.1, 0.2, 0.4, ... 6.4 s: 7 restarts fit in 10 s, not a busy loop.
    assert bus.statistics().consumers["broken"].restarts == 7


async def test_a_consumer_that_falls_behind_is_resynced_and_the_term_goes_on(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    bus = EventBus(clock=trio.current_time)
    seen: list[int] = []
    runs = 0

    async def consume(subscription: BusSubscription) -> None:
        nonlocal runs
        runs += 1
        async for event in subscription:
            seen.append(event.payload["n"])
            if event.payload["n"] == 0:
                await trio.sleep_forever()  # stuck in its own work: falls behind

    term_still_running = False
    with caplog.at_level(logging.ERROR, logger="marathon_core.events"):
        async with trio.open_nursery() as term:
            await term.start(partial(bus.follow, "stuck", consume, max_outstanding=4, max_lag=1.0))
            for n in range(10):  # a burst: it keeps the first, the rest pile up
                bus.publish(make_event("tick", n=n))
            await trio.sleep(2)
            bus.publish(make_event("tick", n=10))  # now 10 unread, the oldest 2 s old
            await wait_until(lambda: runs == 2)
            bus.publish(make_event("tick", n=11))  # the fresh subscription gets this one
            await wait_until(lambda: seen[-1] == 11)
            term_still_running = True
            term.cancel_scope.cancel()
    assert term_still_running
    assert seen == [0, 11]  # 1..10 were missed, and it was told so
    stats = bus.statistics()
    assert stats.consumers == {"stuck": ConsumerStatistics(resyncs=1, restarts=0)}
    assert stats.dropped_subscribers == 1
    messages = [r.getMessage() for r in caplog.records]
    assert any("event consumer stuck fell behind" in m and "resync 1" in m for m in messages)


async def test_a_consumer_reading_after_it_was_dropped_is_resynced_not_restarted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A slow consumer that reads again just as it is dropped gets SubscriberTooSlow
    itself: that is falling behind too, not a failure."""
    bus = EventBus(clock=trio.current_time)
    runs = 0

    async def consume(subscription: BusSubscription) -> None:
        nonlocal runs
        runs += 1
        with trio.CancelScope(shield=True):  # deaf to the resync's cancellation
            while runs == 1 and not subscription.dropped:
                await trio.sleep(0.5)
        await subscription.receive()

    async with trio.open_nursery() as term:
        await term.start(partial(bus.follow, "slow", consume, max_outstanding=2, max_lag=1.0))
        for n in range(5):
            bus.publish(make_event("tick", n=n))
        await trio.sleep(1.5)
        bus.publish(make_event("tick", n=5))
        await wait_until(lambda: runs == 2)
        term.cancel_scope.cancel()
    assert bus.statistics().consumers["slow"] == ConsumerStatistics(resyncs=1, restarts=0)


async def test_a_consumer_that_returns_ends_its_follow() -> None:
    bus = EventBus()

    async def consume(subscription: BusSubscription) -> None:
        await subscription.receive()

    async with trio.open_nursery() as nursery:
        await nursery.start(bus.follow, "once", consume)
        bus.publish(make_event("tick"))
    assert bus.statistics().subscribers == 0
    assert bus.statistics().consumers["once"] == ConsumerStatistics()
