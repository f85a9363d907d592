"""Logging in to the UI with any authentication plugin, and out again.

``/ui/login`` takes a user and password (sent on as HTTP Basic) or an API token (as a
Bearer token) and asks the ``marathon_authenticate`` hook, in a worker thread as
marathon-rest does, about a request that carries only that ``Authorization`` header.
The UI never reads credentials itself, so it works with whatever plugin checks them,
and shows that plugin's answer (its message, its lockout with ``Retry-After``).

A login makes a session (:mod:`.sessions`): the browser gets only a random id in an
``HttpOnly``, ``SameSite=Strict`` cookie. :class:`SessionHooks` (``tryfirst``) then
authenticates a request that has that cookie and no ``Authorization`` header by
asking the other plugins about the stored header, every time: a changed password or
a removed user counts at once. A browser navigating to a page it may not see without
logging in is sent to ``/ui/login?next=<the page>``; everything else (``/v2``, the
page's fragments, data and event stream, any request with an ``Authorization``
header) gets the plugins' own 401 as before.

Login and logout are ``POST`` forms, so marathon-rest's cross-site check (a write
whose ``Origin`` is another site is refused) covers them.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import attrs
import pluggy
import trio
from starlette.requests import Request, cookie_parser
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from marathon_core import hookimpl
from marathon_core.contracts.auth import ANONYMOUS, HttpRequest, Identity
from marathon_core.errors import NotAuthenticatedError, UserError
from marathon_core.plugins import PluginHost
from marathon_rest.api import Api
from marathon_rest.app_types import Receive, Scope, Send
from marathon_rest.auth import IDENTITY_KEY, RequestView
from marathon_ui.render import html
from marathon_ui.sessions import (
    COOKIE_NAME,
    SESSION_USER,
    SessionStore,
    clear_session_cookie,
    set_session_cookie,
)

#: Where a login goes when it names no page (or one that is not ours to go to).
DEFAULT_NEXT = "/ui/apps"
LOGIN_PATH = "/ui/login"
LOGOUT_PATH = "/ui/logout"
#: What a caller needs no login for: the form, logging out, and the form's stylesheet.
PUBLIC = frozenset({("GET", LOGIN_PATH), ("POST", LOGIN_PATH), ("POST", LOGOUT_PATH)})
STATIC_PREFIX = "/ui/static/"
#: Under /ui but no page: the script's fragments, data and event stream.
NOT_PAGES = ("/ui/f/", "/ui/api/", "/ui/stream", STATIC_PREFIX)
#: The identity of a request to a public path (it reaches no handler that asks for one).
LOGIN_PAGE = Identity("marathon-ui login page", attributes={"marathon_ui": "public"})
#: Marks an identity that came from a session (the page header then offers logout).
SESSION_ATTRIBUTE = "marathon_ui.session"
#: Longest user name, password or token the form takes.
MAX_FIELD = 4096
#: Logins checked at once in worker threads (a password hash costs CPU and memory).
LOGIN_THREADS = trio.CapacityLimiter(2)


class LoginRedirect(UserError):
    """303 to the login page: a browser asked for a page without being logged in."""

    status = 303


def is_public(request: HttpRequest) -> bool:
    if (request.method, request.path) in PUBLIC:
        return True
    name = request.path.removeprefix(STATIC_PREFIX)
    return request.method == "GET" and name != request.path and bool(name) and "/" not in name


def is_browser_page(request: HttpRequest) -> bool:
    """Whether a browser navigates to one of our pages (it gets a login form, not a
    401); a script's ``fetch`` says ``Sec-Fetch-Mode: cors`` or ``same-origin``."""
    path = request.path
    if request.method != "GET" or not (path == "/ui" or path.startswith("/ui/")):
        return False
    if path.startswith(NOT_PAGES):
        return False
    mode = request.headers.get("sec-fetch-mode")
    if mode is not None:
        return mode == "navigate"
    return "text/html" in request.headers.get("accept", "")


