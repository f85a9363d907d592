"""The scheduler's events, pinned to the byte: REST clients and marathon-python read them."""

from __future__ import annotations

import json

import pytest

from marathon_core.model import events
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import AgentInfo, Condition, Instance, InstanceId, Task, TaskId

VERSION = Timestamp(1700000000000)
INSTANCE_ID = InstanceId(PathId.parse("/prod/web"), "00000000-0000-0000-0000-000000000001")
RUNNING = Instance(
    instance_id=INSTANCE_ID,
    condition=Condition.RUNNING,
    agent=AgentInfo(host="a1", agent_id="S1"),
    tasks=(
        Task(
            task_id=TaskId.for_instance(INSTANCE_ID),
            condition=Condition.RUNNING,
            host_ports=(31000, 31001),
            ip_addresses=("10.0.0.1",),
        ),
    ),
    run_spec_version=VERSION,
)


@pytest.fixture(autouse=True)
def fixed_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "timestamp_now", lambda: "2023-11-14T22:13:20.000Z")


def wire(event: dict[str, object]) -> str:
    return json.dumps(event, separators=(",", ":"))


def test_status_update_event() -> None:
    event = events.status_update_event(
        RUNNING, task_id="prod_web.instance-1._app.1", state="TASK_RUNNING", agent_id="S1",
        message="",
    )  # fmt: skip
    assert wire(event) == (
        '{"eventType":"status_update_event","timestamp":"2023-11-14T22:13:20.000Z",'
        '"slaveId":"S1","taskId":"prod_web.instance-1._app.1","taskStatus":"TASK_RUNNING",'
        '"message":"","appId":"/prod/web","host":"a1",'
        '"ipAddresses":[{"ipAddress":"10.0.0.1","protocol":"IPv4"}],"ports":[31000,31001],'
        '"version":"2023-11-14T22:13:20.000Z"}'
    )
    scheduled = Instance(instance_id=INSTANCE_ID)
    event = events.status_update_event(
        scheduled, task_id="t", state="TASK_LOST", agent_id=None, message="gone"
    )
    assert wire(event) == (
        '{"eventType":"status_update_event","timestamp":"2023-11-14T22:13:20.000Z",'
        '"slaveId":null,"taskId":"t","taskStatus":"TASK_LOST","message":"gone",'
        '"appId":"/prod/web","host":"","ipAddresses":[],"ports":[],"version":null}'
    )


def test_instance_changed_event() -> None:
    assert wire(events.instance_changed_event(RUNNING)) == (
        '{"eventType":"instance_changed_event","timestamp":"2023-11-14T22:13:20.000Z",'
        '"instanceId":"prod_web.instance-00000000-0000-0000-0000-000000000001",'
        '"condition":"Running","runSpecId":"/prod/web","agentId":"S1","host":"a1",'
        '"runSpecVersion":"2023-11-14T22:13:20.000Z"}'
    )
    assert wire(events.instance_changed_event(Instance(instance_id=INSTANCE_ID))) == (
        '{"eventType":"instance_changed_event","timestamp":"2023-11-14T22:13:20.000Z",'
        '"instanceId":"prod_web.instance-00000000-0000-0000-0000-000000000001",'
        '"condition":"Scheduled","runSpecId":"/prod/web","agentId":null,"host":null,'
        '"runSpecVersion":null}'
    )


def test_subscription_events() -> None:
    stamp = '"timestamp":"2023-11-14T22:13:20.000Z"'
    assert wire(events.scheduler_registered_event("F-1", "m1")) == (
        '{"eventType":"scheduler_registered_event",' + stamp + ',"frameworkId":"F-1","master":"m1"}'
    )
    assert wire(events.scheduler_reregistered_event("")) == (
        '{"eventType":"scheduler_reregistered_event",' + stamp + ',"master":""}'
    )
    assert wire(events.scheduler_disconnected_event()) == (
        '{"eventType":"scheduler_disconnected_event",' + stamp + "}"
    )
