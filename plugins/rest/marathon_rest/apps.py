"""``/v2/apps``: create, read, update, delete, restart and version apps.

App ids contain slashes, so one route per method takes the rest of the path and
the last segment decides (``restart``, ``tasks``, ``versions`` are reserved as the
last segment of an id, which keeps this unambiguous). Every change goes through the
core's :class:`~marathon_core.deploy.manager.GroupManager` and answers with the
deployment it created (``Marathon-Deployment-Id``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from marathon_core.contracts.auth import Action
from marathon_core.errors import ConflictError, InvalidArgumentError, NotFoundError
from marathon_core.model.app import AppDefinition
from marathon_core.model.codec import (
    AppRollback,
    app_to_json,
    parse_app,
    parse_app_update,
)
from marathon_core.model.events import api_post_event
from marathon_core.model.group import Group
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import Instance
from marathon_rest import tasks
from marathon_rest.api import Api
from marathon_rest.appinfo import app_info, deployments_by_app
from marathon_rest.auth import allowed, allows_everything, authorize
from marathon_rest.ids import id_from_url
from marathon_rest.labels import parse_label_selector
from marathon_rest.responses import deployment_result, json_response, query_flag


def embeds(request: Request) -> frozenset[str]:
    """``embed`` values without their ``apps.``/``app.``/``group.apps.`` prefix."""
    out = set()
    for raw in request.query_params.getlist("embed"):
        for prefix in ("group.apps.", "apps.", "app."):
            if raw.startswith(prefix):
                raw = raw[len(prefix) :]
                break
        out.add(raw)
    if "failures" in out:  # deprecated alias
        out |= {"tasks", "lastTaskFailure", "deployments"}
    return frozenset(out)


def _missing(app_id: PathId) -> NotFoundError:
    return NotFoundError(f"App '{app_id}' does not exist")


def _app_id(raw: str, *, creating: bool = False) -> PathId:
    return id_from_url(raw, kind="App", creating=creating)


async def infos(
    api: Api,
    apps: Sequence[AppDefinition],
    *,
    with_tasks: bool,
    embed: frozenset[str] = frozenset(),
) -> list[orjson.Fragment]:
    """The ``/v2/apps`` entries of ``apps``, in order, encoded.

    From the leader's live view they are cached (:mod:`marathon_rest.appinfo`);
    otherwise the instances are read from state and the entries encoded afresh.
    ``embed`` may add ``lastTaskFailure`` and ``readiness`` (``readinessCheckResults``).
    """
    deployments = deployments_by_app(api.ctx.deployments())
    if api.live is not None:
        entries = api.infos.entries(apps, api.live, deployments, with_tasks=with_tasks)
        return _embedded(api, apps, entries, embed)
    by_app: dict[PathId, list[Instance]]
    if len(apps) == 1:
        by_app = {apps[0].id: list(await api.ctx.instances_of(apps[0].id))}
    else:
        by_app = {a.id: [] for a in apps}
        for instance in await api.ctx.all_instances():
            if instance.app_id in by_app:
                by_app[instance.app_id].append(instance)
    return [
        api.infos.encode(a, by_app[a.id], deployments.get(a.id, ()), with_tasks=with_tasks)
        for a in apps
    ]


def _embedded(
    api: Api,
    apps: Sequence[AppDefinition],
    entries: list[orjson.Fragment],
    embed: frozenset[str],
) -> list[orjson.Fragment]:
    """``entries`` with the app's ``lastTaskFailure`` and ``readinessCheckResults``
    spliced in where asked for and known (each cached entry ends with its ``}``)."""
    leader = api.live
    failures = "lastTaskFailure" in embed
    readiness = "readiness" in embed
    if leader is None or not (failures or readiness):
        return entries
    out = []
    for app, entry in zip(apps, entries, strict=True):
        extra: dict[str, object] = {}
        if failures and (failure := leader.last_task_failure(app.id)) is not None:
            extra["lastTaskFailure"] = failure
        if readiness and app.readiness_checks:
            extra["readinessCheckResults"] = leader.readiness_results(app.id)
        if extra:
            entry = orjson.Fragment(orjson.dumps(entry)[:-1] + b"," + orjson.dumps(extra)[1:])
        out.append(entry)
    return out


def _filter(request: Request) -> Callable[[AppDefinition], bool] | None:
    """The ``cmd``, ``id`` and ``label`` filters of a listing (None: keep every app)."""
    cmd = (request.query_params.get("cmd") or "").lower()
    ident = (request.query_params.get("id") or "").lower()
    label = request.query_params.get("label")
    selector = parse_label_selector(label) if label else None
    if not cmd and not ident and selector is None:
        return None

    def keep(app: AppDefinition) -> bool:
        if cmd and cmd not in (app.cmd or "").lower():
            return False
        if ident and ident not in str(app.id).lower():
            return False
        return selector is None or selector(app.labels)

    return keep


# -- handlers -----------------------------------------------------------------------


async def list_apps(request: Request) -> Response:
    api = Api.of(request)
    apps = api.sorted_apps(await api.ctx.root())
    keep = _filter(request)
    if keep is not None:
        apps = [a for a in apps if keep(a)]
    if not allows_everything(api):
        apps = [a for a in apps if allowed(request, Action.VIEW_RUN_SPEC, str(a.id))]
    wanted = embeds(request)
    listed = await infos(api, apps, with_tasks="tasks" in wanted, embed=wanted)
    return json_response({"apps": listed})


async def create_app(request: Request) -> Response:
    api = Api.of(request)
    app = parse_app(await request.body(), context=api.ctx.validation)
    authorize(request, Action.CREATE_RUN_SPEC, str(app.id))

    def create(root: Group) -> Group:
        if root.find_app(app.id) is not None:
            raise ConflictError(f"An app with id [{app.id}] already exists.")
        if root.find_group(app.id) is not None:
            raise ConflictError(f"A group with id [{app.id}] already exists.")
        return root.update_app(app)

    change = await api.ctx.update_root(create, force=query_flag(request, "force"))
    created = change.root.find_app(app.id)
    assert created is not None
    _publish_api_post(api, request, created)
    body = app_info(created, [], [change.deployment.id], with_tasks=False)
    return json_response(
        body,
        status=201,
        headers={
            "Location": str(request.url_for("apps", path=str(app.id).lstrip("/"))),
            "Marathon-Deployment-Id": change.deployment.id,
        },
    )


def _publish_api_post(api: Api, request: Request, app: AppDefinition) -> None:
    client = request.client.host if request.client else None
    api.ctx.events.publish(api_post_event(client, request.url.path, app))


async def _get(request: Request, path: str) -> Response:
    api = Api.of(request)
    segments = path.strip("/").split("/")
    if segments[-1] == "*":
        group_id = _app_id("/".join(segments[:-1]))
        authorize(request, Action.VIEW_GROUP, str(group_id))
        return await _group_apps(request, api, group_id)
    if segments[-1] == "versions":
        app_id = _app_id("/".join(segments[:-1]))
        authorize(request, Action.VIEW_RUN_SPEC, str(app_id))
        return await _versions(api, app_id)
    if len(segments) > 2 and segments[-2] == "versions":
        app_id = _app_id("/".join(segments[:-2]))
        authorize(request, Action.VIEW_RUN_SPEC, str(app_id))
        return await _version(api, app_id, segments[-1])
    if segments[-1] == "tasks":
        app_id = _app_id("/".join(segments[:-1]))
        authorize(request, Action.VIEW_RUN_SPEC, str(app_id))
        return await _tasks(api, app_id)
    app_id = _app_id(path)
    authorize(request, Action.VIEW_RUN_SPEC, str(app_id))
    app = (await api.ctx.root()).find_app(app_id)
    if app is None:
        raise _missing(app_id)
    # One app always shows its last failure, as in Marathon.
    (info,) = await infos(api, [app], with_tasks=True, embed=embeds(request) | {"lastTaskFailure"})
    return json_response({"app": info})


async def _group_apps(request: Request, api: Api, group_id: PathId) -> Response:
    group = (await api.ctx.root()).find_group(group_id)
    if group is None:
        raise NotFoundError(f"Group '{group_id}' does not exist")
    apps = sorted(group.transitive_apps(), key=lambda a: a.id)
    wanted = embeds(request)
    return json_response({"*": await infos(api, apps, with_tasks="tasks" in wanted, embed=wanted)})


async def _versions(api: Api, app_id: PathId) -> Response:
    if (await api.ctx.root()).find_app(app_id) is None:
        raise _missing(app_id)
    versions = await api.ctx.history.app_versions(app_id)
    return json_response({"versions": [str(v) for v in reversed(versions)]})


async def _version(api: Api, app_id: PathId, raw: str) -> Response:
    try:
        version = Timestamp.parse(raw)
    except ValueError:
        raise InvalidArgumentError(f"Invalid version '{raw}'") from None
    app = await api.ctx.history.app_version(app_id, version)
    if app is None:
        raise NotFoundError(f"App '{app_id}' does not exist in version {raw}")
    return json_response(app_to_json(app))


async def _tasks(api: Api, app_id: PathId) -> Response:
    app = (await api.ctx.root()).find_app(app_id)
    if app is None:
        raise _missing(app_id)
    return json_response(
        {
            "tasks": tasks.tasks_json(
                app, await api.ctx.instances_of(app_id), api.live.health if api.live else None
            )
        }
    )


async def _put(request: Request, path: str, *, patch: bool) -> Response:
    api = Api.of(request)
    app_id = _app_id(path, creating=not patch)
    force = query_flag(request, "force")
    partial = patch or query_flag(request, "partialUpdate", default=True)
    body = await request.body()
    current = (await api.ctx.root()).find_app(app_id)
    if current is None and patch:
        raise _missing(app_id)
    action = Action.CREATE_RUN_SPEC if current is None else Action.UPDATE_RUN_SPEC
    authorize(request, action, str(app_id))
    parsed = parse_app_update(
        body, context=api.ctx.validation, app_id=app_id, current=current if partial else None
    )
    if isinstance(parsed, AppRollback):
        target = await api.ctx.history.app_version(app_id, parsed.version)
        if target is None:
            raise NotFoundError(f"App '{app_id}' does not exist in version {parsed.version}")
        parsed = target
    updated = parsed
    change = await api.ctx.update_root(lambda root: root.update_app(updated), force=force)
    stored = change.root.find_app(app_id)
    if stored is not None:
        _publish_api_post(api, request, stored)
    return deployment_result(change, status=201 if current is None else 200)


async def _delete(request: Request, path: str) -> Response:
    api = Api.of(request)
    app_id = _app_id(path)
    authorize(request, Action.DELETE_RUN_SPEC, str(app_id))

    def remove(root: Group) -> Group:
        if root.find_app(app_id) is None:
            raise _missing(app_id)
        return root.remove_app(app_id)

    change = await api.ctx.update_root(remove, force=query_flag(request, "force", default=True))
    return deployment_result(change)


async def _restart(request: Request, app_id: PathId) -> Response:
    api = Api.of(request)
    authorize(request, Action.UPDATE_RUN_SPEC, str(app_id))

    def unchanged(root: Group) -> Group:
        if root.find_app(app_id) is None:
            raise _missing(app_id)
        return root

    change = await api.ctx.update_root(
        unchanged, force=query_flag(request, "force"), restart=[app_id]
    )
    return deployment_result(change)


async def app_route(request: Request) -> Response:
    """Dispatch ``/v2/apps/{path}`` by method and the path's last segment."""
    path: str = request.path_params["path"]
    method = request.method
    if method in ("GET", "HEAD"):
        return await _get(request, path)
    if method == "POST" and path.rstrip("/").endswith("/restart"):
        return await _restart(request, _app_id(path.rstrip("/").removesuffix("/restart")))
    if method in ("PUT", "PATCH"):
        return await _put(request, path, patch=method == "PATCH")
    if method == "DELETE":
        segments = path.strip("/").split("/")
        if segments[-1] == "tasks":
            return await tasks.kill_app_tasks(request, _app_id("/".join(segments[:-1])), None)
        if len(segments) > 2 and segments[-2] == "tasks":
            app_id = _app_id("/".join(segments[:-2]))
            return await tasks.kill_app_tasks(request, app_id, segments[-1])
        return await _delete(request, path)
    return json_response({"message": "HTTP 405 Method Not Allowed"}, status=405)


ROUTES = [
    Route("/v2/apps", list_apps, methods=["GET"]),
    Route("/v2/apps", create_app, methods=["POST"]),
    Route(
        "/v2/apps/{path:path}",
        app_route,
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        name="apps",
    ),
]
