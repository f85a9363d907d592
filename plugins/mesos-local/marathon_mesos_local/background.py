"""Fire-and-forget work of one part of the master or agent, in that part's own nursery.

A status update sender, a task run, a failover timer: each outlives the call that
starts it and ends when its part stops, so the part runs ``background.run`` in the
service tree and starts such work with ``background.start_soon``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

__all__ = ["Background"]


class Background:
    """The nursery of one part's background work (see the module docstring)."""

    def __init__(self) -> None:
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the nursery until cancelled; ready once work can be started."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    @property
    def running(self) -> bool:
        return self._nursery is not None

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        assert self._nursery is not None, "the part is not running"
        self._nursery.start_soon(fn, *args)
