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

import gc
import logging
import math
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import trio

from marathon_core.config import Config
from marathon_core.deploy.executor import DeploymentExecutor
from marathon_core.deploy.manager import DeploymentRegistry, GroupManager
from marathon_core.election import LeaderElection, SoloElection, ZkElection
from marathon_core.errors import (
    ConfigError,
    FencedWriteError,
    StorageError,
    StorageUnavailableError,
)
from marathon_core.events import EventBus
from marathon_core.leadership import LeaderState, lead
from marathon_core.model.validation import ValidationContext
from marathon_core.plugins import PluginHost
from marathon_core.state.sqlite import DEFAULT_FILENAME, SqliteStorage
from marathon_core.state.store import StateStore
from marathon_core.state.zk import ZkStorage, open_zk

__all__ = ["MasterService", "Service", "ServiceContext", "serve"]

log = logging.getLogger(__name__)

#: A plugin service: ``async def service(ctx, *, task_status)``; ready once started.
Service = Callable[..., Awaitable[None]]
#: What ``marathon_mesos_master`` returns: ``async def master(*, task_status)`` that
#: reports the master's URL through ``task_status.started(url)``.
MasterService = Callable[..., Awaitable[None]]

#: Package to install for each ``--master`` form the core does not serve itself.
MASTER_PLUGIN_HINTS = {"local": "marathon-mesos-local"}

#: Seconds between two refreshes of a standby's cached state.
WARM_INTERVAL = 1.0
#: Seconds before a standby whose refresh failed tries again.
WARM_RETRY = 10.0
#: Seconds a leader whose state store failed waits before it contends again.
STEP_DOWN_PAUSE = 1.0


@attrs.define
class ServiceContext:
    """What services get: configuration, plugins, state, the Mesos master URL, events."""

    config: Config
    plugins: PluginHost
    master_url: str
    state: StateStore
    validation: ValidationContext
    events: EventBus = attrs.field(factory=EventBus)
    #: Unfinished deployments, loaded from state at start; the executor follows it.
    deployments: DeploymentRegistry = attrs.field(factory=DeploymentRegistry)
    #: The one writer of apps and groups.
    groups: GroupManager = attrs.field(init=False)
    #: The leader's scheduler and instance tracker while this process leads, else None.
    leader: LeaderState | None = None
    #: Who leads: ``/v2/leader``, ``DELETE /v2/leader`` and the standby proxy ask it.
    election: LeaderElection | None = None
    #: ``host:port`` where this process serves its API, set by the API frontend once
    #: bound (``--http_port 0`` picks a port); the election announces it to the others.
    api_address: str | None = None

    def __attrs_post_init__(self) -> None:
        self.groups = GroupManager(
            self.state,
            self.deployments,
            self.events,
            max_running_deployments=self.config.max_running_deployments,
            service_port_range=(self.config.local_port_min, self.config.local_port_max),
        )


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
        "host:5050 or local"
    )


async def leadership_term(ctx: ServiceContext) -> None:
    """One term as leader: state as the last leader left it, the scheduler (published as
    ``ctx.leader``) and the deployment executor, all cancelled together when it ends.

    A state store that fails during the term (ZooKeeper unreachable, a fenced write)
    ends the term, not the process: the election then steps down and contends again.
    """
    try:
        await _lead_term(ctx)
    except* (StorageUnavailableError, FencedWriteError) as failed:
        log.warning("leadership ends: the state store failed: %s", failed.exceptions[0])
    await trio.sleep(STEP_DOWN_PAUSE)  # returning abdicates; do not contend in a tight loop


async def _lead_term(ctx: ServiceContext) -> None:
    await ctx.state.storage.sync()  # the last leader's final writes, before reading anything
    ctx.groups.forget_root()
    stored = {d.id: d for d in await ctx.state.deployments.all()}
    for deployment in ctx.deployments.all():
        if deployment.id not in stored:
            ctx.deployments.remove(deployment.id)
    for deployment in stored.values():
        ctx.deployments.put(deployment)
    try:
        async with trio.open_nursery() as nursery:
            leader: LeaderState = await nursery.start(lead, ctx)
            settle_heap()
            executor = DeploymentExecutor(
                ctx.state,
                ctx.deployments,
                ctx.events,
                leader.tracker,
                root_at=ctx.groups.root_at,
                health=leader.health,
            )
            await nursery.start(executor.run)
            ctx.leader = leader
    finally:
        ctx.leader = None


def settle_heap() -> None:
    """Take every object alive now out of the cyclic garbage collector's scans.

    Why: a leader or a warm standby holds millions of long-lived state objects, and
    each full collection walks them all: with 100k instances loaded, pauses of 0.7 s
    and 10 s of collection in 12 s of work were measured, long enough to starve
    kazoo's heartbeats and expire a ZooKeeper session.  With the state frozen after
    each load, the longest pause measured was 0.07 s.  The state is acyclic, so
    reference counting still frees what is replaced.  Cyclic garbage is collected
    first, so that a standby freezing after every refresh does not keep it for good;
    after the first freeze that collection only walks what was allocated since.
    """
    gc.collect()
    gc.freeze()


async def keep_standby_warm(state: StateStore, election: LeaderElection) -> None:
    """While standing by, keep the state read and decoded in the storage's cache.

    Why: with 10k apps and 100k instances a cold load takes seconds, and a new
    leader must serve writes within the ZooKeeper session timeout + 2 s of the old
    one's death (issue #7).  Warm, a takeover reads and decodes only what changed
    since the last pass.  The roots that in-flight deployments started from are
    kept too: the new leader resumes those deployments at once.  Passes follow
    changes, at most one per :data:`WARM_INTERVAL`.
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
    task_status: trio.TaskStatus[ServiceContext] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the server until SIGINT/SIGTERM or cancellation."""
    master = resolve_master(config, plugins)
    validation = validation_context(config, plugins)
    async with open_state(config) as (state, election), trio.open_nursery() as nursery:
        await nursery.start(_stop_on_signals, nursery.cancel_scope)
        master_url: str = await nursery.start(master)
        ctx = ServiceContext(
            config=config,
            plugins=plugins,
            master_url=master_url,
            state=state,
            validation=validation,
            events=EventBus(on_event=plugins.event),
            election=election,
        )
        services = plugins.services(ctx)
        for name in sorted(services):
            await nursery.start(services[name], ctx)
        if ctx.api_address is not None:
            election.participant_id = ctx.api_address
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
