"""Upgrades of what is on disk: the SQLite schema (compressed values) and the storage
format (the root group's ``current`` names its version), from files and stores as the
previous code wrote them."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import pytest

from marathon_core.errors import StorageError
from marathon_core.model.app import AppDefinition
from marathon_core.model.group import Group
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.state.format import FORMAT_KEY, FORMAT_VERSION
from marathon_core.state.memory import MemoryStorage
from marathon_core.state.sqlite import COMPRESS_MIN, SCHEMA_VERSION, SqliteStorage
from marathon_core.state.storage import Create, Op, Storage
from marathon_core.state.store import StateStore

sys.path.insert(0, str(Path(__file__).parent))
import state_backends

backend = state_backends.backend
store = state_backends.store

#: The schema as format 1 of the SQLite file created it.
_SCHEMA_1 = """
CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, version INTEGER NOT NULL);
CREATE TABLE dirs (
    parent TEXT NOT NULL, name TEXT NOT NULL, n INTEGER NOT NULL CHECK (n > 0),
    PRIMARY KEY (parent, name)
) WITHOUT ROWID;
INSERT INTO kv VALUES ('big/a', zeroblob(5000), 3), ('small', x'0102', 0);
INSERT INTO dirs VALUES ('', 'big', 1), ('big', 'a', 1), ('', 'small', 1);
PRAGMA user_version = 1;
"""


def _packing(path: Path, key: str) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT packing, length(value) FROM kv WHERE key = ?", (key,)).fetchone()
    finally:
        conn.close()
    return row[0], row[1]


async def test_sqlite_schema_1_file_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(_SCHEMA_1)
    conn.close()
    s = await SqliteStorage.open(path)
    try:
        big = await s.get("big/a")
        assert big is not None and (big.value, big.version) == (bytes(5000), 3)
        assert (await s.get_many(["small"]))["small"].value == b"\x01\x02"
        assert _packing(path, "big/a") == (0, 5000)  # old rows stay as they are
        await s.update("big/a", bytes(6000), version=3)
        assert _packing(path, "big/a")[0] == 1
        assert (await s.get_children("big"))["a"].value == bytes(6000)
        assert await s.check_integrity() == []
    finally:
        await s.aclose()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


async def test_sqlite_compresses_large_values_only_when_smaller(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    values = {
        "v/short": b"x" * (COMPRESS_MIN - 1),
        "v/long": b"x" * COMPRESS_MIN,
        "v/random": os.urandom(COMPRESS_MIN * 4),
        "v/empty": b"",
    }
    s = await SqliteStorage.open(path)
    try:
        await s.commit([Create(k, v) for k, v in values.items()])
        assert {k: e.value for k, e in (await s.get_many(list(values))).items()} == values
        assert {f"v/{n}": e.value for n, e in (await s.get_children("v")).items()} == values
        assert [_packing(path, k)[0] for k in values] == [0, 1, 0, 0]
        assert _packing(path, "v/long")[1] < COMPRESS_MIN // 10
    finally:
        await s.aclose()


async def test_sqlite_damaged_compressed_value_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    s = await SqliteStorage.open(path)
    try:
        await s.create("k", b"y" * COMPRESS_MIN)
        conn = sqlite3.connect(path)
        conn.execute("UPDATE kv SET value = x'00112233' WHERE key = 'k'")
        conn.commit()
        conn.close()
        with pytest.raises(StorageError, match="damaged compressed value"):
            await s.get("k")
    finally:
        await s.aclose()


def _ts(n: int) -> Timestamp:
    return Timestamp(1_700_000_000_000 + n)


def _root(v: int) -> Group:
    app = AppDefinition(id=PathId.parse("/g/a"), cmd=f"v{v}", version=_ts(v))
    return Group(
        PathId.root(),
        groups=(Group(PathId.parse("/g"), apps=(app,), version=_ts(v)),),
        version=_ts(v),
    )


async def _write_format_2(storage: Storage, roots: list[Group]) -> None:
    """The root versions and apps as format 2 stored them: ``current`` a copy."""
    scratch = await StateStore.open(MemoryStorage())
    ops: list[Op] = []
    for root in roots:
        (app,) = root.transitive_apps()
        assert app.version is not None
        ops.append(
            Create(scratch.apps.version_key(app.id, app.version), scratch.codec.to_storage(app))
        )
    ops.append(Create(scratch.apps.current_key(app.id), scratch.codec.to_storage(app)))
    records = [scratch._dump_root(scratch.root_record(r)) for r in roots]
    for root, record in zip(roots, records, strict=True):
        assert root.version is not None
        ops.append(Create(scratch.groups.version_key(PathId.root(), root.version), record))
    ops.append(Create(scratch.groups.current_key(PathId.root()), records[-1]))
    ops.append(Create(FORMAT_KEY, b"2"))
    await storage.commit(ops)


async def test_format_2_store_is_migrated_to_a_named_current_root(store: Storage) -> None:
    roots = [_root(1), _root(2), _root(3)]
    # current is not the newest version: the migration finds it by its bytes
    await _write_format_2(store, [roots[0], roots[2], roots[1]])
    state = await StateStore.open(store)
    marker = await store.get(FORMAT_KEY)
    assert marker is not None and marker.value == str(FORMAT_VERSION).encode()
    current = await store.get(state.groups.current_key(PathId.root()))
    assert current is not None and current.value == str(_ts(2)).encode()
    assert await state.root_group() == roots[1]
    assert await state.root_group(_ts(3)) == roots[2]
    assert await state.check_consistency() == []
    await state.store_root(_root(4))  # and later changes name their version too
    current = await store.get(state.groups.current_key(PathId.root()))
    assert current is not None and current.value == str(_ts(4)).encode()


async def test_format_2_current_matching_no_version_is_refused(store: Storage) -> None:
    await _write_format_2(store, [_root(1)])
    state = await StateStore.open(MemoryStorage())
    key = state.groups.current_key(PathId.root())
    await store.update(key, b"not a stored record")
    with pytest.raises(StorageError, match="matches none"):
        await StateStore.open(store)
