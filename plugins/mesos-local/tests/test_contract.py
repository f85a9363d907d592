"""Contract: what the master emits and accepts parses into the real Mesos v1 protos.

The ``schedulers`` fixture already checks every call and event of every scenario
test; this module makes sure the check itself bites, and drives one framework
through every event type the master produces today.
"""

from __future__ import annotations

import pytest
import trio

from marathon_core.testing.mesos_protos import parse_strict
from marathon_mesos_local.testing import task_info


def test_strict_parsing_rejects_what_mesos_rejects(mesos_protos) -> None:
    call = mesos_protos.scheduler.Call
    parse_strict(mesos_protos, {"type": "TEARDOWN", "framework_id": {"value": "f"}}, call)
    for bad in (
        {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"name": "n"}}},
        {"type": "NOT_A_CALL"},
        {"type": "TEARDOWN", "unknown_field": 1},
    ):
        with pytest.raises((AssertionError, mesos_protos.json_format.ParseError)):
            parse_strict(mesos_protos, bad, call)


async def test_every_event_type_parses(mesos_protos, cluster, schedulers, nursery) -> None:
    client = schedulers(cluster.url)
    await client.subscribe(
        nursery,
        roles=["a", "b"],
        capabilities=["MULTI_ROLE", "PARTITION_AWARE", "TASK_KILLING_STATE"],
        failover_timeout=30.0,
        checkpoint=True,
        labels={"labels": [{"key": "k", "value": "v"}]},
    )
    offer = (await client.wait_offers())[0]
    role = offer["allocation_info"]["role"]
    await client.launch(
        [offer],
        [
            task_info(
                offer,
                "c.1",
                "sleep 30",
                ports=1,
                kill_policy={"grace_period": {"nanoseconds": 100_000_000}},
                labels={"labels": [{"key": "app", "value": "x"}]},
            ),
            task_info(offer, "c.bad", "true", cpus=99),
        ],
        filters={"refuse_seconds": 0},
    )
    await client.wait_update("c.1", "TASK_RUNNING")
    await client.wait_update("c.bad", "TASK_ERROR")
    await client.call({"type": "RECONCILE", "reconcile": {"tasks": []}})
    await client.call({"type": "KILL", "kill": {"task_id": {"value": "c.1"}}})
    await client.wait_update("c.1", "TASK_KILLED")
    # Drop the offer's role: its outstanding offer is rescinded.
    offers = await client.wait_offers(since=len(client.events) - 1)
    other = "b" if offers[0]["allocation_info"]["role"] == "a" else "a"
    mark = len(client.events)
    response = await client.call(
        {
            "type": "UPDATE_FRAMEWORK",
            "update_framework": {
                "framework_info": {
                    "user": "root",
                    "name": "test-framework",
                    "id": {"value": client.framework_id},
                    "roles": [other],
                    "capabilities": [{"type": "MULTI_ROLE"}, {"type": "PARTITION_AWARE"}],
                    "failover_timeout": 30.0,
                    "checkpoint": True,
                }
            },
        }
    )
    assert response.status_code == 200, response.text
    await client.wait_for(lambda e: e["type"] == "RESCIND", since=mark)
    # A second subscriber takes over: the first stream ends with ERROR.
    second = schedulers(cluster.url)
    await second.subscribe(
        nursery, framework_id=client.framework_id, roles=[other], failover_timeout=30.0,
        checkpoint=True,
    )  # fmt: skip
    await client.wait_for(lambda e: e["type"] == "ERROR")
    kinds = {e["type"] for e in client.events}
    assert kinds >= {"SUBSCRIBED", "HEARTBEAT", "OFFERS", "UPDATE", "RESCIND", "ERROR"}, kinds
    assert role in ("a", "b")
    for event in client.events:
        parse_strict(mesos_protos, event, mesos_protos.scheduler.Event)
    for call in client.calls:
        parse_strict(mesos_protos, call, mesos_protos.scheduler.Call)
    # 64-bit integers go out as JSON numbers, as Mesos's own JSON writer does.
    ranges = [
        r["ranges"]["range"][0]["begin"]
        for e in client.events
        if e["type"] == "OFFERS"
        for o in e["offers"]["offers"]
        for r in o["resources"]
        if r["type"] == "RANGES"
    ]
    assert ranges and all(isinstance(b, int) for b in ranges)
    with trio.fail_after(3):
        await client.stream_closed.wait()
