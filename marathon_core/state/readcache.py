"""Values, child lists and decoded objects a storage keeps until told they changed.

Why: a new leader must serve writes within seconds of the old one's death with
10k apps and 100k instances stored (``benchmarks/bench_failover.py``); reading and
decoding them takes several seconds on ZooKeeper.  A standby that read the state
once keeps it here, and the backend (ZooKeeper watches) drops exactly what
changes, so taking over costs only what changed since.

The backend's contract with this cache:

* :meth:`ReadCache.fill` is given the :attr:`generation` read *before* the
  backend asked for the values; a value is not kept if its key was invalidated
  since (or everything was), because what was read may predate that change.
  Only the keys dropped meanwhile are left out: a standby's bulk read of 10k
  keys must not be thrown away because one other key changed while it ran.
* Every change is reported with :meth:`drop_value` / :meth:`drop_children`,
  after the change (a watch) or right after the process's own commit (so it
  reads its own writes), and :meth:`clear` when notifications may have been
  missed (the connection was lost).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import trio

from marathon_core.state.storage import Entry, parent_of

__all__ = ["ReadCache"]

T = TypeVar("T")

#: Invalidated keys remembered for fills in flight; beyond this, all fills in
#: flight are refused instead (correct, merely slower).
MAX_REMEMBERED_DROPS = 100_000


class ReadCache:
    """Entries by key, child names by prefix, and one decoded form per cached entry."""

    def __init__(self) -> None:
        self.values: dict[str, Entry] = {}
        self.children: dict[str, list[str]] = {}
        self._decoded: dict[str, tuple[Callable[[bytes], Any], Any]] = {}
        #: Bumped by every invalidation; see the module docstring.
        self.generation = 0
        #: Generation at which each key (value, or child list) was last dropped.
        self._dropped_values: dict[str, int] = {}
        self._dropped_children: dict[str, int] = {}
        #: Fills that began before this generation are refused whole (after clear()).
        self._floor = 0
        self._changed = trio.Event()

    # -- filling -------------------------------------------------------------------

    def fill(self, generation: int, entries: Iterable[Entry]) -> None:
        """Keep ``entries`` read since ``generation``, except those dropped meanwhile."""
        if generation < self._floor:
            return
        dropped = self._dropped_values
        for entry in entries:
            if dropped.get(entry.key, 0) <= generation:
                self.values[entry.key] = entry

    def fill_children(self, generation: int, prefix: str, names: list[str]) -> None:
        if generation >= self._floor and self._dropped_children.get(prefix, 0) <= generation:
            self.children[prefix] = names

    def decoded(self, entry: Entry, decode: Callable[[bytes], T]) -> T:
        """``decode(entry.value)``, computed once per cached entry.

        Objects handed out are shared, so they must be immutable (the model is).
        """
        if self.values.get(entry.key) is not entry:
            return decode(entry.value)
        hit = self._decoded.get(entry.key)
        if hit is not None and hit[0] == decode:
            return hit[1]  # type: ignore[no-any-return]
        obj = decode(entry.value)
        self._decoded[entry.key] = (decode, obj)
        return obj

    # -- invalidation ---------------------------------------------------------------

    def drop_value(self, key: str) -> None:
        self._bump()
        self._drop_value(key)
        self._forget_old_drops()

    def drop_children(self, prefix: str) -> None:
        self._bump()
        self._drop_children(prefix)
        self._forget_old_drops()

    def drop_written(self, keys: Iterable[str]) -> None:
        """After a commit (or a failed one) touching ``keys``: their values and the
        child lists of every ancestor, which a create or delete may have changed."""
        self._bump()
        for key in keys:
            self._drop_value(key)
            parent = key
            while parent:
                parent = parent_of(parent)
                self._drop_children(parent)
        self._forget_old_drops()

    def clear(self) -> None:
        self._bump()
        self.values.clear()
        self.children.clear()
        self._decoded.clear()
        self._refuse_fills_in_flight()

    def _drop_value(self, key: str) -> None:
        self.values.pop(key, None)
        self._decoded.pop(key, None)
        self._dropped_values[key] = self.generation

    def _drop_children(self, prefix: str) -> None:
        self.children.pop(prefix, None)
        self._dropped_children[prefix] = self.generation

    def _forget_old_drops(self) -> None:
        if len(self._dropped_values) + len(self._dropped_children) > MAX_REMEMBERED_DROPS:
            self._refuse_fills_in_flight()

    def _refuse_fills_in_flight(self) -> None:
        self._floor = self.generation
        self._dropped_values.clear()
        self._dropped_children.clear()

    def _bump(self) -> None:
        self.generation += 1
        self._changed.set()
        self._changed = trio.Event()

    async def wait_changed(self) -> None:
        """Return after the next invalidation."""
        await self._changed.wait()
