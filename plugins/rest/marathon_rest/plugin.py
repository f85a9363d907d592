"""Hook implementations of marathon-rest."""

from __future__ import annotations

from marathon_core import hookimpl
from marathon_core.config import OptionParser
from marathon_core.contracts.services import Service, ServiceContext
from marathon_rest.server import serve_api


@hookimpl
def marathon_addoption(parser: OptionParser) -> None:
    parser.addoption(
        "--event_stream_heartbeat_interval",
        type=int,
        default=15000,
        help="Milliseconds of silence on /v2/events before a keep-alive comment line",
    )
    parser.addoption(
        "--event_stream_max_lag",
        type=int,
        default=10000,
        help="Milliseconds a /v2/events client may fall behind, once it has more than "
        "--event_stream_max_outstanding_messages events unread, before it is disconnected",
    )


@hookimpl
def marathon_services(ctx: ServiceContext) -> dict[str, Service]:
    return {"rest-api": serve_api}
