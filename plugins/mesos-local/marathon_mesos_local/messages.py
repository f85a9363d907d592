"""Pieces of Mesos v1 JSON messages that the master, the agents and the simulated
agents share.

A leaf module (it imports nothing of this package), so that every part can use it
without importing another part.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["TERMINAL_STATES", "id_value", "mesos_id"]

#: States after which a task never runs again (``protobuf_utils.cpp isTerminalState``).
TERMINAL_STATES = frozenset(
    {
        "TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST",
        "TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR",
    }
)  # fmt: skip


def mesos_id(value: str) -> dict[str, str]:
    """An id message (``FrameworkID``, ``AgentID``, ``TaskID``, ...) in JSON."""
    return {"value": value}


def id_value(message: Mapping[str, Any] | None) -> str | None:
    """The value of an optional id message; None when it is absent."""
    return None if not message else message.get("value")
