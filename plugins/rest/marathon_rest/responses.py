"""JSON responses in Marathon's shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from marathon_core.errors import BadRequestError
from marathon_core.model.deployment import GroupChange

JSON_MEDIA_TYPE = "application/json"


def json_response(
    body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A compact JSON response (Marathon sends no whitespace); orjson because listing
    thousands of apps is dominated by serialisation."""
    content = orjson.dumps(body)
    return Response(content, status_code=status, media_type=JSON_MEDIA_TYPE, headers=headers)


def query_flag(request: Request, name: str, *, default: bool = False) -> bool:
    """A boolean query parameter as clients send it (``true``, ``True``, ``false``, empty)."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in ("", "true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise BadRequestError(f"Query parameter '{name}' must be true or false, got '{raw}'")


def deployment_result(change: GroupChange, *, status: int = 200) -> Response:
    return json_response(
        {"version": str(change.version), "deploymentId": change.deployment.id},
        status=status,
        headers={"Marathon-Deployment-Id": change.deployment.id},
    )
