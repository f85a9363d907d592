"""JSON responses in Marathon's shape."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from marathon_core.errors import BadRequestError

JSON_MEDIA_TYPE = "application/json"


def json_response(
    body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A compact JSON response (Marathon sends no whitespace)."""
    content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
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
