"""Why a running deployment does not advance: progress and a reason per app.

Marathon's users' most reported pain was a deployment that hangs without saying why.
The executor records what each action of the current step last found
(:class:`~marathon_core.deploy.executor.ActionProgress`: old and new instances, and
what it waits for); this module joins that with what the leader knows about those
instances -- the launch queue's placement explanation and backoff, the last task
failure, health and readiness results -- into one JSON object per app, which
``GET /v2/deployments/{id}`` shows as ``status``.

Reasons (``reason.kind``): ``noMatchingOffer``, ``waitingForOffers``, ``notLaunchable``,
``backoff``, ``starting``, ``healthChecks``, ``readinessChecks``, ``killing``,
``dependency`` and ``previousStep``. Apps whose action finished show ``state`` ``done``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

from marathon_core.contracts.queue import QueueEntry
from marathon_core.deploy.executor import ActionProgress, Waiting
from marathon_core.leader.readiness import ReadinessResult
from marathon_core.model.codec import health_to_json
from marathon_core.model.deployment import Deployment
from marathon_core.model.group import Group, transitive_dependencies
from marathon_core.model.health import Health
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import Condition, Instance, InstanceId

__all__ = ["StatusSources", "deployment_status"]

Json = dict[str, Any]

#: Instance details listed per reason at most (a stuck app of 1,000 instances would
#: otherwise list them all).
MAX_LISTED = 5


class StatusSources(Protocol):
    """What the leader knows about the instances a deployment waits on."""

    def get(self, instance_id: InstanceId) -> Instance | None: ...

    def queue_entry(self, app_id: PathId) -> QueueEntry | None: ...

    def last_task_failure(self, app_id: PathId) -> Json | None: ...

    def health_of(self, instance: Instance) -> tuple[Health, ...] | None: ...

    def readiness_results(self, app_id: PathId) -> Sequence[ReadinessResult]: ...


def deployment_status(
    deployment: Deployment,
    progress: Mapping[PathId, ActionProgress],
    sources: StatusSources,
    target: Group,
    *,
    now: Timestamp,
) -> dict[str, Json]:
    """App id -> ``{action, step, state, progress?, reason?}`` for every app of the plan.

    An app in several steps (a start marker, then its scaling) shows its first step
    that is not done.
    """
    out: dict[str, Json] = {}
    current = deployment.current_step
    current_apps = [a.app_id for a in deployment.current_actions]
    edges = target.dependency_edges()
    for number, step in enumerate(deployment.steps, start=1):
        for action in step.actions:
            entry: Json = {"action": action.action.value, "step": number}
            if number < current:
                entry["state"] = "done"
            elif number > current:
                entry["state"] = "pending"
                entry["reason"] = _pending_reason(action.app_id, current, current_apps, edges)
            else:
                found = progress.get(action.app_id)
                if found is None:
                    entry["state"] = "starting"
                else:
                    entry["state"] = "done" if found.finished else "waiting"
                    entry["progress"] = _progress(found)
                    if not found.finished and found.waiting is not None:
                        entry["reason"] = _reason(action.app_id, found, sources, now)
            shown = out.get(str(action.app_id))
            if shown is None or shown["state"] == "done":
                out[str(action.app_id)] = entry
    return out


def _progress(found: ActionProgress) -> Json:
    return {
        "current": found.ready,
        "target": found.target,
        "oldInstances": found.old,
        "newInstances": found.new,
    }


def _pending_reason(
    app_id: PathId,
    current: int,
    current_apps: Sequence[PathId],
    edges: Mapping[PathId, Collection[PathId]],
) -> Json:
    if current == 0:
        return {"kind": "previousStep", "message": "the deployment has not started yet"}
    blocking = sorted(transitive_dependencies(app_id, edges) & set(current_apps))
    if blocking:
        names = ", ".join(str(a) for a in blocking)
        return {
            "kind": "dependency",
            "message": f"waits for its dependencies to be deployed: {names} (step {current})",
            "waitingFor": [str(a) for a in blocking],
        }
    return {
        "kind": "previousStep",
        "message": f"waits for step {current} to finish",
        "waitingFor": [str(a) for a in current_apps],
    }


def _reason(app_id: PathId, found: ActionProgress, sources: StatusSources, now: Timestamp) -> Json:
    waiting_on = [i for i in (sources.get(iid) for iid in found.waiting_on) if i is not None]
    if found.waiting is Waiting.DEPENDENTS:
        names = ", ".join(str(a) for a in found.dependents)
        return {
            "kind": "dependency",
            "message": f"stops after the apps that depend on it: {names}",
            "waitingFor": [str(a) for a in found.dependents],
        }
    if found.waiting is Waiting.LAUNCH:
        return _launch_reason(app_id, waiting_on, sources, now)
    if found.waiting is Waiting.HEALTH:
        checks = []
        for instance in waiting_on[:MAX_LISTED]:
            for health in sources.health_of(instance) or ():
                checks.append(health_to_json(health))
        causes = [c["lastFailureCause"] for c in checks if c["lastFailureCause"]]
        message = f"{len(waiting_on)} new instance(s) not healthy yet"
        if causes:
            message += f": {causes[-1]}"
        return {"kind": "healthChecks", "message": message, "healthCheckResults": checks}
    if found.waiting is Waiting.READINESS:
        tasks = {i.task.task_id for i in waiting_on if i.task is not None}
        results = [r for r in sources.readiness_results(app_id) if r.task_id in tasks]
        failures = [r.last_failure for r in results if r.last_failure]
        message = f"{len(waiting_on)} new instance(s) not ready yet"
        message += f": {failures[-1]}" if failures else ": no readiness check answered yet"
        listed = []
        for r in results[:MAX_LISTED]:
            listed.append({**r.to_json(), "lastFailure": r.last_failure})
        return {"kind": "readinessChecks", "message": message, "readinessCheckResults": listed}
    assert found.waiting is Waiting.KILL, found.waiting
    return {
        "kind": "killing",
        "message": f"{len(waiting_on)} instance(s) of the previous version still stopping",
        "instances": [str(i.instance_id) for i in waiting_on[:MAX_LISTED]],
    }


def _launch_reason(
    app_id: PathId, waiting_on: Sequence[Instance], sources: StatusSources, now: Timestamp
) -> Json:
    scheduled = [i for i in waiting_on if i.condition is Condition.SCHEDULED]
    entry = sources.queue_entry(app_id) if scheduled else None
    if entry is None:
        return {
            "kind": "starting",
            "message": f"{len(waiting_on)} instance(s) launched and starting",
            "instances": [
                {"id": str(i.instance_id), "condition": i.condition.value}
                for i in waiting_on[:MAX_LISTED]
            ],
        }
    if entry.not_launchable is not None:
        return {"kind": "notLaunchable", "message": entry.not_launchable}
    if entry.delay_time_left > 0 and not entry.delay_overdue:
        failure = sources.last_task_failure(app_id)
        next_launch = Timestamp(now.millis + round(entry.delay_time_left * 1000))
        message = f"backing off after task failures; next launch at {next_launch}"
        if failure is not None:
            message += f" (last failure: {failure.get('state')}: {failure.get('message')})"
        return {
            "kind": "backoff",
            "message": message,
            "nextLaunchAt": str(next_launch),
            "lastTaskFailure": failure,
        }
    if entry.last_reasons or entry.near_misses:
        details = [*entry.last_reasons, *entry.near_misses]
        return {
            "kind": "noMatchingOffer",
            "message": f"{entry.count} instance(s) wait: no offer matches: {details[0]}",
            "lastRejectReasons": list(entry.last_reasons),
            "nearMisses": list(entry.near_misses),
            "rejectSummaryLastOffers": [
                {"reason": r.reason.value, "declined": r.declined, "processed": r.processed}
                for r in entry.reject_summary
            ],
        }
    return {
        "kind": "waitingForOffers",
        "message": f"{entry.count} instance(s) wait for offers",
        "processedOffers": entry.processed_offers,
    }
