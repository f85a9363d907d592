"""Tasks: list them (``/v2/tasks``, ``/v2/apps/{id}/tasks``) and kill them.

A kill without ``scale`` stops the task and lets the scheduler start a replacement
(the instance keeps its goal). With ``scale`` the killed instances are decommissioned
first and the app's ``instances`` is lowered by their number in a deployment, so
exactly the chosen ones go. ``wipe`` decommissions without scaling.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from marathon_core.contracts.auth import Action
from marathon_core.errors import BadRequestError, NotFoundError
from marathon_core.model.app import AppDefinition
from marathon_core.model.ids import PathId
from marathon_core.model.instance import Condition, Instance, parse_task_id
from marathon_rest.api import Api
from marathon_rest.appinfo import task_json
from marathon_rest.auth import allowed, authorize
from marathon_rest.queue import leader_of
from marathon_rest.responses import deployment_result, json_response, query_flag

if TYPE_CHECKING:
    from marathon_core.contracts.services import TaskHealth

_STATUS = {
    "running": frozenset({Condition.RUNNING}),
    "staging": frozenset({Condition.STAGING, Condition.STARTING, Condition.PROVISIONED}),
}


def _live(instances: Iterable[Instance]) -> list[Instance]:
    return [i for i in instances if i.task is not None and not i.task.condition.is_terminal]


def tasks_json(
    app: AppDefinition | None, instances: Iterable[Instance], health: TaskHealth | None = None
) -> list[dict[str, Any]]:
    """The live tasks of ``instances`` (with their health checks' results, if any)."""
    return [task_json(i, app, health) for i in _live(instances)]


async def list_tasks(request: Request) -> Response:
    """``GET /v2/tasks`` (``status=running|staging``, repeatable; ``text/plain`` too)."""
    api = Api.of(request)
    statuses = request.query_params.getlist("status") + request.query_params.getlist("status[]")
    wanted = frozenset().union(*(_STATUS.get(s, frozenset()) for s in statuses))
    root = await api.ctx.root()
    apps = root.app_index()
    instances = [
        i
        for i in _live(await api.ctx.all_instances())
        if (not statuses or i.condition in wanted)
        and allowed(request, Action.VIEW_RUN_SPEC, str(i.app_id))
    ]
    if request.headers.get("accept", "").startswith("text/plain"):
        return PlainTextResponse(_text_listing(apps, instances))
    health = api.live.health if api.live is not None else None
    return json_response(
        {
            "tasks": [
                task_json(i, apps.get(i.app_id), health) for i in instances if i.task is not None
            ]
        }
    )


def _text_listing(apps: dict[PathId, AppDefinition], instances: list[Instance]) -> str:
    """Marathon's plain form: per app and service port, ``id<TAB>port<TAB>host:port ...``."""
    by_app: dict[PathId, list[Instance]] = {}
    for instance in instances:
        by_app.setdefault(instance.app_id, []).append(instance)
    lines = []
    for app_id in sorted(by_app):
        app = apps.get(app_id)
        ports = app.service_ports if app is not None else ()
        for index, service_port in enumerate(ports):
            endpoints = [
                f"{i.agent.host}:{i.task.host_ports[index]}"
                for i in by_app[app_id]
                if i.agent is not None and i.task is not None and index < len(i.task.host_ports)
            ]
            lines.append("\t".join([app_id.safe_id, str(service_port), *endpoints]))
    return "".join(line + "\n" for line in lines)


def _kill_mode(request: Request) -> tuple[bool, bool, bool]:
    scale, wipe = query_flag(request, "scale"), query_flag(request, "wipe")
    if scale and wipe:
        raise BadRequestError("You cannot use scale and wipe at the same time.")
    return scale, wipe, query_flag(request, "force")


async def _kill_and_scale(
    api: Api, instances: dict[PathId, list[Instance]], *, force: bool
) -> Response:
    """Decommission exactly ``instances`` and lower each app's ``instances`` by as many,
    in one deployment."""
    return deployment_result(await leader_of(api).kill_and_scale(instances, force=force))


async def kill_app_tasks(request: Request, app_id: PathId, task: str | None) -> Response:
    """``DELETE /v2/apps/{id}/tasks[/{taskId}]`` (``host`` limits the kill to one agent)."""
    api = Api.of(request)
    if (await api.ctx.root()).find_app(app_id) is None:
        raise NotFoundError(f"App '{app_id}' does not exist")
    live = _live(await api.ctx.instances_of(app_id))
    if task is not None:
        chosen = [i for i in live if i.task is not None and str(i.task.task_id) == task]
        if not chosen:
            raise NotFoundError(f"Task '{task}' does not exist")
    else:
        host = request.query_params.get("host", "*")
        chosen = [i for i in live if host == "*" or (i.agent is not None and i.agent.host == host)]
    scale, wipe, force = _kill_mode(request)
    authorize(request, Action.UPDATE_RUN_SPEC, str(app_id))
    if scale:
        return await _kill_and_scale(api, {app_id: chosen}, force=force)
    await leader_of(api).kill(chosen, wipe=wipe)
    killed = tasks_json(None, chosen)
    return json_response({"task": killed[0]} if task is not None else {"tasks": killed})


async def delete_tasks(request: Request) -> Response:
    """``POST /v2/tasks/delete`` with ``{"ids": [...]}``: unknown ids are skipped."""
    api = Api.of(request)
    try:
        ids = (await request.json())["ids"]
    except (ValueError, TypeError, KeyError):
        ids = None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise BadRequestError('Expected a JSON body {"ids": ["<task id>", ...]}')
    by_app: dict[PathId, list[Instance]] = {}
    for raw in ids:
        try:
            task_id = parse_task_id(raw)
        except ValueError:
            raise BadRequestError(f"Invalid task id '{raw}'.") from None
        app_id = task_id.run_spec_id
        chosen = by_app.setdefault(app_id, [])
        for instance in _live(await api.ctx.instances_of(app_id)):
            if (
                instance.task is not None
                and str(instance.task.task_id) == str(task_id)
                and instance not in chosen  # an id given twice kills (and scales) once
            ):
                chosen.append(instance)
    by_app = {app_id: chosen for app_id, chosen in by_app.items() if chosen}
    scale, wipe, force = _kill_mode(request)
    for app_id in by_app:
        authorize(request, Action.UPDATE_RUN_SPEC, str(app_id))
    if scale:
        if not by_app:
            return json_response({"tasks": []})
        return await _kill_and_scale(api, by_app, force=force)
    killed: list[dict[str, Any]] = []
    for chosen in by_app.values():
        await leader_of(api).kill(chosen, wipe=wipe)
        killed.extend(tasks_json(None, chosen))
    return json_response({"tasks": killed})


ROUTES = [
    Route("/v2/tasks", list_tasks, methods=["GET"]),
    Route("/v2/tasks/delete", delete_tasks, methods=["POST"]),
]
