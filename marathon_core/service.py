"""The service tree: one root nursery that owns everything the server runs.

Start order is explicit and each step waits until the previous one is ready
(``nursery.start``): signal handling, the state store, the Mesos master (or the
embedded cluster a plugin starts for ``--master local``), then the plugins'
services (API frontends). SIGINT or SIGTERM cancels the root scope; every child
stops by cancellation and the process exits well within 5 seconds.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from marathon_core.config import Config
from marathon_core.errors import ConfigError
from marathon_core.events import EventBus
from marathon_core.plugins import PluginHost

__all__ = ["MasterService", "Service", "ServiceContext", "serve"]

log = logging.getLogger(__name__)

#: A plugin service: ``async def service(ctx, *, task_status)``; ready once started.
Service = Callable[..., Awaitable[None]]
#: What ``marathon_mesos_master`` returns: ``async def master(*, task_status)`` that
#: reports the master's URL through ``task_status.started(url)``.
MasterService = Callable[..., Awaitable[None]]

#: Package to install for each ``--master`` form the core does not serve itself.
MASTER_PLUGIN_HINTS = {"local": "marathon-mesos-local"}


@attrs.define
class ServiceContext:
    """What services get: configuration, plugins, the Mesos master URL, the event bus."""

    config: Config
    plugins: PluginHost
    master_url: str
    events: EventBus = attrs.field(factory=EventBus)
    state: Any = None


def resolve_master(config: Config, plugins: PluginHost) -> MasterService:
    """The service behind ``--master``; a ConfigError naming the package to install if none."""
    master = plugins.mesos_master(config.master, config)
    if master is not None:
        return master
    hint = MASTER_PLUGIN_HINTS.get(config.master)
    if hint is not None:
        raise ConfigError(
            f"--master {config.master} needs the embedded Mesos cluster: pip install {hint}"
        )
    raise ConfigError(
        f"no installed plugin serves --master {config.master!r}; use http://host:5050, "
        "host:5050 or local"
    )


async def _stop_on_signals(
    cancel_scope: trio.CancelScope, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            log.info("received %s, shutting down", signal.Signals(signum).name)
            cancel_scope.cancel()
            return


async def serve(
    config: Config,
    plugins: PluginHost,
    *,
    task_status: trio.TaskStatus[ServiceContext] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the server until SIGINT/SIGTERM or cancellation."""
    master = resolve_master(config, plugins)
    async with trio.open_nursery() as nursery:
        await nursery.start(_stop_on_signals, nursery.cancel_scope)
        master_url: str = await nursery.start(master)
        ctx = ServiceContext(
            config=config,
            plugins=plugins,
            master_url=master_url,
            events=EventBus(on_event=plugins.event),
        )
        services = plugins.services(ctx)
        for name in sorted(services):
            await nursery.start(services[name], ctx)
        log.info(
            "marathon ready: master %s, services [%s]", master_url, ", ".join(sorted(services))
        )
        task_status.started(ctx)
