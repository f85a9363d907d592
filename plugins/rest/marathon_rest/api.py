"""What every route needs from the server: its context and what it learned at startup."""

from __future__ import annotations

import attrs
from starlette.requests import Request

from marathon_core.service import ServiceContext


@attrs.define
class Api:
    """Shared by all routes; reached from a request with :meth:`Api.of`."""

    ctx: ServiceContext
    #: The port the API listens on (known once bound; ``--http_port 0`` picks one).
    http_port: int
    #: ``host:port`` of the leading scheduler, None while there is none.
    leader: str | None = None
    framework_id: str | None = None
    #: Seconds of silence on ``/v2/events`` before a ``: ping`` comment line.
    event_heartbeat_seconds: float = 15.0

    @classmethod
    def of(cls, request: Request) -> Api:
        api: Api = request.app.state.api
        return api
