"""State store throughput on ZooKeeper, next to raw kazoo on the same server in the same run.

Run: ``.venv/bin/python benchmarks/bench_zk.py [--quick] [--ensemble] [--hosts h:p,...]``.
Without ``--hosts`` it starts its own ZooKeeper (one node, or three with
``--ensemble``) in a temporary directory and stops it at the end.  Prints one
line per measurement: our rate, the raw kazoo rate, and the ratio.  Not a test.

What is compared:

* app writes: ``StateStore.apps.store`` (read current + versions, one ``multi``
  with the new version, the current pointer and pruning), with and without the
  leader fence, against raw sequential ``KazooClient.set`` of the same bytes;
* single commits: ``ZkStorage.update`` (one ``multi`` through a trio worker
  thread) against the same raw ``set``;
* bulk reads: ``get_many`` of every app against raw pipelined ``get_async``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import trio
from kazoo.client import KazooClient

from marathon_core.election import ZkElection
from marathon_core.model.app import AppDefinition
from marathon_core.model.codec import to_storage
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.state.storage import Create
from marathon_core.state.store import StateStore
from marathon_core.state.zk.client import ZkClient
from marathon_core.state.zk.storage import ZkStorage
from marathon_core.testing.zookeeper import running_zookeeper


def app(n: int, v: int = 1) -> AppDefinition:
    return AppDefinition(
        id=PathId.parse(f"/bench/g{n % 100}/app-{n}"),
        cmd=f"python -m http.server $PORT0 # {n}",
        instances=10,
        labels={"team": f"t{n % 7}"},
        version=Timestamp(1_700_000_000_000 + v),
    )


def report(name: str, ours: float, raw: float) -> None:
    print(f"{name:<52} ours {ours:>9.0f}/s   raw {raw:>9.0f}/s   ours/raw {ours / raw:5.2f}")


def raw_sets(hosts: str, blob: bytes, n: int) -> float:
    """Sequential kazoo ``set`` calls/s (each one round trip), no trio involved."""
    c = KazooClient(hosts=hosts)
    c.start(timeout=10)
    try:
        path = "/bench-raw/node"
        c.ensure_path(path)
        t = time.perf_counter()
        for _ in range(n):
            c.set(path, blob)
        return n / (time.perf_counter() - t)
    finally:
        c.delete("/bench-raw", recursive=True)
        c.stop()
        c.close()


def raw_pipelined_gets(hosts: str, paths: list[str]) -> float:
    c = KazooClient(hosts=hosts)
    c.start(timeout=10)
    try:
        t = time.perf_counter()
        pending = [c.get_async(p) for p in paths]
        for r in pending:
            r.get(timeout=30)
        return len(paths) / (time.perf_counter() - t)
    finally:
        c.stop()
        c.close()


async def bench(hosts: str, n: int) -> None:
    # Both sides talk to the same server: followers and the ensemble leader differ by
    # up to 2x in write latency, which would swamp the comparison.
    hosts = hosts.split(",")[0]
    blob = to_storage(app(1))
    raw = await trio.to_thread.run_sync(raw_sets, hosts, blob, n)
    print(f"server {hosts}, value size {len(blob)} bytes, {n} sequential writes each")

    zk = await ZkClient.connect(f"zk://{hosts}/bench-{time.time_ns()}", timeout=10.0)
    try:
        storage = await ZkStorage.open(zk)
        state = await StateStore.open(storage, max_versions=50)
        await storage.create("single", blob)
        t = time.perf_counter()
        for _ in range(n):
            await storage.update("single", blob)
        report("ZkStorage.update (one multi) vs kazoo set", n / (time.perf_counter() - t), raw)

        t = time.perf_counter()
        for i in range(n):
            await state.apps.store(app(i % 100, 1 + i // 100))
        report("StateStore.apps.store vs kazoo set", n / (time.perf_counter() - t), raw)

        election = ZkElection(zk, "bench:1")
        async with trio.open_nursery() as nursery:
            leading = trio.Event()

            async def lead() -> None:
                leading.set()
                await trio.sleep_forever()

            await nursery.start(election.run, lead)
            await leading.wait()
            fenced = StateStore(storage, max_versions=50, fence=election.fence)
            t = time.perf_counter()
            for i in range(n):
                await fenced.apps.store(app(100 + i % 100, 1 + i // 100))
            report("StateStore.apps.store, fenced vs kazoo set", n / (time.perf_counter() - t), raw)
            nursery.cancel_scope.cancel()

        keys = [f"bulk/{i:06d}" for i in range(10 * n)]
        for i in range(0, len(keys), 200):
            await storage.commit([Create(k, blob) for k in keys[i : i + 200]])
        t = time.perf_counter()
        got = await storage.get_many(keys)
        ours = len(got) / (time.perf_counter() - t)
        paths = [f"{storage.base}/{k}#" for k in keys]
        raw_get = await trio.to_thread.run_sync(raw_pipelined_gets, hosts, paths)
        report(f"get_many of {len(keys)} values vs pipelined kazoo get", ours, raw_get)
    finally:
        await zk.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="300 writes instead of 2000")
    parser.add_argument("--ensemble", action="store_true", help="start 3 nodes instead of 1")
    parser.add_argument("--hosts", help="use a running ZooKeeper (host:port,...)")
    args = parser.parse_args()
    n = 300 if args.quick else 2000
    if args.hosts:
        trio.run(bench, args.hosts, n)
        return
    size = 3 if args.ensemble else 1
    with (
        tempfile.TemporaryDirectory(prefix="bench-zk-") as tmp,
        running_zookeeper(Path(tmp) / "zk", size=size) as zk,
    ):
        modes = ", ".join(f"{s.hosts} {s.mode()}" for s in zk.servers)
        print(f"ZooKeeper {'ensemble' if args.ensemble else 'standalone'}: {modes}")
        trio.run(bench, zk.hosts, n)


if __name__ == "__main__":
    main()
