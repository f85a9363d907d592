"""The event bus never waits for a subscriber, drops the stopped ones and replays history."""

from __future__ import annotations

import logging
import re

import pytest
import trio

from marathon_core.events import BusSubscription, EventBus, SubscriberTooSlow
from marathon_core.model.events import make_event


def test_events_carry_type_and_marathon_timestamp() -> None:
    event = make_event("deployment_success", id="d1")
    assert event["eventType"] == "deployment_success"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["timestamp"])


async def test_subscribers_receive_the_types_they_asked_for_in_order() -> None:
    bus = EventBus()
    with bus.subscribe() as every, bus.subscribe(event_types={"b"}) as only_b:
        for kind in "abab":
            bus.publish(make_event(kind))
        got_all = [(await anext(aiter(every))).event_type for _ in range(4)]
        got_b = [(await anext(aiter(only_b))).event_type for _ in range(2)]
    assert got_all == ["a", "b", "a", "b"]
    assert got_b == ["b", "b"]


class FakeClock:
    """The bus's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_stopped_subscriber_is_dropped_once_far_behind_in_count_and_time() -> None:
    clock = FakeClock()
    bus = EventBus(clock=clock)
    with (
        bus.subscribe(max_outstanding=3, max_lag=10, name="stopped") as stopped,
        bus.subscribe(max_outstanding=3, max_lag=10) as reading,
    ):
        for i in range(100):  # a burst: many events, no time
            bus.publish(make_event("tick", n=i))
        assert not stopped.dropped and stopped.backlog == 100
        assert [e.payload["n"] for e in await reading.receive_batch()] == list(range(100))
        clock.now = 10.5
        bus.publish(make_event("tick", n=100))
        assert stopped.dropped and stopped.backlog == 0  # its backlog is freed at once
        assert not reading.dropped
        assert bus.statistics().subscribers == 1
        assert bus.statistics().dropped_subscribers == 1
        with pytest.raises(SubscriberTooSlow, match="more than 3 events were left unread"):
            await stopped.receive()
        assert (await reading.receive()).payload["n"] == 100


async def test_a_few_unread_events_are_never_too_many_however_old() -> None:
    clock = FakeClock()
    bus = EventBus(clock=clock)
    with bus.subscribe(max_outstanding=3, max_lag=1) as idle:
        for i in range(3):
            clock.now = i * 100.0
            bus.publish(make_event("tick", n=i))
        assert not idle.dropped
        assert [e.payload["n"] for e in await idle.receive_batch()] == [0, 1, 2]


async def test_a_burst_without_checkpoints_does_not_starve_readers() -> None:
    """Far more events than a buffer holds, published in turns that never yield (as a
    scale-up publishes one event per new instance): readers that keep reading get all."""
    bus = EventBus()
    got: dict[str, list[int]] = {"batches": [], "one_by_one": []}
    total = 30_000

    async def read_batches(subscription: BusSubscription) -> None:
        while len(got["batches"]) < total:
            got["batches"] += [e.payload["n"] for e in await subscription.receive_batch()]

    async def read_one_by_one(subscription: BusSubscription) -> None:
        async for event in subscription:
            got["one_by_one"].append(event.payload["n"])
            if len(got["one_by_one"]) == total:
                return

    with (
        bus.subscribe(max_outstanding=16) as batches,
        bus.subscribe(max_outstanding=16) as one_by_one,
    ):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_batches, batches)
            nursery.start_soon(read_one_by_one, one_by_one)
            for n in range(total):
                bus.publish(make_event("tick", n=n))
                if n % 5_000 == 0:
                    await trio.sleep(0)
    assert got["batches"] == got["one_by_one"] == list(range(total))
    assert bus.statistics().dropped_subscribers == 0


async def test_publish_does_not_wait_for_a_subscriber_that_never_reads() -> None:
    bus = EventBus()
    with bus.subscribe(max_outstanding=8, max_lag=0) as stopped:
        with trio.fail_after(1):
            for i in range(100_000):
                bus.publish(make_event("tick", n=i))
        assert stopped.dropped and stopped.backlog == 0
    assert bus.statistics().last_event_id == 100_000


def test_last_id_names_the_newest_event() -> None:
    bus = EventBus()
    assert bus.last_id == 0
    published = [bus.publish(make_event("tick", n=i)) for i in range(3)]
    assert bus.last_id == published[-1].id


async def test_resume_after_a_known_id_replays_newer_events() -> None:
    bus = EventBus(history=5)
    ids = [bus.publish(make_event("tick", n=i)).id for i in range(8)]
    with bus.subscribe(after_id=ids[5]) as resumed:
        bus.publish(make_event("tick", n=8))
        got = [(await anext(aiter(resumed))).payload["n"] for _ in range(3)]
    assert got == [6, 7, 8]


async def test_plugin_hook_sees_every_event_and_its_failure_is_contained(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen = []

    def on_event(event: object) -> None:
        seen.append(event)
        raise RuntimeError("plugin bug")

    bus = EventBus(on_event=on_event)
    with caplog.at_level(logging.ERROR, logger="marathon_core.events"):
        bus.publish(make_event("a"))
        bus.publish(make_event("b"))
    assert [e["eventType"] for e in seen] == ["a", "b"]  # type: ignore[index]
    assert bus.statistics().hook_failures == 2
    assert len(caplog.records) == 1  # the first failure, not one per event of a burst
