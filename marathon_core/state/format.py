"""The storage format version and the migrations between versions.

The logical layout of the repositories (which keys, which encodings) is
versioned by one marker key, read when a store is opened: a newer marker means
a newer Marathon wrote the data and we refuse to touch it
(:class:`StorageFormatError`); an older one is upgraded step by step by
:data:`MIGRATIONS`.  Each migration returns the ops that upgrade the data; they
are committed in the same transaction as the marker bump, so a crash leaves
either the old or the new format, never a mix.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence

from marathon_core.errors import (
    NotFoundError,
    StorageError,
    StorageFormatError,
    VersionConflictError,
)
from marathon_core.state import frames
from marathon_core.state.refchunks import chunk_key, split_refs
from marathon_core.state.storage import Create, Op, Storage, Update, unsegment

__all__ = ["FORMAT_KEY", "FORMAT_VERSION", "MIGRATIONS", "Migration", "ensure_format"]

#: The marker key (Marathon keeps a storage-version node beside its state).
FORMAT_KEY = "storage-version"

#: The format this code writes.  2: a large app's instances are kept in several
#: values (buckets, see ``state/instances.py``), which format 1 readers would take
#: for apps of their own.  3: the root group's ``current`` key names its version
#: instead of holding a copy of the record (``VersionedRepository.current_by_name``).
#: 4: a root record names chunks of its groups' app references, stored apart
#: (``state/refchunks.py``), instead of listing the references inline.
FORMAT_VERSION = 4

#: Reads the store at format ``n`` and returns the ops that turn it into ``n + 1``.
Migration = Callable[[Storage], Awaitable[Sequence[Op]]]


async def _nothing_to_change(storage: Storage) -> Sequence[Op]:
    """1 -> 2: a format 1 store is a format 2 store whose apps each have one bucket."""
    return []


#: Where the root group's versions are kept (``StateStore.groups``).
_GROUPS = "group"


async def _name_current_roots(storage: Storage) -> Sequence[Op]:
    """2 -> 3: each ``group/<id>/current`` copy becomes the name of the version it
    copies (found by comparing bytes, newest first; both were written together)."""
    ops: list[Op] = []
    for gid in await storage.children(_GROUPS):
        current = await storage.get(f"{_GROUPS}/{gid}/current")
        if current is None:
            continue
        prefix = f"{_GROUPS}/{gid}/versions"
        for name in sorted(await storage.children(prefix), reverse=True):
            stored = await storage.get(f"{prefix}/{name}")
            if stored is not None and stored.value == current.value:
                ops.append(Update(current.key, unsegment(name).encode(), current.version))
                break
        else:
            raise StorageError(f"{current.key!r} matches none of its stored versions")
    return ops


async def _chunk_root_refs(storage: Storage) -> Sequence[Op]:
    """3 -> 4: each stored root version's inline references move to chunks (each
    chunk created once, however many versions name it); the record names them."""
    ops: list[Op] = []
    created: set[str] = set()
    for gid in await storage.children(_GROUPS):
        prefix = f"{_GROUPS}/{gid}/versions"
        for name in await storage.children(prefix):
            stored = await storage.get(f"{prefix}/{name}")
            if stored is None:
                continue
            try:
                refs_raw, group_raw = frames.unpack(stored.value)
                refs = json.loads(refs_raw)
            except ValueError:
                raise StorageError(f"damaged root group record at {stored.key!r}") from None
            names: dict[str, list[str]] = {}
            for group_id, group_refs in refs.items():
                chunks = split_refs([(a, v) for a, v in group_refs])
                names[group_id] = [n for _, n in chunks]
                for value, n in chunks:
                    if n not in created:
                        created.add(n)
                        ops.append(Create(chunk_key(n), value))
            record = frames.pack([json.dumps(names, separators=(",", ":")).encode(), group_raw])
            ops.append(Update(stored.key, record, stored.version))
    return ops


#: ``MIGRATIONS[n]`` upgrades format ``n`` to ``n + 1``.
MIGRATIONS: Mapping[int, Migration] = {
    1: _nothing_to_change,
    2: _name_current_roots,
    3: _chunk_root_refs,
}


async def ensure_format(
    storage: Storage,
    *,
    current: int = FORMAT_VERSION,
    migrations: Mapping[int, Migration] = MIGRATIONS,
) -> int:
    """Check the marker, write it on an empty store, migrate an older one.

    Returns the format version the store had when opened.
    """
    for _ in range(10):
        entry = await storage.get(FORMAT_KEY)
        if entry is None:
            if await storage.children(""):
                raise StorageError(
                    f"store holds data but no {FORMAT_KEY!r} marker; refusing to guess its format"
                )
            try:
                await storage.create(FORMAT_KEY, str(current).encode())
            except VersionConflictError:
                continue  # another process initialised it; read again
            return current
        found = _parse(entry.value)
        if found > current:
            raise StorageFormatError(found, current)
        opened_at = found
        version = entry.version
        while found < current:
            step = migrations.get(found)
            if step is None:
                raise StorageError(f"no migration from storage format {found} to {found + 1}")
            ops = await step(storage)
            marker = Update(FORMAT_KEY, str(found + 1).encode(), version)
            try:
                (*_, new_version) = await storage.commit([*ops, marker])
            except (VersionConflictError, NotFoundError):
                now = await storage.get(FORMAT_KEY)
                if now is not None and now.version == version:
                    raise  # the migration itself failed, not a race on the marker
                break  # someone else migrated concurrently; start over
            assert new_version is not None
            found, version = found + 1, new_version
        else:
            return opened_at
    raise StorageError("could not settle the storage format: too many concurrent changes")


def _parse(value: bytes) -> int:
    try:
        found = int(value.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise StorageError(f"unreadable {FORMAT_KEY!r} marker {value[:20]!r}") from None
    if found < 1:
        raise StorageError(f"invalid {FORMAT_KEY!r} marker {found}")
    return found
