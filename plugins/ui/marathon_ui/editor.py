"""Create and edit apps: a JSON editor page and its preview.

The preview runs the definition through the same parser and validation as
``POST /v2/apps`` (errors come back as Marathon's 422 with JSON paths), plans the
deployment without storing anything (``dry_run``), and lists what changes against
the current version as paths, like ``nomad plan``: defaults filled in by the server
never show up as changes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from marathon_core.contracts.auth import Action
from marathon_core.errors import BadRequestError, NotFoundError
from marathon_core.model.codec import app_to_json, deployment_to_json, parse_app
from marathon_core.model.ids import PathId, Timestamp
from marathon_rest.api import Api
from marathon_rest.auth import authorize
from marathon_rest.responses import json_response
from marathon_ui.render import html

#: Keys the server sets, which an edit never changes.
_SERVER_KEYS = frozenset({"version", "versionInfo"})

NEW_APP = {"id": "/my-app", "cmd": "sleep 3600", "cpus": 0.1, "mem": 32, "instances": 1}


def changes(old: Any, new: Any, path: str = "") -> Iterator[dict[str, Any]]:
    """What differs between two JSON values, as ``{path, old, new}`` leaves
    (``old`` or ``new`` absent when the key was added or removed)."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys()):
            if not path and key in _SERVER_KEYS:
                continue
            where = f"{path}/{key}"
            if key not in new:
                yield {"path": where, "old": old[key]}
            elif key not in old:
                yield {"path": where, "new": new[key]}
            else:
                yield from changes(old[key], new[key], where)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from changes(a, b, f"{path}({index})")
    elif old != new:
        yield {"path": path or "/", "old": old, "new": new}


async def editor_page(request: Request) -> Response:
    raw = request.path_params.get("app_id")
    current = None
    if raw is not None:
        app_id = PathId.parse("/" + raw.strip("/"))
        authorize(request, Action.VIEW_RUN_SPEC, str(app_id))
        app = (await Api.of(request).ctx.root()).find_app(app_id)
        if app is None:
            raise NotFoundError(f"App '{app_id}' does not exist")
        current = app_to_json(app)
    shown = {k: v for k, v in (current or NEW_APP).items() if k not in _SERVER_KEYS}
    return html(
        "editor.html",
        nav="apps",
        app_id=current["id"] if current else None,
        text=json.dumps(shown, indent=2),
    )


async def preview(request: Request) -> Response:
    """Validate a definition and show its deployment steps and changes; stores nothing.

    A JSON body only: a cross-site form cannot send one without a preflight."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise BadRequestError("Send the definition as application/json")
    api = Api.of(request)
    app = parse_app(await request.body(), context=api.ctx.validation)
    current = (await api.ctx.root()).find_app(app.id)
    authorize(
        request,
        Action.CREATE_RUN_SPEC if current is None else Action.UPDATE_RUN_SPEC,
        str(app.id),
    )
    change = await api.ctx.update_root(lambda root: root.update_app(app), dry_run=True)
    new = app_to_json(app)
    return json_response(
        {
            "id": str(app.id),
            "exists": current is not None,
            "changes": list(changes(app_to_json(current) if current else {}, new)),
            "steps": deployment_to_json(change.deployment)["steps"],
        }
    )


async def version_diff(request: Request) -> Response:
    """``/ui/versions/{app}?version=``: what deploying a stored version would change."""
    app_id = PathId.parse("/" + request.path_params["app_id"].strip("/"))
    authorize(request, Action.VIEW_RUN_SPEC, str(app_id))
    api = Api.of(request)
    current = (await api.ctx.root()).find_app(app_id)
    version = request.query_params.get("version", "")
    try:
        stored = await api.ctx.history.app_version(app_id, Timestamp.parse(version))
    except ValueError:
        stored = None
    if current is None or stored is None:
        raise NotFoundError(f"App '{app_id}' does not exist in version {version}")
    return html(
        "version.html",
        nav="apps",
        app_id=str(app_id),
        version=version,
        changes=list(changes(app_to_json(current), app_to_json(stored))),
    )
