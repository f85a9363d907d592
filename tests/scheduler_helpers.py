"""Helpers for the Mesos client and scheduler tests: state and apps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from marathon_core.events import EventBus
from marathon_core.model.app import AppDefinition, Constraint, PortDefinition
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.state.memory import MemoryStorage
from marathon_core.state.store import StateStore

__all__ = ["make_app", "open_state"]


@asynccontextmanager
async def open_state() -> AsyncIterator[StateStore]:
    storage = MemoryStorage()
    try:
        yield await StateStore.open(storage)
    finally:
        await storage.aclose()


def make_app(
    app_id: str = "/web",
    *,
    instances: int = 1,
    cmd: str = "sleep 600",
    cpus: float = 0.1,
    mem: float = 16.0,
    ports: int = 0,
    constraints: tuple[tuple[str, ...], ...] = (),
    **kwargs: Any,
) -> AppDefinition:
    """An app as the API would store it (versioned)."""
    return AppDefinition(
        id=PathId.parse(app_id),
        cmd=cmd,
        instances=instances,
        cpus=cpus,
        mem=mem,
        port_definitions=kwargs.pop(
            "port_definitions", tuple(PortDefinition(port=10000 + i) for i in range(ports))
        ),
        constraints=tuple(Constraint(*c) for c in constraints),
        version=kwargs.pop("version", Timestamp.now()),
        **kwargs,
    )


def new_bus() -> EventBus:
    return EventBus()