def safe_next(value: str | None) -> str:
    """``value`` if it is a path on this site (never another site: no open redirect)."""
    if not value or len(value) > 2048 or not value.startswith("/"):
        return DEFAULT_NEXT
    if value.startswith("//") or "\\" in value or any(c <= " " or c == "\x7f" for c in value):
        return DEFAULT_NEXT
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path in (LOGIN_PATH, LOGOUT_PATH):
        return DEFAULT_NEXT
    return value


def login_url(request: HttpRequest) -> str:
    query = urlencode([(k, v) for k, values in request.query.items() for v in values])
    here = request.path + (f"?{query}" if query else "")
    return f"{LOGIN_PATH}?next={quote(here, safe='/')}"


def _session_id(request: HttpRequest) -> str | None:
    return cookie_parser(request.headers.get("cookie", "")).get(COOKIE_NAME) or None


def _with_authorization(request: HttpRequest, authorization: str) -> RequestView:
    headers = {k: v for k, v in request.headers.items() if k != "cookie"}
    return RequestView(
        method=request.method,
        path=request.path,
        headers={**headers, "authorization": authorization},
        query=request.query,
        client_address=request.client_address,
    )


class SessionHooks:
    """The UI's hooks on a server where some plugin authenticates callers.

    Enabled by ``marathon_configure`` only then: on its own it authenticates nobody
    (it asks the other plugins), and must not make marathon-rest think it is safe to
    listen beyond loopback.
    """

    def __init__(self, host: PluginHost, store: SessionStore) -> None:
        self.host = host
        self.store = store

    @hookimpl
    def marathon_ui_login(self) -> SessionHooks:
        return self

    @hookimpl(tryfirst=True)
    def marathon_authenticate(self, request: HttpRequest) -> Identity | None:
        if is_public(request):
            return LOGIN_PAGE  # whatever it carries: these pages ask nobody's permission
        if "authorization" in request.headers:
            return None  # credentials of its own: the other plugins decide, as for any client
        session_id = _session_id(request)
        session = self.store.get(session_id) if session_id is not None else None
        asked = request if session is None else _with_authorization(request, session.authorization)
        try:
            identity = self._others(request=asked)
        except UserError as exc:
            if exc.status != 401:
                raise  # a lockout (429) and the like stand as the plugin said
            refusal = exc
        else:
            if identity is None:  # nobody else decides: as the host would answer
                return ANONYMOUS
            if identity.authenticated:
                if session is None:
                    return identity
                return attrs.evolve(
                    identity, attributes={**identity.attributes, SESSION_ATTRIBUTE: session.user}
                )
            refusal = NotAuthenticatedError("Not Authenticated")
        if session_id is not None:
            self.store.end(session_id)  # its user no longer gets in: the session is over
        if is_browser_page(request):
            raise LoginRedirect("Log in first", headers={"Location": login_url(request)})
        if session_id is not None:
            # The page's own script, whose session ended: no Basic challenge (the
            # browser would pop up its password dialog over the page).
            raise NotAuthenticatedError(f"{refusal.message} Log in again at {LOGIN_PATH}.")
        raise refusal

    def verify(self, authorization: str, client_address: str | None) -> Identity:
        """Who ``authorization`` (from the login form) is, as the other plugins answer a
        request that carries only it; raises their refusal (a 401, a 429)."""
        view = RequestView("POST", LOGIN_PATH, {"authorization": authorization}, {}, client_address)
        identity = self._others(request=view)
        return ANONYMOUS if identity is None else identity

    def _others(self, request: HttpRequest) -> Identity | None:
        caller: pluggy.HookCaller = self.host.manager.subset_hook_caller(
            "marathon_authenticate", remove_plugins=[self]
        )
        identity: Identity | None = caller(request=request)
        return identity


def login_hooks(request: Request) -> SessionHooks | None:
    found = Api.of(request).ctx.call_extension("marathon_ui_login")
    return next((hooks for hooks in found if hooks is not None), None)


