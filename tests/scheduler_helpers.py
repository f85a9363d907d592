"""Helpers for the Mesos client and scheduler tests: protos, clusters, state, apps."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from marathon_core.events import EventBus
from marathon_core.model.app import AppDefinition, Constraint, PortDefinition
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.state.memory import MemoryStorage
from marathon_core.state.store import StateStore

__all__ = [
    "compiled_protos",
    "find_protos",
    "make_app",
    "open_state",
    "parse_strict",
]


def find_protos() -> Path | None:
    """The real Mesos protos: $MESOS_PROTOS_DIR, ``tests/data/mesos-protos`` in the
    repository, or ``shared/reference/mesos/protos`` next to it."""
    if os.environ.get("MESOS_PROTOS_DIR"):
        return Path(os.environ["MESOS_PROTOS_DIR"])
    for parent in Path(__file__).resolve().parents:
        # The copy kept in the repository, or the team's reference beside it.
        for candidate in (
            parent / "tests" / "data" / "mesos-protos",
            parent / "shared" / "reference" / "mesos" / "protos",
        ):
            if (candidate / "mesos" / "v1" / "mesos.proto").exists():
                return candidate
    return None


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (required when CI=true)")
    pytest.skip(reason)


def compiled_protos(out: Path) -> Iterator[SimpleNamespace]:
    """The real Mesos protos compiled with grpcio-tools; skip (fail on CI) without them."""
    protos = find_protos()
    if protos is None:
        _unavailable("Mesos protos not found (../shared/reference/mesos/protos)")
    try:
        import grpc_tools
        from google.protobuf import json_format
        from grpc_tools import protoc
    except ImportError:
        _unavailable("grpcio-tools/protobuf not installed")
    assert protos is not None
    include = Path(grpc_tools.__file__).parent / "_proto"
    files = [str(p) for p in sorted(protos.rglob("*.proto"))]
    status = protoc.main(["protoc", f"-I{protos}", f"-I{include}", f"--python_out={out}", *files])
    assert status == 0, "protoc failed on the Mesos protos"
    sys.path.insert(0, str(out))
    try:
        scheduler_pb2 = importlib.import_module("mesos.v1.scheduler.scheduler_pb2")
        yield SimpleNamespace(scheduler=scheduler_pb2, json_format=json_format)
    finally:
        sys.path.remove(str(out))


def parse_strict(pb: SimpleNamespace, value: dict[str, Any], message: type) -> Any:
    """Parse like the Mesos master: every field known, every required field present."""
    parsed = pb.json_format.ParseDict(value, message())
    missing = parsed.FindInitializationErrors()
    assert not missing, f"missing required fields {missing} in {value}"
    return parsed


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
