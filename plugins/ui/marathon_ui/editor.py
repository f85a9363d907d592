"""Create and edit apps: one page with two views of a definition, a form and a JSON
editor, and their preview.

Switching views goes through the server (``appform``: the form's fields merged onto the
definition they came from, so fields the form does not show are kept). The preview
runs the definition through the same parser and validation as ``POST /v2/apps``
(errors come back as Marathon's 422 with JSON paths), plans the deployment without
storing anything (``dry_run``), and lists what changes against the current version as
paths, like ``nomad plan``: defaults filled in by the server never show up as changes.
A preview of the form also names, for each error, the input its path belongs to.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from marathon_core.contracts.auth import Action
from marathon_core.errors import BadRequestError, NotFoundError, ValidationError
from marathon_core.model.codec import app_to_json, deployment_to_json, load_json, parse_app
from marathon_core.model.ids import PathId, Timestamp
from marathon_rest.api import Api
from marathon_rest.auth import authorize
from marathon_rest.responses import json_response
from marathon_ui import appform
from marathon_ui.appform import ROW_COLUMNS, Pairs
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


def _editor_values(definition: dict[str, Any]) -> dict[str, Any]:
    """What ``editor.html`` and ``form_fields.html`` render a definition with."""
    return {
        "form": appform.form_values(definition),
        "columns": ROW_COLUMNS,
        "blank": {name: appform.blank_row(name) for name in ROW_COLUMNS},
    }


async def editor_page(request: Request) -> Response:
    """``/ui/new`` and ``/ui/edit/{app}``: the form (``?view=json``: the JSON editor)."""
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
        view="json" if request.query_params.get("view") == "json" else "form",
        text=json.dumps(shown, indent=2),
        **_editor_values(shown),
    )


async def _json_body(request: Request) -> Any:
    """A JSON body only: a cross-site form cannot send one without a preflight."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise BadRequestError("Send the definition as application/json")
    return load_json(await request.body())


async def _form_body(request: Request) -> tuple[Pairs, dict[str, Any]]:
    """``{"fields": [[name, value], ...], "base": {definition}}`` from the form's script."""
    body = await _json_body(request)
    fields = body.get("fields") if isinstance(body, dict) else None
    base = body.get("base") if isinstance(body, dict) else None
    if (
        not isinstance(fields, list)
        or not all(
            isinstance(f, list) and len(f) == 2 and all(isinstance(x, str) for x in f)
            for f in fields
        )
        or not isinstance(base, dict)
    ):
        raise BadRequestError('Expected {"fields": [[name, value], ...], "base": {...}}')
    return [(name, value) for name, value in fields], base


async def _preview_of(request: Request, definition: Any) -> dict[str, Any]:
    api = Api.of(request)
    app = parse_app(definition, context=api.ctx.validation)
    current = (await api.ctx.root()).find_app(app.id)
    authorize(
        request,
        Action.CREATE_RUN_SPEC if current is None else Action.UPDATE_RUN_SPEC,
        str(app.id),
    )
    change = await api.ctx.update_root(lambda root: root.update_app(app), dry_run=True)
    old = app_to_json(current) if current else {}
    new = app_to_json(app)
    return {
        "id": str(app.id),
        "exists": current is not None,
        "changes": list(changes(old, new)),
        "steps": deployment_to_json(change.deployment)["steps"],
        "old": _without_server_keys(old),
        "new": _without_server_keys(new),
    }


def _without_server_keys(definition: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in definition.items() if k not in _SERVER_KEYS}


async def preview(request: Request) -> Response:
    """Validate a definition and show its deployment steps and changes; stores nothing."""
    return json_response(await _preview_of(request, await _json_body(request)))


async def form_preview(request: Request) -> Response:
    """The preview of the form's fields: the definition they make, its changes and
    steps, or its errors each with the input its path belongs to (``field``)."""
    fields, base = await _form_body(request)
    definition = appform.definition_from_form(fields, base)
    try:
        answer = await _preview_of(request, definition)
    except ValidationError as error:
        body = error.to_json()
        for detail in body.get("details") or []:
            found = appform.field_of(detail["path"], fields)
            detail["field"] = {"name": found[0], "index": found[1]} if found else None
        return json_response({**body, "definition": definition}, status=error.status)
    return json_response({**answer, "definition": definition})


async def form_json(request: Request) -> Response:
    """The form's fields as a definition (switching to the JSON editor)."""
    fields, base = await _form_body(request)
    return json_response({"definition": appform.definition_from_form(fields, base)})


async def form_fragment(request: Request) -> Response:
    """The form's fields for a definition (switching from the JSON editor)."""
    definition = await _json_body(request)
    if not isinstance(definition, dict):
        raise BadRequestError("An app definition is a JSON object")
    try:
        values = _editor_values(definition)
    except (AttributeError, TypeError, ValueError) as error:
        # A shape the form cannot show (env as a list, ...): the JSON editor can.
        raise BadRequestError(f"The form cannot show this definition ({error})") from None
    return html("form_fields.html", **values)


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
