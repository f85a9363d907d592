"""How the scheduler's parts send Mesos calls: in the background, never raising.

Every part sends through one :class:`Outbox`. A call that waits for its answer
(:meth:`Outbox.send`) is one of at most ``MAX_CALLS_IN_FLIGHT``; one posted in the
background (:meth:`Outbox.post`: the ACKNOWLEDGEs and ACCEPTs of a launch, thousands
a second) is queued on the open connection at once when the caller can
(:meth:`MesosCaller.try_post`), and costs a task only when it cannot. A call Mesos
refuses (or a lost connection) is logged and reported as False, never raised: what
it missed is repaired by the next timer, reconciliation or offer round, and one
refused call must not stop the scheduler.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio

from marathon_core.mesos.client import CallError

__all__ = ["MAX_CALLS_IN_FLIGHT", "Background", "MesosCaller", "Outbox"]

log = logging.getLogger(__name__)

Json = dict[str, Any]

#: Concurrent ACKNOWLEDGE/KILL/ACCEPT calls.
MAX_CALLS_IN_FLIGHT = 32


class MesosCaller(Protocol):
    """What the scheduler needs from the Mesos client."""

    async def call(self, call: Json) -> None: ...

    def try_post(self, call: Json, on_done: Callable[[CallError | None], None]) -> bool:
        """Send without waiting if that can be done now (False: it was not sent)."""
        ...


class Background:
    """Starts fire-and-forget work in the running scheduler's nursery.

    Work started here ends with the scheduler (the leadership term), not with the
    event batch that started it.
    """

    def __init__(self) -> None:
        self._nursery: trio.Nursery | None = None

    def attach(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        assert self._nursery is not None, "the scheduler is not running"
        self._nursery.start_soon(fn, *args)


class Outbox:
    """The scheduler's way to Mesos (see the module docstring)."""

    def __init__(self, mesos: MesosCaller, background: Background) -> None:
        self._mesos = mesos
        self._background = background
        self._limiter = trio.CapacityLimiter(MAX_CALLS_IN_FLIGHT)

    async def send(self, call: Json) -> bool:
        """Send ``call`` and wait for Mesos to take it; False when it did not."""
        async with self._limiter:
            try:
                await self._mesos.call(call)
            except CallError as exc:
                _log_failure(exc)
                return False
            return True

    def post(self, call: Json) -> None:
        """Send ``call`` in the background (its outcome is only logged)."""
        if not self._mesos.try_post(call, _log_failure):
            self._background.start_soon(self.send, call)


def _log_failure(error: CallError | None) -> None:
    if error is not None:
        log.warning("Mesos call failed: %s", error)
