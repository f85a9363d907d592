"""CORS: ``--access_control_allow_origin`` is an exact allowlist of origins.

A request whose ``Origin`` is in the list gets that origin echoed back (with
``Vary: Origin``), so each caller sees its own origin, never the last configured
one (Marathon's bug). An origin not in the list gets no CORS headers, so browsers
refuse it. ``*`` in the list answers ``*`` to any origin, and then never with
credentials (browsers reject that combination, and it would hand every site the
user's session). Preflights (``OPTIONS`` with ``Access-Control-Request-Method``)
from allowed origins are answered here; allowed headers are a fixed list, not an
echo of what was asked.

A write (POST, PUT, PATCH, DELETE) whose ``Origin`` is neither this server nor an
allowed origin is refused with 403 before anything else sees it: a browser sends a
cross-site HTML form without asking (no preflight), with the user's Basic
credentials, so ``Origin`` is what tells it apart from the web UI's own calls.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.responses import JSONResponse, Response

from marathon_rest.app_types import ASGIApp, Message, Receive, Scope, Send

ALLOW_METHODS = "GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE"
ALLOW_HEADERS = "Accept, Authorization, Content-Type"
MAX_AGE = "86400"
#: Methods that change nothing, which any page may send.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def parse_origins(option: str | None) -> frozenset[str]:
    """``--access_control_allow_origin``: comma-separated origins, e.g. ``https://ui.example``."""
    return frozenset(o.strip().rstrip("/") for o in (option or "").split(",") if o.strip())


class Cors:
    """ASGI middleware answering CORS for the allowed origins only."""

    def __init__(self, app: ASGIApp, origins: Iterable[str]) -> None:
        self.app = app
        self.origins = frozenset(origins)
        self.any_origin = "*" in self.origins

    def _allowed_headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        if origin in self.origins:
            return [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-credentials", b"true"),
                (b"vary", b"Origin"),
            ]
        if self.any_origin:
            return [(b"access-control-allow-origin", b"*")]
        return []

    def _cross_site_write(self, scope: Scope, headers: dict[bytes, bytes]) -> bool:
        """A write a browser sends for another site's page (its ``Origin`` is neither
        ours nor allowed): a form there could otherwise use the user's credentials
        here. Clients that are not browsers send no ``Origin`` and are not affected."""
        origin = headers.get(b"origin")
        # A standby checked it before forwarding (with its own Host); a browser form
        # cannot add this header.
        forwarded = b"x-marathon-via" in headers
        if scope["method"] in SAFE_METHODS or origin is None or forwarded:
            return False
        text = origin.decode("latin-1")
        if text in self.origins or self.any_origin:
            return False
        return text.partition("://")[2] != headers.get(b"host", b"").decode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope["headers"]}
        if self._cross_site_write(scope, headers):
            refused = {"message": "Cross-site request refused: its Origin is not allowed"}
            await JSONResponse(refused, status_code=403)(scope, receive, send)
            return
        if not self.origins:
            await self.app(scope, receive, send)
            return
        origin = headers.get(b"origin", b"").decode("latin-1")
        cors = self._allowed_headers(origin) if origin else []
        if not cors:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            preflight = Response(status_code=200)
            preflight.raw_headers.extend(
                [
                    *cors,
                    (b"access-control-allow-methods", ALLOW_METHODS.encode()),
                    (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
                    (b"access-control-max-age", MAX_AGE.encode()),
                ]
            )
            await preflight(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message, headers=[*message.get("headers", []), *cors])
            await send(message)

        await self.app(scope, receive, send_with_cors)
