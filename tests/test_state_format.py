"""Upgrades of what is on disk: the SQLite schema (compressed values) and the storage
format (the root group's ``current`` names its version), from files and stores as the
previous code wrote them."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

import attrs
import pytest

from marathon_core.errors import StorageError
from marathon_core.model import codec as model_codec
from marathon_core.model.app import AppDefinition
from marathon_core.model.group import Group
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.state import frames
from marathon_core.state.format import FORMAT_KEY, FORMAT_VERSION
from marathon_core.state.memory import MemoryStorage
from marathon_core.state.refchunks import CATEGORY, split_refs
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


def _format_3_record(root: Group) -> bytes:
    """A root record as formats 1 to 3 stored it: every group's references inline."""
    refs: dict[str, list[tuple[str, str]]] = {}

    def strip(g: Group) -> Group:
        refs[str(g.id)] = [(str(a.id), str(a.version)) for a in g.apps]
        return attrs.evolve(g, apps=(), groups=tuple(strip(c) for c in g.groups))

    stripped = strip(root)
    return frames.pack([json.dumps(refs).encode(), model_codec.to_storage(stripped)])


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
    records = [_format_3_record(r) for r in roots]
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


def _big_root(v: int, removed: int) -> Group:
    """A group of 600 apps (several chunks) at version ``v``: app ``v`` changed, app
    ``removed`` gone."""
    apps = tuple(
        AppDefinition(id=PathId.parse(f"/big/a{n}"), cmd="x", version=_ts(v if n == v else 0))
        for n in range(600)
        if n != removed
    )
    big = Group(PathId.parse("/big"), apps=apps, version=_ts(v))
    return Group(PathId.root(), groups=(big,), version=_ts(v))


async def test_format_3_store_is_migrated_to_chunked_references(store: Storage) -> None:
    roots = [_big_root(v, removed=300 + v) for v in (1, 2, 3)]
    apps = {(a.id, a.version): a for r in roots for a in r.transitive_apps()}
    ops: list[Op] = []
    scratch = await StateStore.open(MemoryStorage())
    for (app_id, version), app in apps.items():
        assert version is not None
        ops.append(Create(scratch.apps.version_key(app_id, version), model_codec.to_storage(app)))
    for root in roots:
        assert root.version is not None
        key = scratch.groups.version_key(PathId.root(), root.version)
        ops.append(Create(key, _format_3_record(root)))
    ops.append(Create(scratch.groups.current_key(PathId.root()), str(_ts(3)).encode()))
    ops.append(Create(FORMAT_KEY, b"3"))
    for k in range(0, len(ops), 200):  # ZooKeeper takes at most 1 MB per request
        await store.commit(ops[k : k + 200])

    state = await StateStore.open(store, max_versions=3)
    marker = await store.get(FORMAT_KEY)
    assert marker is not None and marker.value == str(FORMAT_VERSION).encode()
    assert await state.root_group() == roots[2]
    assert await state.root_group(_ts(1)) == roots[0]
    assert await state.check_consistency() == []
    stored = set(await store.children(CATEGORY))
    per_root = len(split_refs([(str(a.id), "v") for a in roots[0].transitive_apps()]))
    assert per_root >= 4
    assert stored == await _named(state)
    assert len(stored) < 2 * per_root, "the versions share their unchanged chunks"
    # A change cuts chunks as the migration did: it adds those around what changed and
    # deletes those only the pruned version named.
    await state.store_root(_big_root(4, removed=304))
    after = set(await store.children(CATEGORY))
    assert after == await _named(state)
    assert len(after - stored) <= 4
    assert await (await StateStore.open(store)).root_group() == _big_root(4, removed=304)


async def _named(state: StateStore) -> set[str]:
    names: set[str] = set()
    for v in await state.root_group_versions():
        record = await state.groups.get_version(PathId.root(), v)
        assert record is not None
        names |= record.names()
    return names
