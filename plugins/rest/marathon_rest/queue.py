"""``/v2/queue``: apps waiting for launch, why they wait, and resetting their delay.

Beyond Marathon's counts and reject summaries, ``processedOffersSummary`` carries the
latest rejection details and the best near misses ("needs 2 cpus, best offer had
1.5"), so a user sees why an app does not start without reading logs.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from marathon_core.contracts.auth import Action
from marathon_core.errors import NotFoundError, ServiceUnavailableError
from marathon_core.scheduler.queue_view import QueueEntry
from marathon_core.scheduler.scheduler import Scheduler
from marathon_rest.api import Api
from marathon_rest.auth import allowed, authorize
from marathon_rest.ids import id_from_url
from marathon_rest.responses import json_response


def scheduler_of(api: Api) -> Scheduler:
    """The leader's scheduler; 503 while this process does not lead."""
    if api.ctx.leader is None:
        raise ServiceUnavailableError("This instance is not the leader: no scheduler runs here")
    return api.ctx.leader.scheduler


def _ts(value: Any) -> str | None:
    return None if value is None else str(value)


def entry_json(api: Api, entry: QueueEntry, app_json: orjson.Fragment) -> dict[str, Any]:
    summary = [
        {"reason": r.reason.value, "declined": r.declined, "processed": r.processed}
        for r in entry.reject_summary
    ]
    return {
        "app": app_json,
        "count": entry.count,
        "delay": {
            "timeLeftSeconds": round(entry.delay_time_left),
            "overdue": entry.delay_overdue,
        },
        "since": _ts(entry.since),
        "processedOffersSummary": {
            "processedOffersCount": entry.processed_offers,
            "unusedOffersCount": entry.unused_offers,
            "lastUnusedOfferAt": _ts(entry.last_unused_offer_at),
            "lastUsedOfferAt": _ts(entry.last_used_offer_at),
            "rejectSummaryLastOffers": summary,
            "rejectSummaryLaunchAttempt": summary,
            # Our additions: why the last offers did not fit, and how close they came.
            "lastRejectReasons": list(entry.last_reasons),
            "nearMisses": list(entry.near_misses),
            "notLaunchable": entry.not_launchable,
        },
    }


async def list_queue(request: Request) -> Response:
    api = Api.of(request)
    scheduler = scheduler_of(api)
    root = await api.ctx.groups.root()
    items = []
    for entry in scheduler.queue():
        app = root.find_app(entry.app_id)
        if app is None or not allowed(request, Action.VIEW_RUN_SPEC, str(app.id)):
            continue
        items.append(entry_json(api, entry, api.infos.app_fragment(app)))
    return json_response({"queue": items})


async def reset_delay(request: Request) -> Response:
    api = Api.of(request)
    app_id = id_from_url(request.path_params["path"], kind="App")
    authorize(request, Action.UPDATE_RUN_SPEC, str(app_id))
    if not scheduler_of(api).reset_delay(app_id):
        raise NotFoundError(f"Application {app_id} not found in tasks queue.")
    return Response(status_code=204)


ROUTES = [
    Route("/v2/queue", list_queue, methods=["GET"]),
    Route("/v2/queue/{path:path}/delay", reset_delay, methods=["DELETE"]),
]
