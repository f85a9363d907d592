"""A group's app references, stored in content-addressed chunks (storage format 4).

Why: the root record listed every app reference of every group inline (about 50
bytes per app), so adding one app to a group of 10k apps re-encoded, compressed and
wrote 450 KiB, and walked the 10k apps to do so. Now a group's references are cut
into chunks of about :data:`CHUNK_MEAN` references, each stored once under the hash
of its bytes (``group-refs/<hash>``), and the root record lists chunk names: a change
writes the chunks it touches and a record of a few bytes per chunk.

Boundaries are content-defined (after an app whose id hashes to 0 mod
:data:`CHUNK_MEAN`, or after :data:`CHUNK_MAX` apps), so removing or inserting an app
changes the chunk around it, not every chunk after it, and consecutive root versions
share their unchanged chunks (which are deleted once no kept version names them).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from typing import Any

import attrs

from marathon_core.model.app import AppDefinition
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.state.roots import AppKey

__all__ = [
    "CATEGORY",
    "CHUNK_MAX",
    "CHUNK_MEAN",
    "Chunk",
    "ChunkRefs",
    "ChunkUsers",
    "chunk_apps",
    "chunk_key",
    "split_refs",
]

#: Where chunks are stored.
CATEGORY = "group-refs"
#: A chunk ends after an app whose id's CRC-32 is 0 modulo this (the mean chunk size).
CHUNK_MEAN = 64
#: ... or after this many apps.
CHUNK_MAX = 256

_COMPACT = json.JSONEncoder(separators=(",", ":")).encode


def chunk_key(name: str) -> str:
    return f"{CATEGORY}/{name}"


def _is_boundary(app_id: str) -> bool:
    return zlib.crc32(app_id.encode()) % CHUNK_MEAN == 0


def _encode(refs: Sequence[tuple[str, str]]) -> tuple[bytes, str]:
    value = _COMPACT([list(r) for r in refs]).encode()
    return value, hashlib.blake2b(value, digest_size=16).hexdigest()


@attrs.frozen(eq=False)
class Chunk:
    """Consecutive apps of a group and their references as stored."""

    #: The apps it was made from (compared by identity to reuse it).
    apps: tuple[AppDefinition, ...]
    #: Ends on a boundary: reusable before other apps (the last chunk of a group is not).
    closed: bool
    #: Compact JSON ``[[app id, version], ...]``.
    value: bytes
    #: The hash of ``value``, its name in storage.
    name: str

    @classmethod
    def of(cls, apps: tuple[AppDefinition, ...], closed: bool) -> Chunk:
        refs = []
        for app in apps:
            assert app.version is not None, "stored apps have versions"
            refs.append((str(app.id), str(app.version)))
        value, name = _encode(refs)
        return cls(apps, closed, value, name)


def _cut(ids: Sequence[str], start: int) -> tuple[int, bool]:
    """Where the chunk starting at ``start`` ends, and whether on a boundary."""
    end = start
    while end < len(ids):
        end += 1
        if _is_boundary(ids[end - 1]) or end - start >= CHUNK_MAX:
            return end, True
    return end, False


def split_refs(refs: Sequence[tuple[str, str]]) -> list[tuple[bytes, str]]:
    """``refs`` cut into chunks as :func:`chunk_apps` cuts apps: (value, name) each."""
    ids = [a for a, _ in refs]
    out, start = [], 0
    while start < len(refs):
        end, _ = _cut(ids, start)
        out.append(_encode(refs[start:end]))
        start = end
    return out


def chunk_apps(apps: tuple[AppDefinition, ...], previous: tuple[Chunk, ...]) -> tuple[Chunk, ...]:
    """``apps`` in chunks, reusing the closed chunks of ``previous`` that recur whole.

    Walks ``previous`` chunk by chunk, comparing each with the apps at the same place
    (a tuple comparison: identity first, in C); where they differ, cuts new chunks
    until one ends where a chunk of ``previous`` starts, and goes on from there. A
    change costs the chunks around it and one comparison per chunk.
    """
    starts = {id(c.apps[0]): k for k, c in enumerate(previous) if c.closed}
    out: list[Chunk] = []
    i, k, n = 0, 0, len(apps)
    ids: dict[int, str] = {}

    def app_id(j: int) -> str:
        found = ids.get(j)
        if found is None:
            found = ids[j] = str(apps[j].id)
        return found

    while i < n:
        if k < len(previous):
            chunk = previous[k]
            end = i + len(chunk.apps)
            if chunk.closed and end <= n and apps[i:end] == chunk.apps:
                out.append(chunk)
                i, k = end, k + 1
                continue
        end = i
        closed = False
        while end < n:
            end += 1
            if _is_boundary(app_id(end - 1)) or end - i >= CHUNK_MAX:
                closed = True
                break
        out.append(Chunk.of(apps[i:end], closed))
        i = end
        k = starts.get(id(apps[i]), len(previous)) if i < n else k
    return tuple(out)


class ChunkUsers:
    """Which stored root versions name which chunks.

    Why kept: deciding what a prune frees must cost the pruned version's chunks, not a
    union over the 50 kept versions.
    """

    def __init__(self) -> None:
        self._names: dict[Timestamp, set[str]] = {}
        self._users: dict[str, set[Timestamp]] = {}

    def count(self, name: str) -> int:
        return len(self._users.get(name, ()))

    def versions_naming(self, name: str) -> set[Timestamp]:
        return self._users.get(name, set())

    def named_by(self, versions: Collection[Timestamp]) -> set[str]:
        return {n for v in versions for n in self._names.get(v, ())}

    def only_in(self, versions: Iterable[Timestamp]) -> set[str]:
        """Chunks that no version but ``versions`` names."""
        leaving = set(versions)
        return {n for n in self.named_by(leaving) if self._users[n] <= leaving}

    async def sync(
        self,
        stored: Sequence[Timestamp],
        read: Callable[
            [Iterable[tuple[PathId, Timestamp]]], Awaitable[dict[tuple[PathId, Timestamp], Any]]
        ],
    ) -> None:
        """Forget versions no longer stored, read the records of those not yet seen."""
        present = set(stored)
        for v in [v for v in self._names if v not in present]:
            self._drop(v)
        unseen = [(PathId.root(), v) for v in stored if v not in self._names]
        if unseen:
            for (_, v), record in (await read(unseen)).items():
                self.add(v, record.names())

    def add(self, version: Timestamp, names: set[str]) -> None:
        if version in self._names:
            self._drop(version)
        self._names[version] = names
        for n in names:
            self._users.setdefault(n, set()).add(version)

    def _drop(self, version: Timestamp) -> None:
        for n in self._names.pop(version):
            users = self._users[n]
            users.discard(version)
            if not users:
                del self._users[n]


class ChunkRefs:
    """Parsed chunks by name, and which chunks hold each app (chunks are immutable)."""

    def __init__(self) -> None:
        self._refs: dict[str, list[AppKey]] = {}
        self._holding: dict[PathId, set[str]] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._refs

    def __getitem__(self, name: str) -> list[AppKey]:
        return self._refs[name]

    def put(self, name: str, refs: list[AppKey]) -> None:
        if name in self._refs:
            return
        self._refs[name] = refs
        for app_id, _ in refs:
            self._holding.setdefault(app_id, set()).add(name)

    def holding(self, app_id: PathId) -> set[str]:
        return self._holding.get(app_id, set())

    def forget(self, drop: Callable[[str], bool]) -> None:
        """Forget the chunks ``drop`` is true for."""
        for name in [n for n in self._refs if drop(n)]:
            for app_id, _ in self._refs.pop(name):
                held = self._holding[app_id]
                held.discard(name)
                if not held:
                    del self._holding[app_id]
