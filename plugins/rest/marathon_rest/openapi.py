"""``/openapi.json``: the API document, built from the schema nodes that check requests.

Request bodies are described by :mod:`marathon_core.model.schema`, the same objects
that validate them, so the document cannot drift from what the server accepts.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import marathon_core
from marathon_core.model import schema
from marathon_rest.responses import json_response


def _param(name: str, where: str = "query", *, many: bool = False) -> dict[str, Any]:
    shape: dict[str, Any] = {"type": "string"}
    if many:
        shape = {"type": "array", "items": shape}
    return {"name": name, "in": where, "required": where == "path", "schema": shape}


def _flag(name: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": {"type": "boolean"}}


def _body(ref: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": ref}}}}


_OK = {"default": {"description": "Marathon's answer; errors as {message, details}"}}


def _op(summary: str, *params: dict[str, Any], body: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "parameters": list(params), "responses": _OK}
    if body is not None:
        op["requestBody"] = _body(body)
    return op


APP_REF, APP_UPDATE_REF = "#/components/schemas/App", "#/components/schemas/AppUpdate"


def document() -> dict[str, Any]:
    """The OpenAPI 3.0 document of the routes this plugin serves."""
    app_id, group_id = _param("appId", "path"), _param("groupId", "path")
    return {
        "openapi": "3.0.3",
        "info": {"title": "Marathon REST API", "version": marathon_core.__version__},
        "paths": {
            "/ping": {"get": _op("Liveness")},
            "/v2/info": {"get": _op("Server information")},
            "/v2/leader": {"get": _op("The current leader")},
            "/v2/apps": {
                "get": _op(
                    "List apps",
                    _param("cmd"),
                    _param("id"),
                    _param("label"),
                    _param("embed", many=True),
                ),
                "post": _op("Create an app", _flag("force"), body=APP_REF),
            },
            "/v2/apps/{appId}": {
                "get": _op("One app", app_id, _param("embed", many=True)),
                "put": _op(
                    "Update or create an app",
                    app_id,
                    _flag("force"),
                    _flag("partialUpdate"),
                    body=APP_UPDATE_REF,
                ),
                "patch": _op("Update an app", app_id, _flag("force"), body=APP_UPDATE_REF),
                "delete": _op("Delete an app", app_id, _flag("force")),
            },
            "/v2/apps/{appId}/restart": {"post": _op("Restart an app", app_id, _flag("force"))},
            "/v2/apps/{appId}/versions": {"get": _op("Versions of an app", app_id)},
            "/v2/apps/{appId}/tasks": {"get": _op("Tasks of an app", app_id)},
            "/v2/groups": {
                "get": _op("The root group", _param("embed", many=True)),
                "post": _op("Create a group", _flag("force"), body=schema.GROUP_REF),
                "put": _op(
                    "Update the root group", _flag("force"), _flag("dryRun"), body=schema.GROUP_REF
                ),
                "delete": _op("Delete everything", _flag("force")),
            },
            "/v2/groups/{groupId}": {
                "get": _op("One group", group_id, _param("embed", many=True)),
                "post": _op(
                    "Create a group below", group_id, _flag("force"), body=schema.GROUP_REF
                ),
                "put": _op(
                    "Update a group",
                    group_id,
                    _flag("force"),
                    _flag("dryRun"),
                    body=schema.GROUP_REF,
                ),
                "delete": _op("Delete a group", group_id, _flag("force")),
            },
            "/v2/groups/{groupId}/versions": {"get": _op("Versions of a group", group_id)},
            "/v2/deployments": {"get": _op("Running deployments")},
            "/v2/deployments/{deploymentId}": {
                "get": _op(
                    "One running deployment with a status per app: progress and why it waits",
                    _param("deploymentId", "path"),
                ),
                "delete": _op(
                    "Cancel (roll back) a deployment",
                    _param("deploymentId", "path"),
                    _flag("force"),
                ),
            },
        },
        "components": {
            "schemas": {
                "App": schema.APP.json_schema(),
                "AppUpdate": schema.APP_UPDATE.json_schema(),
                "Group": schema.GROUP.json_schema(),
            }
        },
    }


async def openapi(request: Request) -> Response:
    return json_response(document())


ROUTES = [Route("/openapi.json", openapi, methods=["GET"])]
