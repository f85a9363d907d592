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

from marathon_core.model.app import AppDefinition, HealthCheck
from marathon_core.model.codec import app_to_json, converter, deployment_to_json, group_to_json
from marathon_core.model.deployment import Deployment
from marathon_core.model.group import Group
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import Instance, InstanceId, TaskId

__all__ = [
    "api_audit_event",
    "api_post_event",
    "app_terminated_event",
    "deployment_failed",
    "deployment_info",
    "deployment_plan",
    "deployment_step_success",
    "deployment_success",
    "event_stream_attached",
    "event_stream_detached",
    "failed_health_check_event",
    "group_change_success",
    "health_status_changed_event",
    "instance_changed_event",
    "make_event",
    "scheduler_disconnected_event",
    "scheduler_registered_event",
    "scheduler_reregistered_event",
    "status_update_event",
    "subscription_event",
    "timestamp_now",
    "unhealthy_instance_kill_deferred_event",
    "unhealthy_instance_kill_event",
]


def timestamp_now() -> str:
    """Marathon's timestamp form: UTC with milliseconds and ``Z``."""
    now = datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def make_event(event_type: str, **fields: Any) -> dict[str, Any]:
    """An event of ``event_type`` with ``fields`` as given, stamped now."""
    return {"eventType": event_type, "timestamp": timestamp_now(), **fields}


# --- deployment events


def _affected_part(root: Group, app_ids: frozenset[PathId]) -> Group:
    """``root`` cut down to the apps in ``app_ids`` (and the groups holding them)."""
    part = Group(root.id, version=root.version)
    for app_id in sorted(app_ids):
        app = root.find_app(app_id)
        if app is not None:
            part = part.update_app(app)
    return part


def deployment_plan(deployment: Deployment, original: Group, target: Group) -> dict[str, Any]:
    """The plan as marathon-python parses it: id, version, original, target, steps.

    ``original`` and ``target`` hold only the part of the tree the plan changes: the
    whole root would make every event as large as the cluster. Built once per run and
    shared by that run's events.
    """
    affected = deployment.affected_app_ids()
    return {
        "id": deployment.id,
        "version": str(deployment.version),
        "original": group_to_json(_affected_part(original, affected)),
        "target": group_to_json(_affected_part(target, affected)),
        "steps": deployment_to_json(deployment)["steps"],
    }


def _current_step(plan: dict[str, Any], number: int) -> Any:
    """Step ``number`` (from 1) of ``plan``, as the plan lists it."""
    return plan["steps"][number - 1]


def deployment_info(plan: dict[str, Any], step_number: int) -> dict[str, Any]:
    """Step ``step_number`` of ``plan`` starts."""
    return make_event("deployment_info", plan=plan, currentStep=_current_step(plan, step_number))


def deployment_step_success(plan: dict[str, Any], step_number: int) -> dict[str, Any]:
    """Every action of step ``step_number`` of ``plan`` reached its goal."""
    current = _current_step(plan, step_number)
    return make_event("deployment_step_success", plan=plan, currentStep=current)


def deployment_success(plan: dict[str, Any]) -> dict[str, Any]:
    """The last step of ``plan`` succeeded; the deployment is forgotten."""
    return make_event("deployment_success", id=plan["id"], plan=plan)


def deployment_failed(deployment: Deployment, reason: str) -> dict[str, Any]:
    """``deployment`` stopped on an error. The plan's roots are left empty: the failure
    may be that they could not be read."""
    plan = deployment_plan(deployment, Group.empty_root(), Group.empty_root())
    return make_event("deployment_failed", id=deployment.id, plan=plan, reason=reason)


def app_terminated_event(app_id: PathId) -> dict[str, Any]:
    """A deployment stopped every instance of ``app_id``."""
    return make_event("app_terminated_event", appId=str(app_id))


