"""Hook implementations of marathon-rest."""

from __future__ import annotations

from marathon_core import hookimpl
from marathon_core.config import OptionParser
from marathon_core.contracts.services import Service, ServiceContext
from marathon_core.hookspecs import HookspecAdder
from marathon_rest import hookspecs
from marathon_rest.server import serve_api


@hookimpl
def marathon_addhooks(pluginmanager: HookspecAdder) -> None:
    pluginmanager.add_hookspecs(hookspecs)


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

    parser.addoption(
        "--access_control_allow_origin",
        default=None,
        help="Comma-separated origins allowed to call the API from a browser (exact "
        "matches, e.g. https://ui.example.com); '*' allows any origin without credentials. "
        "Default: none",
    )
    parser.addoption(
        "--http_max_request_body",
        type=int,
        default=4 * 1024 * 1024,
        help="Largest request body in bytes; larger ones are answered 413",
    )
    parser.addoption(
        "--http_max_header_size",
        type=int,
        default=16 * 1024,
        help="Largest request line and headers in bytes; larger ones are answered 431",
    )
    parser.addoption(
        "--http_max_connections",
        type=int,
        default=1024,
        help="Most open API connections; more are answered 429 and closed",
    )
    parser.addoption(
        "--http_header_timeout",
        type=int,
        default=10000,
        help="Milliseconds a client may take to send a request's headers, from their "
        "first byte (slower clients are disconnected)",
    )
    parser.addoption(
        "--http_body_timeout",
        type=int,
        default=30000,
        help="Milliseconds a client may take to send a request's body after its headers",
    )


@hookimpl
def marathon_services(ctx: ServiceContext) -> dict[str, Service]:
    return {"rest-api": serve_api}
