"""Standbys serve the API by forwarding every request to the leader.

A process that does not lead passes each request (method, path, query, headers,
body) to the elected leader and streams the answer back, ``/v2/events`` included.
It adds Marathon's ``X-Marathon-Via`` (to detect loops) and sets ``X-Forwarded-For``
to the address it was called from (replacing what the client sent: it says only what
this process saw).

The forwarding headers give a caller nothing: the standby has authenticated the
caller before it forwards (``app.Authenticate`` runs first, so failed logins are
counted against the caller's own address here; only a request with cookies and no
``Authorization`` that it cannot authenticate is forwarded for the leader to decide,
as the cookie may name a session in the leader's memory), and the leader
authenticates the forwarded request again, as from any client. No
header says "already authenticated", and the leader counts failed logins by the
address it is called from, never by ``X-Forwarded-For``.
With no leader known the answer is a 503; ``/ping`` is always answered locally, so
load balancers can tell a live standby from a dead one.
"""

from __future__ import annotations

import logging

import httpx

from marathon_rest.api import Api
from marathon_rest.app_types import ASGIApp, Receive, Scope, Send
from marathon_rest.listen import leader_scheme
from marathon_rest.responses import json_response

log = logging.getLogger(__name__)

#: Connection-level headers that belong to one hop only (RFC 9110 §7.6.1).
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
    }
)
#: Headers every answer gets from this process anyway (see ``app.MarathonHeaders``;
#: ``access-control-*`` ones come from this process's ``cors.Cors`` too).
OWN_HEADERS = frozenset(
    {
        b"x-marathon-leader",
        b"x-frame-options",
        b"x-xss-protection",
        b"cache-control",
        b"strict-transport-security",
    }
)
#: Always answered by the process asked.
LOCAL_PATHS = frozenset({"/ping"})
#: Set in the ASGI scope once the leader's answer is relayed: the leader audits it.
FORWARDED_KEY = "marathon_rest.forwarded"
#: Marathon's --leader_proxy_connection_timeout and --leader_proxy_read_timeout.
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class LeaderProxy:
    """ASGI middleware: pass requests through while leading, else forward them."""

    def __init__(self, app: ASGIApp, api: Api) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.api.elected or scope["path"] in LOCAL_PATHS:
            await self.app(scope, receive, send)
            return
        leader = self.api.leader
        if leader is None or leader == self.api.address:
            # No leader, or the election still names this process while it does not
            # lead (it just lost ZooKeeper): nobody can act now.
            await json_response(
                {"message": "There is no leader right now; try again shortly"}, status=503
            )(scope, receive, send)
            return
        via = f"1.1 {self.api.address}"
        headers = [
            (k, v)
            for k, v in scope["headers"]
            if k.lower() not in HOP_BY_HOP and k.lower() != b"x-forwarded-for"
        ]
        if any(k.lower() == b"x-marathon-via" and via.encode() in v for k, v in headers):
            await json_response({"message": "Detected proxying loop."}, status=502)(
                scope, receive, send
            )
            return
        client_host = (scope.get("client") or ("",))[0]
        headers += [(b"x-marathon-via", via.encode()), (b"x-forwarded-for", client_host.encode())]
        await self._forward(leader, scope, receive, send, headers)

    async def _forward(
        self,
        leader: str,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        client = self.api.leader_client
        query = scope.get("query_string", b"").decode("latin-1")
        scheme = leader_scheme(self.api.ctx.config)
        url = f"{scheme}://{leader}{scope['path']}" + (f"?{query}" if query else "")
        streaming = scope["path"] == "/v2/events"
        request = client.build_request(
            scope["method"],
            url,
            headers=headers,
            content=await _body(receive),
            timeout=httpx.Timeout(None, connect=5.0) if streaming else TIMEOUT,
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            log.warning("proxying %s to the leader %s failed: %s", scope["path"], leader, exc)
            await json_response(
                {"message": f"Connection to leader {leader} failed: {exc}"}, status=502
            )(scope, receive, send)
            return
        scope[FORWARDED_KEY] = True
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (k, v)
                        for k, v in response.headers.raw
                        if k.lower() not in HOP_BY_HOP
                        and k.lower() not in OWN_HEADERS
                        and not k.lower().startswith(b"access-control-")
                    ],
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except httpx.HTTPError as exc:
            log.info("the leader's answer to %s broke off: %s", scope["path"], exc)
        finally:
            await response.aclose()


async def _body(receive: Receive) -> bytes:
    """The whole request body (API bodies are small JSON documents)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
