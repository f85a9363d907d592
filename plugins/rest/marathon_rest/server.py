"""The API service: the REST app served inside the core's service tree."""

from __future__ import annotations

import logging

import httpx
import trio
from hypercorn.config import Config as HypercornConfig

from marathon_core.contracts.services import ServiceContext
from marathon_rest.api import Api
from marathon_rest.app import create_app
from marathon_rest.callbacks import CallbackDispatcher
from marathon_rest.http import ConnectionLimits, serve_http
from marathon_rest.listen import Endpoint, endpoints, leader_ssl_context

log = logging.getLogger(__name__)


def hypercorn_config(ctx: ServiceContext) -> HypercornConfig:
    config = HypercornConfig()
    config.accesslog = None
    config.h11_max_incomplete_size = ctx.config.option("http_max_header_size")
    config.ssl_handshake_timeout = ctx.config.option("http_header_timeout") / 1000
    # Clients (marathon-python, marathon-lb) keep connections open between calls: close
    # idle ones later than they reuse them, and queue bursts of new connections.
    config.keep_alive_timeout = 75
    config.backlog = 1024
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


def connection_limits(ctx: ServiceContext) -> ConnectionLimits:
    return ConnectionLimits(
        max_connections=ctx.config.option("http_max_connections"),
        header_timeout=ctx.config.option("http_header_timeout") / 1000,
        body_timeout=ctx.config.option("http_body_timeout") / 1000,
    )


def api_endpoints(ctx: ServiceContext) -> list[Endpoint]:
    """Where the API listens; refuses unsafe settings (see :mod:`marathon_rest.listen`)."""
    return endpoints(ctx.config, authenticates=ctx.access.authenticates)


async def serve_api(
    ctx: ServiceContext, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve the API until cancelled; ``task_status`` gets the bound URL."""
    listen_on = api_endpoints(ctx)
    api = Api(
        ctx=ctx,
        callbacks=CallbackDispatcher(ctx.events),
        http_port=ctx.config.http_port,
        event_heartbeat_seconds=ctx.config.option("event_stream_heartbeat_interval") / 1000,
        event_max_lag_seconds=ctx.config.option("event_stream_max_lag") / 1000,
        leader_client=httpx.AsyncClient(verify=leader_ssl_context(ctx.config)),
    )
    async with api.leader_client, trio.open_nursery() as nursery:
        await nursery.start(api.callbacks.run)
        binds: list[str] = await nursery.start(
            serve_http, create_app(api), hypercorn_config(ctx), listen_on, connection_limits(ctx)
        )
        url = binds[0]
        api.http_port = int(url.rsplit(":", 1)[1])
        api.nursery = nursery
        ctx.leadership.advertise(api.address)
        log.info("REST API listening on %s", ", ".join(binds))
        task_status.started(url)
