"""The event bus never waits for a subscriber, drops the slow ones and replays history."""

from __future__ import annotations

import re

import pytest
import trio

from marathon_core.events import EventBus, SubscriberTooSlow
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


async def test_a_slow_subscriber_is_dropped_and_others_are_unaffected() -> None:
    bus = EventBus()
    received = []
    with bus.subscribe(max_outstanding=3) as slow, bus.subscribe(max_outstanding=100) as fast:
        for i in range(10):
            bus.publish(make_event("tick", n=i))
        async for event in fast:
            received.append(event.payload["n"])
            if len(received) == 10:
                break
        assert bus.statistics().subscribers == 1
        with pytest.raises(SubscriberTooSlow):
            async for _ in slow:
                pass
    assert received == list(range(10))


async def test_publish_does_not_wait_for_a_subscriber_that_never_reads() -> None:
    bus = EventBus()
    with bus.subscribe(max_outstanding=8):
        with trio.fail_after(1):
            for i in range(100_000):
                bus.publish(make_event("tick", n=i))
    assert bus.statistics().last_event_id == 100_000


async def test_resume_after_a_known_id_replays_newer_events() -> None:
    bus = EventBus(history=5)
    ids = [bus.publish(make_event("tick", n=i)).id for i in range(8)]
    with bus.subscribe(after_id=ids[5]) as resumed:
        bus.publish(make_event("tick", n=8))
        got = [(await anext(aiter(resumed))).payload["n"] for _ in range(3)]
    assert got == [6, 7, 8]


async def test_plugin_hook_sees_every_event_and_its_failure_is_contained() -> None:
    seen = []

    def on_event(event: object) -> None:
        seen.append(event)
        raise RuntimeError("plugin bug")

    bus = EventBus(on_event=on_event)
    bus.publish(make_event("a"))
    bus.publish(make_event("b"))
    assert [e["eventType"] for e in seen] == ["a", "b"]  # type: ignore[index]
