"""Who may use the API: Chronos's ``--http_credentials`` and no cross-site writes.

With ``--http_credentials user:password`` every request needs HTTP Basic with exactly
those (compared in constant time, so the time of a refusal tells nothing about how
much of a guess was right); anything else gets 401 with ``WWW-Authenticate: Basic
realm="<--http_realm>"``. A standby checks a request before it forwards it, and
forwards the caller's ``Authorization`` unchanged: the leader checks it again, as
from any client (no header of the standby's vouches for the caller).

A write (``POST``, ``PUT``, ``PATCH``, ``DELETE``) whose ``Origin`` is not this
server's own host is refused with 403 before anything else, whatever the
credentials: a browser attaches Basic credentials it has cached for this server to a
form POST from any site, and the write would be done before CORS hid the answer.
Programs that are no browser send no ``Origin`` and are not affected.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.responses import JSONResponse

__all__ = ["BasicCredentials", "Guard", "is_loopback", "parse_credentials"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BasicCredentials:
    """The one user and password ``--http_credentials`` allows."""

    def __init__(self, user: str, password: str) -> None:
        self.user = user
        self._expected = f"{user}:{password}".encode()

    def accepts(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header carries exactly these credentials."""
        scheme, _, encoded = (authorization or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(given, self._expected)

    def __repr__(self) -> str:  # never the password, in a log or a traceback
        return f"BasicCredentials({self.user!r}, '***')"


def parse_credentials(flag: str | None) -> BasicCredentials | None:
    """``user:password`` (the password may contain ``:``); None when not given."""
    if not flag:
        return None
    user, colon, password = flag.partition(":")
    if not colon or not user or not password:
        raise ValueError("--http_credentials must be user:password")
    return BasicCredentials(user, password)


def is_loopback(address: str) -> bool:
    """``127.0.0.1``, ``::1`` and ``localhost`` only: other 127/8 addresses can be routed
    to the machine (as in docs/secure_defaults.md)."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")) in (
            ipaddress.ip_address("127.0.0.1"),
            ipaddress.ip_address("::1"),
        )
    except ValueError:
        return False


class Guard:
    """ASGI middleware: cross-site writes refused, then the credentials checked."""

    def __init__(
        self, app: ASGIApp, credentials: BasicCredentials | None, realm: str = "chronos"
    ) -> None:
        self.app = app
        self.credentials = credentials
        self.realm = realm

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v.decode("latin-1") for k, v in scope["headers"]}
        origin = headers.get(b"origin", "")
        if scope["method"] in WRITE_METHODS and origin and not _same_host(origin, headers):
            refusal = JSONResponse(
                {
                    "message": f"Cross-site request refused: origin {origin} may not write here",
                    "status": "Forbidden",
                },
                status_code=403,
            )
            await refusal(scope, receive, send)
            return
        if self.credentials is not None and not self.credentials.accepts(
            headers.get(b"authorization")
        ):
            refusal = JSONResponse(
                {"message": "Invalid username or password", "status": "Unauthorized"},
                status_code=401,
                headers={"WWW-Authenticate": f'Basic realm="{self.realm}"'},
            )
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _same_host(origin: str, headers: dict[bytes, str]) -> bool:
    """The host alone: behind a proxy that ends TLS the scheme seen here is not the
    browser's, and one host and port never serves two schemes."""
    return origin.partition("://")[2].rstrip("/") == headers.get(b"host", "")
