"""Marathon's events in their wire form: the one place event JSON is built.

Every event is a JSON object with ``eventType``, ``timestamp`` (UTC, milliseconds,
``Z``) and the fields of its type, as ``/v2/events``, HTTP callbacks and the
``marathon_event`` hook deliver it. Components publish what these functions return;
they never assemble event dicts themselves, so field names live here and in
:mod:`marathon_core.model.codec` only.
"""

from __future__ import annotations

import datetime
from typing import Any

from marathon_core.model.instance import Instance

__all__ = [
    "instance_changed_event",
    "make_event",
    "scheduler_disconnected_event",
    "scheduler_registered_event",
    "scheduler_reregistered_event",
    "status_update_event",
    "timestamp_now",
]


def timestamp_now() -> str:
    """Marathon's timestamp form: UTC with milliseconds and ``Z``."""
    now = datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def make_event(event_type: str, **fields: Any) -> dict[str, Any]:
    """An event of ``event_type`` with ``fields`` as given, stamped now."""
    return {"eventType": event_type, "timestamp": timestamp_now(), **fields}


# --- scheduler events


def scheduler_registered_event(framework_id: str, master: str) -> dict[str, Any]:
    """The first subscription to Mesos of this leadership term."""
    return make_event("scheduler_registered_event", frameworkId=framework_id, master=master)


def scheduler_reregistered_event(master: str) -> dict[str, Any]:
    """A later subscription of the same term (the stream had ended)."""
    return make_event("scheduler_reregistered_event", master=master)


def scheduler_disconnected_event() -> dict[str, Any]:
    """The subscription stream ended; offers are void until the next subscription."""
    return make_event("scheduler_disconnected_event")


def status_update_event(
    instance: Instance, *, task_id: str, state: str, agent_id: str | None, message: str
) -> dict[str, Any]:
    """Mesos reported ``state`` for task ``task_id`` of ``instance`` (as updated by it)."""
    task = instance.task
    agent = instance.agent
    return make_event(
        "status_update_event",
        slaveId=agent_id,
        taskId=task_id,
        taskStatus=state,
        message=message,
        appId=str(instance.app_id),
        host=agent.host if agent is not None else "",
        ipAddresses=[
            {"ipAddress": ip, "protocol": "IPv4"}
            for ip in (task.ip_addresses if task is not None else ())
        ],
        ports=list(task.host_ports) if task is not None else [],
        version=str(instance.run_spec_version) if instance.run_spec_version else None,
    )


def instance_changed_event(instance: Instance) -> dict[str, Any]:
    """``instance`` reached a new condition (stored before this is published)."""
    agent = instance.agent
    return make_event(
        "instance_changed_event",
        instanceId=str(instance.instance_id),
        condition=instance.condition.value,
        runSpecId=str(instance.app_id),
        agentId=agent.agent_id if agent is not None else None,
        host=agent.host if agent is not None else None,
        runSpecVersion=str(instance.run_spec_version) if instance.run_spec_version else None,
    )