def _page(
    next_page: str,
    *,
    status: int = 200,
    error: str | None = None,
    user: str = "",
    headers: Mapping[str, str] | None = None,
    unprotected: bool = False,
) -> Response:
    response = html(
        "login.html", next_page=next_page, error=error, user=user, unprotected=unprotected
    )
    response.status_code = status
    response.headers.update(headers or {})
    return response


async def login_form(request: Request) -> Response:
    next_page = safe_next(request.query_params.get("next"))
    return _page(next_page, unprotected=login_hooks(request) is None)


async def _fields(request: Request) -> dict[str, str]:
    if request.headers.get("content-type", "").split(";")[0].strip() != (
        "application/x-www-form-urlencoded"
    ):
        return {}
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[:MAX_FIELD] for k, v in parse_qsl(body, keep_blank_values=True)}


def authorization_header(fields: Mapping[str, str]) -> str | None:
    """``Bearer <token>`` for a token, else ``Basic`` of user and password; None when
    the form cannot make a header (nothing entered, or characters no header may hold)."""
    token = fields.get("token", "").strip()
    if token:
        return f"Bearer {token}" if token.isascii() and token.isprintable() else None
    user, password = fields.get("user", ""), fields.get("password", "")
    if not user or ":" in user or not (user + password).isprintable():
        return None
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


async def login(request: Request) -> Response:
    fields = await _fields(request)
    next_page = safe_next(fields.get("next"))
    hooks = login_hooks(request)
    if hooks is None:
        return _page(next_page, unprotected=True)
    user = fields.get("user", "") if not fields.get("token", "").strip() else ""
    authorization = authorization_header(fields)
    if authorization is None:
        return _page(
            next_page,
            status=400,
            error="Enter a user name and password, or an API token.",
            user=user,
        )
    client = request.client.host if request.client else None
    try:
        identity = await trio.to_thread.run_sync(
            hooks.verify, authorization, client, limiter=LOGIN_THREADS
        )
    except UserError as exc:
        request.scope[IDENTITY_KEY] = Identity(user, authenticated=False)
        retry = {k: v for k, v in exc.headers.items() if k.lower() == "retry-after"}
        return _page(next_page, status=exc.status, error=exc.message, user=user, headers=retry)
    if not identity.authenticated:
        request.scope[IDENTITY_KEY] = identity
        return _page(next_page, status=401, error="Not Authenticated", user=user)
    request.scope[IDENTITY_KEY] = identity  # the audit record names who logged in
    earlier = request.cookies.get(COOKIE_NAME)
    if earlier:
        hooks.store.end(earlier)  # a login always starts a new session (no fixation)
    response = RedirectResponse(next_page, status_code=303)
    session_id = hooks.store.create(authorization, identity.name)
    set_session_cookie(response, request, session_id, int(hooks.store.lifetime))
    return response


async def logout(request: Request) -> Response:
    hooks = login_hooks(request)
    session_id = request.cookies.get(COOKIE_NAME)
    if hooks is not None and session_id:
        session = hooks.store.get(session_id)
        if session is not None:
            request.scope[IDENTITY_KEY] = Identity(session.user)  # for the audit record
        hooks.store.end(session_id)
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    clear_session_cookie(response, request)
    return response


class ShowSessionUser:
    """ASGI middleware of the UI's routes: pages rendered for a request authenticated by
    a session show its user and a logout button (:func:`sessions.session_user`)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        identity: Identity | None = scope.get(IDENTITY_KEY)
        user = identity.attributes.get(SESSION_ATTRIBUTE) if identity is not None else None
        token = SESSION_USER.set(user)
        try:
            await self.app(scope, receive, send)
        finally:
            SESSION_USER.reset(token)


ROUTES: Sequence[BaseRoute] = [
    Route("/login", login_form, methods=["GET"], name="login"),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"], name="logout"),
]
