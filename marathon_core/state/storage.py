"""The storage interface every state backend implements.

The store is a tree of keys holding byte values, shaped after ZooKeeper so that
the ZooKeeper backend is a thin adapter and SQLite/memory behave the same:

* A key is a relative ``/``-separated path (``apps/%2Fweb/current``); build one
  with :func:`key` so every segment is escaped the same way on every backend.
* Each key holds a value (bytes, any size: splitting large values is the
  ZooKeeper backend's concern) and a version, ``0`` when created and ``+1`` on
  every update (ZooKeeper's ``Stat.version``).
* Parents are implicit: writing ``a/b/c`` makes ``b`` a child of ``a``, and
  :meth:`Storage.children` lists a name exactly while some key lives under it
  (the ZooKeeper backend creates and removes the inner znodes).  By rule the
  repositories never store a value at a key that also has children.
* Writes go through :meth:`Storage.commit`: a list of :data:`Op` applied all or
  nothing (ZooKeeper ``multi``).  ``version=None`` means "any version";
  otherwise the op is a compare-and-set.

Errors are the core's (``marathon_core.errors``): a key that exists already or
has another version -> :class:`VersionConflictError`; a key that an ``Update``,
``Delete`` or ``Check`` needs and that is missing -> :class:`NotFoundError`; the
backend unreachable -> :class:`StorageUnavailableError`.  No backend exception
type crosses an adapter.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import TypeVar
from urllib.parse import quote, unquote

import attrs
import trio

from marathon_core.errors import NotFoundError, VersionConflictError

__all__ = [
    "Check",
    "Create",
    "Delete",
    "Entry",
    "Op",
    "Storage",
    "Update",
    "key",
    "parent_of",
    "segment",
    "split_key",
    "unsegment",
    "validate_key",
]

T = TypeVar("T")

_SEGMENT = re.compile(r"^[A-Za-z0-9._~%:@+=-]+$")


@attrs.frozen
class Entry:
    """A stored value with its version, as read."""

    key: str
    value: bytes
    version: int


@attrs.frozen
class Create:
    """Create ``key``; fails with VersionConflictError if it exists."""

    key: str
    value: bytes


@attrs.frozen
class Update:
    """Replace the value of an existing ``key`` (ZooKeeper ``setData``)."""

    key: str
    value: bytes
    version: int | None = None


@attrs.frozen
class Delete:
    """Remove ``key`` (its value; children are not touched)."""

    key: str
    version: int | None = None


@attrs.frozen
class Check:
    """Assert that ``key`` exists at ``version``; writes nothing (fencing, reads in CAS)."""

    key: str
    version: int


Op = Create | Update | Delete | Check


def segment(name: str) -> str:
    """Escape one name (an app id, a version) into a single key segment.

    Why: ids contain ``/`` and ZooKeeper rejects ``.``/``..`` components, so the
    escaping must be total and identical on every backend.
    """
    seg = quote(name, safe="-_.~:@+=")
    if seg in (".", ".."):
        seg = seg.replace(".", "%2E")
    return seg or "%00"


def unsegment(seg: str) -> str:
    """Inverse of :func:`segment`."""
    if seg == "%00":
        return ""
    return unquote(seg)


def key(*names: str, raw: Iterable[str] = ()) -> str:
    """Join escaped names into a key; ``raw`` segments are appended unescaped."""
    parts = [segment(n) for n in names]
    parts.extend(raw)
    result = "/".join(parts)
    validate_key(result)
    return result


def validate_key(k: str) -> None:
    """Reject keys that some backend could not store the same way."""
    if not k or k.startswith("/") or k.endswith("/"):
        raise ValueError(f"bad storage key {k!r}")
    for seg in k.split("/"):
        if seg in (".", "..") or not _SEGMENT.match(seg):
            raise ValueError(f"bad storage key segment {seg!r} in {k!r}")


def split_key(k: str) -> list[str]:
    """The segments of a key."""
    return k.split("/")


def parent_of(k: str) -> str:
    """The parent key, ``""`` for a top-level key."""
    i = k.rfind("/")
    return k[:i] if i >= 0 else ""


class Storage(abc.ABC):
    """A hierarchical byte store with versions and atomic multi-op commits.

    Backends implement the five abstract methods; everything else is built on
    them.  All methods are async; a backend may block only in a worker thread.
    """

    # -- primitives --------------------------------------------------------

    @abc.abstractmethod
    async def get(self, key: str) -> Entry | None:
        """The entry at ``key``, or None."""

    @abc.abstractmethod
    async def get_many(self, keys: Sequence[str]) -> dict[str, Entry]:
        """Entries of the keys that exist, in one round (pipelined on ZooKeeper).

        Why: reading the state one key at a time at election is what made Marathon's
        own elections time out with only 500 apps (its GitHub issue 2532);
        repositories always read in bulk.
        """

    @abc.abstractmethod
    async def children(self, prefix: str) -> list[str]:
        """Sorted names one level below ``prefix`` (``""`` = the top level)."""

    @abc.abstractmethod
    async def commit(self, ops: Sequence[Op]) -> list[int | None]:
        """Apply ``ops`` atomically, in order; return each key's new version.

        ``Delete`` and ``Check`` report None.  On the first failing op nothing
        at all is applied and its error is raised.
        """

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release the backend; idempotent."""

    # -- read caching (backends that keep what they read override these) -----

    @property
    def caches_reads(self) -> bool:
        """Whether this backend keeps values it read until they change."""
        return False

    async def sync(self) -> None:
        """Make later reads reflect every commit made anywhere before this call.

        Nothing to wait for here: an uncached read always asks the backend.
        """
        return None

    def decoded(self, entry: Entry, decode: Callable[[bytes], T]) -> T:
        """``decode(entry.value)``; a caching backend computes it once per cached entry."""
        return decode(entry.value)

    async def wait_changed(self) -> None:
        """Return once cached reads may have become stale (never, without a cache)."""
        await trio.sleep_forever()

    # -- conveniences --------------------------------------------------------

    async def get_children(self, prefix: str) -> dict[str, Entry]:
        """Child name -> entry for the children of ``prefix`` that hold a value."""
        names = await self.children(prefix)
        keys = {f"{prefix}/{n}" if prefix else n: n for n in names}
        found = await self.get_many(list(keys))
        return {keys[k]: e for k, e in found.items()}

    async def create(self, key: str, value: bytes) -> int:
        """Create one key; its version (0)."""
        (v,) = await self.commit([Create(key, value)])
        assert v is not None
        return v

    async def update(self, key: str, value: bytes, *, version: int | None = None) -> int:
        """Update one existing key; its new version."""
        (v,) = await self.commit([Update(key, value, version)])
        assert v is not None
        return v

    async def delete(self, key: str, *, version: int | None = None) -> None:
        """Delete one existing key."""
        await self.commit([Delete(key, version)])

    async def put(self, key: str, value: bytes) -> int:
        """Create or overwrite ``key`` (read, then a conditional write).

        Retries once per lost race so it never half-succeeds.
        """
        for _ in range(10):
            current = await self.get(key)
            try:
                if current is None:
                    return await self.create(key, value)
                return await self.update(key, value, version=current.version)
            except (VersionConflictError, NotFoundError):
                continue
        raise VersionConflictError(f"put {key!r}: too many concurrent writers")

    async def __aenter__(self) -> Storage:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
