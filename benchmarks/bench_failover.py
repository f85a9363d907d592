"""Failover time: SIGKILL of the leader to the first write the new leader accepts.

Two ``marathon`` processes share a real ZooKeeper (3-node ensemble with --ensemble)
and state; the leader is killed, and a client retries ``POST /v2/apps`` on the standby
until it gets a 201. Reported as seconds and as a multiple of the ZooKeeper session
timeout, which bounds how fast ZooKeeper itself can notice the dead leader.

With ``--apps N --instances M`` the state holds N apps and M instances (seeded
once, before the first round). The target: 10,000 apps and 100,000 instances must
not push failover past the session timeout + 2 s, nor an abdication past 1 s.

Usage: python benchmarks/bench_failover.py [--rounds 5] [--session-timeout 2000] [--ensemble]
       [--apps 10000 --instances 100000] [--abdicate]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import trio
from bench_state import app, instance

from marathon_core.model.app import AppDefinition
from marathon_core.model.group import Group
from marathon_core.model.ids import PathId
from marathon_core.state.repositories import transact
from marathon_core.state.storage import Op
from marathon_core.state.store import StateStore
from marathon_core.state.zk.storage import ZkStorage
from marathon_core.testing.processes import running_marathon
from marathon_core.testing.zookeeper import running_zookeeper

#: Apps per seeding transaction (ZooKeeper takes at most 1 MB per request).
SEED_BATCH = 200


async def seed(zk_url: str, n_apps: int, n_instances: int) -> None:
    """Store ``n_apps`` apps in groups of 100 and ``n_instances`` instances spread over them."""
    storage = await ZkStorage.connect(zk_url)
    try:
        state = await StateStore.open(storage)
        apps = [app(i) for i in range(n_apps)]
        for k in range(0, n_apps, SEED_BATCH):
            chunk = apps[k : k + SEED_BATCH]

            async def plan(chunk: list[AppDefinition] = chunk) -> list[Op]:
                return [op for a in chunk for op in await state.apps.plan_store(a)]

            await transact(state.commit, plan)
        by_group: dict[PathId, list[AppDefinition]] = {}
        for a in apps:
            by_group.setdefault(a.id.parent, []).append(a)
        version = apps[0].version
        groups = tuple(Group(g, apps=tuple(m), version=version) for g, m in by_group.items())
        bench = Group(PathId.parse("/bench"), groups=groups, version=version)
        root = Group(PathId.root(), groups=(bench,), version=version)
        await state.store_root(root, apps_changed=[], apps_deleted=[])
        per_app = n_instances // n_apps
        for k in range(0, n_apps, SEED_BATCH):
            await state.instances.put_many(
                instance(a.id, j) for a in apps[k : k + SEED_BATCH] for j in range(per_app)
            )
    finally:
        await storage.aclose()


def one_round(
    zk_url: str, session_ms: int, workdir: Path, n: int, settle: float, abdicate: bool
) -> float:
    args = (
        "--master",
        "http://127.0.0.1:1",
        "--hostname",
        "127.0.0.1",
        "--zk",
        zk_url,
        "--zk_session_timeout",
        str(session_ms),
    )
    with ExitStack() as stack:
        servers = [
            stack.enter_context(running_marathon(*args, state_dir=workdir / f"{n}-{i}"))
            for i in range(2)
        ]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            leaders = {s.leader() for s in servers}
            if len(leaders) == 1 and None not in leaders:
                break
            time.sleep(0.05)
        (address,) = leaders
        leader = next(s for s in servers if s.url == f"http://{address}")
        standby = next(s for s in servers if s is not leader)
        # The leader has loaded once it serves a write; a standby runs for a while
        # before a real failover, so give it time to settle as well.
        while httpx.post(
            f"{leader.url}/v2/apps", json={"id": f"/fo/ready{n}", "cmd": "sleep 1"}, timeout=60
        ).status_code not in (201, 409):
            time.sleep(0.1)
        time.sleep(settle)
        killed = time.monotonic()
        if abdicate:
            httpx.delete(f"{leader.url}/v2/leader", timeout=5).raise_for_status()
        else:
            leader.process.send_signal(signal.SIGKILL)
        attempt = 0
        while True:
            attempt += 1
            try:
                response = httpx.post(
                    f"{standby.url}/v2/apps",
                    timeout=5,
                    json={"id": f"/fo/r{n}a{attempt}", "cmd": "sleep 1"},
                )
                if response.status_code == 201:
                    return time.monotonic() - killed
            except httpx.HTTPError:
                pass
            time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--session-timeout", type=int, default=2000, help="milliseconds")
    parser.add_argument("--ensemble", action="store_true", help="3 ZooKeeper nodes")
    parser.add_argument("--apps", type=int, default=0, help="apps stored before the rounds")
    parser.add_argument("--instances", type=int, default=0, help="instances stored with them")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before each kill")
    parser.add_argument(
        "--abdicate", action="store_true", help="DELETE /v2/leader instead of SIGKILL"
    )
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-failover-") as tmp,
        running_zookeeper(
            Path(tmp) / "zk", size=3 if args.ensemble else 1, heap="2g" if args.apps else "256m"
        ) as zk,
    ):
        url = zk.url("/failover")
        if args.apps:
            started = time.monotonic()
            trio.run(seed, url, args.apps, args.instances)
            print(
                f"seeded {args.apps} apps, {args.instances} instances in "
                f"{time.monotonic() - started:.1f} s"
            )
        times = [
            one_round(url, args.session_timeout, Path(tmp), n, args.settle, args.abdicate)
            for n in range(args.rounds)
        ]
    session = args.session_timeout / 1000
    print(
        f"ZooKeeper {'ensemble' if args.ensemble else 'standalone'}, "
        f"session timeout {session:.1f} s, {args.rounds} rounds, "
        f"{args.apps} apps and {args.instances} instances stored"
    )
    median = statistics.median(times)
    if args.abdicate:  # no session has to expire: compared with the 1 s target
        print(f"abdication -> first accepted write: median {median:.2f} s, max {max(times):.2f} s")
    else:
        print(
            f"SIGKILL -> first accepted write: median {median:.2f} s "
            f"({median / session:.2f}x session timeout), "
            f"max {max(times):.2f} s ({max(times) / session:.2f}x)"
        )


if __name__ == "__main__":
    main()
