"""The ASGI application: routes, Marathon's error shapes and response headers.

Every error a client can cause leaves as Marathon's JSON: a ``UserError`` with its
status and body, an unknown route as 404 ``{"message": "URI not found"}``, a wrong
method as 405. Anything else is a bug: it is logged with its traceback and the client
gets a 500 with a JSON message, never the traceback.
"""

from __future__ import annotations

import logging
import re

import trio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from marathon_core.errors import FencedWriteError, StorageUnavailableError, UserError
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
from marathon_rest.api import Api
from marathon_rest.app_types import ASGIApp, Message, Receive, Scope, Send
from marathon_rest.audit import Audit
from marathon_rest.auth import authenticate
from marathon_rest.cors import Cors, parse_origins
from marathon_rest.events import EventStream
from marathon_rest.limits import RequestLimits
from marathon_rest.listen import hsts, leader_scheme
from marathon_rest.proxy import LOCAL_PATHS, LeaderProxy
from marathon_rest.responses import json_response

log = logging.getLogger(__name__)

_SLASHES = re.compile(r"/{2,}")


async def _user_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, UserError)
    return json_response(exc.to_json(), status=exc.status, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return json_response({"message": "URI not found"}, status=404)
    return json_response({"message": exc.detail}, status=exc.status_code, headers=exc.headers)


async def _storage_error(request: Request, exc: Exception) -> Response:
    """The state store refused or is unreachable (e.g. leadership just moved): retry later."""
    log.warning("%s %s: state store: %s", request.method, request.url.path, exc)
    return json_response({"message": f"State store unavailable: {exc}"}, status=503)


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return json_response({"message": "An internal error occurred."}, status=500)


#: Browsers that saw this use HTTPS only for a year (set when plain HTTP is disabled).
HSTS_VALUE = b"max-age=31536000"


class MarathonHeaders:
    """Collapses ``//`` in paths (clients build ``/v2/apps/`` + id) and adds Marathon's headers."""

    def __init__(self, app: ASGIApp, api: Api) -> None:
        self.app = app
        self.api = api
        self.scheme = leader_scheme(api.ctx.config)
        self.hsts = hsts(api.ctx.config)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if "//" in path:
            scope = dict(scope, path=_SLASHES.sub("/", path))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if self.api.leader is not None:
                    headers.append(
                        (b"x-marathon-leader", f"{self.scheme}://{self.api.leader}".encode())
                    )
                if self.hsts:
                    headers.append((b"strict-transport-security", HSTS_VALUE))
                headers.append((b"x-frame-options", b"DENY"))
                headers.append((b"x-xss-protection", b"1; mode=block"))
                headers.append((b"cache-control", b"no-cache, no-store, must-revalidate"))
                message = dict(message, headers=headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)


#: Authentication hooks running at once in worker threads: checking a password hash
#: (scrypt) costs tens of milliseconds of CPU and memory each.
AUTHENTICATION_THREADS = 2


class Authenticate:
    """Answers 401 before routing when no auth plugin accepts the caller.

    Every path, ``/ping`` and ``/openapi.json`` included: once authentication is
    configured nothing answers 2xx without credentials (a liveness probe sends them).
    The hooks run in a worker thread then, so a password check never stalls the
    event loop (and with it every other request, the event stream and Mesos).
    """

    def __init__(self, app: ASGIApp, api: Api) -> None:
        self.app = app
        self.api = api
        self._threads = trio.CapacityLimiter(AUTHENTICATION_THREADS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope, receive)
            try:
                if self.api.ctx.access.authenticates:
                    await trio.to_thread.run_sync(
                        authenticate, self.api, request, limiter=self._threads
                    )
                else:  # the anonymous identity: nothing to wait for
                    authenticate(self.api, request)
            except UserError as exc:
                if self._leader_decides(request):
                    await self.app(scope, receive, send)  # forwarded: the leader answers
                    return
                await json_response(exc.to_json(), status=exc.status, headers=exc.headers)(
                    scope, receive, send
                )
                return
        await self.app(scope, receive, send)

    def _leader_decides(self, request: Request) -> bool:
        """A standby forwards a request it cannot authenticate when it carries cookies
        but no ``Authorization``: a cookie may name a session the leader keeps in its
        memory (marathon-ui's login). Nothing was checked here to count as a failed
        login, and the leader authenticates the forwarded request as any other."""
        return (
            not self.api.elected
            and request.url.path not in LOCAL_PATHS
            and "cookie" in request.headers
            and "authorization" not in request.headers
        )


def extension_routes(api: Api) -> list[BaseRoute]:
    """The routes other plugins add (hook ``marathon_rest_routes``, see :mod:`.hookspecs`)."""
    return [
        route for routes in api.ctx.call_extension("marathon_rest_routes") for route in routes or ()
    ]


def create_app(api: Api) -> ASGIApp:
    """The whole API as one ASGI app."""
    app = Starlette(
        routes=[
            *system.ROUTES,
            *apps.ROUTES,
            *deployments.ROUTES,
            *groups.ROUTES,
            *openapi.ROUTES,
            *subscriptions.ROUTES,
            *metrics.ROUTES,
            *queue.ROUTES,
            *tasks.ROUTES,
            Route("/v2/events", EventStream(), methods=["GET"]),
            *extension_routes(api),
        ],
        exception_handlers={
            UserError: _user_error,
            FencedWriteError: _storage_error,
            StorageUnavailableError: _storage_error,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
    )
    app.state.api = api
    config = api.ctx.config
    # Every process authenticates its own callers (a standby too, so failed logins count
    # against the caller's address, not the standby's); the leader authenticates a
    # forwarded request again and decides. CORS preflights carry no credentials: they
    # are answered before either. Writes and rejections are audited where they are
    # answered (a forwarded write on the leader), 413 and 431 included.
    forwarding = LeaderProxy(app, api)
    cors = Cors(
        Authenticate(forwarding, api), parse_origins(config.option("access_control_allow_origin"))
    )
    limited = RequestLimits(
        cors,
        max_body_bytes=config.option("http_max_request_body"),
        max_header_bytes=config.option("http_max_header_size"),
    )
    return MarathonHeaders(Audit(limited, api), api)
