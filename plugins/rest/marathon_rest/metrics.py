"""``/metrics`` (Marathon's JSON snapshot) and ``/metrics/prometheus`` (text exposition).

Gauges are read from live state when asked, so they cannot drift from it; names
follow Marathon's (``marathon.apps.active.gauge`` ...).
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from marathon_core.contracts.auth import Action, SystemResource
from marathon_core.contracts.health import KillStatistics
from marathon_core.model.instance import Condition
from marathon_rest.api import Api
from marathon_rest.auth import authorize
from marathon_rest.responses import json_response

PREFIX = "marathon"
_STARTED = time.monotonic()


async def gauges(api: Api) -> dict[str, float]:
    root = await api.ctx.root()
    instances = await api.ctx.all_instances()
    conditions = [i.condition for i in instances]
    events = api.ctx.events.statistics()
    live = api.live
    kills = live.health.kill_statistics() if live is not None else KillStatistics()
    return {
        f"{PREFIX}.apps.active.gauge": sum(1 for _ in root.transitive_apps()),
        f"{PREFIX}.groups.active.gauge": sum(1 for _ in root.transitive_groups()),
        f"{PREFIX}.deployments.active.gauge": len(api.ctx.deployments()),
        f"{PREFIX}.instances.running.gauge": conditions.count(Condition.RUNNING),
        f"{PREFIX}.instances.staged.gauge": sum(
            1 for c in conditions if c in (Condition.STAGING, Condition.STARTING)
        ),
        f"{PREFIX}.uptime.gauge.seconds": round(time.monotonic() - _STARTED, 3),
        f"{PREFIX}.events.subscribers.gauge": events.subscribers,
        # Subscribers cut for falling behind since start (internal ones subscribe again).
        f"{PREFIX}.events.subscribers.dropped.gauge": events.dropped_subscribers,
        f"{PREFIX}.events.subscribers.backlog.max.gauge": events.largest_backlog,
        # Internal consumers given a fresh subscription / started again since start.
        f"{PREFIX}.events.consumers.resyncs.gauge": sum(
            c.resyncs for c in events.consumers.values()
        ),
        f"{PREFIX}.events.consumers.restarts.gauge": sum(
            c.restarts for c in events.consumers.values()
        ),
        f"{PREFIX}.events.hook.failures.gauge": events.hook_failures,
        # Kills for failing health checks in this leader's term (--health_kill_tokens*).
        f"{PREFIX}.health.kills.gauge": kills.killed,
        f"{PREFIX}.health.kills.deferred.gauge": kills.deferred,
        f"{PREFIX}.health.kills.pending.gauge": kills.pending,
        f"{PREFIX}.health.kills.spared.gauge": kills.spared,
    }


async def metrics(request: Request) -> Response:
    authorize(request, Action.VIEW_RESOURCE, SystemResource.SYSTEM_METRICS)
    values = await gauges(Api.of(request))
    return json_response(
        {
            "version": "4.0.0",
            "gauges": {name: {"value": value} for name, value in values.items()},
            "counters": {},
            "histograms": {},
            "meters": {},
            "timers": {},
        }
    )


async def prometheus(request: Request) -> Response:
    authorize(request, Action.VIEW_RESOURCE, SystemResource.SYSTEM_METRICS)
    lines = []
    for name, value in (await gauges(Api.of(request))).items():
        metric = name.replace(".", "_").replace("-", "_")
        lines += [f"# TYPE {metric} gauge", f"{metric} {value}"]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")


ROUTES = [
    Route("/metrics", metrics, methods=["GET"]),
    Route("/metrics/prometheus", prometheus, methods=["GET"]),
]
