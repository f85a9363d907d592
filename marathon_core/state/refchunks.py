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
from collections.abc import Sequence

import attrs

from marathon_core.model.app import AppDefinition

__all__ = ["CATEGORY", "CHUNK_MAX", "CHUNK_MEAN", "Chunk", "chunk_apps", "chunk_key", "split_refs"]

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