def group_change_success(group_id: PathId, version: Timestamp) -> dict[str, Any]:
    """The group ``group_id`` was stored at ``version`` (and its deployment started)."""
    return make_event("group_change_success", groupId=str(group_id), version=str(version))


def api_audit_event(
    *,
    user: str | None,
    client_ip: str | None,
    forwarded_for: str | None,
    method: str,
    uri: str,
    status: int,
    deployment_id: str | None,
    version: str | None,
) -> dict[str, Any]:
    """One write through the API and its result (this project's event; Marathon has none).

    ``user`` is None when the caller was not authenticated; ``forwardedFor`` is the
    client a standby forwarded the request for. Bodies are left out: they may hold
    secrets, and the deployment and version name what changed.
    """
    return make_event(
        "api_audit_event",
        user=user,
        clientIp=client_ip,
        forwardedFor=forwarded_for,
        method=method,
        uri=uri,
        status=status,
        deploymentId=deployment_id,
        version=version,
    )


def api_post_event(client_ip: str | None, uri: str, app: AppDefinition) -> dict[str, Any]:
    """A client created or replaced ``app`` through the API at ``uri``."""
    return make_event("api_post_event", clientIp=client_ip, uri=uri, appDefinition=app_to_json(app))


# --- health events


def failed_health_check_event(
    app_id: PathId, instance_id: InstanceId, check: HealthCheck
) -> dict[str, Any]:
    return make_event(
        "failed_health_check_event",
        appId=str(app_id),
        taskId=str(instance_id),
        instanceId=str(instance_id),
        healthCheck=converter.unstructure(check),
    )


def health_status_changed_event(
    app: AppDefinition, instance_id: InstanceId, task_id: TaskId, *, alive: bool
) -> dict[str, Any]:
    return make_event(
        "health_status_changed_event",
        appId=str(app.id),
        instanceId=str(instance_id),
        taskId=str(task_id),
        version=_version(app),
        alive=alive,
    )


def unhealthy_instance_kill_event(
    app: AppDefinition, instance: Instance, task_id: TaskId, *, reason: str
) -> dict[str, Any]:
    return make_event(
        "unhealthy_instance_kill_event", **_kill_fields(app, instance, task_id, reason)
    )


def unhealthy_instance_kill_deferred_event(
    app: AppDefinition, instance: Instance, task_id: TaskId, *, reason: str, retry_in_seconds: float
) -> dict[str, Any]:
    """This project's: a kill the health-check kill rate put off, with the kill event's
    fields (built by the same code, so the two cannot drift) and when it is retried."""
    return make_event(
        "unhealthy_instance_kill_deferred_event",
        **_kill_fields(app, instance, task_id, reason),
        retryInSeconds=round(retry_in_seconds, 3),
    )


def _kill_fields(
    app: AppDefinition, instance: Instance, task_id: TaskId, reason: str
) -> dict[str, Any]:
    agent = instance.agent
    return {
        "appId": str(app.id),
        "taskId": str(task_id),
        "instanceId": str(instance.instance_id),
        "version": _version(app),
        "reason": reason,
        "host": agent.host if agent is not None else None,
        "slaveId": agent.agent_id if agent is not None else None,
    }


def _version(app: AppDefinition) -> str | None:
    return str(app.version) if app.version is not None else None


# --- API events


def event_stream_attached(remote_address: str | None) -> dict[str, Any]:
    return make_event("event_stream_attached", remoteAddress=remote_address)


def event_stream_detached(remote_address: str | None) -> dict[str, Any]:
    return make_event("event_stream_detached", remoteAddress=remote_address)


def subscription_event(
    *, subscribed: bool, client_ip: str | None, callback_url: str
) -> dict[str, Any]:
    """``subscribe_event`` or ``unsubscribe_event`` of an HTTP callback."""
    return make_event(
        "subscribe_event" if subscribed else "unsubscribe_event",
        clientIp=client_ip,
        callbackUrl=callback_url,
    )


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
