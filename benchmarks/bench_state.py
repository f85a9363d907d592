"""State store throughput on SQLite, next to raw ``sqlite3`` doing the same I/O in the same run.

Run: ``.venv/bin/python benchmarks/bench_state.py [--quick]``.  Prints one line
per measurement: our rate, the raw rate, and the ratio.  Not a test: numbers
depend on the disk (fsync) and the machine.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

import attrs
import trio

from marathon_core.model.app import AppDefinition
from marathon_core.model.codec import to_storage
from marathon_core.model.deployment import Deployment
from marathon_core.model.group import Group
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.model.instance import AgentInfo, Condition, Instance, InstanceId, Task, TaskId
from marathon_core.state.instances import InstanceRepository
from marathon_core.state.repositories import Codec
from marathon_core.state.sqlite import SqliteStorage
from marathon_core.state.storage import Create
from marathon_core.state.store import StateStore


def app(n: int, v: int = 1) -> AppDefinition:
    return AppDefinition(
        id=PathId.parse(f"/bench/g{n % 100}/app-{n}"),
        cmd=f"python -m http.server $PORT0 # {n}",
        instances=10,
        labels={"team": f"t{n % 7}"},
        version=Timestamp(1_700_000_000_000 + v),
    )


def instance(a: PathId, n: int) -> Instance:
    iid = InstanceId(a, f"5f1e2d3c-0000-11ee-8000-{n:012d}")
    return Instance(
        iid,
        condition=Condition.RUNNING,
        agent=AgentInfo(host=f"10.0.{n % 250}.{n % 200}", agent_id=f"agent-{n % 500}"),
        tasks=(Task(TaskId(iid), condition=Condition.RUNNING, host_ports=(31000 + n % 1000,)),),
        run_spec_version=Timestamp(1_700_000_000_001),
    )


def report(name: str, ours: float, raw: float, unit: str = "/s") -> None:
    if unit == "/s":
        print(f"{name:<58} ours {ours:>10.0f}/s   raw {raw:>10.0f}/s   ours/raw {ours / raw:5.2f}")
    else:
        print(f"{name:<58} ours {ours:>9.3f} s   raw {raw:>9.3f} s   ours/raw {ours / raw:5.2f}")


def raw_conn(path: Path, sync: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={sync}")
    conn.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB, version INT)")
    return conn


def raw_writes(path: Path, sync: str, blob: bytes, n: int) -> float:
    conn = raw_conn(path, sync)
    t = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO kv VALUES (?, ?, 0)", (f"k/{i}", blob))
        conn.execute("COMMIT")
    dt = time.perf_counter() - t
    conn.close()
    return n / dt


def raw_reads(path: Path, n: int) -> float:
    conn = raw_conn(path, "NORMAL")
    t = time.perf_counter()
    for i in range(n):
        conn.execute("SELECT value, version FROM kv WHERE key = ?", (f"k/{i}",)).fetchone()
    dt = time.perf_counter() - t
    conn.close()
    return n / dt


async def timed(n: int, fn: Callable[[int], Awaitable[object]]) -> float:
    t = time.perf_counter()
    for i in range(n):
        await fn(i)
    return n / (time.perf_counter() - t)


async def bench_sync(tmp: Path, sync: Literal["FULL", "NORMAL"], n: int, sample: bytes) -> None:
    raw_w = raw_writes(tmp / f"raw-{sync}.db", sync, sample, n)
    storage = await SqliteStorage.open(tmp / f"ours-{sync}.db", synchronous=sync)
    state = await StateStore.open(storage)
    ours = await timed(n, lambda i: state.apps.store(app(i)))
    report(f"apps.store (2 reads + 2-op commit), {sync}", ours, raw_w)
    ours = await timed(n, lambda i: storage.create(f"k/{i}", sample))
    report(f"storage.create (1 op, thread hop), {sync}", ours, raw_w)
    ours = await timed(
        n, lambda i: state.deployments.put(Deployment(id=f"d{i}", version=Timestamp(i)))
    )
    report(f"deployments.put (1 read + 1-op commit), {sync}", ours, raw_w)
    # batched: 100 blobs per transaction, ours vs raw
    conn = raw_conn(tmp / f"rawb-{sync}.db", sync)
    t = time.perf_counter()
    for b in range(n // 100):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO kv VALUES (?, ?, 0)", [(f"b/{b}/{j}", sample) for j in range(100)]
        )
        conn.execute("COMMIT")
    raw_b = (n // 100 * 100) / (time.perf_counter() - t)
    conn.close()
    ours = 100 * await timed(
        n // 100, lambda b: storage.commit([Create(f"b/{b}/{j}", sample) for j in range(100)])
    )
    report(f"storage.commit of 100 creates, {sync} (values/s)", ours, raw_b)
    if sync == "NORMAL":
        raw_r = raw_reads(tmp / f"raw-{sync}.db", n)
        ours = await timed(n, lambda i: storage.get(f"k/{i}"))
        report("storage.get (bytes)", ours, raw_r)
        ids = [app(i).id for i in range(n)]
        ours = await timed(n, lambda i: state.apps.get(ids[i]))
        report("apps.get (bytes + decode)", ours, raw_r)
        keys = [f"k/{i}" for i in range(n)]
        t = time.perf_counter()
        await storage.get_many(keys)
        report("storage.get_many (all keys, one call)", n / (time.perf_counter() - t), raw_r)
    await storage.aclose()


async def bench_writes_reads(tmp: Path, n: int) -> None:
    sample = to_storage(app(1))
    print(f"-- single writes and reads (app value {len(sample)} B; one commit per write)")
    for sync in ("FULL", "NORMAL"):
        await bench_sync(tmp, sync, n, sample)

    # connection per call vs one connection, same reads
    path = tmp / "raw-NORMAL.db"
    t = time.perf_counter()
    for i in range(n):
        c = sqlite3.connect(path)
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("SELECT value FROM kv WHERE key = ?", (f"k/{i}",)).fetchone()
        c.close()
    per_call = n / (time.perf_counter() - t)
    report("raw read, connection per call vs one connection", per_call, raw_reads(path, n))


async def bench_instance_updates(tmp: Path) -> None:
    print("-- one instance update (read batch, replace member, CAS write), NORMAL")
    storage = await SqliteStorage.open(tmp / "inst.db", synchronous="NORMAL")
    state = await StateStore.open(storage)
    for size in (10, 1000, 10_000):
        a = PathId.parse(f"/size/{size}")
        insts = [instance(a, k) for k in range(size)]
        await state.instances.put_many(insts)
        rounds = 200 if size < 10_000 else 40
        ours = await timed(
            rounds,
            lambda i, insts=insts: state.instances.put(  # type: ignore[misc]
                attrs.evolve(insts[i % len(insts)], condition=Condition.KILLING)
            ),
        )
        batch = [attrs.evolve(x, condition=Condition.FINISHED) for x in insts[:100]]
        t = time.perf_counter()
        await state.instances.put_many(batch)
        batched = 100 / (time.perf_counter() - t)
        print(
            f"app with {size:>6} instances: single updates {ours:8.0f}/s, "
            f"100 updates in one put_many {batched:9.0f} updates/s"
        )
    await storage.aclose()


async def bench_load(tmp: Path, n_apps: int, per_app: int) -> None:
    print(f"-- load {n_apps} apps + {n_apps * per_app} instances (new leader start-up)")
    path = tmp / "load.db"
    storage = await SqliteStorage.open(path, synchronous="NORMAL")
    state = await StateStore.open(storage)
    apps = [app(i) for i in range(n_apps)]
    t = time.perf_counter()
    groups = {}
    for a in apps:
        groups.setdefault(a.id.parent, []).append(a)
    root = Group(
        PathId.root(),
        groups=(
            Group(
                PathId.parse("/bench"),
                groups=tuple(
                    Group(g, apps=tuple(m), version=apps[0].version) for g, m in groups.items()
                ),
                version=apps[0].version,
            ),
        ),
        version=apps[0].version,
    )
    await state.store_root(root)
    repo: InstanceRepository[Instance, InstanceId, PathId] = state.instances
    for k in range(0, n_apps, 500):
        await repo.put_many(instance(a.id, j) for a in apps[k : k + 500] for j in range(per_app))
    print(f"populate: {time.perf_counter() - t:.2f} s")
    await storage.aclose()

    # ours: open + full snapshot (root with all apps, all instances, deployments, framework id)
    t = time.perf_counter()
    storage = await SqliteStorage.open(path, synchronous="NORMAL")
    snap = await (await StateStore.open(storage)).load()
    ours = time.perf_counter() - t
    assert snap.root is not None and len(list(snap.root.transitive_apps())) == n_apps
    assert len(snap.instances) == n_apps * per_app
    t = time.perf_counter()
    raw_instances = await storage.get_children("instances")
    only_bytes = time.perf_counter() - t
    await storage.aclose()

    # raw: one query reading every value of the same file, no decoding
    t = time.perf_counter()
    conn = sqlite3.connect(path)
    total = sum(len(v) for (v,) in conn.execute("SELECT value FROM kv"))
    conn.close()
    raw = time.perf_counter() - t
    report(f"load everything ({total / 1e6:.0f} MB stored)", ours, raw, unit="s")
    print(f"   of which reading {len(raw_instances)} instance batches as bytes: {only_bytes:.3f} s")

    # the floor of decoding alone: from_storage of every instance, no storage involved
    codec: Codec[Instance] = repo.codec
    blobs = [codec.dumps(instance(apps[0].id, j)) for j in range(2000)]
    t = time.perf_counter()
    for b in blobs:
        codec.loads(b)
    per = (time.perf_counter() - t) / len(blobs)
    floor = per * n_apps * per_app
    print(f"   model codec decode alone: {per * 1e6:.1f} us/instance -> {floor:.2f} s")
    print(f"   file size {os.path.getsize(path) / 1e6:.0f} MB")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-state-") as d:
        tmp = Path(d)
        await bench_writes_reads(tmp, 300 if args.quick else 2000)
        await bench_instance_updates(tmp)
        if args.quick:
            await bench_load(tmp, 1000, 10)
        else:
            await bench_load(tmp, 10_000, 10)


if __name__ == "__main__":
    trio.run(main)
