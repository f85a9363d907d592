"""Decoding Mesos events at the edge, and the one table of Mesos task states.

The sample events parse strictly into the real ``mesos.v1.scheduler.Event`` (skipped
without the protobuf toolchain, a failure on CI), so the field names the decoder
reads are the protos' own.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from marathon_core.mesos.events import (
    Disconnected,
    Error,
    Failure,
    Heartbeat,
    MalformedEvent,
    Offers,
    Rescind,
    Resource,
    Subscribed,
    TaskStatus,
    Update,
    decode_event,
)
from marathon_core.model.instance import Condition
from marathon_core.testing.mesos_protos import find_protos, parse_strict

UPDATE = {
    "type": "UPDATE",
    "update": {
        "status": {
            "task_id": {"value": "web.instance-1._app.1"},
            "state": "TASK_RUNNING",
            "agent_id": {"value": "S0"},
            "uuid": "q83vEjRWeJCrze8SNFZ4kA==",
            "reason": "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED",
            "message": "healthy again",
            "source": "SOURCE_EXECUTOR",
            "healthy": True,
            "timestamp": 1700000000.25,
            "container_status": {
                "network_infos": [
                    {"ip_addresses": [{"ip_address": "10.0.0.7"}, {"protocol": "IPv6"}]},
                    {"ip_addresses": [{"protocol": "IPv4", "ip_address": "10.0.1.7"}]},
                ]
            },
        }
    },
}

OFFERS = {
    "type": "OFFERS",
    "offers": {
        "offers": [
            {
                "id": {"value": "O1"},
                "framework_id": {"value": "F"},
                "agent_id": {"value": "S0"},
                "hostname": "node1",
                "allocation_info": {"role": "web"},
                "domain": {
                    "fault_domain": {"region": {"name": "eu"}, "zone": {"name": "eu-1"}}
                },
                "resources": [
                    {"name": "cpus", "type": "SCALAR", "scalar": {"value": 2.5},
                     "allocation_info": {"role": "web"},
                     "reservations": [{"type": "STATIC", "role": "web"}]},
                    {"name": "ports", "type": "RANGES", "allocation_info": {"role": "web"},
                     "ranges": {"range": [{"begin": 31000, "end": 31005}]}},
                    {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0},
                     "allocation_info": {"role": "web"}, "revocable": {}},
                    {"name": "disk", "type": "SCALAR", "scalar": {"value": 64.0},
                     "allocation_info": {"role": "web"},
                     "disk": {"persistence": {"id": "vol-1"}, "volume": {
                         "container_path": "data", "mode": "RW"}}},
                ],
                "attributes": [
                    {"name": "rack", "type": "TEXT", "text": {"value": "r1"}},
                    {"name": "rack", "type": "TEXT", "text": {"value": "r2"}},
                    {"name": "slots", "type": "SCALAR", "scalar": {"value": 4}},
                ],
            }
        ]
    },
}  # fmt: skip

OTHERS = [
    {
        "type": "SUBSCRIBED",
        "subscribed": {
            "framework_id": {"value": "F"},
            "heartbeat_interval_seconds": 15,
            "master_info": {"id": "m", "ip": 16777343, "port": 5050, "hostname": "m1"},
        },
    },
    {"type": "RESCIND", "rescind": {"offer_id": {"value": "O1"}}},
    {"type": "FAILURE", "failure": {"agent_id": {"value": "S0"}}},
    {"type": "FAILURE", "failure": {"agent_id": {"value": "S0"},
                                    "executor_id": {"value": "E"}, "status": 137}},
    {"type": "ERROR", "error": {"message": "Framework has been removed"}},
    {"type": "HEARTBEAT"},
]  # fmt: skip


def test_the_samples_are_real_mesos_events(mesos_protos: SimpleNamespace) -> None:
    for event in [UPDATE, OFFERS, *OTHERS]:
        parse_strict(mesos_protos, event, mesos_protos.scheduler.Event)


def test_update_decodes_what_the_scheduler_reads() -> None:
    event = decode_event(UPDATE)
    assert event == Update(
        TaskStatus(
            task_id="web.instance-1._app.1",
            state="TASK_RUNNING",
            agent_id="S0",
            uuid="q83vEjRWeJCrze8SNFZ4kA==",
            reason="REASON_TASK_HEALTH_CHECK_STATUS_UPDATED",
            message="healthy again",
            source="SOURCE_EXECUTOR",
            healthy=True,
            timestamp=1700000000.25,
            ip_addresses=("10.0.0.7", "10.0.1.7"),
        )
    )
    bare = decode_event(
        {"type": "UPDATE", "update": {"status": {"task_id": {"value": "t"}, "state": "TASK_LOST"}}}
    )
    assert bare == Update(TaskStatus(task_id="t", state="TASK_LOST"))


def test_offers_decode_resources_attributes_and_fault_domain() -> None:
    event = decode_event(OFFERS)
    assert isinstance(event, Offers)
    [offer] = event.offers
    assert (offer.id, offer.agent_id, offer.hostname, offer.role) == ("O1", "S0", "node1", "web")
    assert (offer.region, offer.zone) == ("eu", "eu-1")
    assert offer.attributes == {"rack": "r1", "slots": "4"}  # the first of a name wins
    reserved, ports, revocable, volume = offer.resources
    assert reserved == Resource(
        name="cpus",
        type="SCALAR",
        scalar=2.5,
        reservation_role="web",
        echoed={
            "allocation_info": {"role": "web"},
            "reservations": [{"type": "STATIC", "role": "web"}],
        },
    )
    assert ports.ranges == ((31000, 31005),) and ports.reservation_role == "*"
    assert revocable.revocable and not revocable.persistent
    assert volume.persistent and not volume.revocable


def test_the_other_event_types() -> None:
    subscribed, rescind, agent_failed, executor_failed, error, heartbeat = (
        decode_event(e) for e in OTHERS
    )
    assert subscribed == Subscribed("F", master_hostname="m1", heartbeat_interval_seconds=15.0)
    assert rescind == Rescind("O1")
    assert agent_failed == Failure(agent_id="S0")
    assert executor_failed == Failure(agent_id="S0", executor_id="E", status=137)
    assert error == Error("Framework has been removed")
    assert heartbeat == Heartbeat()
    assert Disconnected() == Disconnected()  # the client's own, never decoded
    for unused in ("INVERSE_OFFERS", "RESCIND_INVERSE_OFFER", "MESSAGE", "UPDATE_OPERATION_STATUS"):
        assert decode_event({"type": unused, unused.lower(): {}}) is None


@pytest.mark.parametrize(
    "event",
    [
        {"type": "UPDATE", "update": {"status": {"state": "TASK_RUNNING"}}},
        {"type": "UPDATE", "update": {"status": {"task_id": {"value": "t"}}}},
        {"type": "OFFERS", "offers": {"offers": [{"id": {"value": "O"}, "hostname": "h"}]}},
        {"type": "SUBSCRIBED", "subscribed": {}},
        {"type": "RESCIND", "rescind": {}},
    ],
    ids=["no task id", "no state", "offer without agent", "no framework id", "no offer id"],
)
def test_a_missing_required_field_is_a_malformed_event(event: dict[str, Any]) -> None:
    with pytest.raises(MalformedEvent):
        decode_event(event)


# -- the one table of task states ------------------------------------------------------

#: Terminal to Mesos (its ``protobuf::isTerminalState``).
MESOS_TERMINAL = {
    "TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED",
    "TASK_GONE", "TASK_GONE_BY_OPERATOR",
}  # fmt: skip


def proto_task_states() -> list[str]:
    protos = find_protos(Path(__file__).resolve().parent)
    if protos is None:
        pytest.skip("Mesos protos not found (tests/data/mesos-protos)")
    text = (protos / "mesos" / "v1" / "mesos.proto").read_text()
    body = re.search(r"enum TaskState \{(.*?)\}", text, re.S)
    assert body is not None
    return re.findall(r"^\s*(TASK_[A-Z_]+)\s*=", body.group(1), re.M)


def test_every_mesos_task_state_has_its_condition() -> None:
    states = proto_task_states()
    assert len(states) == 14
    for state in states:
        condition = Condition.from_mesos(state)
        if state not in ("TASK_LOST", "TASK_GONE_BY_OPERATOR"):
            assert condition.mesos_state == state, state  # in the table, not a fallback
        if state == "TASK_LOST":
            continue  # its reason decides (below)
        if state == "TASK_UNKNOWN":
            assert condition.is_terminal  # Marathon gives such tasks up; Mesos would not
            continue
        assert condition.is_terminal == (state in MESOS_TERMINAL), state


@pytest.mark.parametrize(
    "reason, message, condition",
    [
        ("REASON_AGENT_DISCONNECTED", None, Condition.UNREACHABLE),
        ("REASON_AGENT_REMOVED", None, Condition.UNREACHABLE),
        ("REASON_RECONCILIATION", None, Condition.UNREACHABLE),
        (
            "REASON_RECONCILIATION",
            "Reconciliation: Task is unknown to the agent",
            Condition.UNKNOWN,
        ),
        ("REASON_TASK_UNKNOWN", None, Condition.UNKNOWN),
        ("REASON_AGENT_RESTARTED", None, Condition.GONE),
        ("REASON_INVALID_OFFERS", None, Condition.GONE),
        ("REASON_COMMAND_EXECUTOR_FAILED", None, Condition.DROPPED),
        (None, None, Condition.DROPPED),
    ],
)
def test_task_lost_is_terminal_unless_the_task_may_come_back(
    reason: str | None, message: str | None, condition: Condition
) -> None:
    """The case the scheduler's own list of terminal states used to get wrong: it took
    TASK_LOST as terminal whatever the reason."""
    mapped = Condition.from_mesos("TASK_LOST", reason=reason, message=message)
    assert mapped is condition
    assert mapped.is_terminal is (condition is not Condition.UNREACHABLE)
    assert mapped.is_active is (condition is Condition.UNREACHABLE)
