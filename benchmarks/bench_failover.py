"""Failover time: SIGKILL of the leader to the first write the new leader accepts.

Two ``marathon`` processes share a real ZooKeeper (3-node ensemble with --ensemble)
and state; the leader is killed, and a client retries ``POST /v2/apps`` on the standby
until it gets a 201. Reported as seconds and as a multiple of the ZooKeeper session
timeout, which bounds how fast ZooKeeper itself can notice the dead leader.

Usage: python benchmarks/bench_failover.py [--rounds 5] [--session-timeout 2000] [--ensemble]
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

from marathon_core.testing.zookeeper import running_zookeeper
from marathon_rest.testing import running_marathon


def one_round(zk_url: str, session_ms: int, workdir: Path, n: int) -> float:
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
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            leaders = {s.leader() for s in servers}
            if len(leaders) == 1 and None not in leaders:
                break
            time.sleep(0.05)
        (address,) = leaders
        leader = next(s for s in servers if s.url == f"http://{address}")
        standby = next(s for s in servers if s is not leader)
        killed = time.monotonic()
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
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-failover-") as tmp,
        running_zookeeper(Path(tmp) / "zk", size=3 if args.ensemble else 1) as zk,
    ):
        times = [
            one_round(zk.url(f"/failover{n}"), args.session_timeout, Path(tmp), n)
            for n in range(args.rounds)
        ]
    session = args.session_timeout / 1000
    print(
        f"ZooKeeper {'ensemble' if args.ensemble else 'standalone'}, "
        f"session timeout {session:.1f} s, {args.rounds} rounds"
    )
    print(
        f"SIGKILL -> first accepted write: median {statistics.median(times):.2f} s "
        f"({statistics.median(times) / session:.2f}x session timeout), "
        f"max {max(times):.2f} s ({max(times) / session:.2f}x)"
    )


if __name__ == "__main__":
    main()
