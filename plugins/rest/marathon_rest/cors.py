"""CORS: ``--access_control_allow_origin`` is an exact allowlist of origins.

A request whose ``Origin`` is in the list gets that origin echoed back (with
``Vary: Origin``), so each caller sees its own origin, never the last configured
one (Marathon's bug). An origin not in the list gets no CORS headers, so browsers
refuse it. ``*`` in the list answers ``*`` to any origin, and then never with
credentials (browsers reject that combination, and it would hand every site the
user's session). Preflights (``OPTIONS`` with ``Access-Control-Request-Method``)
from allowed origins are answered here; allowed headers are a fixed list, not an
echo of what was asked.

Cross-site writes are refused (403) whatever the allowlist: a browser attaches
credentials it has cached for this server (Basic, a client certificate) to a form
POST from any site, and CORS only hides the answer, after the write is done. A
write (``POST``, ``PUT``, ``PATCH``, ``DELETE``) whose ``Origin`` is neither this
server's own nor an allowed one is therefore not passed on. Programs that are no
browser send no ``Origin`` and are not affected.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.responses import Response

from marathon_rest.app_types import ASGIApp, Message, Receive, Scope, Send
from marathon_rest.responses import json_response

ALLOW_METHODS = "GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE"
ALLOW_HEADERS = "Accept, Authorization, Content-Type"
MAX_AGE = "86400"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


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

    def _cross_site_write(self, scope: Scope, origin: str, host: str, forwarded: bool) -> bool:
        """A browser's write from a site that is neither this server nor allowed.

        A standby checked it before forwarding (the Host it saw was its own, and the
        leader sees its own); a browser's form cannot add ``X-Marathon-Via``."""
        if scope["method"] not in WRITE_METHODS or forwarded:
            return False
        if origin in self.origins or self.any_origin:
            return False
        # The host alone: behind a proxy that ends TLS, the scheme seen here is not the
        # browser's, and one host and port never serves two schemes.
        return origin.partition("://")[2] != host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope["headers"]}
        origin = headers.get(b"origin", b"").decode("latin-1")
        host = headers.get(b"host", b"").decode("latin-1")
        forwarded = b"x-marathon-via" in headers
        if origin and self._cross_site_write(scope, origin, host, forwarded):
            refusal = json_response(
                {"message": f"Cross-site request refused: origin {origin} may not write here"},
                status=403,
            )
            await refusal(scope, receive, send)
            return
        cors = self._allowed_headers(origin) if origin and self.origins else []
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
