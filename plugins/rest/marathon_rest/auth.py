"""Authentication and authorization of API requests through the core's auth hooks.

Every request is authenticated once (``marathon_authenticate``); an identity with
``authenticated=False`` is answered 401. Handlers then ask :func:`authorize` for
Marathon's action on the resource at hand (``marathon_authorize``), which raises a
403; list endpoints use :func:`allowed` to leave out what the caller may not view
(:func:`visible_part` for the group tree, :func:`event_filter` for the event stream).
With no auth plugin installed, everyone is anonymous and everything is allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs
from starlette.requests import Request

from marathon_core.contracts.auth import Action, Identity, Resource, SystemResource
from marathon_core.errors import ForbiddenError, NotAuthenticatedError
from marathon_core.model.group import Group
from marathon_rest.api import Api

#: Where a request's identity is kept in its ASGI scope once authenticated (audit reads it).
IDENTITY_KEY = "marathon_rest.identity"


@attrs.frozen
class RequestView:
    """The framework-neutral request auth plugins see (``contracts.auth.HttpRequest``)."""

    method: str
    path: str
    headers: Mapping[str, str]
    query: Mapping[str, Sequence[str]]
    client_address: str | None

    @classmethod
    def of(cls, request: Request) -> RequestView:
        query: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            query.setdefault(key, []).append(value)
        return cls(
            method=request.method,
            path=request.url.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            query=query,
            client_address=request.client.host if request.client else None,
        )


def authenticate(api: Api, request: Request) -> Identity:
    """Ask the auth hooks who sent ``request`` and remember it; 401 if nobody acceptable."""
    known = api.ctx.access.authenticate(RequestView.of(request))
    request.scope[IDENTITY_KEY] = known
    if not known.authenticated:
        raise NotAuthenticatedError("Not Authenticated")
    return known


def identity(request: Request) -> Identity:
    """Who sent ``request`` (authenticated once per request)."""
    known: Identity | None = request.scope.get(IDENTITY_KEY)
    if known is None or not known.authenticated:
        return authenticate(Api.of(request), request)
    return known


def allows_everything(api: Api) -> bool:
    """True when no auth plugin decides on actions: lists need not ask per item."""
    return not api.ctx.access.enforced


def allowed(request: Request, action: Action, resource: Resource) -> bool:
    return Api.of(request).ctx.access.authorize(identity(request), action, resource)


def authorize(request: Request, action: Action, resource: Resource) -> None:
    """Raise 403 unless the caller may perform ``action`` on ``resource``."""
    if not allowed(request, action, resource):
        raise ForbiddenError("Not Authorized to perform this action!")


def visible_part(request: Request, group: Group) -> Group:
    """``group`` with only the apps the caller may view, and the subgroups it may view or
    that hold something it may view: listings never show what the caller may not see."""
    if allows_everything(Api.of(request)):
        return group
    subgroups = tuple(
        sub
        for sub in (visible_part(request, g) for g in group.groups)
        if sub.apps or sub.groups or allowed(request, Action.VIEW_GROUP, str(sub.id))
    )
    apps = tuple(a for a in group.apps if allowed(request, Action.VIEW_RUN_SPEC, str(a.id)))
    return attrs.evolve(group, apps=apps, groups=subgroups)


def _event_subjects(payload: Mapping[str, Any]) -> Iterator[tuple[Action, str]]:
    """The apps and groups an event (in Marathon's wire form) tells about.

    An audit record tells who did what from where, to any app: it is shown only to
    callers who may view the system's configuration (``/v2/info``).
    """
    if payload.get("eventType") == "api_audit_event":
        yield Action.VIEW_RESOURCE, SystemResource.SYSTEM_CONFIG
    if isinstance(app_id := payload.get("appId"), str):
        yield Action.VIEW_RUN_SPEC, app_id
    if isinstance(run_spec_id := payload.get("runSpecId"), str):  # instance_changed_event
        yield Action.VIEW_RUN_SPEC, run_spec_id
    if isinstance(group_id := payload.get("groupId"), str):
        yield Action.VIEW_GROUP, group_id
    definition = payload.get("appDefinition")
    if isinstance(definition, Mapping) and isinstance(definition.get("id"), str):
        yield Action.VIEW_RUN_SPEC, definition["id"]
    plan = payload.get("plan")
    if isinstance(plan, Mapping):
        for step in plan.get("steps", ()):
            for action in step.get("actions", ()):
                yield Action.VIEW_RUN_SPEC, action["app"]


def event_filter(request: Request) -> Callable[[Mapping[str, Any]], bool] | None:
    """A test of whether the caller may see an event: only if it may view every app and
    group the event names (a deployment: all its apps). None when everything is visible."""
    if allows_everything(Api.of(request)):
        return None
    decided: dict[tuple[Action, str], bool] = {}

    def visible(payload: Mapping[str, Any]) -> bool:
        for subject in _event_subjects(payload):
            if subject not in decided:
                decided[subject] = allowed(request, *subject)
            if not decided[subject]:
                return False
        return True

    return visible
