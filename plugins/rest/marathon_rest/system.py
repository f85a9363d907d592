"""System endpoints: ``/ping``, ``/v2/info``, ``/v2/leader``."""

from __future__ import annotations

from typing import Any

import trio
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

import marathon_core
from marathon_core.contracts.auth import Action, SystemResource
from marathon_core.redaction import redact
from marathon_rest.api import Api
from marathon_rest.auth import authorize
from marathon_rest.responses import json_response

#: The Marathon REST API this server implements. Clients gate features on ``version``
#: (marathon-python skips its event-stream tests below 0.11), so it names Marathon's
#: API, not this project's release; that one is ``buildref``.
MARATHON_API_VERSION = "1.11.0"


async def ping(request: Request) -> Response:
    """``pong`` as text, or as a JSON string for clients that accept only JSON (as Marathon)."""
    accept = request.headers.get("accept", "*/*")
    if "text/plain" in accept or "*/*" in accept or "text/*" in accept:
        return PlainTextResponse("pong")
    if "application/json" in accept:
        return json_response("pong")
    return Response(status_code=204)


async def _info(api: Api) -> dict[str, Any]:
    """``/v2/info`` with only the keys Marathon's clients know (marathon-python rejects others)."""
    config = api.ctx.config
    return {
        "name": "marathon",
        "version": MARATHON_API_VERSION,
        "buildref": marathon_core.__version__,
        "elected": api.elected,
        "leader": api.leader,
        "frameworkId": await api.ctx.leadership.framework_id(),
        "marathon_config": {
            "master": redact(config.master),
            # Where Mesos's UI and the agents' sandboxes are found (marathon-ctl task logs).
            "mesos_leader_ui_url": api.ctx.mesos_leader_url(),
            "ha": config.ha and config.zk is not None,
            "hostname": config.hostname,
            "framework_name": config.framework_name,
            "failover_timeout": config.failover_timeout,
            "checkpoint": config.checkpoint,
            "executor": config.executor,
            "local_port_min": config.local_port_min,
            "local_port_max": config.local_port_max,
            "mesos_role": config.mesos_role,
            "mesos_user": config.mesos_user,
            "webui_url": config.webui_url,
            "reconciliation_initial_delay": config.reconciliation_initial_delay,
            "reconciliation_interval": config.reconciliation_interval,
            "task_launch_timeout": config.task_launch_timeout,
        },
        "zookeeper_config": {
            "zk": redact(config.zk) if config.zk is not None else None,
            "zk_timeout": config.zk_timeout,
            "zk_session_timeout": config.zk_session_timeout,
            "zk_max_versions": config.zk_max_versions,
        },
        "http_config": {"http_port": api.http_port, "https_port": config.https_port},
    }


async def info(request: Request) -> Response:
    authorize(request, Action.VIEW_RESOURCE, SystemResource.SYSTEM_CONFIG)
    return json_response(await _info(Api.of(request)))


async def leader(request: Request) -> Response:
    authorize(request, Action.VIEW_RESOURCE, SystemResource.LEADER)
    current = Api.of(request).leader
    if current is None:
        return json_response({"message": "There is no leader"}, status=404)
    return json_response({"leader": current})


#: Marathon answers first and steps down a moment later.
ABDICATION_DELAY = 0.5


async def abdicate(request: Request) -> Response:
    """``DELETE /v2/leader``: the leader steps down; another process takes over."""
    authorize(request, Action.UPDATE_RESOURCE, SystemResource.LEADER)
    api = Api.of(request)
    leadership = api.ctx.leadership
    if not leadership.is_leader or api.nursery is None:
        return json_response({"message": "There is no leader"}, status=404)

    async def step_down() -> None:
        await trio.sleep(ABDICATION_DELAY)
        await leadership.abdicate()

    api.nursery.start_soon(step_down)
    return json_response({"message": "Leadership abdicated"})


ROUTES = [
    Route("/ping", ping, methods=["GET"]),
    Route("/v2/info", info, methods=["GET"]),
    Route("/v2/leader", leader, methods=["GET"]),
    Route("/v2/leader", abdicate, methods=["DELETE"]),
]
