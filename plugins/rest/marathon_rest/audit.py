"""An audit record of every write through the API: who, from where, what, the result.

Each ``POST``, ``PUT``, ``PATCH`` and ``DELETE`` this process answers (a standby
forwards, and the leader records) leaves one line on the ``marathon.audit`` logger
and one ``api_audit_event`` on the event bus, after the answer is sent, whatever
its status, 401, 403, 413, 429 and 431 included. A failed login (credentials sent
and refused: 401, or 429 once an address failed too often) is recorded whatever the
method. What changed is named by the method and URI and, for changes that start a
deployment, by the deployment id and the new version the answer carries. Request
bodies and credentials are never recorded: they may hold secrets.

Rejections before authentication cost a client nothing to send, so they are recorded
through a :class:`RejectionThrottle`: the first per client address in each interval,
then one summary line with the count of the rest, so a flood cannot fill the disk.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from typing import Any

import attrs
import orjson

from marathon_core.contracts.auth import Identity
from marathon_core.model.events import api_audit_event
from marathon_rest.api import Api
from marathon_rest.app_types import ASGIApp, Message, Receive, Scope, Send

# Where marathon_rest.auth keeps the caller's identity for the request.
from marathon_rest.auth import IDENTITY_KEY
from marathon_rest.proxy import FORWARDED_KEY

audit_log = logging.getLogger("marathon.audit")

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Answers given before the caller was known: cheap to cause, so throttled in the log.
REJECTED_UNAUTHENTICATED = frozenset({401, 413, 429, 431})
#: Answers to credentials that were refused.
LOGIN_FAILED = frozenset({401, 429})
#: Answers larger than this are not searched for a deployment id (lists, not changes).
_SMALL_ANSWER = 4096


@attrs.define
class RejectionThrottle:
    """Lets the first rejection per address and ``interval`` through; counts the rest.

    The count of an interval is logged as one summary line once the interval is over,
    with the next audit record of any address (there is no timer). At most
    ``max_addresses`` are tracked; the oldest is summarized early to make room.
    """

    interval: float = 60.0
    max_addresses: int = 10_000
    clock: Callable[[], float] = time.monotonic
    #: address -> (start of its interval, suppressed count per status), oldest first.
    _windows: collections.OrderedDict[str, tuple[float, collections.Counter[int]]] = attrs.field(
        factory=collections.OrderedDict
    )

    def admit(self, address: str, status: int) -> bool:
        """True if this rejection is to be recorded in full, False if only counted."""
        self.flush()
        window = self._windows.get(address)
        if window is not None:
            window[1][status] += 1
            return False
        self._windows[address] = (self.clock(), collections.Counter())
        while len(self._windows) > self.max_addresses:
            self._summarize(*self._windows.popitem(last=False))
        return True

    def flush(self) -> None:
        """Summarize every interval that is over."""
        now = self.clock()
        while self._windows:
            address, (start, _) = next(iter(self._windows.items()))
            if start + self.interval > now:
                break
            self._summarize(address, self._windows.pop(address))

    def _summarize(self, address: str, window: tuple[float, collections.Counter[int]]) -> None:
        _, suppressed = window
        if not suppressed:
            return
        audit_log.info(
            "client=%s: %d more rejected requests within %.0f s of the one recorded (%s)",
            address,
            suppressed.total(),
            self.interval,
            ", ".join(f"{status}: {n}" for status, n in sorted(suppressed.items())),
        )


class Audit:
    """ASGI middleware recording every write it answers, and every failed login."""

    def __init__(self, app: ASGIApp, api: Api, throttle: RejectionThrottle | None = None) -> None:
        self.app = app
        self.api = api
        self.throttle = throttle if throttle is not None else RejectionThrottle()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        write = scope["method"] in WRITE_METHODS
        status = 500  # if the app fails before answering, the server answers 500
        headers: dict[bytes, bytes] = {}
        first_chunk = b""

        async def recording_send(message: Message) -> None:
            nonlocal status, first_chunk
            if message["type"] == "http.response.start":
                status = message["status"]
                if write:
                    headers.update((k.lower(), v) for k, v in message.get("headers", []))
            elif write and message["type"] == "http.response.body" and not first_chunk:
                first_chunk = message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            if not scope.get(FORWARDED_KEY):  # the leader recorded it
                self._audit(scope, write, status, headers, first_chunk)

    def _audit(
        self,
        scope: Scope,
        write: bool,
        status: int,
        headers: dict[bytes, bytes],
        first_chunk: bytes,
    ) -> None:
        identity: Identity | None = scope.get(IDENTITY_KEY)
        authenticated = identity is not None and identity.authenticated
        login_failed = status in LOGIN_FAILED and _header(scope, b"authorization") is not None
        if not (write or login_failed):
            self.throttle.flush()
            return
        client_ip = (scope.get("client") or (None,))[0]
        if (
            not authenticated
            and status in REJECTED_UNAUTHENTICATED
            and not self.throttle.admit(str(client_ip), status)
        ):
            return
        self._record(scope, status, headers, first_chunk, login_failed=login_failed)

    def _record(
        self,
        scope: Scope,
        status: int,
        headers: dict[bytes, bytes],
        first_chunk: bytes,
        *,
        login_failed: bool,
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
            "user=%r client=%s forwarded_for=%r %s %r -> %d deployment=%s version=%s%s",
            user,
            client_ip,
            forwarded_for,
            scope["method"],
            uri,
            status,
            deployment_id,
            version,
            " login=failed" if login_failed else "",
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
