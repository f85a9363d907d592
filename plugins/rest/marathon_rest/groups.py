"""``/v2/groups``: the app tree — read, create, update (scale, roll back), delete."""

from __future__ import annotations

import math
from typing import Any

import attrs
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from marathon_core.contracts.auth import Action
from marathon_core.errors import ConflictError, InvalidArgumentError, NotFoundError
from marathon_core.model.codec import GroupUpdate, deployment_to_json, parse_group_update
from marathon_core.model.group import Group
from marathon_core.model.ids import PathId, Timestamp
from marathon_rest.api import Api
from marathon_rest.apps import embeds, infos
from marathon_rest.auth import authorize, visible_part
from marathon_rest.ids import id_from_url
from marathon_rest.responses import deployment_result, json_response, query_flag


def _group_id(raw: str, *, creating: bool = False) -> PathId:
    return id_from_url(raw, kind="Group", creating=creating)


def _missing(group_id: PathId) -> NotFoundError:
    return NotFoundError(f"Group '{group_id}' does not exist")


async def _group_json(api: Api, group: Group, wanted: frozenset[str]) -> dict[str, Any]:
    """GroupInfo with the keys marathon-python knows (never ``enforceRole``)."""
    with_counts = bool(wanted & {"counts", "tasks", "deployments"})
    entries: dict[PathId, orjson.Fragment] = {}
    if with_counts:
        apps = sorted(group.transitive_apps(), key=lambda a: a.id)
        encoded = await infos(api, apps, with_tasks="tasks" in wanted, embed=wanted)
        entries = {a.id: e for a, e in zip(apps, encoded, strict=True)}

    def render(g: Group) -> dict[str, Any]:
        apps = sorted(g.apps, key=lambda a: a.id)
        return {
            "id": str(g.id),
            "apps": [entries[a.id] if with_counts else api.infos.app_fragment(a) for a in apps],
            "groups": [render(sub) for sub in sorted(g.groups, key=lambda s: s.id)],
            "pods": [],
            "dependencies": [str(d) for d in g.dependencies],
            **({"version": str(g.version)} if g.version is not None else {}),
        }

    return render(group)


async def _get(request: Request, path: str) -> Response:
    api = Api.of(request)
    segments = [s for s in path.strip("/").split("/") if s]
    if segments[-1:] == ["versions"]:
        group_id = _group_id("/".join(segments[:-1]))
        authorize(request, Action.VIEW_GROUP, str(group_id))
        return await _versions(api, group_id)
    if len(segments) >= 2 and segments[-2] == "versions":
        group_id = _group_id("/".join(segments[:-2]))
        authorize(request, Action.VIEW_GROUP, str(group_id))
        return await _version(request, api, group_id, segments[-1])
    group_id = _group_id(path)
    if not group_id.is_root:  # the root is everyone's listing, filtered to what they may view
        authorize(request, Action.VIEW_GROUP, str(group_id))
    group = (await api.ctx.root()).find_group(group_id)
    if group is None:
        raise _missing(group_id)
    return json_response(await _group_json(api, visible_part(request, group), embeds(request)))


async def _versions(api: Api, group_id: PathId) -> Response:
    if (await api.ctx.root()).find_group(group_id) is None:
        raise _missing(group_id)
    versions = []
    for version in await api.ctx.history.root_versions():
        root = await api.ctx.history.root_at(version)
        if root is not None and root.find_group(group_id) is not None:
            versions.append(str(version))
    return json_response(list(reversed(versions)))


async def _version(request: Request, api: Api, group_id: PathId, raw: str) -> Response:
    group = visible_part(request, await _group_at(api, group_id, raw))
    return json_response(await _group_json(api, group, embeds(request)))


async def _group_at(api: Api, group_id: PathId, raw: str | Timestamp) -> Group:
    try:
        version = raw if isinstance(raw, Timestamp) else Timestamp.parse(raw)
    except ValueError:
        raise InvalidArgumentError(f"Invalid version '{raw}'") from None
    root = await api.ctx.history.root_at(version)
    group = root.find_group(group_id) if root is not None else None
    if group is None:
        raise NotFoundError(f"Group '{group_id}' does not exist in version {raw}")
    return group


