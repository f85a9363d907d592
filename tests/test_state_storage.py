"""The storage contract, run against every backend (see ``state_backends.py``)."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marathon_core.errors import (
    NotFoundError,
    StorageError,
    StorageFormatError,
    StorageUnavailableError,
    VersionConflictError,
)
from marathon_core.state.format import FORMAT_KEY, FORMAT_VERSION, ensure_format
from marathon_core.state.sqlite import SCHEMA_VERSION, SqliteStorage
from marathon_core.state.storage import (
    Check,
    Create,
    Delete,
    Op,
    Storage,
    Update,
    key,
    segment,
    unsegment,
)

sys.path.insert(0, str(Path(__file__).parent))
import state_backends
from state_backends import Backend

backend = state_backends.backend
store = state_backends.store


# -- single keys and versions ------------------------------------------------------


async def test_create_get_update_delete(store: Storage) -> None:
    assert await store.get("a/b") is None
    assert await store.create("a/b", b"one") == 0
    e = await store.get("a/b")
    assert e is not None and (e.key, e.value, e.version) == ("a/b", b"one", 0)
    assert await store.update("a/b", b"two") == 1
    assert await store.update("a/b", b"three", version=1) == 2
    assert (await store.get("a/b")).value == b"three"  # type: ignore[union-attr]
    await store.delete("a/b", version=2)
    assert await store.get("a/b") is None


async def test_put_creates_then_overwrites(store: Storage) -> None:
    assert await store.put("k", b"1") == 0
    assert await store.put("k", b"2") == 1
    assert (await store.get("k")).value == b"2"  # type: ignore[union-attr]


async def test_cas_conflicts(store: Storage) -> None:
    await store.create("k", b"x")
    with pytest.raises(VersionConflictError):
        await store.create("k", b"y")
    with pytest.raises(VersionConflictError):
        await store.update("k", b"y", version=5)
    with pytest.raises(VersionConflictError):
        await store.delete("k", version=3)
    with pytest.raises(VersionConflictError):
        await store.commit([Check("k", 1)])
    with pytest.raises(NotFoundError):
        await store.update("missing", b"y")
    with pytest.raises(NotFoundError):
        await store.delete("missing")
    with pytest.raises(NotFoundError):
        await store.commit([Check("missing", 0)])
    assert (await store.get("k")).value == b"x"  # type: ignore[union-attr]
    assert await store.commit([Check("k", 0)]) == [None]


async def test_versions_survive_delete_and_recreate(store: Storage) -> None:
    await store.create("k", b"1")
    await store.update("k", b"2")
    await store.delete("k")
    assert await store.create("k", b"3") == 0  # a new node starts again at 0, as in ZooKeeper


# -- transactions --------------------------------------------------------------------


async def test_transaction_applies_all_in_order(store: Storage) -> None:
    await store.create("t/old", b"o")
    res = await store.commit(
        [
            Create("t/a", b"a"),
            Update("t/a", b"a2", 0),  # sees the create above
            Update("t/old", b"o2", 0),
            Delete("t/old", 1),
            Create("t/old", b"reborn"),
            Check("t/a", 1),
        ]
    )
    assert res == [0, 1, 1, None, 0, None]
    got = await store.get_many(["t/a", "t/old"])
    assert {k: (e.value, e.version) for k, e in got.items()} == {
        "t/a": (b"a2", 1),
        "t/old": (b"reborn", 0),
    }


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (Create("t/keep", b"dup"), VersionConflictError),
        (Update("t/keep", b"x", 7), VersionConflictError),
        (Update("t/nope", b"x"), NotFoundError),
        (Delete("t/nope"), NotFoundError),
        (Check("t/keep", 9), VersionConflictError),
    ],
)
async def test_transaction_is_all_or_nothing(store: Storage, bad: Op, error: type) -> None:
    await store.create("t/keep", b"k")
    before = await store.children("")
    ops: list[Op] = [
        Create("t/new1", b"1"),
        Update("t/keep", b"changed", 0),
        Create("u/deep/new2", b"2"),
        Delete("t/keep", 1),
        Create("t/keep", b"again"),
        bad if not isinstance(bad, Create) else Create("t/new1", b"dup"),
    ]
    with pytest.raises(error):
        await store.commit(ops)
    assert await store.get("t/new1") is None
    assert await store.get("u/deep/new2") is None
    keep = await store.get("t/keep")
    assert keep is not None and (keep.value, keep.version) == (b"k", 0)
    assert await store.children("") == before
    assert await store.children("t") == ["keep"]


async def test_empty_commit_is_a_noop(store: Storage) -> None:
    assert await store.commit([]) == []


# -- listing -------------------------------------------------------------------------


async def test_children_are_implicit_and_vanish(store: Storage) -> None:
    await store.commit(
        [
            Create("apps/b/current", b"b"),
            Create("apps/a/current", b"a"),
            Create("apps/a/versions/1", b"a1"),
            Create("apps/a/versions/2", b"a2"),
            Create("apps-x", b"sibling"),
            Create("framework-id", b"f"),
        ]
    )
    assert await store.children("") == ["apps", "apps-x", "framework-id"]
    assert await store.children("apps") == ["a", "b"]
    assert await store.children("apps/a") == ["current", "versions"]
    assert await store.children("apps/a/versions") == ["1", "2"]
    assert await store.children("apps/a/versions/1") == []
    assert await store.children("nothing/here") == []
    await store.commit([Delete("apps/a/versions/1"), Delete("apps/a/versions/2")])
    assert await store.children("apps/a") == ["current"]
    await store.delete("apps/a/current")
    assert await store.children("apps") == ["b"]
    assert await store.get_children("apps/b") == {
        "current": (await store.get("apps/b/current"))  # type: ignore[dict-item]
    }


async def test_get_children_reads_direct_values_only(store: Storage) -> None:
    await store.commit(
        [Create("d/x", b"1"), Create("d/y", b"2"), Create("d/z/deep", b"3"), Create("dx", b"4")]
    )
    got = await store.get_children("d")
    assert {n: e.value for n, e in got.items()} == {"x": b"1", "y": b"2"}


async def test_get_many_in_bulk(store: Storage) -> None:
    await store.commit([Create(f"bulk/{i:04d}", str(i).encode()) for i in range(1200)])
    keys = [f"bulk/{i:04d}" for i in range(0, 1300, 1)]
    got = await store.get_many(keys)
    assert len(got) == 1200
    assert got["bulk/0999"].value == b"999"
    assert await store.get_many([]) == {}


async def test_large_values(store: Storage) -> None:
    big = bytes(range(256)) * 8192  # 2 MiB, above ZooKeeper's node limit
    await store.create("big", big)
    assert (await store.get("big")).value == big  # type: ignore[union-attr]


# -- keys ----------------------------------------------------------------------------


@given(st.text(min_size=0, max_size=40))
def test_segment_roundtrip(name: str) -> None:
    seg = segment(name)
    assert "/" not in seg
    assert seg not in ("", ".", "..")
    if "\x00" not in name:
        assert unsegment(seg) == name


def test_bad_keys_are_rejected() -> None:
    for bad in ["", "/a", "a/", "a//b", "a/./b", "a/../b", "a b"]:
        with pytest.raises(ValueError):
            key(raw=[bad])


async def test_escaped_ids_are_stored(store: Storage) -> None:
    names = ["/prod/web", ".", "..", "a b", "ünïcode", "2024-01-01T00:00:00.000Z", "%41"]
    await store.commit([Create(key("x", n), n.encode()) for n in names])
    listed = [unsegment(s) for s in await store.children("x")]
    assert sorted(listed) == sorted(names)


# -- format and reopening ----------------------------------------------------------


async def test_format_marker_written_and_checked(backend: Backend) -> None:
    s = await backend.open()
    try:
        assert await ensure_format(s) == FORMAT_VERSION
        assert (await s.get(FORMAT_KEY)).value == str(FORMAT_VERSION).encode()  # type: ignore[union-attr]
        assert await ensure_format(s) == FORMAT_VERSION  # idempotent
        await s.update(FORMAT_KEY, str(FORMAT_VERSION + 1).encode())
        with pytest.raises(StorageFormatError) as info:
            await ensure_format(s)
        assert (info.value.found, info.value.supported) == (FORMAT_VERSION + 1, FORMAT_VERSION)
    finally:
        await s.aclose()


async def test_format_refuses_unmarked_data(store: Storage) -> None:
    await store.create("apps/x/current", b"?")
    with pytest.raises(StorageError):
        await ensure_format(store)


async def test_migrations_run_in_order_atomically(store: Storage) -> None:
    await store.create(FORMAT_KEY, b"1")
    await store.create("data/old", b"v1")
    seen: list[int] = []

    async def one_to_two(s: Storage) -> list[Op]:
        seen.append(1)
        old = await s.get("data/old")
        assert old is not None
        return [Delete("data/old"), Create("data/new", old.value + b"->v2")]

    async def two_to_three(s: Storage) -> list[Op]:
        seen.append(2)
        return [Create("data/extra", b"v3")]

    migrations = {1: one_to_two, 2: two_to_three}
    assert await ensure_format(store, current=3, migrations=migrations) == 1
    assert seen == [1, 2]
    assert (await store.get(FORMAT_KEY)).value == b"3"  # type: ignore[union-attr]
    assert await store.children("data") == ["extra", "new"]

    async def broken(s: Storage) -> list[Op]:
        return [Delete("data/extra"), Update("data/missing", b"")]

    with pytest.raises(NotFoundError):
        await ensure_format(store, current=4, migrations={3: broken})
    assert (await store.get(FORMAT_KEY)).value == b"3"  # type: ignore[union-attr]
    assert await store.get("data/extra") is not None
    with pytest.raises(StorageError, match="no migration"):
        await ensure_format(store, current=5, migrations={})


async def test_reopen_sees_everything(backend: Backend) -> None:
    s = await backend.open()
    await ensure_format(s)
    await s.commit([Create(f"r/{i}", bytes([i % 256]) * i) for i in range(300)])
    await s.update("r/7", b"seven")
    await s.delete("r/8")
    await s.aclose()
    s2 = await backend.open()
    try:
        assert await ensure_format(s2) == FORMAT_VERSION
        assert len(await s2.children("r")) == 299
        e = await s2.get("r/7")
        assert e is not None and (e.value, e.version) == (b"seven", 1)
        assert (await s2.get("r/299")).value == bytes([299 % 256]) * 299  # type: ignore[union-attr]
        assert await s2.get("r/8") is None
    finally:
        await s2.aclose()


async def test_closed_store_raises(backend: Backend) -> None:
    s = await backend.open()
    await s.aclose()
    await s.aclose()  # idempotent
    with pytest.raises(StorageError):
        await s.get("a")


# -- backend equivalence ---------------------------------------------------------------

SQLITE_KEYS = ["a", "b", "a/x", "a/y", "b/z/w"]


@settings(max_examples=40, deadline=None)
@given(state_backends.transactions(SQLITE_KEYS, max_size=8))
async def test_sqlite_behaves_like_memory(
    tmp_path_factory: pytest.TempPathFactory, txs: list[list[Op]]
) -> None:
    """Random transactions give the same results, errors and final tree on both."""
    sql = await SqliteStorage.open(
        tmp_path_factory.mktemp("eq") / "s.sqlite3", synchronous="NORMAL"
    )
    try:
        await state_backends.assert_behaves_like_memory(
            sql, txs, keys=SQLITE_KEYS, prefixes=["", "a", "b", "b/z"]
        )
        assert await sql.check_integrity() == []
    finally:
        await sql.aclose()


# -- SQLite specifics -------------------------------------------------------------------


async def test_sqlite_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    s = await SqliteStorage.open(path)
    await s.aclose()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StorageFormatError):
        await SqliteStorage.open(path)


async def test_sqlite_errors_do_not_cross(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError) as info:
        await SqliteStorage.open(junk)
    assert not isinstance(info.value, sqlite3.Error)
    (tmp_path / "dir.sqlite3").mkdir()
    with pytest.raises(StorageUnavailableError):
        await SqliteStorage.open(tmp_path / "dir.sqlite3")


async def test_sqlite_locked_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    s = await SqliteStorage.open(path, busy_timeout=0.05)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StorageUnavailableError):
            await s.create("x", b"1")
    finally:
        other.execute("ROLLBACK")
        other.close()
    await s.create("x", b"1")  # usable again once the lock is gone
    assert await s.check_integrity() == []
    assert s.statistics().commits == 1
    await s.aclose()


async def test_sqlite_durability_settings(tmp_path: Path) -> None:
    s = await SqliteStorage.open(tmp_path / "s.sqlite3")
    try:

        def pragmas(conn: sqlite3.Connection) -> tuple[str, int]:
            return (
                conn.execute("PRAGMA journal_mode").fetchone()[0],
                conn.execute("PRAGMA synchronous").fetchone()[0],
            )

        assert await s._run(pragmas) == ("wal", 2)  # 2 = FULL
    finally:
        await s.aclose()
    with pytest.raises(ValueError):
        await SqliteStorage.open(tmp_path / "s.sqlite3", synchronous="OFF")  # type: ignore[arg-type]
