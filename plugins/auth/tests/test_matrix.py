"""Every /v2 route and method of marathon-rest's router, for each of five callers, over real HTTP.

Each caller gets a fresh server holding ``/prod/web`` and ``/dev/api`` and sends the
same requests in the same order (reads first, then writes, the root and the leader
last), so a write one caller may make never changes what the next caller finds.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
import trio

from .conftest import ADMIN, PROD, READER, start_api  # type: ignore[import-not-found]

NONE, WRONG, READ, PRODUSER, ADMIN_ = "none", "wrong password", "read-only", "/prod only", "admin"
CALLERS = (NONE, WRONG, READ, PRODUSER, ADMIN_)

APP = {"cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 1}
CALLBACK = "?callbackUrl=http://127.0.0.1:9/cb"

#: (method, path, body) and the status per caller: none, wrong, read-only, /prod, admin.
#: ``{v}`` is /prod/web's version and ``{d}`` the id of its running deployment.
MATRIX: list[tuple[str, str, Any, tuple[int, int, int, int, int]]] = [
    # liveness and the API document: any authenticated caller
    ("GET", "/ping", None, (401, 401, 200, 200, 200)),
    ("GET", "/openapi.json", None, (401, 401, 200, 200, 200)),
    # system resources
    ("GET", "/v2/info", None, (401, 401, 200, 403, 200)),
    ("GET", "/v2/leader", None, (401, 401, 200, 403, 200)),
    ("GET", "/metrics", None, (401, 401, 200, 403, 200)),
    ("GET", "/metrics/prometheus", None, (401, 401, 200, 403, 200)),
    ("GET", "/v2/eventSubscriptions", None, (401, 401, 200, 200, 200)),
    ("GET", "/v2/events", None, (401, 401, 200, 200, 200)),
    # reads: lists are filtered (200), single items need the view permission
    ("GET", "/v2/apps", None, (401, 401, 200, 200, 200)),
    ("GET", "/v2/apps/prod/web", None, (401, 401, 200, 200, 200)),
    ("GET", "/v2/apps/dev/api", None, (401, 401, 200, 403, 200)),
    ("GET", "/v2/apps/prod/*", None, (401, 401, 200, 200, 200)),
    ("GET", "/v2/apps/dev/*", None, (401, 401, 200, 403, 200)),
    ("GET", "/v2/apps/prod/web/versions", None, (401, 401, 200, 200, 200)),
    ("GET", "/v2/apps/prod/web/versions/{v}", None, (401, 401, 200, 200, 200)),
    ("GET", "/v2/apps/dev/api/versions", None, (401, 401, 200, 403, 200)),
    ("GET", "/v2/apps/prod/web/tasks", None, (401, 401, 200, 200, 200)),
    ("GET", "/v2/apps/dev/api/tasks", None, (401, 401, 200, 403, 200)),
    ("GET", "/v2/groups", None, (401, 401, 200, 200, 200)),
    ("GET", "/v2/groups/prod", None, (401, 401, 200, 200, 200)),
    ("GET", "/v2/groups/dev", None, (401, 401, 200, 403, 200)),
    ("GET", "/v2/groups/versions", None, (401, 401, 200, 403, 200)),
    ("GET", "/v2/groups/prod/versions", None, (401, 401, 200, 200, 200)),
    ("GET", "/v2/deployments", None, (401, 401, 200, 200, 200)),
    ("GET", "/v2/deployments/{d}", None, (401, 401, 200, 200, 200)),
    ("GET", "/v2/queue", None, (401, 401, 200, 200, 200)),
    ("GET", "/v2/tasks", None, (401, 401, 200, 200, 200)),
    # writes to apps
    ("DELETE", "/v2/deployments/{d}?force=true", None, (401, 401, 403, 202, 202)),
    ("POST", "/v2/apps", {"id": "/prod/new", **APP}, (401, 401, 403, 201, 201)),
    ("POST", "/v2/apps", {"id": "/dev/new", **APP}, (401, 401, 403, 403, 201)),
    (
        "PUT",
        "/v2/apps/prod/web?force=true",
        {"id": "/prod/web", **APP, "mem": 32},
        (401, 401, 403, 200, 200),
    ),
    ("PATCH", "/v2/apps/prod/web?force=true", {"mem": 48}, (401, 401, 403, 200, 200)),
    (
        "PUT",
        "/v2/apps/dev/api?force=true",
        {"id": "/dev/api", **APP, "mem": 32},
        (401, 401, 403, 403, 200),
    ),
    ("POST", "/v2/apps/prod/web/restart?force=true", None, (401, 401, 403, 200, 200)),
    ("POST", "/v2/apps/dev/api/restart?force=true", None, (401, 401, 403, 403, 200)),
    ("DELETE", "/v2/apps/prod/web/tasks", None, (401, 401, 403, 200, 200)),
    (
        "DELETE",
        "/v2/apps/prod/web/tasks/prod_web.instance-x._app.1",
        None,
        (401, 401, 404, 404, 404),
    ),
    ("DELETE", "/v2/queue/prod/web/delay", None, (401, 401, 403, 404, 404)),
    ("DELETE", "/v2/queue/dev/api/delay", None, (401, 401, 403, 403, 404)),
    (
        "POST",
        "/v2/tasks/delete",
        {"ids": ["prod_web.instance-x._app.1"]},
        (401, 401, 200, 200, 200),
    ),
    # writes to groups
    ("POST", "/v2/groups", {"id": "/prod/g", "apps": []}, (401, 401, 403, 201, 201)),
    ("PUT", "/v2/groups/prod?force=true", {"id": "/prod", "scaleBy": 2}, (401, 401, 403, 200, 200)),
    ("POST", "/v2/groups/dev/g", {"apps": []}, (401, 401, 403, 403, 201)),
    ("DELETE", "/v2/apps/prod/web?force=true", None, (401, 401, 403, 200, 200)),
    ("DELETE", "/v2/apps/dev/api?force=true", None, (401, 401, 403, 403, 200)),
    ("DELETE", "/v2/groups/prod?force=true", None, (401, 401, 403, 200, 200)),
    ("DELETE", "/v2/groups/dev?force=true", None, (401, 401, 403, 403, 200)),
    # event subscriptions (UpdateResource on Events)
    ("POST", f"/v2/eventSubscriptions{CALLBACK}", None, (401, 401, 403, 403, 200)),
    ("DELETE", f"/v2/eventSubscriptions{CALLBACK}", None, (401, 401, 403, 403, 200)),
    # the root and the leader, last
    ("PUT", "/v2/groups?force=true", {"id": "/", "apps": []}, (401, 401, 403, 403, 200)),
    ("DELETE", "/v2/groups?force=true", None, (401, 401, 403, 403, 200)),
    ("DELETE", "/v2/leader", None, (401, 401, 403, 403, 200)),
]


#: The create form's body: its fields over the definition it was built from.
FORM = {"fields": [["id", "/dev/x"], *([k, str(v)] for k, v in APP.items())], "base": {}}

#: marathon-ui's routes, the same way (a server with the UI; none of these writes
#: changes state). The login form, logout and the stylesheet need no credentials;
#: everything else is a page of /v2's data with /v2's checks.
UI_MATRIX: list[tuple[str, str, Any, tuple[int, int, int, int, int]]] = [
    ("GET", "/ui/login", None, (200, 200, 200, 200, 200)),
    ("POST", "/ui/login", None, (400, 400, 400, 400, 400)),  # an empty form
    ("POST", "/ui/logout", None, (303, 303, 303, 303, 303)),
    ("GET", "/ui/static/ui.css", None, (200, 200, 200, 200, 200)),
    ("GET", "/ui/", None, (401, 401, 303, 303, 303)),
    ("GET", "/ui/apps", None, (401, 401, 200, 200, 200)),
    ("GET", "/ui/apps/prod/web", None, (401, 401, 200, 200, 200)),
    ("GET", "/ui/apps/dev/api", None, (401, 401, 200, 403, 200)),
    ("GET", "/ui/deployments", None, (401, 401, 200, 200, 200)),
    ("GET", "/ui/events", None, (401, 401, 200, 200, 200)),
    ("GET", "/ui/agents", None, (401, 401, 503, 403, 503)),  # no master here
    ("GET", "/ui/api/sandbox?app=/dev/api&task=x", None, (401, 401, 404, 403, 404)),
    ("GET", "/ui/f/app-rows?id=/prod/web&id=/dev/api", None, (401, 401, 200, 200, 200)),
    ("GET", "/ui/f/app-page?id=/prod/web", None, (401, 401, 200, 200, 200)),
    ("GET", "/ui/f/app/prod/web", None, (401, 401, 200, 200, 200)),
    ("GET", "/ui/f/app/dev/api", None, (401, 401, 200, 403, 200)),
    ("GET", "/ui/f/deployments", None, (401, 401, 200, 200, 200)),
    ("GET", "/ui/stream", None, (401, 401, 200, 200, 200)),
    ("GET", "/ui/new", None, (401, 401, 200, 200, 200)),
    ("GET", "/ui/versions/prod/web?version={v}", None, (401, 401, 200, 200, 200)),
    ("GET", "/ui/versions/dev/api?version={v}", None, (401, 401, 404, 403, 404)),
    ("GET", "/ui/edit/prod/web", None, (401, 401, 200, 200, 200)),
    ("GET", "/ui/edit/dev/api", None, (401, 401, 200, 403, 200)),
    ("POST", "/ui/api/preview", {"id": "/dev/x", **APP}, (401, 401, 403, 403, 200)),
    ("POST", "/ui/api/form-preview", FORM, (401, 401, 403, 403, 200)),
    # the form <-> JSON switches read nothing: any authenticated caller
    ("POST", "/ui/api/form-json", FORM, (401, 401, 200, 200, 200)),
    ("POST", "/ui/f/form", {"id": "/dev/x", **APP}, (401, 401, 200, 200, 200)),
]


def credentials(caller: str) -> dict[str, str]:
    user, password = {
        WRONG: (READER[0], "not-it"),
        READ: READER,
        PRODUSER: PROD,
        ADMIN_: ADMIN,
    }.get(caller, ("", ""))
    if not user:
        return {}
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def seeded_server(
    nursery: trio.Nursery, auth_args: list[str], *, with_ui: bool = False
) -> tuple[str, dict[str, str]]:
    """A fresh server with /prod/web and /dev/api; returns its URL and the ``{v}``/``{d}``."""
    args = [*auth_args, "--auth_max_failures", "1000"]
    _, url = await start_api(nursery, args, with_ui=with_ui)
    async with httpx.AsyncClient(base_url=url, headers=credentials(ADMIN_)) as admin:
        for app_id in ("/prod/web", "/dev/api"):
            assert (await admin.post("/v2/apps", json={"id": app_id, **APP})).status_code == 201
        version = (await admin.get("/v2/apps/prod/web")).json()["app"]["version"]
        deployments = (await admin.get("/v2/deployments")).json()
        deployment = next(d["id"] for d in deployments if d["affectedApps"] == ["/prod/web"])
    return url, {"v": version, "d": deployment}


async def call(client: httpx.AsyncClient, method: str, path: str, body: Any) -> httpx.Response:
    if path.startswith(("/v2/events", "/ui/stream")):
        async with client.stream(method, path) as response:
            if response.status_code != 200:  # an error has a body; a stream never ends
                await response.aread()
            return response
    return await client.request(method, path, json=body)


@pytest.mark.parametrize("with_ui", [False, True], ids=["v2", "ui"])
@pytest.mark.parametrize("caller", CALLERS)
async def test_every_route_answers_each_caller_exactly(
    caller: str, with_ui: bool, nursery: trio.Nursery, auth_args: list[str]
) -> None:
    url, values = await seeded_server(nursery, auth_args, with_ui=with_ui)
    column = CALLERS.index(caller)
    got: list[tuple[str, str, int, int]] = []
    async with httpx.AsyncClient(base_url=url, headers=credentials(caller), timeout=10) as client:
        for method, path, body, statuses in UI_MATRIX if with_ui else MATRIX:
            response = await call(client, method, path.format(**values), body)
            got.append((method, path, statuses[column], response.status_code))
            if response.status_code == 401:
                assert response.headers["www-authenticate"] == 'Basic realm="Test Realm"'
                expected = (
                    "Not Authenticated" if caller == NONE else "Invalid username or password."
                )
                assert response.json() == {"message": expected}
            if response.status_code == 403:
                assert response.json() == {"message": "Not Authorized to perform this action!"}
    wrong = [g for g in got if g[2] != g[3]]
    assert not wrong, "\n".join(f"{m} {p}: expected {e}, got {a}" for m, p, e, a in wrong)


def test_the_matrix_covers_every_route_and_method_of_the_router() -> None:
    from starlette.routing import Route, compile_path

    from marathon_rest import (
        apps,
        deployments,
        groups,
        metrics,
        openapi,
        queue,
        subscriptions,
        system,
        tasks,
    )

    modules = (apps, deployments, groups, metrics, openapi, queue, subscriptions, system, tasks)
    routes = [r for m in modules for r in m.ROUTES if isinstance(r, Route)]
    routes.append(Route("/v2/events", lambda r: None, methods=["GET"]))
    covered = {
        (route.path, method)
        for method, path, _, _ in MATRIX
        for route in routes
        if method in (route.methods or ())
        and compile_path(route.path)[0].match(path.split("?")[0].format(v="v", d="d"))
    }
    every = {(r.path, m) for r in routes for m in (r.methods or ()) if m != "HEAD"}
    assert every - covered == set()


async def test_a_ui_session_answers_every_route_as_its_users_password_does(
    nursery: trio.Nursery, auth_args: list[str]
) -> None:
    """Logged in with the UI's form, the cookie gets exactly what the user's Basic
    credentials get, on /ui and /v2 alike; after logout, nothing."""
    url, values = await seeded_server(nursery, auth_args, with_ui=True)
    column = CALLERS.index(PRODUSER)
    logout = [row for row in UI_MATRIX if row[1] == "/ui/logout"]
    rows = [row for row in UI_MATRIX if row not in logout] + MATRIX + logout
    got: list[tuple[str, str, int, int]] = []
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        login = await client.post("/ui/login", data={"user": PROD[0], "password": PROD[1]})
        assert login.status_code == 303 and "marathon_session" in client.cookies
        for method, path, body, statuses in rows:
            response = await call(client, method, path.format(**values), body)
            got.append((method, path, statuses[column], response.status_code))
        assert (await client.get("/v2/apps")).status_code == 401
    wrong = [g for g in got if g[2] != g[3]]
    assert not wrong, "\n".join(f"{m} {p}: expected {e}, got {a}" for m, p, e, a in wrong)


def test_the_ui_matrix_covers_every_route_and_method_of_the_ui() -> None:
    from starlette.routing import Route, compile_path

    from marathon_ui import login, views

    routes = [r for r in (*login.ROUTES, *views.ROUTES) if isinstance(r, Route)]
    covered = {
        (route.path, method)
        for method, path, _, _ in UI_MATRIX
        for route in routes
        if method in (route.methods or ())
        and compile_path("/ui" + route.path)[0].match(path.split("?")[0])
    }
    every = {(r.path, m) for r in routes for m in (r.methods or ()) if m != "HEAD"}
    assert every - covered == set()
