"""An audit record of every write through the API: who, from where, what, the result.

Each ``POST``, ``PUT``, ``PATCH`` and ``DELETE`` this process answers (a standby
forwards, and the leader records) leaves one line on the ``marathon.audit`` logger
and one ``api_audit_event`` on the event bus, after the answer is sent, whatever
its status, 401 and 403 included. What changed is named by the method and URI and,
for changes that start a deployment, by the deployment id and the new version the
answer carries. Request bodies are never recorded: they may hold secrets.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from marathon_core.contracts.auth import Identity
from marathon_core.model.events import api_audit_event
from marathon_rest.api import Api
from marathon_rest.app_types import ASGIApp, Message, Receive, Scope, Send

# Where marathon_rest.auth keeps the caller's identity for the request.
from marathon_rest.auth import IDENTITY_KEY

audit_log = logging.getLogger("marathon.audit")

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Answers larger than this are not searched for a deployment id (lists, not changes).
_SMALL_ANSWER = 4096


class Audit:
    """ASGI middleware recording every write it passes to ``app``."""

    def __init__(self, app: ASGIApp, api: Api) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        status = 500  # if the app fails before answering, the server answers 500
        headers: dict[bytes, bytes] = {}
        first_chunk = b""

        async def recording_send(message: Message) -> None:
            nonlocal status, first_chunk
            if message["type"] == "http.response.start":
                status = message["status"]
                headers.update((k.lower(), v) for k, v in message.get("headers", []))
            elif message["type"] == "http.response.body" and not first_chunk:
                first_chunk = message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            self._record(scope, status, headers, first_chunk)

    def _record(
        self, scope: Scope, status: int, headers: dict[bytes, bytes], first_chunk: bytes
    ) -> None:
        identity: Identity | None = scope.get(IDENTITY_KEY)
        user = identity.name if identity is not None and identity.authenticated else None
        client_ip = (scope.get("client") or (None,))[0]
        forwarded_for = _header(scope, b"x-forwarded-for")
        query = scope.get("query_string", b"").decode("latin-1")
        uri = scope["path"] + (f"?{query}" if query else "")
        deployment_id, version = _change(headers, first_chunk)
        event = api_audit_event(
            user=user,
            client_ip=client_ip,
            forwarded_for=forwarded_for,
            method=scope["method"],
            uri=uri,
            status=status,
            deployment_id=deployment_id,
            version=version,
        )
        # %r keeps a client's newlines and control characters from forging log lines.
        audit_log.info(
            "user=%r client=%s forwarded_for=%r %s %r -> %d deployment=%s version=%s",
            user,
            client_ip,
            forwarded_for,
            scope["method"],
            uri,
            status,
            deployment_id,
            version,
        )
        self.api.ctx.events.publish(event)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None


def _change(headers: dict[bytes, bytes], first_chunk: bytes) -> tuple[str | None, str | None]:
    """The deployment id and version an answer names, if it names them."""
    deployment_id = headers.get(b"marathon-deployment-id")
    found: dict[str, Any] = {}
    if (
        headers.get(b"content-type", b"").startswith(b"application/json")
        and 0 < len(first_chunk) <= _SMALL_ANSWER
    ):
        try:
            body = orjson.loads(first_chunk)
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict):
            found = body
    if deployment_id is None and isinstance(found.get("deploymentId"), str):
        return found["deploymentId"], _str_or_none(found.get("version"))
    return (
        deployment_id.decode("latin-1") if deployment_id is not None else None,
        _str_or_none(found.get("version")),
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
