"""Why instances are not running: the launch queue, backoff, the last failure, health.

Reads ``/v2/queue`` and the app (which carries ``lastTaskFailure``); this server adds
``lastRejectReasons`` and ``nearMisses`` to Marathon's ``processedOffersSummary``, and
Marathon 1.x answers ``embed=lastUnusedOffers`` with each declined offer's host and
reasons: whatever is there is shown, so it works against either.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from marathon_ctl.client import Marathon
from marathon_ctl.errors import ApiError

#: Marathon's reasons in the order offers are filtered (its funnel).
_REASON_TEXT = {
    "UnfulfilledRole": "role",
    "UnfulfilledConstraint": "constraints",
    "NoCorrespondingReservationFound": "reservation",
    "AgentMaintenance": "agent maintenance",
    "InsufficientCpus": "cpus",
    "InsufficientMemory": "mem",
    "InsufficientDisk": "disk",
    "InsufficientGpus": "gpus",
    "InsufficientPorts": "ports",
    "DeclinedScarceResources": "scarce resources",
}


def queue_entries(client: Marathon, app_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The queue entry of each of ``app_ids`` that waits to launch."""
    wanted = set(app_ids)
    try:
        queue = client.get("/v2/queue", embed="lastUnusedOffers")
    except ApiError:
        return {}
    entries = queue.get("queue", []) if isinstance(queue, dict) else []
    return {str(e["app"]["id"]): e for e in entries if e.get("app", {}).get("id") in wanted}


def placement_lines(entry: dict[str, Any]) -> list[str]:
    """Why the instances of one queue entry are not placed, most telling first."""
    summary = entry.get("processedOffersSummary") or {}
    lines = []
    if summary.get("notLaunchable"):
        lines.append(f"cannot launch: {summary['notLaunchable']}")
    processed = summary.get("processedOffersCount")
    unused = summary.get("unusedOffersCount")
    count = entry.get("count", 0)
    head = f"{count} instance{'s' if count != 1 else ''} waiting for an offer"
    if processed is not None:
        head += f": {processed} offers seen, {unused} not used"
    lines.append(head)
    rejected = [
        f"{_REASON_TEXT.get(r['reason'], r['reason'])} {r['declined']}/{r['processed']}"
        for r in summary.get("rejectSummaryLastOffers") or []
        if r.get("declined")
    ]
    if rejected:
        lines.append("rejected for: " + ", ".join(rejected))
    lines.extend(str(reason) for reason in summary.get("lastRejectReasons") or [])
    lines.extend(f"near miss: {miss}" for miss in summary.get("nearMisses") or [])
    for offer in entry.get("lastUnusedOffers") or []:
        host = (offer.get("offer") or {}).get("hostname", "?")
        reasons = ", ".join(_REASON_TEXT.get(r, r) for r in offer.get("reason") or [])
        lines.append(f"offer from {host} declined: {reasons}")
    delay = entry.get("delay") or {}
    if delay.get("timeLeftSeconds"):
        lines.append(
            f"backoff: next launch in {delay['timeLeftSeconds']}s after failures"
            " (marathon-ctl delay reset to retry now)"
        )
    return lines


def failure_line(app: dict[str, Any]) -> str | None:
    failure = app.get("lastTaskFailure")
    if not failure:
        return None
    where = f" on {failure['host']}" if failure.get("host") else ""
    message = failure.get("message") or "no message"
    return f"last failure: {failure.get('state', '?')}{where}: {message}"


def health_line(app: dict[str, Any]) -> str | None:
    if not app.get("healthChecks"):
        return None
    healthy, unhealthy = app.get("tasksHealthy", 0), app.get("tasksUnhealthy", 0)
    running = app.get("tasksRunning", 0)
    return f"health: {healthy} healthy, {unhealthy} unhealthy of {running} running"


def explain(client: Marathon, app: dict[str, Any]) -> list[str]:
    """``why``: everything known about why ``app`` has fewer instances than wanted."""
    app_id = str(app["id"])
    running, wanted = app.get("tasksRunning", 0), app.get("instances", 0)
    staged = app.get("tasksStaged", 0)
    lines = [f"{app_id}: {running}/{wanted} running, {staged} staging"]
    entry = queue_entries(client, [app_id]).get(app_id)
    if entry is not None:
        lines.extend(placement_lines(entry))
    elif running >= wanted:
        lines.append("nothing waits to launch")
    else:
        lines.append("not in the launch queue")
    lines.extend(line for line in (health_line(app), failure_line(app)) if line)
    lines.extend(unhealthy_lines(app))
    ids = {d.get("id") for d in app.get("deployments") or []}
    for deployment in client.get("/v2/deployments") if ids else []:
        if deployment.get("id") in ids:
            lines.extend(deployment_lines(deployment, app_id))
    return lines


def unhealthy_lines(app: dict[str, Any]) -> list[str]:
    """Each failing health check of the app's tasks, with its last failure's cause."""
    lines = []
    for task in app.get("tasks") or []:
        for result in task.get("healthCheckResults") or []:
            if result.get("alive") is False:
                cause = result.get("lastFailureCause") or "no cause given"
                failures = result.get("consecutiveFailures", 0)
                lines.append(f"unhealthy: {task['id']}: {cause} ({failures} failures in a row)")
    return lines


def deployment_lines(deployment: dict[str, Any], app_id: str) -> list[str]:
    """The deployment's step, and the readiness checks its actions on ``app_id`` wait for."""
    step = f"step {deployment.get('currentStep', 0)}/{deployment.get('totalSteps', 0)}"
    lines = [f"deployment {deployment.get('id')} in progress ({step})"]
    for action in deployment.get("currentActions") or []:
        if action.get("app") != app_id:
            continue
        for check in action.get("readinessCheckResults") or []:
            if not check.get("ready"):
                response = check.get("lastResponse") or {}
                status = f" (last answer {response['status']})" if response.get("status") else ""
                lines.append(f"not ready: {check.get('taskId')} {check.get('name', '')}{status}")
    return lines
