"""Values, child lists and decoded objects a storage keeps until told they changed.

Why: a new leader must serve writes within seconds of the old one's death with
10k apps and 100k instances stored (issue #7, benchmark B5); reading and
decoding them takes several seconds on ZooKeeper.  A standby that read the state
once keeps it here, and the backend (ZooKeeper watches) drops exactly what
changes, so taking over costs only what changed since.

The backend's contract with this cache:

* :meth:`ReadCache.fill` is given the :attr:`generation` read *before* the
  backend asked for the value; a fill is dropped if anything was invalidated
  since, because the value read may predate that change.
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


class ReadCache:
    """Entries by key, child names by prefix, and one decoded form per cached entry."""

    def __init__(self) -> None:
        self.values: dict[str, Entry] = {}
        self.children: dict[str, list[str]] = {}
        self._decoded: dict[str, tuple[Callable[[bytes], Any], Any]] = {}
        #: Bumped by every invalidation; see the module docstring.
        self.generation = 0
        self._changed = trio.Event()

    # -- filling -------------------------------------------------------------------

    def fill(self, generation: int, entries: Iterable[Entry]) -> None:
        """Keep ``entries`` read since ``generation``, unless something changed meanwhile."""
        if generation == self.generation:
            for entry in entries:
                self.values[entry.key] = entry

    def fill_children(self, generation: int, prefix: str, names: list[str]) -> None:
        if generation == self.generation:
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
        self.values.pop(key, None)
        self._decoded.pop(key, None)
        self._bump()

    def drop_children(self, prefix: str) -> None:
        self.children.pop(prefix, None)
        self._bump()

    def drop_written(self, keys: Iterable[str]) -> None:
        """After a commit (or a failed one) touching ``keys``: their values and the
        child lists of every ancestor, which a create or delete may have changed."""
        for key in keys:
            self.values.pop(key, None)
            self._decoded.pop(key, None)
            parent = key
            while parent:
                parent = parent_of(parent)
                self.children.pop(parent, None)
        self._bump()

    def clear(self) -> None:
        self.values.clear()
        self.children.clear()
        self._decoded.clear()
        self._bump()

    def _bump(self) -> None:
        self.generation += 1
        self._changed.set()
        self._changed = trio.Event()

    async def wait_changed(self) -> None:
        """Return after the next invalidation."""
        await self._changed.wait()
