"""SQLite storage: the default backend, one file in ``--state_dir``.

Resource handling: one connection, used only from worker threads reached
through ``trio.to_thread.run_sync`` with a private ``CapacityLimiter(1)``, so
calls are serialised and the connection is never used by two threads at once.
One long-lived connection beats a connection per call (measured in
``benchmarks/bench_state.py``: opening a WAL connection and reading the schema
costs more than a small commit).

Durability: WAL journal.  ``synchronous=FULL`` (the default) fsyncs the WAL on
every commit, so a commit that returned survives kill -9 *and* power loss;
``NORMAL`` survives kill -9 (the WAL is in the OS page cache) but may lose the
last commits on power loss.  We default to FULL because "write state, then act
on Mesos" is only safe if what was written before acting is still there after
any crash; NORMAL is available for tests and benchmarks.

Size: values of :data:`COMPRESS_MIN` bytes or more are stored zlib-compressed
(level 1) when that makes them smaller, marked per row.  Why: a commit fsyncs every
byte it writes, and the JSON records shrink 5-15x (the root record of 10k apps, 490
KiB, to 31 KiB in about 1 ms); packing and unpacking run in the worker thread, never
on the event loop.

Error handling: no ``sqlite3`` exception leaves this module.  Busy/locked/I-O
errors become :class:`StorageUnavailableError`, corruption and the rest
:class:`StorageError`; a schema newer than this code is
:class:`StorageFormatError`.  Commits are not abandoned on cancellation: a
cancelled caller waits for the (short) thread call, so "did it commit?" always
has an answer.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, TypeVar

import attrs
import trio

from marathon_core.errors import (
    NotFoundError,
    StorageError,
    StorageFormatError,
    StorageUnavailableError,
    VersionConflictError,
)
from marathon_core.state.storage import (
    Check,
    Create,
    Delete,
    Entry,
    Op,
    Storage,
    Update,
    parent_of,
    validate_key,
)

__all__ = [
    "COMPRESS_MIN",
    "DEFAULT_FILENAME",
    "SCHEMA_VERSION",
    "SqliteStatistics",
    "SqliteStorage",
]

#: The file created in ``--state_dir``.
DEFAULT_FILENAME = "marathon-state.sqlite3"

#: Physical schema version, kept in ``PRAGMA user_version``.  The logical layout
#: of the repositories has its own marker (``state/format.py``).  2: ``kv.packing``.
SCHEMA_VERSION = 2

#: Values at least this long are stored compressed when that makes them smaller.
COMPRESS_MIN = 1024
#: ``kv.packing``: how a row's value is stored.
_RAW = 0
_ZLIB = 1

#: Keys per ``IN (...)`` query; well under SQLite's variable limit.
_CHUNK = 500

_SCHEMA = """
CREATE TABLE kv (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    version INTEGER NOT NULL,
    packing INTEGER NOT NULL DEFAULT 0
);
-- The implicit directory tree: n = number of keys at or below parent/name.
CREATE TABLE dirs (
    parent TEXT NOT NULL,
    name TEXT NOT NULL,
    n INTEGER NOT NULL CHECK (n > 0),
    PRIMARY KEY (parent, name)
) WITHOUT ROWID;
"""

#: ``_UPGRADES[n]`` turns schema ``n`` into ``n + 1`` (rows of schema 1 are raw).
_UPGRADES = {1: "ALTER TABLE kv ADD COLUMN packing INTEGER NOT NULL DEFAULT 0"}

T = TypeVar("T")


@attrs.frozen
class SqliteStatistics:
    """Counters since open."""

    commits: int
    ops: int
    reads: int


def _map_error(exc: sqlite3.Error) -> StorageError:
    if isinstance(exc, sqlite3.OperationalError):
        return StorageUnavailableError(f"sqlite: {exc}")
    return StorageError(f"sqlite: {type(exc).__name__}: {exc}")


class SqliteStorage(Storage):
    """A :class:`Storage` in one SQLite file."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        """Use :meth:`open`."""
        self._conn: sqlite3.Connection | None = conn
        self.path = path
        self._limiter = trio.CapacityLimiter(1)
        self._commits = 0
        self._ops = 0
        self._reads = 0

    # -- opening -------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        busy_timeout: float = 5.0,
    ) -> SqliteStorage:
        """Open (creating if needed) the store at ``path``; checks the schema version."""
        p = Path(path)
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")

        def _open() -> sqlite3.Connection:
            p.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                p, isolation_level=None, check_same_thread=False, timeout=busy_timeout
            )
            try:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StorageError(f"sqlite: cannot use WAL journal at {p} (got {mode})")
                conn.execute(f"PRAGMA synchronous={synchronous}")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    found = conn.execute("PRAGMA user_version").fetchone()[0]
                    if found == 0:
                        for stmt in _SCHEMA.split(";"):
                            if stmt.strip():
                                conn.execute(stmt)
                        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                    elif found > SCHEMA_VERSION:
                        raise StorageFormatError(found, SCHEMA_VERSION)
                    elif found < SCHEMA_VERSION:
                        for step in range(found, SCHEMA_VERSION):
                            conn.execute(_UPGRADES[step])
                        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except BaseException:
                conn.close()
                raise
            return conn

        try:
            conn = await trio.to_thread.run_sync(_open)
        except sqlite3.Error as exc:
            raise _map_error(exc) from exc
        return cls(conn, p)

    # -- plumbing ------------------------------------------------------------

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        if conn is None:
            raise StorageError("sqlite storage is closed")

        def call() -> T:
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise _map_error(exc) from exc

        return await trio.to_thread.run_sync(call, limiter=self._limiter)

    def statistics(self) -> SqliteStatistics:
        """Counters of commits, committed ops and read calls."""
        return SqliteStatistics(commits=self._commits, ops=self._ops, reads=self._reads)

    # -- Storage -------------------------------------------------------------

    async def get(self, key: str) -> Entry | None:
        def fn(conn: sqlite3.Connection) -> Entry | None:
            row = conn.execute(
                "SELECT value, version, packing FROM kv WHERE key = ?", (key,)
            ).fetchone()
            return None if row is None else Entry(key, _unpack(key, row[0], row[2]), row[1])

        self._reads += 1
        return await self._run(fn)

    async def get_many(self, keys: Sequence[str]) -> dict[str, Entry]:
        keys = list(keys)

        def fn(conn: sqlite3.Connection) -> dict[str, Entry]:
            out: dict[str, Entry] = {}
            conn.execute("BEGIN")  # one snapshot for all chunks
            try:
                for i in range(0, len(keys), _CHUNK):
                    chunk = keys[i : i + _CHUNK]
                    marks = ",".join("?" * len(chunk))
                    rows = conn.execute(
                        f"SELECT key, value, version, packing FROM kv WHERE key IN ({marks})",
                        chunk,
                    )
                    for k, v, ver, packing in rows:
                        out[k] = Entry(k, _unpack(k, v, packing), ver)
            finally:
                conn.execute("COMMIT")
            return out

        self._reads += 1
        return await self._run(fn)

    async def children(self, prefix: str) -> list[str]:
        def fn(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute("SELECT name FROM dirs WHERE parent = ? ORDER BY name", (prefix,))
            return [r[0] for r in rows]

        self._reads += 1
        return await self._run(fn)

    async def get_children(self, prefix: str) -> dict[str, Entry]:
        # One query instead of children() + get_many(): the bulk-load path.
        lo = prefix + "/" if prefix else ""
        hi = prefix + "0" if prefix else "\U0010ffff"  # "0" sorts right after "/"

        def fn(conn: sqlite3.Connection) -> dict[str, Entry]:
            rows = conn.execute(
                "SELECT key, value, version, packing FROM kv WHERE key >= ? AND key < ?", (lo, hi)
            )
            out: dict[str, Entry] = {}
            for k, v, ver, packing in rows:
                name = k[len(lo) :]
                if "/" not in name:
                    out[name] = Entry(k, _unpack(k, v, packing), ver)
            return out

        self._reads += 1
        return await self._run(fn)

    async def commit(self, ops: Sequence[Op]) -> list[int | None]:
        ops = list(ops)
        for op in ops:
            validate_key(op.key)

        def fn(conn: sqlite3.Connection) -> list[int | None]:
            conn.execute("BEGIN IMMEDIATE")
            try:
                results = [_apply(conn, op) for op in ops]
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return results

        results = await self._run(fn)
        self._commits += 1
        self._ops += len(ops)
        return results

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return

        def fn() -> None:
            try:
                conn.close()
            except sqlite3.Error as exc:
                raise _map_error(exc) from exc

        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(fn, limiter=self._limiter)

    # -- checks --------------------------------------------------------------

    async def check_integrity(self) -> list[str]:
        """Problems found by ``PRAGMA integrity_check`` and the directory invariant.

        An empty list means the file is sound.  Why: the crash tests and
        ``marathon --check-state`` need more than "it opened".
        """

        def fn(conn: sqlite3.Connection) -> list[str]:
            problems = [r[0] for r in conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
            expected: dict[tuple[str, str], int] = {}
            for (k,) in conn.execute("SELECT key FROM kv"):
                cur = k
                while True:
                    parent = parent_of(cur)
                    name = cur[len(parent) + 1 :] if parent else cur
                    expected[(parent, name)] = expected.get((parent, name), 0) + 1
                    if not parent:
                        break
                    cur = parent
            actual = {(p, n): c for p, n, c in conn.execute("SELECT parent, name, n FROM dirs")}
            if actual != expected:
                diff = set(actual.items()) ^ set(expected.items())
                problems.append(f"directory counts differ from keys: {sorted(diff)[:10]}")
            return problems

        return await self._run(fn)


def _bump_dirs(conn: sqlite3.Connection, key: str, delta: int) -> None:
    cur = key
    while True:
        parent = parent_of(cur)
        name = cur[len(parent) + 1 :] if parent else cur
        if delta > 0:
            conn.execute(
                "INSERT INTO dirs (parent, name, n) VALUES (?, ?, 1) "
                "ON CONFLICT (parent, name) DO UPDATE SET n = n + 1",
                (parent, name),
            )
        else:
            conn.execute("DELETE FROM dirs WHERE parent = ? AND name = ? AND n = 1", (parent, name))
            conn.execute("UPDATE dirs SET n = n - 1 WHERE parent = ? AND name = ?", (parent, name))
        if not parent:
            return
        cur = parent


def _pack(value: bytes) -> tuple[bytes, int]:
    """``value`` as stored, and its ``packing``."""
    if len(value) >= COMPRESS_MIN:
        packed = zlib.compress(value, 1)
        if len(packed) < len(value):
            return packed, _ZLIB
    return value, _RAW


def _unpack(key: str, stored: bytes, packing: int) -> bytes:
    if packing == _RAW:
        return bytes(stored)
    if packing == _ZLIB:
        try:
            return zlib.decompress(stored)
        except zlib.error:
            raise StorageError(f"sqlite: damaged compressed value at {key!r}") from None
    raise StorageError(f"sqlite: unknown value packing {packing} at {key!r}")


def _apply(conn: sqlite3.Connection, op: Op) -> int | None:
    row = conn.execute("SELECT version FROM kv WHERE key = ?", (op.key,)).fetchone()
    if isinstance(op, Create):
        if row is not None:
            raise VersionConflictError(f"{op.key!r} exists already")
        conn.execute(
            "INSERT INTO kv (key, value, version, packing) VALUES (?, ?, 0, ?)",
            (op.key, *_pack(op.value)),
        )
        _bump_dirs(conn, op.key, +1)
        return 0
    if row is None:
        raise NotFoundError(f"storage key {op.key!r} does not exist")
    version: int = row[0]
    if op.version is not None and op.version != version:
        raise VersionConflictError(f"{op.key!r} is at version {version}, expected {op.version}")
    if isinstance(op, Update):
        value, packing = _pack(op.value)
        conn.execute(
            "UPDATE kv SET value = ?, packing = ?, version = ? WHERE key = ?",
            (value, packing, version + 1, op.key),
        )
        return version + 1
    if isinstance(op, Delete):
        conn.execute("DELETE FROM kv WHERE key = ?", (op.key,))
        _bump_dirs(conn, op.key, -1)
        return None
    assert isinstance(op, Check)
    return None