def _merged(existing: Group | None, given: Group, update: GroupUpdate) -> Group:
    """The group a PUT describes, by Marathon's GroupUpdate rule at every level: a part
    the body gives replaces, an absent one keeps what exists; a subgroup the body names
    that exists is merged by the same rule, a new one is taken as given."""
    if existing is None:
        return given
    groups = existing.groups
    if update.gives(given.id, "groups"):
        current = {sub.id: sub for sub in existing.groups}
        groups = tuple(_merged(current.get(sub.id), sub, update) for sub in given.groups)
    return attrs.evolve(
        existing,
        apps=given.apps if update.gives(given.id, "apps") else existing.apps,
        groups=groups,
        dependencies=(
            given.dependencies if update.gives(given.id, "dependencies") else existing.dependencies
        ),
    )


def _scaled(group: Group, factor: float) -> Group:
    """Every app below ``group`` scaled by ``factor``, rounded up as Marathon does."""
    scaled = group
    for app in group.transitive_apps():
        scaled = scaled.update_app(attrs.evolve(app, instances=math.ceil(app.instances * factor)))
    return scaled


async def _change(request: Request, path: str, *, create: bool) -> Response:
    api = Api.of(request)
    url_id = _group_id(path, creating=True)
    update = parse_group_update(await request.body(), context=api.ctx.validation, base=url_id)
    group_id = update.group.id
    authorize(request, Action.CREATE_GROUP if create else Action.UPDATE_GROUP, str(group_id))
    rollback_to = (
        await _group_at(api, group_id, update.version) if update.version is not None else None
    )

    def apply(root: Group) -> Group:
        existing = root.find_group(group_id)
        if create and existing is not None and not group_id.is_root:
            raise ConflictError(
                f"Group {group_id} is already created. Use PUT to change this group."
            )
        if create and root.find_app(group_id) is not None:
            raise ConflictError(f"An app with the path {group_id} already exists.")
        if rollback_to is not None:
            return root.put_group(rollback_to)
        if update.scale_by is not None:
            if existing is None:
                raise _missing(group_id)
            return root.put_group(_scaled(existing, update.scale_by))
        return root.put_group(_merged(existing, update.group, update))

    dry_run = not create and query_flag(request, "dryRun")
    change = await api.ctx.update_root(apply, force=query_flag(request, "force"), dry_run=dry_run)
    if dry_run:
        return json_response({"steps": deployment_to_json(change.deployment)["steps"]})
    response = deployment_result(change, status=201 if create else 200)
    if create:
        response.headers["Location"] = str(
            request.url_for("groups", path=str(group_id).lstrip("/"))
        )
    return response


async def _delete(request: Request, path: str) -> Response:
    api = Api.of(request)
    group_id = _group_id(path)
    authorize(request, Action.DELETE_GROUP, str(group_id))

    def remove(root: Group) -> Group:
        if root.find_group(group_id) is None:
            raise _missing(group_id)
        return root.remove_group(group_id)

    change = await api.ctx.update_root(remove, force=query_flag(request, "force"))
    return deployment_result(change)


async def root_route(request: Request) -> Response:
    return await _dispatch(request, "")


async def group_route(request: Request) -> Response:
    return await _dispatch(request, request.path_params["path"])


async def _dispatch(request: Request, path: str) -> Response:
    method = request.method
    if method == "GET":
        return await _get(request, path)
    if method == "POST":
        return await _change(request, path, create=True)
    if method == "PUT":
        return await _change(request, path, create=False)
    return await _delete(request, path)


ROUTES = [
    Route("/v2/groups", root_route, methods=["GET", "POST", "PUT", "DELETE"]),
    Route(
        "/v2/groups/{path:path}",
        group_route,
        methods=["GET", "POST", "PUT", "DELETE"],
        name="groups",
    ),
]
