"""Running the leader against a real embedded cluster (mesos-local) in a test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from marathon_core.config import Config
from marathon_core.context import CoreContext
from marathon_core.election import SoloElection
from marathon_core.events import EventBus
from marathon_core.leader.term import LeaderState, lead
from marathon_core.mesos.client import CallError, MesosClient
from marathon_core.plugins import get_plugin_host
from marathon_core.scheduler.scheduler import SchedulerOptions
from marathon_core.scheduler.tracker import InstanceTracker
from marathon_core.state.store import StateStore
from marathon_mesos_local import cluster as mesos_local

from .conftest import make_context  # type: ignore[import-not-found]

#: Fast timings for tests.
FAST = SchedulerOptions(
    decline_offer_duration=1.0,
    min_revive_offers_interval=0.1,
    task_launch_timeout=20.0,
    reconciliation_interval=600.0,
    scale_apps_initial_delay=600.0,
    timer_interval=0.1,
)


def cluster_options(work_dir: Path, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "port": 0,
        "agents": 1,
        "agent_port": 0,
        "allocation_interval": 0.1,
        "status_update_retry": 0.5,
        "work_dir": work_dir,
    }
    values.update(overrides)
    return mesos_local.ClusterOptions(**values)


@asynccontextmanager
async def open_cluster(work_dir: Path, **overrides: Any) -> AsyncIterator[Any]:
    async with mesos_local.open_cluster(cluster_options(work_dir, **overrides)) as cluster:
        yield cluster


def service_context(
    url: str, state: StateStore, operators: dict[str, Any], events: EventBus
) -> CoreContext:
    config = Config(master=url, hostname="localhost", mesos_heartbeat_interval=15000)
    return CoreContext(
        config=config,
        plugins=get_plugin_host(load_entrypoints=False),
        master_url=url,
        state=state,
        validation=make_context(operators),
        election=SoloElection("localhost:8080"),
        events=events,
    )


@attrs.define
class Leader:
    """A running ``lead`` that a test can stop (losing leadership) and restart."""

    ctx: CoreContext
    nursery: trio.Nursery
    options: SchedulerOptions = FAST
    state: LeaderState | None = None
    scope: trio.CancelScope | None = None

    @property
    def tracker(self) -> InstanceTracker:
        assert self.state is not None
        return self.state.tracker

    async def start(self) -> LeaderState:
        async def run(task_status: trio.TaskStatus[LeaderState]) -> None:
            with trio.CancelScope() as scope:
                self.scope = scope
                await lead(self.ctx, options=self.options, task_status=task_status)

        self.state = await self.nursery.start(run)
        with trio.fail_after(10):
            await self.state.mesos.wait_subscribed()
        return self.state

    async def stop(self) -> None:
        assert self.scope is not None
        self.scope.cancel()
        await trio.sleep(0.05)

    async def wait(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        with trio.fail_after(timeout):
            while not predicate():
                await self.tracker.wait_changed()


def record_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record every call any MesosClient sends (for the contract check)."""
    sent: list[dict[str, Any]] = []
    original = MesosClient.call

    async def call(self: MesosClient, call: dict[str, Any]) -> None:
        await original(self, call)
        sent.append(call)

    def try_post(self: MesosClient, call: dict[str, Any], on_done: Any) -> bool:
        def done(error: CallError | None) -> None:
            if error is None:
                sent.append(call)
            on_done(error)

        return original_post(self, call, done)

    original_post = MesosClient.try_post
    monkeypatch.setattr(MesosClient, "call", call)
    monkeypatch.setattr(MesosClient, "try_post", try_post)
    return sent
