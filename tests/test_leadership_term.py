"""A leadership term: its parts are built from the flags; a state store that fails ends
the term, never the process."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from marathon_core.config import Config, parse_config
from marathon_core.context import CoreContext
from marathon_core.election import SoloElection
from marathon_core.errors import StorageUnavailableError
from marathon_core.events import EventBus
from marathon_core.leader import term
from marathon_core.leader.health_kills import KillRate
from marathon_core.leader.term import lead, leadership_term
from marathon_core.plugins import get_plugin_host
from marathon_core.state.memory import MemoryStorage
from marathon_core.state.store import StateStore

from .conftest import make_context  # type: ignore[import-not-found]


class UnreachableStorage(MemoryStorage):
    """Readable at open, then gone: what ZooKeeper looks like when it stops mid-way."""

    async def sync(self) -> None:
        raise StorageUnavailableError("zookeeper unavailable: not connected")


async def test_a_state_store_failing_at_takeover_ends_the_term(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(term, "STEP_DOWN_PAUSE", 0.0)
    state = await StateStore.open(UnreachableStorage())
    ctx = CoreContext(
        config=Config(master="http://127.0.0.1:1", hostname="localhost"),
        plugins=get_plugin_host(load_entrypoints=False),
        master_url="http://127.0.0.1:1",
        state=state,
        validation=make_context({}),
        election=SoloElection("localhost:8080"),
        events=EventBus(),
    )
    with trio.fail_after(5):
        await leadership_term(ctx)  # returns (the election then steps down): no exception
    assert ctx.leader is None


async def test_the_health_monitor_is_built_from_the_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    built: dict[str, Any] = {}

    class Built(Exception):
        pass

    def capture(*args: Any, **kwargs: Any) -> None:
        built.update(kwargs)
        raise Built

    monkeypatch.setattr(term, "HealthMonitor", capture)
    flags = ["--max_concurrent_marathon_health_checks", "16"]
    flags += ["--health_kill_fraction_per_app", "0.25", "--health_kill_tokens", "7"]
    ctx = CoreContext(
        config=parse_config([*flags, "--master", "http://127.0.0.1:1"], environ={}),
        plugins=get_plugin_host(load_entrypoints=False),
        master_url="http://127.0.0.1:1",
        state=await StateStore.open(MemoryStorage()),
        validation=make_context({}),
        election=SoloElection("localhost:8080"),
        events=EventBus(),
    )
    with pytest.raises(Built):
        await lead(ctx)
    assert built["max_concurrent"] == 16
    assert built["kill_rate"] == KillRate(per_app_fraction=0.25, total=7, interval=10.0)
