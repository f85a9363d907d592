"""Why instances are not running: the deployment's status, else the launch queue,
backoff, the last failure, health.

This server answers ``GET /v2/deployments/{id}`` with a ``status`` per app: progress
and the reason it waits, computed by the leader. Marathon 1.x has no such route (it
answers 404 or 405); then ``/v2/queue`` and the app (which carries
``lastTaskFailure``) say what they can: this server adds ``lastRejectReasons`` and
``nearMisses`` to Marathon's ``processedOffersSummary``, and Marathon 1.x answers
``embed=lastUnusedOffers`` with each declined offer's host and reasons. Whatever is
there is shown, so it works against either.
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


def deployment_status(client: Marathon, deployment_id: str) -> dict[str, Any] | None:
    """The deployment with its per-app ``status``; None where the server has no such
    route (Marathon 1.x) or the deployment is over (404 here too)."""
    try:
        found = client.get(f"/v2/deployments/{deployment_id}")
    except ApiError:
        return None
    if not isinstance(found, dict) or not isinstance(found.get("status"), dict):
        return None
    return found


def status_head(deployment: dict[str, Any], entry: dict[str, Any]) -> str:
    """``deployment D step 2/3 RestartApplication: waiting, 4/10 new ready, 6 old left``."""
    step = f"step {entry.get('step', '?')}/{deployment.get('totalSteps', '?')}"
    head = f"deployment {deployment.get('id')} {step} {entry.get('action')}: {entry.get('state')}"
    progress = entry.get("progress")
    if progress:
        head += f", {progress.get('current', 0)}/{progress.get('target', 0)} new ready"
        if progress.get("oldInstances"):
            head += f", {progress['oldInstances']} old left"
    return head


def reason_lines(entry: dict[str, Any]) -> list[str]:
    """Why one app of a deployment's ``status`` waits: the leader's message, then the
    details its kind carries."""
    reason = entry.get("reason") or {}
    if not reason:
        return []
    message = str(reason.get("message", reason.get("kind", "")))
    lines = [message]
    kind = reason.get("kind")
    if kind == "noMatchingOffer":
        rejected = _rejected(reason.get("rejectSummaryLastOffers") or [])
        if rejected:
            lines.append(rejected)
        details = [str(r) for r in reason.get("lastRejectReasons") or []]
        details += [f"near miss: {m}" for m in reason.get("nearMisses") or []]
        lines.extend(d for d in details if not message.endswith(d))
    elif kind == "backoff":
        lines.append("(marathon-ctl delay reset to retry now)")
    elif kind == "readinessChecks":
        for result in reason.get("readinessCheckResults") or []:
            if not result.get("ready"):
                failure = result.get("lastFailure") or "no answer yet"
                lines.append(
                    f"not ready: {result.get('taskId')} {result.get('name', '')}: {failure}"
                )
    return lines


def _rejected(summary: list[dict[str, Any]]) -> str | None:
    parts = [
        f"{_REASON_TEXT.get(r['reason'], r['reason'])} {r['declined']}/{r['processed']}"
        for r in summary
        if r.get("declined")
    ]
    return "rejected for: " + ", ".join(parts) if parts else None


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
    rejected = _rejected(summary.get("rejectSummaryLastOffers") or [])
    if rejected:
        lines.append(rejected)
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
    ids = [str(d.get("id")) for d in app.get("deployments") or []]
    statuses = [s for s in (deployment_status(client, i) for i in ids) if s is not None]
    statuses = [s for s in statuses if app_id in s["status"]]
    kinds: set[str | None] = set()
    for deployment in statuses:
        entry = deployment["status"][app_id]
        kinds.add((entry.get("reason") or {}).get("kind"))
        lines.append(status_head(deployment, entry))
        lines.extend(reason_lines(entry))
    if not statuses:
        lines.extend(_queue_lines(client, app_id, running, wanted))
    # A backoff's message names the last failure already.
    failure = failure_line(app) if "backoff" not in kinds else None
    lines.extend(line for line in (health_line(app), failure) if line)
    lines.extend(unhealthy_lines(app))
    for deployment in client.get("/v2/deployments") if ids and not statuses else []:
        if deployment.get("id") in ids:
            lines.extend(deployment_lines(deployment, app_id))
    return lines


def _queue_lines(client: Marathon, app_id: str, running: int, wanted: int) -> list[str]:
    entry = queue_entries(client, [app_id]).get(app_id)
    if entry is not None:
        return placement_lines(entry)
    return ["nothing waits to launch" if running >= wanted else "not in the launch queue"]


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
