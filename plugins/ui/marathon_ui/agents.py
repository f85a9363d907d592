"""Agents and sandboxes, read from the Mesos master the leader is subscribed to.

The agents page shows each agent's used and total resources, its attributes (what
constraints match against) and the instances placed on it. The sandbox tail reads a
task's ``stdout`` or ``stderr`` through the agent's ``/files/read``, fetched by this
server so the page talks to its own origin only (its CSP allows nothing else).
"""

from __future__ import annotations

from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response

from marathon_core.contracts.auth import Action, SystemResource
from marathon_core.errors import BadRequestError, NotFoundError, ServiceUnavailableError
from marathon_core.model.ids import PathId
from marathon_core.model.instance import Instance
from marathon_rest.api import Api
from marathon_rest.auth import allowed, authorize
from marathon_rest.responses import json_response
from marathon_ui.render import html

#: How much of the end of a file the first read of a tail returns.
TAIL_BYTES = 16 * 1024
SANDBOX_FILES = frozenset({"stdout", "stderr"})


async def master_state(api: Api) -> dict[str, Any]:
    url = api.ctx.mesos_leader_url()
    if url is None:
        raise ServiceUnavailableError("The Mesos master is not known yet")
    try:
        response = await api.leader_client.get(f"{url.rstrip('/')}/master/state", timeout=5)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise ServiceUnavailableError(f"The Mesos master did not answer: {exc}") from exc
    state: dict[str, Any] = response.json()
    return state


async def agents_page(request: Request) -> Response:
    authorize(request, Action.VIEW_RESOURCE, SystemResource.SYSTEM_CONFIG)
    api = Api.of(request)
    state = await master_state(api)
    live = api.ctx.leader
    placed: dict[str, list[Instance]] = {}
    for instance in live.all_instances() if live is not None else ():
        agent_id = instance.agent.agent_id if instance.agent is not None else None
        if agent_id is not None and allowed(request, Action.VIEW_RUN_SPEC, str(instance.app_id)):
            placed.setdefault(agent_id, []).append(instance)
    agents = sorted(state.get("slaves", []), key=lambda a: str(a.get("hostname")))
    return html("agents.html", nav="agents", agents=agents, placed=placed)


async def sandbox_tail(request: Request) -> Response:
    """``?app=&task=&file=stdout|stderr[&offset=]``: the file from ``offset`` on (from
    near its end without one), as ``{"data", "offset"}`` with the offset to read next."""
    params = request.query_params
    file = params.get("file", "stdout")
    if file not in SANDBOX_FILES:
        raise BadRequestError("file must be stdout or stderr")
    app_id = PathId.parse(params.get("app", ""))
    authorize(request, Action.VIEW_RUN_SPEC, str(app_id))
    api = Api.of(request)
    live = api.ctx.leader
    task_id = params.get("task", "")
    instance = next(
        (
            i
            for i in (live.instances_of(app_id) if live is not None else ())
            if i.task is not None and str(i.task.task_id) == task_id
        ),
        None,
    )
    if instance is None or instance.agent is None or instance.agent.agent_id is None:
        raise NotFoundError(f"Task '{task_id}' of '{app_id}' is not running")
    state = await master_state(api)
    agent = next((a for a in state.get("slaves", []) if a["id"] == instance.agent.agent_id), None)
    framework_id = await api.ctx.leadership.framework_id()
    if agent is None or framework_id is None:
        raise NotFoundError(f"The agent of task '{task_id}' is not known to the master")
    path = f"/slaves/{agent['id']}/frameworks/{framework_id}/executors/{task_id}/runs/latest/{file}"
    base = f"http://{agent['hostname']}:{agent['port']}/files/read"
    offset = params.get("offset", "")
    try:
        if not offset.isdigit():
            size = (await api.leader_client.get(base, params={"path": path, "offset": -1})).json()
            offset = str(max(0, int(size["offset"]) - TAIL_BYTES))
        response = await api.leader_client.get(
            base, params={"path": path, "offset": offset, "length": TAIL_BYTES}, timeout=5
        )
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise ServiceUnavailableError(f"The agent did not answer: {exc}") from exc
    chunk = response.json()
    read = len(chunk["data"].encode())
    return json_response({"data": chunk["data"], "offset": int(offset) + read})
