"""Deployments at scale: one more app with 100, 1,000 and 10,000 apps stored.

As users run it: ``marathon`` is its own process (``--master`` pointing nowhere: apps
of 0 instances deploy without Mesos), on SQLite (``--state_dir``) or on a real
ZooKeeper (``--zk``, a process of its own too). The apps are seeded through the
state store directly before the server starts (10,000 POSTs would take minutes and
measure the API, not the deployment), in groups of 100 (``/seed/gN/appM``) or, with
``--layout flat``, all in one group (``/seed/appM``, the worst case for a change to
that group).

Reported per backend and size, each measured in this run:
- ``deploy``: from ``POST /v2/apps`` of one more app (0 instances, into a seeded
  group) to its ``deployment_success`` on ``/v2/events``; median and p90 of 20;
- ``ping idle``: p50/p99 of ``GET /ping`` with nothing else going on;
- ``ping busy``: p99/max of ``GET /ping`` while 20 such deployments are posted back
  to back, until the last succeeded.
and the ratios 10,000 / 100 apps (goal: within 2x).

Usage: python benchmarks/bench_deploy_scale.py [--sizes 100,1000,10000]
       [--backends sqlite,zk] [--layout grouped|flat] [--rounds 20] [--store-only]

``--store-only`` times just the storage step in-process on SQLite (the median of
``store_root_and_deployment`` adding one app, 3x ``--rounds`` of them, and the first
``root_record`` after a load, which runs on the event loop): steadier than the HTTP
figures on a loaded machine.

Measured 2026-12-03 on a 2-core machine shared with other jobs (load average 2-6
during the runs, so single figures swing by 2x; compare within a run). Deploy
median in ms for 100 / 1,000 / 10,000 apps, then ``ping busy`` p99 in ms:

before (code before this benchmark, grouped, one run; ``ping idle`` p99 3-30 ms):
  sqlite  66 / 315 / 2507   (10k/100 x38)   ping busy p99  58 / 237 / 1380
  zk      46 / 105 /  482   (10k/100 x10.6) ping busy p99  43 /  96 /  716
after, grouped (three runs; ``ping idle`` p99 3-12 ms):
  sqlite  13 / 28 / 65 (x5.0);  22 / 32 / 29 (x1.35);  44 / 41 / 57 (x1.28)
          ping busy p99  9 / 17 / 27;  23 / 12 / 11;  16 / 16 / 20
  zk      31 / 33 / 33 (x1.05); 37 / 36 / 31 (x0.83);  30 / 22 / 29 (x0.97)
          ping busy p99 36 / 56 / 36;  40 / 17 / 42;  38 / 24 /  7
after, flat (two runs; ``ping idle`` p99 2-10 ms):
  sqlite  10 / 41 / 46 (x4.45); 13 / 14 / 56 (x4.43)
          ping busy p99 15 / 12 / 19;  4 /  6 / 29
  zk      25 / 37 / 67 (x2.67); 21 / 31 / 40 (x1.88)
          ping busy p99 61 / 23 / 51; 15 / 30 / 10

What was left growing with the apps on SQLite: the root record (about 50 bytes per
app: 490 KiB at 10k) was written twice per change (its version and ``current``) with
``synchronous=FULL``, uncompressed, and the first change after a load stripped every
app of the tree on the event loop. Since then (storage format 3, SQLite schema 2) the
root's ``current`` names its version (the record is written once), SQLite stores
large values zlib-compressed (the 10k root: 31 KiB), still with ``synchronous=FULL``,
and a loaded root is stripped in a worker thread. Measured 2026-12-03, same session,
base (lead 9c6d1dc) and after alternating, load average 5-6 on 2 cores:

``--store-only`` (median of 60 ``store_root_and_deployment``, ms, 100 / 1,000 / 10,000
apps; then the first ``root_record`` after the load at 10,000, on the event loop)::

    grouped  base   5.5 / 7.5 / 27.0  (x4.9);  6.0 / 4.6 / 30.5 (x5.1)   first  84 / 104 ms
             after  3.3 / 3.4 /  9.1  (x2.8);  3.3 / 3.2 /  6.1 (x1.8)   first 0.7 / 0.9 ms
    flat     base   6.9 / 7.2 / 31.7  (x4.6);  2.7 / 4.9 / 19.7 (x7.3)   first 133 / 142 ms
             after  2.0 / 2.3 / 11.4  (x5.7);  2.0 / 3.2 / 11.8 (x5.9)   first 6.7 / 5.4 ms

so the storage step at 10k apps is 3-5x (grouped) and 2-3x (flat) faster. The first
change after a load of 10k apps (grouped, the process as users run it): ``/ping`` max
during it 140 ms before, 24-38 ms after; the steps left above 12 ms were socket sends
waiting for the GIL held by worker threads, not code on the loop. The HTTP figures
above swung 3-5x between identical runs at this load (deploy median at 10k, two runs
each: base 44 / 53 ms, after 50 / 12 ms), so they show no ratio worth quoting.
In the flat layout a change still walked the changed group's 10k apps (identity
checks and rebuilding its reference list): what kept flat at x5.7.

Since storage format 4 a group's app references are stored in content-addressed
chunks of about 64 (``state/refchunks.py``): adding one app to the 10k-app group
writes the chunk around it and a root record naming 157 chunks (5-10 KiB per
deployment; the record was 450 KiB), and no step of a change visits the group's apps
in Python (its app index is shared or extended in place, diffs compare slices in C,
a removal looks its app up in the chunks that hold it). Measured 2026-12-03, flat,
base (lead 7e434a6) and after alternating in one session, load average 5-12 on 2
cores (other jobs, and this branch's ZooKeeper tests during the second pair):

``--store-only`` (ms, 100 / 1,000 / 10,000 apps; first ``root_record`` at 10,000)::

    base   1.6 / 1.8 /  5.2 (x3.3);  1.6 / 2.1 / 18.2 (x11);   first  3.6 / 25.8 ms
           2.8 / 3.1 / 39.8 (x14);   2.0 / 2.2 / 12.7 (x6.4)   first 18.1 / 40.9 ms
    after  2.4 / 2.3 /  2.8 (x1.2);  5.6 / 7.5 /  7.8 (x1.4)   first  0.4 /  0.4 ms
          14.4 / 4.4 /  5.8 (x0.4);  9.1 / 3.2 /  3.4 (x0.4)   first  9.6 /  0.7 ms

HTTP deploy median (ms, 100 / 1,000 / 10,000), two runs each::

    sqlite base   37.9 / 60.0 /  95.7 (x2.5);   68.6 / 72.5 / 206.6 (x3.0)
           after  12.3 / 23.4 /   9.5 (x0.8);   86.4 / 89.2 /  78.9 (x0.9)
    zk     base   29.1 / 38.3 /  63.8 (x2.2);   53.6 / 60.3 / 111.6 (x2.1)
           after  21.7 / 18.7 /  27.3 (x1.3);   39.8 / 53.2 /  34.5 (x0.9)

In process (``GroupManager.update_root`` and the executor's run of the deployment,
SQLite, median of 60; the ``test_deploy_decodes`` harness): at 10,000 flat apps
``update_root`` 29.0 ms before, 4.7 ms after (100 apps: 3.9 / 3.7 ms), the run
24.5 ms before, 2.4 ms after (100 apps: 5.9 / 2.7 ms). Removing one app of the 10k
group with 50 root versions kept: 322 ms before (``find_app`` in each kept root
rebuilt that root's app index), 19 ms after (100 apps: 6 ms). Left growing with the
group: copying its apps tuple and comparing slices of it (C, about 0.1 ms at 10k),
and after a removal the group's app index is rebuilt on the next look-up (about 1 ms).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
import httpx
import trio

from marathon_core.model.app import AppDefinition
from marathon_core.model.deployment import Deployment
from marathon_core.model.group import Group
from marathon_core.model.ids import PathId, Timestamp
from marathon_core.state.repositories import transact
from marathon_core.state.sqlite import DEFAULT_FILENAME, SqliteStorage
from marathon_core.state.storage import Op, Storage
from marathon_core.state.store import StateStore
from marathon_core.state.zk.storage import ZkStorage
from marathon_core.testing.processes import running_marathon
from marathon_core.testing.zookeeper import running_zookeeper

#: Apps per seeding transaction (ZooKeeper takes at most 1 MB per request).
SEED_BATCH = 200
#: Apps per group in the grouped layout.
GROUP_SIZE = 100


def seed_group(n: int, layout: str) -> PathId:
    return PathId.parse("/seed" if layout == "flat" else f"/seed/g{n // GROUP_SIZE}")


async def seed(storage: Storage, n_apps: int, layout: str) -> None:
    """Store ``n_apps`` apps of 0 instances and the root referring to them."""
    try:
        state = await StateStore.open(storage)
        version = Timestamp.now()
        apps = [
            AppDefinition(
                id=seed_group(n, layout).child(f"app{n}"),
                cmd="sleep 3600",
                instances=0,
                cpus=0.01,
                mem=8,
                labels={"team": f"t{n % 7}"},
                version=version,
            )
            for n in range(n_apps)
        ]
        for k in range(0, n_apps, SEED_BATCH):
            chunk = apps[k : k + SEED_BATCH]

            async def plan(chunk: list[AppDefinition] = chunk) -> list[Op]:
                return [op for a in chunk for op in await state.apps.plan_store(a)]

            await transact(state.commit, plan)
        by_group: dict[PathId, list[AppDefinition]] = {}
        for a in apps:
            by_group.setdefault(a.id.parent, []).append(a)
        if layout == "flat":
            top = Group(PathId.parse("/seed"), apps=tuple(apps), version=version)
        else:
            groups = tuple(Group(g, apps=tuple(m), version=version) for g, m in by_group.items())
            top = Group(PathId.parse("/seed"), groups=groups, version=version)
        root = Group(PathId.root(), groups=(top,), version=version)
        await state.store_root(root, apps_changed=[], apps_deleted=[])
    finally:
        await storage.aclose()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@attrs.define
class Figures:
    deploy_median: float
    deploy_p90: float
    ping_idle_p50: float
    ping_idle_p99: float
    ping_busy_p99: float
    ping_busy_max: float


class Successes:
    """``deployment_success`` ids from ``/v2/events``, and a way to wait for one.

    The stream is reopened if the server ends it; a ``deployment_failed`` ends the run.
    """

    def __init__(self) -> None:
        self.done: set[str] = set()
        self.failed: dict[str, str] = {}
        self._changed = trio.Event()

    async def follow(
        self, url: str, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        query = "event_type=deployment_success&event_type=deployment_failed"
        async with httpx.AsyncClient(timeout=None) as client:
            while True:
                async with client.stream("GET", f"{url}/v2/events?{query}") as response:
                    task_status.started()
                    task_status = trio.TASK_STATUS_IGNORED
                    async for line in response.aiter_lines():
                        if line.startswith("data: "):
                            event = json.loads(line[6:])
                            if event["eventType"] == "deployment_failed":
                                self.failed[event["id"]] = event.get("reason", "")
                            else:
                                self.done.add(event["id"])
                            self._changed.set()
                            self._changed = trio.Event()
                print("event stream ended; reopening", file=sys.stderr)

    async def wait(self, ids: set[str]) -> None:
        with trio.fail_after(300):
            while not ids <= self.done:
                if ids & self.failed.keys():
                    raise RuntimeError(f"deployment failed: {self.failed}")
                await self._changed.wait()


async def measure(url: str, size: int, layout: str, rounds: int) -> Figures:
    group = seed_group(0, layout)
    counter = 0

    async def post(client: httpx.AsyncClient, *, until_leader: bool = False) -> str:
        nonlocal counter
        counter += 1
        body = {"id": str(group.child(f"new{counter}")), "cmd": "sleep 1", "instances": 0}
        response = await client.post("/v2/apps", json=body)
        while until_leader and response.status_code == 503:  # elected, not yet loaded
            await trio.sleep(0.1)
            response = await client.post("/v2/apps", json=body)
        if response.status_code != 201:
            raise RuntimeError(f"POST: {response.status_code} {response.text[:300]}")
        return response.headers["Marathon-Deployment-Id"]

    async with (
        httpx.AsyncClient(base_url=url, timeout=120) as client,
        httpx.AsyncClient(base_url=url, timeout=120) as pinger,
        trio.open_nursery() as nursery,
    ):
        successes = Successes()
        await nursery.start(successes.follow, url)
        # Warm: the leader has loaded the root (and the first change scanned it whole).
        await successes.wait({await post(client, until_leader=True)})

        idle = []
        for _ in range(200):
            t = time.perf_counter()
            (await pinger.get("/ping")).raise_for_status()
            idle.append(time.perf_counter() - t)

        deploys = []
        for _ in range(rounds):
            t = time.perf_counter()
            await successes.wait({await post(client)})
            deploys.append(time.perf_counter() - t)

        busy: list[float] = []
        posted: set[str] = set()

        async def ping_until_done(done: trio.Event) -> None:
            while not done.is_set():
                t = time.perf_counter()
                (await pinger.get("/ping")).raise_for_status()
                busy.append(time.perf_counter() - t)

        finished = trio.Event()
        async with trio.open_nursery() as pings:
            pings.start_soon(ping_until_done, finished)
            for _ in range(rounds):
                posted.add(await post(client))
            await successes.wait(posted)
            finished.set()
        nursery.cancel_scope.cancel()
    return Figures(
        deploy_median=statistics.median(deploys),
        deploy_p90=percentile(deploys, 0.9),
        ping_idle_p50=percentile(idle, 0.5),
        ping_idle_p99=percentile(idle, 0.99),
        ping_busy_p99=percentile(busy, 0.99),
        ping_busy_max=max(busy),
    )


@contextmanager
def server(backend: str, size: int, layout: str, workdir: Path, zk_hosts: str) -> Iterator[str]:
    """A marathon process over freshly seeded state; yields its URL."""
    state_dir = workdir / f"{backend}-{size}-{layout}"
    state_dir.mkdir()
    args = ["--master", "http://127.0.0.1:1", "--hostname", "127.0.0.1"]
    if backend == "zk":
        zk_url = f"zk://{zk_hosts}/deploy-scale-{size}-{layout}"
        trio.run(lambda: _seed_zk(zk_url, size, layout))
        args += ["--zk", zk_url]
    else:
        trio.run(lambda: _seed_sqlite(state_dir / DEFAULT_FILENAME, size, layout))
    with running_marathon(*args, state_dir=state_dir) as marathon:
        yield marathon.url


async def _seed_sqlite(path: Path, size: int, layout: str) -> None:
    await seed(await SqliteStorage.open(path, synchronous="NORMAL"), size, layout)


async def _seed_zk(url: str, size: int, layout: str) -> None:
    await seed(await ZkStorage.connect(url), size, layout)


async def store_only(path: Path, size: int, layout: str, rounds: int) -> tuple[float, float]:
    """(median ms of ``store_root_and_deployment`` of one more app, ms of the first
    ``root_record`` after the load), in this process on SQLite as marathon opens it
    (``synchronous=FULL``): the storage part of a deployment without the noise of HTTP
    and of other processes."""
    await _seed_sqlite(path, size, layout)
    storage = await SqliteStorage.open(path)
    try:
        state = await StateStore.open(storage)
        root = await state.root_group()
        assert root is not None and root.version is not None
        version = root.version
        group = seed_group(0, layout)
        times = []
        first_record = 0.0
        for n in range(rounds):
            version = Timestamp(version.millis + 1)
            app = AppDefinition(id=group.child(f"new{n}"), cmd="sleep 1", version=version)
            target = attrs.evolve(root.update_app(app), version=version)
            if n == 0:
                started = time.perf_counter()
                state.root_record(target)  # what the event loop pays for the first change
                first_record = time.perf_counter() - started
            started = time.perf_counter()
            await state.store_root_and_deployment(
                target, Deployment(id=f"d{n}", version=version), apps_changed=[app], apps_deleted=[]
            )
            times.append(time.perf_counter() - started)
            root = target
    finally:
        await storage.aclose()
    return statistics.median(times) * 1000, first_record * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--backends", default="sqlite,zk")
    parser.add_argument("--layout", choices=["grouped", "flat"], default="grouped")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument(
        "--store-only", action="store_true", help="time the SQLite store step in-process"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.store_only:
        with tempfile.TemporaryDirectory(prefix="bench-deploy-store-") as tmp:
            for size in sizes:
                path = Path(tmp) / f"{size}.sqlite3"
                median, first = trio.run(store_only, path, size, args.layout, args.rounds * 3)
                print(
                    f"sqlite {size:6} apps ({args.layout}): store_root_and_deployment median "
                    f"{median:.1f} ms | first root_record after load {first:.1f} ms",
                    flush=True,
                )
        return
    backends = args.backends.split(",")
    results: dict[tuple[str, int], Figures] = {}
    with tempfile.TemporaryDirectory(prefix="bench-deploy-scale-") as tmp:
        workdir = Path(tmp)
        with contextlib_zookeeper("zk" in backends, workdir / "zk") as zk_hosts:
            for backend in backends:
                for size in sizes:
                    started = time.perf_counter()
                    with server(backend, size, args.layout, workdir, zk_hosts) as url:
                        figures = trio.run(measure, url, size, args.layout, args.rounds)
                    results[backend, size] = figures
                    ms = {k: round(v * 1000, 1) for k, v in attrs.asdict(figures).items()}
                    print(
                        f"{backend:6} {size:6} apps ({args.layout}): deploy median "
                        f"{ms['deploy_median']} ms p90 {ms['deploy_p90']} ms | ping idle p50 "
                        f"{ms['ping_idle_p50']} p99 {ms['ping_idle_p99']} ms | ping busy p99 "
                        f"{ms['ping_busy_p99']} max {ms['ping_busy_max']} ms "
                        f"[{time.perf_counter() - started:.0f} s]",
                        flush=True,
                    )
    small, large = min(sizes), max(sizes)
    for backend in backends:
        a, b = results[backend, small], results[backend, large]
        print(
            f"{backend:6} {large}/{small} apps: "
            f"deploy median x{b.deploy_median / a.deploy_median:.2f}, "
            f"ping busy p99 x{b.ping_busy_p99 / a.ping_busy_p99:.2f}"
            f" (busy/idle p99 at {large}: x{b.ping_busy_p99 / b.ping_idle_p99:.1f})"
        )


@contextmanager
def contextlib_zookeeper(wanted: bool, directory: Path) -> Iterator[str]:
    if not wanted:
        yield ""
        return
    with running_zookeeper(directory) as ensemble:
        yield ensemble.hosts


if __name__ == "__main__":
    main()
