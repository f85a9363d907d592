"""The UI's routes: pages rendered from server state, the fragments ``live.js`` swaps in
when an event touches them, the event stream it listens to, and its static files.

Every route sits behind the REST frontend's authentication, and shows only what the
caller may view (the same checks as ``/v2``). Writes are not made here: the page's
script calls ``/v2`` with a JSON body, so a cross-site form cannot trigger one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from marathon_core.contracts.auth import Action
from marathon_core.errors import NotFoundError, ServiceUnavailableError
from marathon_core.model.app import AppDefinition
from marathon_core.model.codec import deployment_to_json
from marathon_core.model.group import Group
from marathon_core.model.ids import PathId
from marathon_core.model.instance import Instance
from marathon_rest.api import Api
from marathon_rest.app_types import Message, Receive, Scope, Send
from marathon_rest.appinfo import deployments_by_app
from marathon_rest.auth import allowed, authorize, visible_part
from marathon_rest.events import EventStream
from marathon_ui import agents, editor
from marathon_ui.data import (
    MAX_PAGE_SIZE,
    SORT_KEYS,
    AppRow,
    Listing,
    Page,
    RowCache,
    Status,
    app_row,
    subgroups,
)
from marathon_ui.placement import AgentFit, placement_table
from marathon_ui.render import html

_STATIC_DIR = Path(__file__).with_name("static")
_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css"}
#: Our static files, read once: name -> (bytes, content type).
_STATIC = {
    path.name: (path.read_bytes(), _STATIC_TYPES[path.suffix])
    for path in _STATIC_DIR.iterdir()
    if path.suffix in _STATIC_TYPES
}


async def _instances(api: Api, app_id: PathId) -> Sequence[Instance]:
    live = api.ctx.leader
    return live.instances_of(app_id) if live is not None else await api.ctx.instances_of(app_id)


async def _visible_root(request: Request) -> Group:
    return visible_part(request, await Api.of(request).ctx.root())


#: Rows of the apps pages, kept between requests (see :class:`RowCache`).
_ROWS = RowCache()


async def _rows(api: Api, apps: Sequence[AppDefinition]) -> list[AppRow]:
    deployments = deployments_by_app(api.ctx.deployments())
    live = api.ctx.leader
    if live is not None:
        return _ROWS.rows(apps, live, deployments)
    # A standby: stored instances, no queue, nothing to keep.
    return [
        app_row(a, await api.ctx.instances_of(a.id), deployments.get(a.id, ()), None, None)
        for a in apps
    ]


async def list_apps(request: Request, listing: Listing) -> Page:
    """The page of apps ``listing`` asks for, filtered, sorted and cut on the server."""
    api = Api.of(request)
    group = (await _visible_root(request)).find_group(PathId.parse(listing.group))
    if group is None:
        return Page(rows=[], total=0, pages=1, groups=[], counts={})
    rows = [r for r in await _rows(api, list(group.transitive_apps())) if listing.matches(r.id)]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status.value] = counts.get(row.status.value, 0) + 1
    if listing.q:
        groups = subgroups(listing.group, (r.id for r in rows))
    else:  # every app of each subgroup matches: count them without looking at ids
        groups = [(str(g.id), sum(1 for _ in g.transitive_apps())) for g in group.groups]
    if listing.status is not None:
        rows = [r for r in rows if r.status is listing.status]
    rows.sort(key=SORT_KEYS[listing.sort], reverse=listing.descending)
    pages = max(1, -(-len(rows) // listing.per))
    start = (min(listing.page, pages) - 1) * listing.per
    return Page(
        rows=rows[start : start + listing.per],
        total=len(rows),
        pages=pages,
        groups=sorted(g for g in groups if g[1]),
        counts=counts,
    )


def _events_mark(request: Request) -> int:
    """The newest event before a page reads its data: its script's stream starts
    after it (``data-after``), so nothing that changes the page in between is lost."""
    return Api.of(request).ctx.events.last_id


async def apps_page(request: Request) -> Response:
    after = _events_mark(request)
    listing = Listing.parse(request.query_params)
    page = await list_apps(request, listing)
    return html(
        "apps.html",
        nav="apps",
        events_after=after,
        listing=listing,
        page=page,
        statuses=[s.value for s in Status],
    )


async def app_rows_fragment(request: Request) -> Response:
    """The rows of the apps asked for (``?id=`` repeated); a gone or hidden app is an
    empty row marked ``data-gone`` so the page drops it."""
    api = Api.of(request)
    root = await _visible_root(request)
    ids = request.query_params.getlist("id")[: Listing().per * 10]
    found = {str(a.id): a for a in (root.find_app(PathId.parse(i)) for i in ids) if a is not None}
    rows = {r.id: r for r in await _rows(api, list(found.values()))}
    return html("app_rows.html", ids=ids, rows=rows)


async def app_page_rows(request: Request) -> Response:
    """The apps page's rows in the order the rest of the query (the page's own) lists
    them: in full for the apps asked for (``?id=`` repeated), by id only for the others,
    with the page's status counts and pager. The page's script asks when an event names
    an app it does not show, or one it shows is gone, and puts rows in place live."""
    listing = Listing.parse(request.query_params)
    page = await list_apps(request, listing)
    asked = set(request.query_params.getlist("id")[: MAX_PAGE_SIZE * 2])
    statuses = [s.value for s in Status]
    return html("app_page_rows.html", listing=listing, page=page, asked=asked, statuses=statuses)


def _app_id(request: Request) -> PathId:
    return PathId.parse("/" + request.path_params["app_id"].strip("/"))


async def _app_view(request: Request) -> dict[str, Any]:
    """Everything the app page shows: its row, instances, versions and why it waits."""
    api = Api.of(request)
    app_id = _app_id(request)
    authorize(request, Action.VIEW_RUN_SPEC, str(app_id))
    app = (await api.ctx.root()).find_app(app_id)
    if app is None:
        raise NotFoundError(f"App '{app_id}' does not exist")
    leader = api.ctx.leader
    instances = await _instances(api, app_id)
    (row,) = await _rows(api, [app])
    deployments = [d for d in api.ctx.deployments() if app_id in d.affected_app_ids()]
    blocking = []
    for deployment in deployments:
        status = await leader.deployment_status(deployment.id) if leader is not None else None
        blocking.append((deployment.id, (status or {}).get(str(app_id))))
    health = leader.health if leader is not None else None
    queue = leader.queue_entry(app_id) if leader is not None else None
    return {
        "app": app,
        "row": row,
        "instances": [(i, health.counts([i]) if health is not None else (0, 0)) for i in instances],
        "queue": queue,
        "placement": await _placement(api, app, instances) if queue and queue.count else None,
        "failure": leader.last_task_failure(app_id) if leader is not None else None,
        "blocking": blocking,
        "may_update": allowed(request, Action.UPDATE_RUN_SPEC, str(app_id)),
    }


async def _placement(
    api: Api, app: AppDefinition, instances: Sequence[Instance]
) -> list[AgentFit] | None:
    """Each agent's verdict on ``app`` (only while instances wait: it reads the master's
    state); None when the master does not answer."""
    try:
        state = await agents.master_state(api)
    except ServiceUnavailableError:
        return None
    return placement_table(
        app,
        state.get("slaves", []),
        instances,
        api.ctx.validation.constraint_operators,
        api.ctx.config.mesos_role,
    )


async def app_page(request: Request) -> Response:
    after = _events_mark(request)
    view = await _app_view(request)
    versions = await Api.of(request).ctx.history.app_versions(view["app"].id)
    return html(
        "app.html",
        nav="apps",
        events_after=after,
        versions=[str(v) for v in reversed(versions)],
        **view,
    )


async def app_fragment(request: Request) -> Response:
    return html("app_live.html", **await _app_view(request))


async def _deployments(request: Request) -> list[dict[str, Any]]:
    api = Api.of(request)
    leader = api.ctx.leader
    out = []
    for deployment in api.ctx.deployments():
        apps = deployment.affected_app_ids()
        if not all(allowed(request, Action.VIEW_RUN_SPEC, str(a)) for a in apps):
            continue
        status = await leader.deployment_status(deployment.id) if leader is not None else None
        out.append({**deployment_to_json(deployment), "status": status or {}})
    return out


async def deployments_page(request: Request) -> Response:
    after = _events_mark(request)
    deployments = await _deployments(request)
    return html("deployments.html", nav="deployments", events_after=after, deployments=deployments)


async def deployments_fragment(request: Request) -> Response:
    return html("deployment_list.html", deployments=await _deployments(request))


async def events_page(request: Request) -> Response:
    return html("events.html", nav="events", events_after=_events_mark(request))


async def index(request: Request) -> Response:
    return RedirectResponse(request.url_for("apps"), status_code=303)


async def static_file(request: Request) -> Response:
    found = _STATIC.get(request.path_params["name"])
    if found is None:
        raise NotFoundError("URI not found")
    body, media_type = found
    return Response(body, media_type=media_type)


class ResumableStream:
    """``/v2/events`` for the page's script, resuming after ``?after=``: a new
    ``EventSource`` cannot send ``Last-Event-ID`` itself, so it goes in the query.

    ``?unnamed=1`` leaves out the ``event:`` lines (the type is in each event's JSON
    too), so a page that shows every event gets them all through ``onmessage``
    without knowing every type in advance.
    """

    def __init__(self) -> None:
        self.events = EventStream()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = Request(scope).query_params
        after = query.get("after", "")
        headers = [(k, v) for k, v in scope["headers"] if k != b"last-event-id"]
        if after.isdigit():
            headers.append((b"last-event-id", after.encode()))
        if query.get("unnamed") == "1":
            send = _without_event_names(send)
        await self.events(dict(scope, headers=headers), receive, send)


def _without_event_names(send: Send) -> Send:
    """``send`` for an event stream, minus its ``event:`` lines (each chunk the stream
    writes holds whole events)."""

    async def unnamed(message: Message) -> None:
        body = message.get("body")
        if message["type"] == "http.response.body" and body:
            lines = body.split(b"\n")
            message = dict(
                message, body=b"\n".join(x for x in lines if not x.startswith(b"event: "))
            )
        await send(message)

    return unnamed


def _route_of(endpoint: Any, path: str, name: str | None = None) -> BaseRoute:
    return Route(path, endpoint, methods=["GET"], name=name)


ROUTES: list[BaseRoute] = [
    _route_of(index, "/"),
    _route_of(apps_page, "/apps", "apps"),
    _route_of(app_page, "/apps/{app_id:path}", "app"),
    _route_of(deployments_page, "/deployments", "deployments"),
    _route_of(events_page, "/events", "events"),
    _route_of(agents.agents_page, "/agents", "agents"),
    _route_of(agents.sandbox_tail, "/api/sandbox"),
    _route_of(app_rows_fragment, "/f/app-rows"),
    _route_of(app_page_rows, "/f/app-page"),
    _route_of(app_fragment, "/f/app/{app_id:path}"),
    _route_of(deployments_fragment, "/f/deployments"),
    _route_of(ResumableStream(), "/stream"),
    _route_of(static_file, "/static/{name}", "static"),
    _route_of(editor.editor_page, "/new", "new"),
    _route_of(editor.version_diff, "/versions/{app_id:path}", "version"),
    _route_of(editor.editor_page, "/edit/{app_id:path}", "edit"),
    Route("/api/preview", editor.preview, methods=["POST"]),
    Route("/api/form-preview", editor.form_preview, methods=["POST"]),
    Route("/api/form-json", editor.form_json, methods=["POST"]),
    Route("/f/form", editor.form_fragment, methods=["POST"]),
]
