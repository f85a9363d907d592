"""Embedded Mesos at scale: the null framework launches tasks on simulated agents.

Run: ``.venv/bin/python benchmarks/bench_mesos_local.py [--quick]``.

Starts ``marathon-mesos-local`` as its own process with 1,000 simulated agents (100
with ``--quick``) and no real agent, then drives it through the real v1 scheduler HTTP
API from this process: the null framework (``marathon_mesos_local.testing``) accepts
offers to launch 10,000 tasks (1,000 with ``--quick``), acknowledging every update,
until all are TASK_RUNNING. Reported, each next to a baseline measured in the same
run against the same master (sequential ``GET /health`` round trips):

* offers/s received and tasks/s launched (ACCEPT to TASK_RUNNING), and their ratio
  to the round-trip rate;

Calls (ACCEPT, DECLINE, ACKNOWLEDGE) and the baseline go through the same small raw
HTTP/1.1 keep-alive pool (8 connections): httpx costs the client about a millisecond of
CPU per request, which would make this a benchmark of the client, not of the master.
The event stream is read with httpx (one request).
* the master process's CPU seconds per 1,000 tasks and its resident memory before and
  after (from ``/proc``).

Not a test: the numbers depend on the machine. Two modes: ``fill`` (each offer is
filled with as many tasks as fit) and ``one`` (one task per offer, the leftover goes
back to the allocator: many more offers and ACCEPTs).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trio

from marathon_mesos_local.testing import NullFramework, SchedulerClient


class RawPool:
    """Minimal HTTP/1.1 keep-alive client: a request in, the status code out."""

    def __init__(self, url: str, size: int = 8) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.idle: list[tuple[trio.SocketStream, bytearray]] = []
        self.limiter = trio.CapacityLimiter(size)

    async def request(self, head: bytes, body: bytes = b"") -> int:
        async with self.limiter:
            if self.idle:
                stream, buffer = self.idle.pop()
            else:
                stream, buffer = await trio.open_tcp_stream(self.host, self.port), bytearray()
            await stream.send_all(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
            while (end := buffer.find(b"\r\n\r\n")) < 0:
                buffer += await stream.receive_some(65536) or _eof()
            lines = bytes(buffer[:end]).split(b"\r\n")
            status = int(lines[0].split()[1])
            length = next(
                (int(v) for k, _, v in (line.partition(b":") for line in lines[1:])
                 if k.strip().lower() == b"content-length"), 0,
            )  # fmt: skip
            del buffer[: end + 4]
            while len(buffer) < length:
                buffer += await stream.receive_some(65536) or _eof()
            del buffer[:length]
            self.idle.append((stream, buffer))
            return status

    async def aclose(self) -> None:
        for stream, _ in self.idle:
            await stream.aclose()


def _eof() -> bytes:
    raise ConnectionError("connection closed by the master")


class _Status:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


class FastClient(SchedulerClient):
    """The test scheduler with its calls sent through a :class:`RawPool`."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.pool = RawPool(url)
        self.path = urlsplit(self.url).path.encode()

    async def call(self, call: dict[str, Any], *, stream_id: str | None = None) -> Any:
        if self.framework_id is not None:
            call.setdefault("framework_id", {"value": self.framework_id})
        head = (
            b"POST " + self.path + b" HTTP/1.1\r\nHost: master\r\n"
            b"Content-Type: application/json\r\nMesos-Stream-Id: "
            + (stream_id or self.stream_id or "").encode()
            + b"\r\n"
        )
        status = await self.pool.request(head, json.dumps(call).encode())
        if status >= 400:
            raise RuntimeError(f"{call['type']} answered {status}")
        return _Status(status)

    async def aclose(self) -> None:
        await self.pool.aclose()
        await super().aclose()


CLI = Path(sys.executable).parent / "marathon-mesos-local"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def start_master(agents: int, log: Path) -> tuple[trio.Process, str]:
    argv = [
        str(CLI), "--port", "0", "--agents", "0", "--simulated-agents", str(agents),
        "--agent-resources", "cpus:10;mem:10240;disk:1000;ports:[31000-32000]",
        "--simulated_task_step", "10ms", "--log_level", "WARNING",
    ]  # fmt: skip
    with open(log, "wb") as out:
        process = await trio.lowlevel.open_process(argv, stdout=out, stderr=subprocess.STDOUT)
    with trio.fail_after(60):
        while True:
            match = re.search(r"master (http://\S+) with", log.read_text())
            if match:
                return process, match.group(1)
            await trio.sleep(0.05)


async def round_trips(url: str, count: int) -> float:
    """Sequential ``GET /health`` round trips per second on one keep-alive connection."""
    pool = RawPool(url, size=1)
    head = b"GET /health HTTP/1.1\r\nHost: master\r\n"
    await pool.request(head)
    started = time.perf_counter()
    for _ in range(count):
        assert await pool.request(head) == 200
    rate = count / (time.perf_counter() - started)
    await pool.aclose()
    return rate


async def run_mode(mode: str, agents: int, tasks: int, tmp: Path) -> None:
    master, url = await start_master(agents, tmp / f"master-{mode}.log")
    try:
        baseline = await round_trips(url, 2000)
        cpu0, rss0 = cpu_seconds(master.pid), rss_mb(master.pid)
        client = FastClient(url)
        framework = NullFramework(
            client, cpus=1.0, mem=1024.0, tasks_per_offer=1 if mode == "one" else None
        )
        async with trio.open_nursery() as nursery:
            await client.subscribe(nursery, name="null-framework")
            started = time.perf_counter()
            await framework.launch(nursery, tasks)
            elapsed = time.perf_counter() - started
            nursery.cancel_scope.cancel()
        await client.aclose()
        cpu1, rss1 = cpu_seconds(master.pid), rss_mb(master.pid)
    finally:
        master.send_signal(signal.SIGINT)
        with trio.move_on_after(10):
            await master.wait()
        if master.returncode is None:
            master.kill()
    launches = tasks / elapsed
    offers = framework.offers_seen / elapsed
    print(
        f"mode {mode}: {agents} simulated agents, {tasks} tasks, {framework.accepts} "
        f"ACCEPTs, {framework.offers_seen} offers in {elapsed:.2f} s"
    )
    print(f"  baseline GET /health round trips  {baseline:>9.0f}/s")
    print(
        f"  tasks launched (to RUNNING)       {launches:>9.0f}/s   ratio {launches / baseline:5.2f}"
    )
    print(f"  offers received                   {offers:>9.0f}/s   ratio {offers / baseline:5.2f}")
    print(f"  master CPU per 1,000 tasks        {(cpu1 - cpu0) / tasks * 1000:>9.2f} s")
    per_task = (rss1 - rss0) * 1024 / tasks
    print(
        f"  master RSS                        {rss0:>9.1f} MB with agents, "
        f"{rss1:.1f} MB with {tasks} tasks ({per_task:.1f} KB/task)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="100 agents, 1,000 tasks")
    parser.add_argument("--mode", choices=["fill", "one", "both"], default="both")
    args = parser.parse_args()
    agents, tasks = (100, 1000) if args.quick else (1000, 10_000)
    with tempfile.TemporaryDirectory(prefix="bench-mesos-local-") as tmp:
        for mode in ("fill", "one") if args.mode == "both" else (args.mode,):
            await run_mode(mode, agents, tasks, Path(tmp))


if __name__ == "__main__":
    trio.run(main)
