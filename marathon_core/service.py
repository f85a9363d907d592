"""The service tree: one root nursery that owns everything the server runs.

Start order is explicit and each step waits until the previous one is ready
(``nursery.start``): signal handling, the state store, the Mesos master (or the
embedded cluster a plugin starts for ``--master local``), then the plugins'
services (API frontends). SIGINT or SIGTERM cancels the root scope; every child
stops by cancellation and the process exits well within 5 seconds.

Plugin registries are merged once, before anything starts, so two plugins claiming
the same operator or container type stop the server at once.
"""

from __future__ import annotations

import logging
import math
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from marathon_core.config import Config
from marathon_core.context import CoreContext
from marathon_core.contracts.services import MasterService
from marathon_core.election import LeaderElection, SoloElection, ZkElection
from marathon_core.errors import ConfigError, StorageError
from marathon_core.events import EventBus
from marathon_core.heap import settle_heap
from marathon_core.leader.term import leadership_term
from marathon_core.model.validation import ValidationContext
from marathon_core.plugins import PluginHost
from marathon_core.state.sqlite import DEFAULT_FILENAME, SqliteStorage
from marathon_core.state.store import StateStore
from marathon_core.state.zk.client import open_zk
from marathon_core.state.zk.storage import ZkStorage

__all__ = ["open_state", "serve", "validation_context"]

log = logging.getLogger(__name__)

#: Package to install for each ``--master`` form the core does not serve itself.
MASTER_PLUGIN_HINTS = {"local": "marathon-mesos-local"}

#: Seconds between two refreshes of a standby's cached state.
WARM_INTERVAL = 1.0
#: Seconds before a standby whose refresh failed tries again.
WARM_RETRY = 10.0


def validation_context(config: Config, plugins: PluginHost) -> ValidationContext:
    """The plugin registries and flags that API validation asks (merged once)."""
    return ValidationContext(
        constraint_operators=plugins.constraint_operators(),
        container_runtimes=plugins.container_runtimes(),
        health_check_protocols=plugins.health_check_protocols(),
        mesos_role=config.mesos_role,
        features=config.features,
        local_port_min=config.local_port_min,
        local_port_max=config.local_port_max,
        default_network_name=config.default_network_name,
        mesos_bridge_name=config.mesos_bridge_name,
    )


@asynccontextmanager
async def open_state(config: Config) -> AsyncIterator[tuple[StateStore, LeaderElection]]:
    """The state store and the election, closed on the way out.

    With ``--zk``: one ZooKeeper session for both; state writes are fenced by the
    election (``--disable_ha``: solo, unfenced).  Without: SQLite in ``--state_dir``, solo.
    """
    participant = f"{config.hostname}:{config.http_port}"
    if config.zk is not None:
        async with open_zk(
            config.zk,
            session_timeout=config.zk_session_timeout / 1000,
            timeout=config.zk_timeout / 1000,
        ) as zk:
            # Cached reads: a warm standby takes over without reading everything again.
            zk_storage = await ZkStorage.open(zk, cache_reads=config.ha)
            if config.ha:
                election: LeaderElection = ZkElection(zk, participant)
                fence = election.fence
            else:
                election, fence = SoloElection(participant), None
            state = await StateStore.open(
                zk_storage, max_versions=config.zk_max_versions, fence=fence
            )
            yield state, election
        return
    directory = Path(config.state_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--state_dir {directory}: {exc.strerror}") from None
    storage = await SqliteStorage.open(directory / DEFAULT_FILENAME)
    try:
        state = await StateStore.open(storage, max_versions=config.zk_max_versions)
        yield state, SoloElection(participant)
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(2):
            await storage.aclose()


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
        "host:5050, zk://host:2181/mesos or local"
    )


async def keep_standby_warm(state: StateStore, election: LeaderElection) -> None:
    """While standing by, keep the state read and decoded in the storage's cache.

    Why: with 10k apps and 100k instances a cold load takes seconds, and a new
    leader must serve writes within the ZooKeeper session timeout + 2 s of the old
    one's death (the target ``benchmarks/bench_failover.py`` measures).  Warm, a
    takeover reads and decodes only what changed since the last pass.  The roots
    that in-flight deployments started from are kept too: the new leader resumes
    those deployments at once.  Passes follow changes, at most one per
    :data:`WARM_INTERVAL`.
    """
    while True:
        failed = False
        if not election.is_leader:
            try:
                snapshot = await state.load()
                for d in snapshot.deployments:
                    for version in (d.original_version, d.target_version):
                        if version is not None:
                            await state.root_group(version)
            except StorageError as exc:
                log.debug("standby state refresh failed: %s", exc)
                failed = True
            else:
                del snapshot
                settle_heap()
        # After a failure, try again in a while even if nothing changes meanwhile.
        with trio.move_on_after(WARM_RETRY if failed else math.inf):
            await state.storage.wait_changed()
        await trio.sleep(WARM_INTERVAL)


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
    task_status: trio.TaskStatus[CoreContext] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the server until SIGINT/SIGTERM or cancellation."""
    master = resolve_master(config, plugins)
    validation = validation_context(config, plugins)
    async with open_state(config) as (state, election), trio.open_nursery() as nursery:
        await nursery.start(_stop_on_signals, nursery.cancel_scope)
        master_url: str = await nursery.start(master)
        ctx = CoreContext(
            config=config,
            plugins=plugins,
            master_url=master_url,
            state=state,
            validation=validation,
            events=EventBus(on_event=plugins.event),
            election=election,
        )
        services = plugins.services(ctx)
        for name in sorted(services):  # a frontend may advertise its address meanwhile
            await nursery.start(services[name], ctx)
        # Leadership-scoped work: cancelled whenever leadership ends, restarted next term.
        await nursery.start(election.run, leadership_term, ctx)
        if state.storage.caches_reads:
            nursery.start_soon(keep_standby_warm, state, election)
        log.info(
            "marathon ready: master %s, state %s, services [%s]",
            master_url,
            config.state_dir,
            ", ".join(sorted(services)),
        )
        task_status.started(ctx)
